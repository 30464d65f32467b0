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
    /// (`expires_at`, wall-clock milliseconds), but none expires sooner than `grace` after
    /// `restoredAt`.
    ///
    /// Why: a restored cluster starts after an outage during which no holder could renew.
    /// Keeping deadlines alone would expire, at the new leader's first reap, every lease whose
    /// deadline fell in the outage, and clean up objects whose holders are alive but were cut
    /// off; the grace gives them time to reconnect and renew. Resetting every lease to a full
    /// period (etcd 3.4's rule) would instead extend every lease by up to its whole duration, and
    /// a dead holder's object would wait that long. Here a lease with more than `grace` left
    /// keeps its remaining time exactly, and no lease lives longer than `grace` past the restore
    /// unless its own deadline is later. Ended
    /// leases, cleanup jobs (pending or dead-lettered, with their attempt counts and next
    /// attempt times) and client sessions are untouched.
    ///
    /// The derived indexes (expiry buckets) are rebuilt; ``snapshot()`` afterwards encodes the
    /// adjusted state at the same ``appliedIndex``.
    @discardableResult
    public mutating func graceLeases(restoredAt: WallTime, grace: Duration) -> RestoreGrace {
        var result = RestoreGrace(extended: 0, kept: 0)
        let graceMilliseconds = max(0, grace.components.seconds) * 1000 + max(0, grace.components.attoseconds / 1_000_000_000_000_000)
        let floor = WallTime(milliseconds: restoredAt.milliseconds + graceMilliseconds)
        for id in leases.keys.sorted() {
            guard var lease = leases[id], lease.isActive else { continue }
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
