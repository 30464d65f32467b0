import LeaseFSM
import Raft
import Server

/// The Raft backend of the contract: a single-node `RaftLeaseStore` over
/// in-memory Raft storage, stamped by a manual wall clock (as
/// RaftLeaseStoreTests and the in-process test nodes build it).
struct RaftBackend: LeaseStoreBackend {
    let raft: RaftLeaseStore
    let clock: ManualWallClock

    var store: any LeaseStore { raft }

    init(limits: LeaseLimits) throws {
        clock = ManualWallClock()
        raft = try RaftLeaseStore(storage: MemoryStorage(), limits: limits, clock: clock, logger: quietLogger)
    }

    func advance(seconds: Int64) {
        clock.advance(seconds: seconds)
    }

    func reap() async throws -> [LeaseID] {
        let now = clock.now()
        let due = try await raft.read(.linearizable) { $0.expirableLeases(asOf: now, limit: LeaseLimits.maxExpireBatch) }
        guard !due.isEmpty else { return [] }
        guard case .expired(let expired) = try await raft.propose(.expire(.init(leaseIDs: due))) else {
            throw TestFailure("an expire decision did not answer .expired")
        }
        return expired.sorted()
    }

    func dueJobs() async throws -> [CleanupJob] {
        let now = clock.now()
        return try await raft.read(.linearizable) { $0.dueCleanupJobs(asOf: now, limit: 10_000) }
    }

    func record(_ outcomes: [LeaseCommand.CleanupOutcome]) async throws -> [JobID] {
        guard !outcomes.isEmpty else { return [] }
        guard case .cleanupsRecorded(let recorded) = try await raft.propose(.cleanupOutcomes(outcomes)) else {
            throw TestFailure("cleanup outcomes did not answer .cleanupsRecorded")
        }
        return recorded
    }

    func forgetRetired() async throws {
        // The machine forgets retired rows after applying any command: apply
        // one that changes nothing (an expiry of a lease that never existed).
        _ = try await raft.propose(.expire(.init(leaseIDs: [LeaseID("0000000000000000-0")])))
    }
}
