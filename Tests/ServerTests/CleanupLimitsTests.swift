import LeaseFSM
import Raft
import Server
import Synchronization
import Testing

/// A cleanup transport standing in for many targets: each request takes
/// `delay` (or, for a failing endpoint, its own delay and then a transient
/// failure); it tracks requests in flight per endpoint and overall, and when
/// each request arrived.
final class SinkTransport: CleanupTransport {
    struct Delivery: Sendable {
        var endpoint: String
        var at: ContinuousClock.Instant
    }

    private struct State {
        var current: [String: Int] = [:]
        var peak: [String: Int] = [:]
        var currentTotal = 0
        var peakTotal = 0
        var deliveries: [Delivery] = []
        var succeeded: [String: Int] = [:]
    }

    private let state = Mutex(State())
    let delay: Duration
    /// Endpoints that never answer: each attempt fails after this long.
    let failing: [String: Duration]

    init(delay: Duration, failing: [String: Duration] = [:]) {
        self.delay = delay
        self.failing = failing
    }

    func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        let endpoint: String
        switch target {
        case .http(let url): endpoint = url
        case .grpc(let address): endpoint = address
        }
        let now = ContinuousClock.now
        state.withLock { s in
            let current = s.current[endpoint, default: 0] + 1
            s.current[endpoint] = current
            s.peak[endpoint] = max(s.peak[endpoint, default: 0], current)
            s.currentTotal += 1
            s.peakTotal = max(s.peakTotal, s.currentTotal)
            s.deliveries.append(Delivery(endpoint: endpoint, at: now))
        }
        let failAfter = failing[endpoint]
        try? await Task.sleep(for: failAfter ?? delay)
        state.withLock { s in
            s.current[endpoint, default: 0] -= 1
            s.currentTotal -= 1
            if failAfter == nil { s.succeeded[endpoint, default: 0] += 1 }
        }
        if failAfter != nil { return .failed(reason: "no answer from \(endpoint)", permanent: false) }
        return .succeeded
    }

    /// Most requests in flight at once to `endpoint`.
    func peak(_ endpoint: String) -> Int { state.withLock { $0.peak[endpoint, default: 0] } }
    /// Most requests in flight at once, all endpoints together.
    var peakTotal: Int { state.withLock { $0.peakTotal } }
    /// Requests `endpoint` received (each attempt counts).
    func attempts(_ endpoint: String) -> Int { state.withLock { s in s.deliveries.filter { $0.endpoint == endpoint }.count } }
    func succeeded(_ endpoint: String) -> Int { state.withLock { $0.succeeded[endpoint, default: 0] } }
    /// When `endpoint`'s requests arrived, in order.
    func arrivals(_ endpoint: String) -> [ContinuousClock.Instant] {
        state.withLock { s in s.deliveries.filter { $0.endpoint == endpoint }.map(\.at) }
    }
}

/// The dispatcher's admission limits against an in-process sink, in real
/// time (each test is bounded well under 5 s).
@Suite("Cleanup limits")
struct CleanupLimitsTests {
    /// A single-node store (memory log, no grace, no hold-off) that leads
    /// and may run cleanup.
    static func makeStore(clock: any WallClock) async throws -> RaftLeaseStore {
        var limits = LeaseLimits()
        limits.minDurationSeconds = 1
        limits.cleanupGraceSeconds = 0
        let store = try RaftLeaseStore(storage: MemoryStorage(), limits: limits, clock: clock, logger: quietLogger)
        try await store.start()
        _ = try await store.read(.linearizable) { $0.appliedIndex }
        guard store.mayRunCleanup else { throw TestFailure("a single node should lead and run cleanup after start") }
        return store
    }

