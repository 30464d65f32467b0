import Foundation
import LeaseFSM
import NIOCore
@testable import Server
import Synchronization
import Testing

/// A real store seen through what the dispatcher does with it: counts
/// leadership confirmations and the outcome entries proposed (how many
/// outcomes each carried), and can hold the first outcome entry until told,
/// or refuse outcome entries (as a store that cannot commit would).
final class OutcomeCountingStore: LeaseStore, MachineReadable {
    private struct State {
        var confirmations = 0
        var outcomeEntries: [[JobID]] = []
        var failOutcomes = false
        var holdFirst = false
        var held: CheckedContinuation<Void, Never>?
        var release = false
    }

    let inner: RaftLeaseStore
    private let state = Mutex(State())

    init(inner: RaftLeaseStore, holdFirstOutcomeEntry: Bool = false) {
        self.inner = inner
        state.withLock { $0.holdFirst = holdFirstOutcomeEntry }
    }

    var confirmations: Int { state.withLock { $0.confirmations } }
    /// The job ids of each outcome entry proposed, in order (refused ones too).
    var outcomeEntries: [[JobID]] { state.withLock { $0.outcomeEntries } }
    /// Whether outcome entries are refused (``StoreError``) from now on.
    func failOutcomes(_ fail: Bool) { state.withLock { $0.failOutcomes = fail } }
    /// Lets the held first outcome entry go on.
    func releaseHeldEntry() {
        let held = state.withLock { s in
            s.release = true
            defer { s.held = nil }
            return s.held
        }
        held?.resume()
    }

    var limits: LeaseLimits { inner.limits }
    var events: EventHub { inner.events }
    var mayRunCleanup: Bool { inner.mayRunCleanup }
    var healthProblem: String? { inner.healthProblem }

    func propose(_ command: LeaseCommand, origin: ClientOrigin?) async throws -> CommandResult {
        let ids: [JobID]?
        switch command {
        case .cleanupOutcome(let o): ids = [o.jobID]
        case .cleanupOutcomes(let os): ids = os.map(\.jobID)
        default: ids = nil
        }
        if let ids {
            let (hold, fail) = state.withLock { s in
                s.outcomeEntries.append(ids)
                defer { s.holdFirst = false }
                return (s.holdFirst && !s.release, s.failOutcomes)
            }
            if hold {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let go = state.withLock { s in
                        if s.release { return true }
                        s.held = c
                        return false
                    }
                    if go { c.resume() }
                }
            }
            if fail { throw StoreError(.unavailable, "outcome entries refused by the test") }
        }
        return try await inner.propose(command, origin: origin)
    }

    func read<R: Sendable>(_ consistency: ReadConsistency, _ query: @Sendable (LeaseStateMachine) -> R) async throws -> R {
        try await inner.read(consistency, query)
    }

    func confirmLeadership() async -> Bool {
        state.withLock { $0.confirmations += 1 }
        return await inner.confirmLeadership()
    }
}

/// Fails every attempt for the objects named (a transient failure), and
/// succeeds the rest; records every request.
final class FailingObjectsTransport: CleanupTransport {
    private let failing: Set<String>
    private let state = Mutex<[CleanupRequest]>([])

    init(failing: Set<String>) {
        self.failing = failing
    }

    var requests: [CleanupRequest] { state.withLock { $0 } }

    func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        state.withLock { $0.append(request) }
        return failing.contains(request.objectID) ? .failed(reason: "503 from the test", permanent: false) : .succeeded
    }
}

/// Claiming, delivering and recording cleanups in batches
/// (`CleanupDispatcher.claimDueJobs`, `deliver`, `OutcomeBatcher`).
@Suite("Cleanup batching")
struct CleanupBatchingTests {
    static let endpoint = "http://batch.test/cleanup"

    static func dispatcher(_ store: any LeaseStore & MachineReadable, _ transport: any CleanupTransport, maxConcurrency: Int = 512,
                           metrics: SidecarMetrics = SidecarMetrics()) -> CleanupDispatcher {
        CleanupDispatcher(store: store, transport: transport, timeout: .seconds(5),
                          limits: .unlimited(maxConcurrency: maxConcurrency), metrics: metrics, logger: quietLogger, seed: 7)
    }

