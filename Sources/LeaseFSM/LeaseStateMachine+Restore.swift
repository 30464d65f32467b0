/// Seeding a new cluster from a backup (`gc-sidecar restore`, `gc-sidecar recover`).
extension LeaseStateMachine {
    /// What ``graceLeases(restoredAt:grace:)`` changed.
    public struct RestoreGrace: Hashable, Sendable {
        /// Active leases whose deadline was moved later.
        public var extended: Int
        /// Active leases whose deadline was already far enough away (kept as it was).
        public var kept: Int
    }

    /// The lease-time rule of a restore: every active lease keeps its absolute deadline
    /// (`expires_at`, wall-clock milliseconds), but no lease expires sooner than `grace` after
    /// `restoredAt` (or, when `grace` is nil, one of its own lease periods after it: as if its
    /// holder had renewed at the moment of the restore).
    ///
    /// Why: a restored cluster starts after an outage during which no holder could renew. Keeping
    /// deadlines alone would expire, at the new leader's first reap, every lease whose deadline
    /// fell in the outage, and clean up objects whose holders are alive but were cut off.
    /// Resetting every lease to a full period (etcd's rule) would extend leases that have hours
    /// left by nothing and shorten none, so it is the same for long leases; the difference is
    /// that long deadlines are kept rather than shortened. A lease is never extended by more than
    /// the grace, so a dead holder's object is cleaned up at most one grace later than it would
    /// have been. Ended leases, cleanup jobs (pending or dead-lettered, with their attempt counts
    /// and next attempt times) and client sessions are untouched.
    ///
    /// The derived indexes (expiry buckets) are rebuilt; ``snapshot()`` afterwards encodes the
    /// adjusted state at the same ``appliedIndex``.
    @discardableResult
    public mutating func graceLeases(restoredAt: WallTime, grace: Duration?) -> RestoreGrace {
        var result = RestoreGrace(extended: 0, kept: 0)
        let graceMilliseconds = grace.map { Int64($0.components.seconds) * 1000 + Int64($0.components.attoseconds / 1_000_000_000_000_000) }
        for id in leases.keys.sorted() {
            guard var lease = leases[id], lease.isActive else { continue }
            let period = graceMilliseconds ?? Int64(clamping: lease.durationSeconds) * 1000
            let floor = WallTime(milliseconds: restoredAt.milliseconds + max(0, period))
            if lease.expiresAt < floor {
                lease.expiresAt = floor
                leases[id] = lease
                result.extended += 1
            } else {
                result.kept += 1
            }
        }
        if result.extended > 0 { rebuildIndexes() }
        return result
    }
}