    /// Creates and releases `count` leases whose cleanup goes to `endpoint`:
    /// `count` cleanup jobs, due now.
    static func releasedLeases(_ store: RaftLeaseStore, count: Int, endpoint: String, maxRetries: UInt32 = 100) async throws {
        for i in 0..<count {
            let command = LeaseCommand.create(.init(
                leaseIDSuffix: String(UInt32.random(in: 1...UInt32.max), radix: 16),
                object: ObjectKey(type: .temporaryFile, id: "\(endpoint)-obj-\(i)"), serviceID: "svc",
                durationSeconds: 600,
                cleanup: CleanupSpec(httpEndpoint: endpoint, maxRetries: maxRetries, retryDelaySeconds: 1)))
            guard case .created(let lease) = try await store.propose(command) else { throw TestFailure("not created") }
            _ = try await store.propose(.release(.init(leaseID: lease.id, serviceID: "svc")))
        }
    }

    /// Runs the dispatcher as ``CleanupService`` does (claim, deliver each
    /// claimed job concurrently, look again 2 ms later) until `done()` or
    /// `limit` has passed; then waits for the deliveries in flight.
    static func drive(_ dispatcher: CleanupDispatcher, clock: any WallClock, for limit: Duration,
                      until done: () -> Bool = { false }) async throws {
        let deadline = ContinuousClock.now + limit
        try await withThrowingDiscardingTaskGroup { group in
            while ContinuousClock.now < deadline, !done() {
                for job in try await dispatcher.claimDueJobs(now: clock.now()) {
                    group.addTask { await dispatcher.attempt(job) }
                }
                try await Task.sleep(for: .milliseconds(2))
            }
        }
    }

    static func dispatcher(_ store: RaftLeaseStore, _ transport: SinkTransport, _ limits: CleanupLimits) -> CleanupDispatcher {
        CleanupDispatcher(store: store, transport: transport, timeout: .seconds(5), limits: limits,
                          metrics: SidecarMetrics(), logger: quietLogger, seed: 1)
    }

    @Test("50 jobs to one endpoint with endpointConcurrency 4: never more than 4 at once, and all 50 succeed")
    func endpointConcurrencyHolds() async throws {
        let clock = SystemWallClock()
        let store = try await Self.makeStore(clock: clock)
        let endpoint = "http://orders.test/cleanup"
        try await Self.releasedLeases(store, count: 50, endpoint: endpoint)
        let sink = SinkTransport(delay: .milliseconds(20))
        let dispatcher = Self.dispatcher(store, sink, CleanupLimits(
            maxConcurrency: 32, endpointConcurrency: 4, endpointRatePerSecond: 0, breakerFailures: 5))

        try await Self.drive(dispatcher, clock: clock, for: .seconds(30)) {
            sink.succeeded(endpoint) >= 50 && dispatcher.inFlightCount == 0
        }
        #expect(sink.succeeded(endpoint) == 50)
        #expect(sink.attempts(endpoint) == 50, "one attempt per job")
        #expect(sink.peak(endpoint) <= 4, "peak concurrency \(sink.peak(endpoint))")
        #expect(sink.peak(endpoint) > 1, "the endpoint's slots are used in parallel")
        let (pending, succeeded) = try await store.read(.stale) { ($0.pendingCleanupCount, $0.stats.cleanupSucceeded) }
        #expect(pending == 0)
        #expect(succeeded == 50)
    }

    @Test("the global maxConcurrency holds across endpoints, each within its own endpointConcurrency")
    func globalConcurrencyHolds() async throws {
        let clock = SystemWallClock()
        let store = try await Self.makeStore(clock: clock)
        let endpoints = ["http://a.test/cleanup", "http://b.test/cleanup", "http://c.test/cleanup"]
        for endpoint in endpoints { try await Self.releasedLeases(store, count: 20, endpoint: endpoint) }
        let sink = SinkTransport(delay: .milliseconds(20))
        let dispatcher = Self.dispatcher(store, sink, CleanupLimits(
            maxConcurrency: 6, endpointConcurrency: 4, endpointRatePerSecond: 0, breakerFailures: 5))

        try await Self.drive(dispatcher, clock: clock, for: .seconds(30)) {
            endpoints.allSatisfy { sink.succeeded($0) >= 20 } && dispatcher.inFlightCount == 0
        }
        for endpoint in endpoints {
            #expect(sink.succeeded(endpoint) == 20, "\(endpoint)")
            #expect(sink.peak(endpoint) <= 4, "\(endpoint) peaked at \(sink.peak(endpoint))")
        }
        #expect(sink.peakTotal <= 6, "peak overall \(sink.peakTotal)")
    }