    static func states(_ store: RaftLeaseStore) async throws -> [CleanupJob] {
        try await store.read(.linearizable) { machine in
            machine.dueCleanupJobs(asOf: WallTime(milliseconds: .max), limit: 10_000) + machine.deadLetteredJobs
        }
    }

    @Test("one claim takes every due job the free slots admit, after one leadership confirmation")
    func oneClaimManyJobs() async throws {
        let clock = ManualWallClock()
        let inner = try await CleanupLimitsTests.makeStore(clock: clock)
        try await CleanupLimitsTests.releasedLeases(inner, count: 300, endpoint: Self.endpoint)
        let store = OutcomeCountingStore(inner: inner)
        let transport = RecordingTransport()
        let dispatcher = Self.dispatcher(store, transport)

        let claimed = try await dispatcher.claimDueJobs(now: clock.now())
        #expect(claimed.count == 300)
        #expect(store.confirmations == 1, "one confirmation covers the whole batch")
        #expect(dispatcher.inFlightCount == 300)
        #expect(try await dispatcher.claimDueJobs(now: clock.now()).isEmpty, "claimed jobs are not claimed twice")

        await dispatcher.deliver(claimed)
        #expect(transport.requests.count == 300)
        #expect(Set(transport.requests.map(\.idempotencyKey)).count == 300)
        #expect(dispatcher.inFlightCount == 0, "every claim is released once its outcome is committed")
        let recorded = store.outcomeEntries
        #expect(recorded.map(\.count).reduce(0, +) == 300, "each outcome proposed once")
        #expect(recorded.count < 300, "outcomes share entries: \(recorded.count) entries")
        let pending = try await inner.read(.linearizable) { $0.pendingCleanupCount }
        #expect(pending == 0, "every job succeeded")
    }

    @Test("outcomes that finish while an entry is being committed all go out in the next entry")
    func outcomesShareOneEntry() async throws {
        let clock = ManualWallClock()
        let inner = try await CleanupLimitsTests.makeStore(clock: clock)
        try await CleanupLimitsTests.releasedLeases(inner, count: 101, endpoint: Self.endpoint)
        let jobs = try await inner.read(.linearizable) { $0.dueCleanupJobs(asOf: clock.now(), limit: 1_000) }
        #expect(jobs.count == 101)
        let store = OutcomeCountingStore(inner: inner, holdFirstOutcomeEntry: true)
        let batcher = OutcomeBatcher(store: store)

        // The first outcome starts an entry, which the store holds...
        batcher.submit(.init(jobID: jobs[0].id, attempt: 1, result: .succeeded))
        let deadline = ContinuousClock.now + .seconds(5)
        while store.outcomeEntries.isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        // ...while the other hundred arrive.
        var last: UInt64 = 0
        for job in jobs.dropFirst() { last = batcher.submit(.init(jobID: job.id, attempt: 1, result: .succeeded)) }
        store.releaseHeldEntry()
        await batcher.waitUntilFinished(last)

        #expect(store.outcomeEntries.map(\.count) == [1, 100], "the hundred that queued meanwhile share one entry")
        #expect(store.outcomeEntries.last == jobs.dropFirst().map(\.id), "in the order they finished")
        let pending = try await inner.read(.linearizable) { $0.pendingCleanupCount }
        #expect(pending == 0)
    }

    @Test("a failed delivery in the middle of a batch is retried later with the same key; the rest of the batch succeeds")
    func failureInsideBatchIsRetried() async throws {
        let clock = ManualWallClock()
        let inner = try await CleanupLimitsTests.makeStore(clock: clock)
        try await CleanupLimitsTests.releasedLeases(inner, count: 20, endpoint: Self.endpoint)
        let failingObject = "\(Self.endpoint)-obj-10"
        let transport = FailingObjectsTransport(failing: [failingObject])
        let dispatcher = Self.dispatcher(inner, transport)

        let first = try await dispatcher.dispatchDue(now: clock.now())
        #expect(first == 20)
        let jobs = try await inner.read(.linearizable) { machine in (1...60).compactMap { machine.job(JobID($0)) } }
        let failed = try #require(jobs.first { $0.object.id == failingObject })
        #expect(failed.state == .pending, "a transient failure keeps the job")
        #expect(failed.attempts == 1)
        #expect(failed.nextAttemptAt > clock.now(), "it waits for its backoff")
        #expect(jobs.filter { $0.state == .succeeded }.count == 19, "the rest of the batch succeeded")
        #expect(dispatcher.inFlightCount == 0)

        // Not due before its backoff; due after it, with the same key.
        #expect(try await dispatcher.dispatchDue(now: clock.now()) == 0)
        clock.advance(seconds: 3)
        #expect(try await dispatcher.dispatchDue(now: clock.now()) == 1)
        let attempts = transport.requests.filter { $0.objectID == failingObject }
        #expect(attempts.map(\.attempt) == [1, 2])
        #expect(Set(attempts.map(\.idempotencyKey)).count == 1, "every attempt carries the same idempotency key")
    }

