import Foundation
import LeaseFSM
import PostgresNIO
import Server
import Synchronization

/// The PostgreSQL backend of the contract: a `PostgresLeaseStore` over a
/// fresh database (schema applied) of the test process's shared throwaway
/// server (``SharedTestPostgres``).
///
/// Due jobs are claimed with `claimDueJobs`; the backend keeps each job's
/// claim token so that ``record(_:)`` presents it, as a sidecar's dispatcher does.
final class PostgresBackend: LeaseStoreBackend {
    let postgres: PostgresLeaseStore
    let client: PostgresClient
    /// The claim token of every job ``dueJobs()`` claimed.
    private let tokens = Mutex<[JobID: UUID]>([:])

    var store: any LeaseStore { postgres }

    /// Claims taken by ``dueJobs()`` hold this long on the database's clock.
    static let claimFor = Duration.seconds(3_600)

    private init(client: PostgresClient, limits: LeaseLimits) {
        self.client = client
        postgres = PostgresLeaseStore(client: client, limits: limits, events: EventHub(retentionBytes: 1 << 20, maxWatchers: 10),
                                      logger: quietLogger)
    }

    /// Runs `body` with a store over a fresh database; the connection pool
    /// runs for exactly as long as `body`.
    static func run(limits: LeaseLimits, connections: Int = 20, _ body: (PostgresBackend) async throws -> Void) async throws {
        try await withFreshDatabase(maxConnections: connections) { _, client in
            try await body(PostgresBackend(client: client, limits: limits))
        }
    }

    func advance(seconds: Int64) {
        postgres.advanceClockForTesting(by: seconds * 1000)
    }

    func reap() async throws -> [LeaseID] {
        var expired: [LeaseID] = []
        while true {
            let batch = try await postgres.expireDue(limit: 500)
            expired += batch
            if batch.isEmpty { break }
        }
        return expired.sorted()
    }

    func dueJobs() async throws -> [CleanupJob] {
        let claimed = try await postgres.claimDueJobs(limit: 10_000, owner: "contract", claimFor: Self.claimFor)
        tokens.withLock { tokens in
            for job in claimed.jobs { tokens[job.id] = claimed.token }
        }
        return claimed.jobs
    }

    func record(_ outcomes: [LeaseCommand.CleanupOutcome]) async throws -> [JobID] {
        guard !outcomes.isEmpty else { return [] }
        // A job never claimed here gets a token nobody holds: refused, as
        // an outcome without a claim must be.
        let withTokens = tokens.withLock { tokens in outcomes.map { ($0, tokens[$0.jobID] ?? UUID()) } }
        return try await postgres.recordOutcomes(withTokens).recorded
    }

    func forgetRetired() async throws {
        while try await postgres.forgetRetired(limit: 1_000) > 0 {}
    }
}