    @Test("a rate of 20/s: a burst of 20, then the rest paced at 20/s")
    func endpointRateHolds() async throws {
        let clock = SystemWallClock()
        let store = try await Self.makeStore(clock: clock)
        let endpoint = "http://paced.test/cleanup"
        try await Self.releasedLeases(store, count: 40, endpoint: endpoint)
        let sink = SinkTransport(delay: .milliseconds(1))
        let rate = 20.0
        let dispatcher = Self.dispatcher(store, sink, CleanupLimits(
            maxConcurrency: 64, endpointConcurrency: 64, endpointRatePerSecond: rate, breakerFailures: 5))

        try await Self.drive(dispatcher, clock: clock, for: .seconds(30)) {
            sink.succeeded(endpoint) >= 40 && dispatcher.inFlightCount == 0
        }
        #expect(sink.succeeded(endpoint) == 40)
        let arrivals = sink.arrivals(endpoint).sorted()
        try #require(arrivals.count == 40)
        func milliseconds(_ d: Duration) -> Double {
            Double(d.components.seconds) * 1_000 + Double(d.components.attoseconds) / 1e15
        }
        // The first 20 go at once; the other 20 need a token each, one per 50 ms.
        #expect(milliseconds(arrivals[19] - arrivals[0]) < 3_000, "the first 20 are a burst (no wait for tokens)")
        // Arrivals lag admission by up to `lag` on a loaded machine (below).
        let lag = 500.0
        let spread = milliseconds(arrivals[39] - arrivals[0])
        #expect(spread >= 1_000 - lag, "40 requests at 20/s with a bucket of 20 take a second; took \(spread) ms")
        // Token bucket: the admissions in any window [a_i, a_j] number at most
        // capacity + rate × its length. The sink sees each request when its
        // delivery task runs, up to `lag` after admission on a loaded machine,
        // so a window of arrivals may hold the admissions of a window `lag`
        // longer. (Without the limit all 40 arrive within a few milliseconds,
        // far above this bound; the exact bucket is pinned with a manual clock
        // in EndpointThrottleTests.)
        for i in 0..<arrivals.count {
            for j in i..<arrivals.count {
                let window = milliseconds(arrivals[j] - arrivals[i])
                let allowed = rate + rate * (window + lag) / 1_000
                #expect(Double(j - i + 1) <= allowed, "\(j - i + 1) requests within \(window) ms")
            }
        }
    }

    @Test("a dead target trips its breaker and does not hold up a healthy one")
    func deadTargetDoesNotDelayHealthyOne() async throws {
        let clock = SystemWallClock()
        let store = try await Self.makeStore(clock: clock)
        let dead = "http://dead.test/cleanup"
        let healthy = "http://healthy.test/cleanup"
        // The dead target's jobs first: they are the most overdue.
        try await Self.releasedLeases(store, count: 20, endpoint: dead)
        try await Self.releasedLeases(store, count: 10, endpoint: healthy)
        // Each attempt to the dead target hangs for 2 s: had the healthy jobs
        // waited behind its 20, they would take 20 s (2 at a time).
        let sink = SinkTransport(delay: .milliseconds(10), failing: [dead: .seconds(2)])
        let limits = CleanupLimits(maxConcurrency: 4, endpointConcurrency: 2, endpointRatePerSecond: 0,
                                   breakerFailures: 3, breakerCooldownMilliseconds: 60_000)
        let dispatcher = Self.dispatcher(store, sink, limits)

        let start = ContinuousClock.now
        var healthyDoneAfter: Duration?
        try await Self.drive(dispatcher, clock: clock, for: .seconds(30)) {
            if healthyDoneAfter == nil, sink.succeeded(healthy) >= 10 { healthyDoneAfter = ContinuousClock.now - start }
            return sink.succeeded(healthy) >= 10 && dispatcher.throttle.breaker(dead) == .open && dispatcher.inFlightCount == 0
        }
        #expect(sink.succeeded(healthy) == 10, "every healthy job delivered")
        let healthyTook = try #require(healthyDoneAfter)
        #expect(healthyTook < .seconds(10), "the healthy target was not held up behind the dead one's 20 s: \(healthyTook)")
        #expect(dispatcher.throttle.breaker(dead) == .open)
        let deadAttempts = sink.attempts(dead)
        // The breaker trips on the 3rd consecutive failure; at most
        // endpointConcurrency - 1 others were already out.
        #expect(deadAttempts >= limits.breakerFailures)
        #expect(deadAttempts <= limits.breakerFailures + limits.endpointConcurrency - 1, "\(deadAttempts) attempts to the dead target")

        // Its remaining jobs (due now) wait out the cool-down without an attempt.
        try await Self.drive(dispatcher, clock: clock, for: .milliseconds(300))
        #expect(sink.attempts(dead) == deadAttempts, "no attempt while the breaker is open")
        let horizon = clock.now().adding(seconds: 3_600)
        let pending = try await store.read(.stale) { $0.dueCleanupJobs(asOf: horizon, limit: 1_000) }
        let deadJobs = pending.filter { $0.spec.endpoint == dead }
        #expect(deadJobs.count == 20, "all of the dead target's jobs are still pending")
        #expect(deadJobs.reduce(0) { $0 + Int($1.attempts) } == deadAttempts, "waiting jobs used no attempt")
        #expect(pending.allSatisfy { $0.spec.endpoint == dead })
    }

