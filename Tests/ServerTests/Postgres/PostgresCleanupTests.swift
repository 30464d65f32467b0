import Foundation
import LeaseFSM
import Logging
import PostgresNIO
@testable import Server
import Synchronization
import Testing

/// Reaping and cleanup delivery in PostgreSQL mode, by several sidecars
/// over one real database (a fresh one per test on the shared throwaway
/// server, ``SharedTestPostgres``): each sidecar is its own pool, store,
/// metrics and ``PostgresCleanupService``.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct PostgresCleanupTests {
    static let endpoint = "http://127.0.0.1:9/cleanup"
    /// Each sidecar's pool (and the test's own client) holds at most this many connections.
    static let poolSize = 20

    /// One sidecar's view of the database.
    struct Sidecar {
        let store: PostgresLeaseStore
        let metrics: SidecarMetrics
        let service: PostgresCleanupService
    }

    static func withSidecar<T: Sendable>(
        _ database: PostgresClient.Configuration, name: String, transport: any CleanupTransport,
        limits: CleanupLimits = .unlimited(maxConcurrency: 16), claimDuration: Duration = .seconds(30),
        _ body: (Sidecar) async throws -> T
    ) async throws -> T {
        try await withPostgresClient(database) { client in
            let store = PostgresLeaseStore(client: client, limits: LeaseLimits(),
                                           events: EventHub(retentionBytes: 1 << 20, maxWatchers: 10), logger: quietLogger)
            let metrics = SidecarMetrics()
            let tuning = PostgresCleanupService.Tuning(claimDuration: claimDuration, forgetInterval: .milliseconds(200),
                                                       idlePollInterval: .milliseconds(10), busyPollInterval: .milliseconds(2))
            let service = PostgresCleanupService(
                store: store, owner: name, transport: transport, timeout: .seconds(5), limits: limits,
                reapInterval: .milliseconds(20), metrics: metrics, logger: quietLogger, tuning: tuning, seed: 7)
            return try await body(Sidecar(store: store, metrics: metrics, service: service))
        }
    }

    /// Leases with a cleanup target, one per object, that expire in 30 s.
    @discardableResult
    static func createLeases(_ store: PostgresLeaseStore, count: Int, prefix: String = "obj",
                             cleanup: CleanupSpec = CleanupSpec(httpEndpoint: endpoint)) async throws -> [LeaseID] {
        var ids: [LeaseID] = []
        for i in 0..<count {
            let create = LeaseCommand.CreateLease(leaseIDSuffix: String(i + 1, radix: 16), object: ObjectKey(type: .databaseRow, id: "\(prefix)-\(i)"),
                                                  serviceID: "svc", durationSeconds: 30, cleanup: cleanup)
            guard case .created(let lease) = try await store.propose(.create(create), origin: nil) else {
                throw TestFailure("lease \(i) not created")
            }
            ids.append(lease.id)
        }
        return ids
    }

    /// Moves every sidecar's view of the database clock forward together.
    static func advance(_ sidecars: Sidecar..., seconds: Int64) {
        for sidecar in sidecars { sidecar.store.advanceClockForTesting(by: seconds * 1000) }
    }

    static func cleanupState(_ store: PostgresLeaseStore, _ id: LeaseID) async throws -> LeaseCleanupState? {
        try await store.leaseDetail(id, .linearizable)?.cleanupState
    }

    static func metric(_ sidecar: Sidecar, _ name: String) -> Double? {
        for line in sidecar.metrics.exposition().split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    /// Polls `condition` until it holds or `seconds` pass.
    static func eventually(_ seconds: Int = 30, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try await condition()
    }

    @Test("two sidecars running over one database deliver every expired object's cleanup exactly once when nothing fails")
    func twoSidecarsDeliverEachCleanupOnce() async throws {
        try await withFreshDatabase(maxConnections: Self.poolSize) { database, _ in
            let transport = RecordingTransport()
            try await Self.withSidecar(database, name: "a", transport: transport,
                                       limits: .unlimited(maxConcurrency: 4)) { a in
                try await Self.withSidecar(database, name: "b", transport: transport,
                                           limits: .unlimited(maxConcurrency: 4)) { b in
                    let leases = try await Self.createLeases(a.store, count: 60)
                    Self.advance(a, b, seconds: 120)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await a.service.run() }
                        group.addTask { try await b.service.run() }
                        let done = try await Self.eventually {
                            try await a.store.summary(.linearizable).stats.cleanupSucceeded == 60
                        }
                        group.cancelAll()
                        #expect(done, "every cleanup succeeded")
                    }
                    #expect(transport.requests.count == 60, "no cleanup delivered twice: \(transport.requests.count) requests")
                    #expect(Set(transport.requests.map(\.idempotencyKey)).count == 60)
                    #expect(Set(transport.requests.map(\.leaseID)) == Set(leases.map(\.rawValue)))
                    let expired = (Self.metric(a, "gc_leases_expired_total") ?? 0) + (Self.metric(b, "gc_leases_expired_total") ?? 0)
                    #expect(expired == 60, "each lease expired by one sidecar")
                    let claims = (Self.metric(a, "gc_pg_claims_total") ?? 0) + (Self.metric(b, "gc_pg_claims_total") ?? 0)
                    #expect(claims == 60, "each job claimed once")
                    #expect(a.service.claimsHeld == 0 && b.service.claimsHeld == 0)
                    let summary = try await a.store.summary(.linearizable)
                    #expect(summary.stats.cleanupAttempts == 60)
                }
            }
        }
    }

    @Test("a failed delivery is delivered again by another sidecar after its backoff, with the same idempotency key")
    func redeliveryKeepsTheIdempotencyKey() async throws {
        try await withFreshDatabase(maxConnections: Self.poolSize) { database, _ in
            let transport = RecordingTransport(script: [.failed(reason: "HTTP 503", permanent: false)])
            try await Self.withSidecar(database, name: "a", transport: transport) { a in
                try await Self.withSidecar(database, name: "b", transport: transport) { b in
                    let spec = CleanupSpec(httpEndpoint: Self.endpoint, maxRetries: 3, retryDelaySeconds: 1)
                    let lease = try #require(try await Self.createLeases(a.store, count: 1, cleanup: spec).first)
                    Self.advance(a, b, seconds: 120)
                    #expect(try await a.service.reapOnce() == 1)
                    #expect(try await b.service.reapOnce() == 0, "already expired")

                    #expect(try await a.service.dispatchDue() == 1)
                    #expect(try await Self.cleanupState(a.store, lease) == .pending, "a transient failure keeps the job")
                    #expect(try await b.service.dispatchDue() == 0, "not due during its backoff (1 s to 1.25 s)")
                    Self.advance(a, b, seconds: 2)
                    #expect(try await b.service.dispatchDue() == 1)
                    #expect(try await Self.cleanupState(a.store, lease) == .succeeded)

                    let requests = transport.requests
                    #expect(requests.map(\.attempt) == [1, 2])
                    #expect(Set(requests.map(\.idempotencyKey)).count == 1, "the same key on the redelivery")
                    #expect(Self.metric(a, "gc_cleanup_failures_total") == 1)
                    #expect(Self.metric(b, "gc_cleanup_succeeded_total") == 1)
                }
            }
        }
    }

    @Test("a sidecar paused past its claim has its outcome refused; the sidecar that took the job over is the one that counts")
    func pausedSidecarsOutcomeIsRefused() async throws {
        try await withFreshDatabase(maxConnections: Self.poolSize) { database, _ in
            let paused = BlockingTransport()
            let recording = RecordingTransport()
            try await Self.withSidecar(database, name: "a", transport: paused, claimDuration: .seconds(30)) { a in
                try await Self.withSidecar(database, name: "b", transport: recording) { b in
                    let lease = try #require(try await Self.createLeases(a.store, count: 1).first)
                    Self.advance(a, b, seconds: 120)
                    #expect(try await a.service.reapOnce() == 1)

                    // A claims the job and "pauses" inside the delivery.
                    let claimed = try await a.service.claimDue()
                    #expect(claimed.jobs.count == 1)
                    let delivering = Task { await a.service.deliver(claimed) }
                    #expect(try await Self.eventually { paused.requests.count == 1 })
                    #expect(try await b.service.dispatchDue() == 0, "the claim holds")

                    // Past A's claim, B takes the job over and delivers it.
                    Self.advance(b, seconds: 31)
                    #expect(try await b.service.dispatchDue() == 1)
                    #expect(Self.metric(b, "gc_pg_claims_taken_over_total") == 1)
                    #expect(try await Self.cleanupState(b.store, lease) == .succeeded)

                    // A wakes up with a (permanent) failure: were it recorded,
                    // the job would be dead-lettered.
                    paused.release(with: .failed(reason: "HTTP 400", permanent: true))
                    await delivering.value
                    #expect(Self.metric(a, "gc_pg_outcomes_refused_total") == 1)
                    #expect(try await Self.cleanupState(b.store, lease) == .succeeded, "the stale outcome changed nothing")
                    #expect(try await b.store.summary(.linearizable).stats.cleanupAttempts == 1)
                    #expect(a.service.claimsHeld == 0)
                    #expect(paused.requests.map(\.idempotencyKey) == recording.requests.map(\.idempotencyKey))
                }
            }
        }
    }

    @Test("failed deliveries back off, then dead-letter after the job's retries")
    func failuresBackOffAndDeadLetter() async throws {
        try await withFreshDatabase(maxConnections: Self.poolSize) { database, _ in
            let failure = CleanupAttemptResult.failed(reason: "HTTP 503", permanent: false)
            let transport = RecordingTransport(script: Array(repeating: failure, count: 10))
            try await Self.withSidecar(database, name: "a", transport: transport) { a in
                let spec = CleanupSpec(httpEndpoint: Self.endpoint, maxRetries: 2, retryDelaySeconds: 1)
                let lease = try #require(try await Self.createLeases(a.store, count: 1, cleanup: spec).first)
                Self.advance(a, seconds: 120)
                try await a.service.reapOnce()

                #expect(try await a.service.dispatchDue() == 1)  // attempt 1; next in 1 s to 1.25 s
                #expect(try await a.service.dispatchDue() == 0)
                Self.advance(a, seconds: 2)
                #expect(try await a.service.dispatchDue() == 1)  // attempt 2; next in 2 s to 2.5 s
                Self.advance(a, seconds: 1)
                #expect(try await a.service.dispatchDue() == 0, "the backoff doubled")
                Self.advance(a, seconds: 2)
                #expect(try await a.service.dispatchDue() == 1)  // attempt 3 > 2 retries: final
                #expect(try await Self.cleanupState(a.store, lease) == .deadLettered)
                Self.advance(a, seconds: 3600)
                #expect(try await a.service.dispatchDue() == 0, "a dead letter is not delivered again")

                #expect(transport.requests.map(\.attempt) == [1, 2, 3])
                #expect(Set(transport.requests.map(\.idempotencyKey)).count == 1)
                #expect(Self.metric(a, "gc_cleanup_dead_lettered_total") == 1)
                let dead = try await a.store.deadLetters(endpoint: nil, limit: 10, .linearizable)
                #expect(dead.total == 1)
            }
        }
    }

    @Test("jobs claimed beyond what an endpoint admits are given back at once, for another sidecar to take")
    func throttleRefusalsAreGivenBack() async throws {
        try await withFreshDatabase(maxConnections: Self.poolSize) { database, _ in
            let blocking = BlockingTransport()
            let recording = RecordingTransport()
            let narrow = CleanupLimits(maxConcurrency: 16, endpointConcurrency: 2, endpointRatePerSecond: 0, breakerFailures: 0)
            try await Self.withSidecar(database, name: "a", transport: blocking, limits: narrow) { a in
                try await Self.withSidecar(database, name: "b", transport: recording) { b in
                    try await Self.createLeases(a.store, count: 5)
                    Self.advance(a, b, seconds: 120)
                    try await a.service.reapOnce()

                    let claimed = try await a.service.claimDue()
                    #expect(claimed.jobs.count == 2, "the endpoint takes two at once")
                    #expect(Self.metric(a, "gc_pg_claims_total") == 5)
                    #expect(Self.metric(a, "gc_pg_claims_released_total") == 3)
                    let delivering = Task { await a.service.deliver(claimed) }
                    #expect(try await a.service.claimDue().jobs.isEmpty, "the full endpoint is left out of claims")
                    #expect(Self.metric(a, "gc_pg_claims_total") == 5, "and nothing was claimed for it")

                    #expect(try await b.service.dispatchDue() == 3, "the three given back are free at once")
                    blocking.release(with: .succeeded)
                    await delivering.value
                    #expect(try await a.store.summary(.linearizable).stats.cleanupSucceeded == 5)
                    #expect(Set(blocking.requests.map(\.idempotencyKey)).isDisjoint(with: recording.requests.map(\.idempotencyKey)))
                }
            }
        }
    }

    @Test("a delivery cut short by shutdown gives its claim back, and another sidecar delivers it at once")
    func shutdownGivesClaimsBack() async throws {
        try await withFreshDatabase(maxConnections: Self.poolSize) { database, _ in
            let blocking = BlockingTransport()
            let recording = RecordingTransport()
            try await Self.withSidecar(database, name: "a", transport: blocking) { a in
                try await Self.withSidecar(database, name: "b", transport: recording) { b in
                    let lease = try #require(try await Self.createLeases(a.store, count: 1).first)
                    Self.advance(a, b, seconds: 120)
                    let running = Task { try await a.service.run() }
                    #expect(try await Self.eventually { blocking.requests.count == 1 }, "a reaped and is delivering")
                    #expect(a.service.claimsHeld == 1)
                    running.cancel()
                    try await running.value
                    #expect(a.service.claimsHeld == 0)
                    #expect(blocking.isShutDown, "the transport is shut down when the service stops")

                    #expect(try await b.service.dispatchDue() == 1, "no need to wait for the claim to expire")
                    #expect(Self.metric(b, "gc_pg_claims_taken_over_total") == nil || Self.metric(b, "gc_pg_claims_taken_over_total") == 0)
                    #expect(try await Self.cleanupState(b.store, lease) == .succeeded)
                    #expect(recording.requests.first?.attempt == 1, "the cut-short delivery used no attempt")
                }
            }
        }
    }

    @Test("the heartbeat row shows a live sidecar with its claims, and goes on shutdown")
    func heartbeatRowAppearsAndGoesOnShutdown() async throws {
        try await withFreshDatabase(maxConnections: Self.poolSize) { database, client in
            try await Self.withSidecar(database, name: "a", transport: RecordingTransport()) { a in
                let heartbeat = PostgresHeartbeat(store: a.store, name: "sidecar-a", address: "10.0.0.1:50051", poolSize: 20,
                                                  claims: { 7 }, interval: .milliseconds(20), logger: quietLogger)
                // A sidecar that died long ago without removing its row.
                try await client.query("""
                    INSERT INTO gc_sidecars (name, address, version, started_at, last_seen, claims)
                    VALUES ('sidecar-old', 'x:1', '0.0.1', 0, 0, 3)
                    """, logger: quietLogger)
                let running = Task { try await heartbeat.run() }
                #expect(try await Self.eventually { try await !heartbeat.liveSidecars(within: .seconds(15)).isEmpty })
                let live = try await heartbeat.liveSidecars(within: .seconds(15))
                #expect(live.map(\.name) == ["sidecar-a"], "the old row is not live")
                let row = try #require(live.first)
                #expect(row.address == "10.0.0.1:50051")
                #expect(row.version == SidecarVersion.current)
                #expect(row.claims == 7)
                #expect(row.startedAt <= row.lastSeen)
                let firstSeen = row.lastSeen
                #expect(try await Self.eventually {
                    try await heartbeat.liveSidecars().first { $0.name == "sidecar-a" }.map { $0.lastSeen > firstSeen } ?? false
                }, "last_seen moves on")
                #expect(try await heartbeat.liveSidecars().first?.startedAt == row.startedAt, "started_at stays")

                let status = try await heartbeat.databaseStatus()
                #expect(status.serverVersion.hasPrefix("15"))
                #expect(status.sizeBytes > 0)
                #expect(status.poolSize == 20)

                running.cancel()
                try await running.value
                #expect(try await heartbeat.liveSidecars().isEmpty)
                let names = try await client.query("SELECT name FROM gc_sidecars ORDER BY name", logger: quietLogger)
                var left: [String] = []
                for try await name in names.decode(String.self) { left.append(name) }
                #expect(left == ["sidecar-old"], "its own row is deleted, no other")
            }
        }
    }
}

