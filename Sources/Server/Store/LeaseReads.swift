import LeaseFSM

/// The questions the API asks of the lease state, answered by a store.
///
/// The Raft store answers from its in-memory state machine (see the
/// default implementations for ``MachineReadable`` stores); the PostgreSQL
/// store answers by query. Each answer is the same for the same state, so
/// the gRPC layer cannot tell the backends apart.
public protocol LeaseReads: Sendable {
    /// Counts and running totals (HealthCheck, GetMetrics, the status page).
    func summary(_ consistency: ReadConsistency) async throws -> StoreSummary

    /// The leases among `ids` that exist (not never created, nor ended more
    /// than the retention ago), with their cleanup's state, from one read.
    func leaseDetails(_ ids: [LeaseID], _ consistency: ReadConsistency) async throws -> [LeaseID: LeaseDetail]

    /// One page of leases in id (= creation) order after `after`, matching
    /// `filter`, with the id to continue after (nil on the last page).
    func listLeases(_ filter: LeaseStateMachine.LeaseFilter, after: LeaseID?, limit: Int,
                    _ consistency: ReadConsistency) async throws -> (leases: [LeaseDetail], next: LeaseID?)

    /// Up to `limit` dead-lettered cleanup jobs (of `endpoint` only, when
    /// given) in job order, and how many there are in all.
    func deadLetters(endpoint: String?, limit: Int, _ consistency: ReadConsistency) async throws -> (jobs: [CleanupJob], total: Int)

    /// The jobs among `ids` that are still retained, in the order asked.
    func jobs(_ ids: [JobID], _ consistency: ReadConsistency) async throws -> [CleanupJob]
}

extension LeaseReads {
    /// One lease with its cleanup's state, or nil when it does not exist.
    public func leaseDetail(_ id: LeaseID, _ consistency: ReadConsistency) async throws -> LeaseDetail? {
        try await leaseDetails([id], consistency)[id]
    }
}

/// A lease as the API shows it: the lease and what became of its cleanup.
public struct LeaseDetail: Hashable, Sendable {
    public var lease: Lease
    public var cleanupState: LeaseCleanupState
    /// The cleanup job its end created, while retained.
    public var cleanupJob: CleanupJob?

    public init(lease: Lease, cleanupState: LeaseCleanupState, cleanupJob: CleanupJob?) {
        self.lease = lease
        self.cleanupState = cleanupState
        self.cleanupJob = cleanupJob
    }
}

/// Counts and running totals of the whole lease state.
public struct StoreSummary: Hashable, Sendable {
    public var stats: LeaseStats
    public var activeLeases: Int
    public var activeByService: [String: Int]
    public var activeByType: [ObjectType: Int]
    public var pendingCleanups: Int
    public var deadLetteredCleanups: Int
    /// Raft: the last applied log index. PostgreSQL: the last command index drawn.
    public var appliedIndex: UInt64

    public init(stats: LeaseStats, activeLeases: Int, activeByService: [String: Int], activeByType: [ObjectType: Int],
                pendingCleanups: Int, deadLetteredCleanups: Int, appliedIndex: UInt64) {
        self.stats = stats
        self.activeLeases = activeLeases
        self.activeByService = activeByService
        self.activeByType = activeByType
        self.pendingCleanups = pendingCleanups
        self.deadLetteredCleanups = deadLetteredCleanups
        self.appliedIndex = appliedIndex
    }
}