    @Test("an endpoint with a rate-limited backlog does not crowd out another endpoint's newer jobs")
    func backlogDoesNotCrowdOutOthers() async throws {
        let clock = SystemWallClock()
        let store = try await Self.makeStore(clock: clock)
        let busy = "http://busy.test/cleanup"
        let other = "http://other.test/cleanup"
        // The busy endpoint's 100 jobs are older (the most overdue); it may
        // take 10 a second.
        try await Self.releasedLeases(store, count: 100, endpoint: busy)
        try await Self.releasedLeases(store, count: 5, endpoint: other)
        let dispatcher = Self.dispatcher(store, SinkTransport(delay: .zero), CleanupLimits(
            maxConcurrency: 32, endpointConcurrency: 32, endpointRatePerSecond: 10, breakerFailures: 0))

        // One claim: 32 free slots. Filled with the most overdue jobs, it
        // would hold 32 of the busy endpoint's, of which it admits 10, and
        // none of the other's until the busy backlog drained (10 s).
        let claimed = try await dispatcher.claimDueJobs(now: clock.now())
        #expect(claimed.filter { $0.spec.endpoint == other }.count == 5, "the other endpoint's jobs go out at once")
        #expect(claimed.filter { $0.spec.endpoint == busy }.count == 10, "the busy endpoint gets its rate's worth")
    }

    @Test("a delivery cut short by cancellation (shutdown) records no outcome and uses no attempt")
    func cancelledDeliveryUsesNoAttempt() async throws {
        let clock = SystemWallClock()
        let store = try await Self.makeStore(clock: clock)
        let endpoint = "http://slow.test/cleanup"
        try await Self.releasedLeases(store, count: 1, endpoint: endpoint, maxRetries: 0)
        // Each attempt hangs for a minute, then fails: unless cancelled first.
        let sink = SinkTransport(delay: .seconds(60), failing: [endpoint: .seconds(60)])
        let dispatcher = Self.dispatcher(store, sink, CleanupLimits(maxConcurrency: 4, breakerFailures: 1))
        let jobs = try await dispatcher.claimDueJobs(now: clock.now())
        let job = try #require(jobs.first)
        let delivery = Task { await dispatcher.attempt(job) }
        while sink.attempts(endpoint) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        delivery.cancel()
        await delivery.value

        let after = try #require(try await store.read(.linearizable) { $0.job(job.id) })
        #expect(after.state == .pending, "with max_retries 0 a recorded failure would have dead-lettered it")
        #expect(after.attempts == 0)
        #expect(dispatcher.inFlightCount == 0)
        #expect(dispatcher.throttle.inFlight(endpoint) == 0, "its endpoint slot was handed back")
        #expect(dispatcher.throttle.breaker(endpoint) == .closed, "not counted against the target")
    }
}
