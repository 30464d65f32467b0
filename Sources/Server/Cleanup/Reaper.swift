import LeaseFSM
import Logging

/// Finds leases whose `expires_at` + grace has passed and proposes their
/// expire decision (DESIGN.md: reaping is two-phase and leader-only).
///
/// The reaper never changes lease state itself: it proposes, and the state
/// machine re-checks every lease when the decision is applied, so a renewal
/// that lands first always wins.
///
/// A mass expiry (a service dying with 100,000 leases) is proposed in
/// batches of ``batchSize`` with ``batchPause`` between them, so client
/// writes keep getting into the log between decisions (BENCHMARKS.md has
/// create latency during one).
public struct Reaper: Sendable {
    /// Leases named in one expire decision.
    public let batchSize: Int
    /// Pause between two decisions of one pass.
    public let batchPause: Duration

    let store: any LeaseStore & MachineReadable
    let logger: Logger
    let metrics: SidecarMetrics?
    let sleepClock: any Clock<Duration>

    /// - Parameters:
    ///   - metrics: counts the leases this reaper expires (`gc_leases_expired_total`).
    ///   - sleepClock: what the pause between batches sleeps on (tests pass a fast one).
    public init(store: any LeaseStore & MachineReadable, logger: Logger, batchSize: Int = 500, batchPause: Duration = .milliseconds(20),
                metrics: SidecarMetrics? = nil, sleepClock: any Clock<Duration> = ContinuousClock()) {
        self.store = store
        self.logger = logger
        self.metrics = metrics
        self.sleepClock = sleepClock
        self.batchSize = max(1, min(batchSize, LeaseLimits.maxExpireBatch))
        self.batchPause = batchPause
    }

    /// Batches proposed from one look at the state (each look scans the
    /// due leases' expiry buckets, which a mass expiry makes large).
    static let batchesPerRead = 10

    /// One pass at wall time `now`: proposes decisions until no lease is left
    /// to expire (or this node stops leading); returns how many expired.
    ///
    /// Leases read once may be renewed before their batch is proposed: the
    /// state machine re-checks each when applying, so they survive.
    @discardableResult
    public func reapOnce(now: WallTime) async throws -> Int {
        var total = 0
        var first = true
        reading: while store.mayRunCleanup {
            let wanted = batchSize * Self.batchesPerRead
            let due = try await store.read(.stale) { $0.expirableLeases(asOf: now, limit: wanted) }
            var expiredThisRead = 0
            for start in stride(from: 0, to: due.count, by: batchSize) {
                guard store.mayRunCleanup else { break reading }
                if !first { try await sleepClock.sleep(for: batchPause) }
                first = false
                let ids = Array(due[start..<min(start + batchSize, due.count)])
                guard case .expired(let expired) = try await store.propose(.expire(.init(leaseIDs: ids))) else { break reading }
                expiredThisRead += expired.count
                metrics?.recordExpired(expired.count)
            }
            total += expiredThisRead
            // Done when the look found fewer than it asked for; stop too if a
            // whole look expired nothing (all renewed meanwhile), not to spin.
            if due.count < wanted || expiredThisRead == 0 { break }
        }
        if total > 0 { logger.info("expired leases", metadata: ["count": "\(total)"]) }
        return total
    }
}
