import LeaseFSM
import Logging

/// Finds leases whose `expires_at` + grace has passed and proposes their
/// expire decision (DESIGN.md: reaping is two-phase and leader-only).
///
/// The reaper never changes lease state itself: it proposes, and the state
/// machine re-checks every lease when the decision is applied, so a renewal
/// that lands first always wins.
public struct Reaper: Sendable {
    /// Leases named in one expire decision.
    public static let batchSize = 1_000
    /// Decisions proposed per pass at most, so a mass expiry is spread out
    /// rather than holding the log (the rest follows on the next pass).
    public static let maxBatchesPerPass = 20

    let store: any LeaseStore
    let logger: Logger

    public init(store: any LeaseStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// One pass at wall time `now`; returns how many leases expired.
    @discardableResult
    public func reapOnce(now: WallTime) async throws -> Int {
        guard store.mayRunCleanup else { return 0 }
        var total = 0
        for _ in 0..<Self.maxBatchesPerPass {
            let ids = try await store.read(.stale) { $0.expirableLeases(asOf: now, limit: Self.batchSize) }
            guard !ids.isEmpty else { break }
            guard case .expired(let expired) = try await store.propose(.expire(.init(leaseIDs: ids))) else { break }
            total += expired.count
            if ids.count < Self.batchSize || expired.isEmpty { break }
        }
        if total > 0 { logger.info("expired leases", metadata: ["count": "\(total)"]) }
        return total
    }
}