/// A transport that records each request and holds it until released (a
/// sidecar "paused" mid-delivery), then answers with what it was released
/// with; a held request cut short by cancellation returns at once.
final class BlockingTransport: CleanupTransport {
    private struct State {
        var requests: [CleanupRequest] = []
        var answer: CleanupAttemptResult?
        var waiting: [UUID: CheckedContinuation<CleanupAttemptResult, Never>] = [:]
        var shutDown = false
    }

    private let state = Mutex(State())

    var requests: [CleanupRequest] { state.withLock { $0.requests } }
    var isShutDown: Bool { state.withLock { $0.shutDown } }

    /// Answers every held request, and every later one, with `answer`.
    func release(with answer: CleanupAttemptResult) {
        let waiting = state.withLock { s in
            s.answer = answer
            defer { s.waiting = [:] }
            return Array(s.waiting.values)
        }
        for continuation in waiting { continuation.resume(returning: answer) }
    }

    func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        let id = UUID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<CleanupAttemptResult, Never>) in
                let ready: CleanupAttemptResult? = state.withLock { s in
                    s.requests.append(request)
                    if let answer = s.answer { return answer }
                    if Task.isCancelled { return .failed(reason: "cancelled", permanent: false) }
                    s.waiting[id] = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let continuation = state.withLock { $0.waiting.removeValue(forKey: id) }
            continuation?.resume(returning: .failed(reason: "cancelled", permanent: false))
        }
    }

    func shutdown() {
        state.withLock { $0.shutDown = true }
    }
}