    @Test("a batch whose outcome entry cannot be committed stays pending, its claims are released, and it is delivered again")
    func uncommittedBatchIsDeliveredAgain() async throws {
        let clock = ManualWallClock()
        let inner = try await CleanupLimitsTests.makeStore(clock: clock)
        try await CleanupLimitsTests.releasedLeases(inner, count: 30, endpoint: Self.endpoint, maxRetries: 0)
        let store = OutcomeCountingStore(inner: inner)
        let transport = RecordingTransport()
        let metrics = SidecarMetrics()
        let dispatcher = Self.dispatcher(store, transport, metrics: metrics)

        store.failOutcomes(true)
        #expect(try await dispatcher.dispatchDue(now: clock.now()) == 30)
        #expect(dispatcher.inFlightCount == 0, "the claims are released")
        #expect(dispatcher.throttle.inFlight(Self.endpoint) == 0)
        let afterFailure = try await inner.read(.linearizable) { machine in (1...90).compactMap { machine.job(JobID($0)) } }
        #expect(afterFailure.count == 30)
        #expect(afterFailure.allSatisfy { $0.state == .pending && $0.attempts == 0 }, "nothing was recorded, nothing dropped")
        #expect(metrics.exposition().contains("gc_cleanup_outcome_record_failures_total 30"))

        store.failOutcomes(false)
        #expect(try await dispatcher.dispatchDue(now: clock.now()) == 30, "delivered again")
        let keys = transport.requests.map(\.idempotencyKey)
        #expect(keys.count == 60)
        #expect(Set(keys).count == 30, "with the same keys")
        let pending = try await inner.read(.linearizable) { $0.pendingCleanupCount }
        #expect(pending == 0)
    }

    @Test("the JSON body decodes to the request, escapes included, as the generic encoder's does")
    func jsonBodyMatchesEncoder() async throws {
        let clock = ManualWallClock()
        let store = try await CleanupLimitsTests.makeStore(clock: clock)
        try await CleanupLimitsTests.releasedLeases(store, count: 1, endpoint: Self.endpoint)
        let job = try #require(try await store.read(.linearizable) { $0.dueCleanupJobs(asOf: clock.now(), limit: 1) }.first)
        var request = CleanupRequest(job: job)
        request.objectID = "quote\" back\\slash /slash\n\r\t\u{08}\u{0C}\u{01}\u{1F} é ✓ 🧹"
        request.payload = "{\"nested\": [1, 2]}"
        request.metadata = ["b": "2", "a": "1/\u{7F}", "": "empty key", "z\"": "\u{00}"]
        request.fencingToken = .max
        request.incarnation = 0

        let mine = Data(request.jsonBody().readableBytesView)
        let decoded = try JSONDecoder().decode(CleanupRequest.self, from: mine)
        #expect(decoded == request)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let theirs = try encoder.encode(request)
        let a = try #require(try JSONSerialization.jsonObject(with: mine) as? NSDictionary)
        let b = try #require(try JSONSerialization.jsonObject(with: theirs) as? NSDictionary)
        #expect(a == b)

        var plain = CleanupRequest(job: job)
        plain.metadata = ["room": "42", "floor": "3"]
        #expect(String(decoding: plain.jsonBody().readableBytesView, as: UTF8.self)
            == String(decoding: try encoder.encode(plain), as: UTF8.self), "byte for byte for ordinary text")
    }
}
