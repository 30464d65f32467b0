import LeaseFSM
import Server
import Testing

/// One store under the lease-store contract, with the handles the contract
/// tests drive it by: a fresh, empty store, its clock, its reaper and its
/// cleanup queue, expressed the same way for every backend.
///
/// The contract suite (`*ContractTests`) runs each behaviour on every
/// ``Backend``: identical answers (results, `LeaseError` codes and messages)
/// are the proof that PostgreSQL mode keeps Raft mode's promises.
protocol LeaseStoreBackend: Sendable {
    /// The store under test, as the gRPC layer sees it.
    var store: any LeaseStore { get }

    /// Moves the store's clock forward (Raft: the manual wall clock that
    /// stamps commands; PostgreSQL: the store's offset to the database's clock).
    func advance(seconds: Int64)

    /// Expires every lease whose `expires_at` + grace has passed (Raft: an
    /// `.expire` of the machine's `expirableLeases`, as the Reaper proposes;
    /// PostgreSQL: `expireDue`). Returns the ids expired, sorted.
    func reap() async throws -> [LeaseID]

    /// The cleanup jobs due now, in the order they are due (Raft: the
    /// machine's due jobs; PostgreSQL: `claimDueJobs`, whose claim token
    /// ``record(_:)`` presents).
    func dueJobs() async throws -> [CleanupJob]

    /// Records delivery outcomes (Raft: `.cleanupOutcomes`; PostgreSQL:
    /// `recordOutcomes` with the tokens of the claims ``dueJobs()`` took).
    /// Returns the jobs whose outcome was recorded.
    func record(_ outcomes: [LeaseCommand.CleanupOutcome]) async throws -> [JobID]

    /// Forgets ended leases and finished jobs older than the retention
    /// (Raft: the machine does so whenever it applies a command, so one
    /// harmless command is applied; PostgreSQL: `forgetRetired`).
    func forgetRetired() async throws
}

/// The backends the contract runs on.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// A single-node in-process `RaftLeaseStore` over in-memory Raft storage.
    case raft
    /// A `PostgresLeaseStore` over a fresh database of the test process's
    /// throwaway PostgreSQL server.
    case postgres

    var testDescription: String { rawValue }

    /// Runs `body` with a fresh, empty store of this backend enforcing `limits`.
    func run(limits: LeaseLimits = .contract, _ body: (any LeaseStoreBackend) async throws -> Void) async throws {
        switch self {
        case .raft:
            try await body(try RaftBackend(limits: limits))
        case .postgres:
            try await PostgresBackend.run(limits: limits) { try await body($0) }
        }
    }
}

extension LeaseLimits {
    /// The limits the contract tests start from: the product's defaults with
    /// short minimum durations, so tests need not move clocks by hours.
    static var contract: LeaseLimits {
        var limits = LeaseLimits()
        limits.minDurationSeconds = 1
        return limits
    }

    /// ``contract`` changed by `change`.
    static func contract(_ change: (inout LeaseLimits) -> Void) -> LeaseLimits {
        var limits = LeaseLimits.contract
        change(&limits)
        return limits
    }
}
