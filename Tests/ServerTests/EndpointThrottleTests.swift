import LeaseFSM
import Server
import Synchronization
import Testing

/// Per-endpoint admission on explicit wall times: concurrency, token bucket,
/// circuit breaker.
@Suite("Endpoint throttle")
struct EndpointThrottleTests {
    let t0 = WallTime(seconds: 1_800_000_000)

    func at(_ milliseconds: Int64) -> WallTime { t0.adding(milliseconds: milliseconds) }

    /// Breaker changes as "endpoint: from->to", in order.
    final class Transitions: Sendable {
        private let log = Mutex<[String]>([])
        var all: [String] { log.withLock { $0 } }
        func record(_ endpoint: String, _ from: EndpointThrottle.BreakerState, _ to: EndpointThrottle.BreakerState) {
            log.withLock { $0.append("\(endpoint): \(from.rawValue)->\(to.rawValue)") }
        }
    }

    /// Admits and finishes one request to `endpoint` at `now`.
    func attempt(_ throttle: EndpointThrottle, _ endpoint: String, at now: WallTime, healthy: Bool) throws {
        let permit = try #require(throttle.admit(endpoint, now: now), "\(endpoint) should admit at \(now)")
        throttle.finish(permit, targetHealthy: healthy)
    }

    // MARK: Room

    @Test("room is what each endpoint can take now: free slots capped by whole tokens, 1 for a due probe, 0 while open")
    func roomPerEndpoint() throws {
        let throttle = EndpointThrottle(limits: CleanupLimits(
            maxConcurrency: 100, endpointConcurrency: 8, endpointRatePerSecond: 5, breakerFailures: 1,
            breakerCooldownMilliseconds: 1_000))
        #expect(throttle.defaultRoom == 5, "an unseen endpoint: min(concurrency 8, a full bucket of 5)")
        let held = try #require(throttle.admit("busy", now: t0))
        _ = throttle.admit("busy", now: t0)
        #expect(throttle.room(now: t0)["busy"] == 3, "5 tokens - 2 taken")
        try attempt(throttle, "dead", at: t0, healthy: false)
        #expect(throttle.room(now: at(500))["dead"] == 0, "breaker open")
        #expect(throttle.room(now: at(1_000))["dead"] == 1, "cool-down over: one probe")
        throttle.finish(held, targetHealthy: true)
        #expect(throttle.room(now: at(1_000))["busy"] == 5, "a second later the bucket is full again (5), and 7 slots are free")
    }

    // MARK: Origins

    @Test("limits apply per origin (scheme, host, port): other paths, queries or case do not get more")
    func perOrigin() throws {
        let throttle = EndpointThrottle(limits: CleanupLimits(
            maxConcurrency: 100, endpointConcurrency: 1, endpointRatePerSecond: 0, breakerFailures: 1,
            breakerCooldownMilliseconds: 60_000))
        let held = try #require(throttle.admit("http://a.test/cleanup?x=1", now: t0))
        #expect(held.endpoint == "http://a.test:80")
        #expect(throttle.admit("http://a.test/other", now: t0) == nil, "same origin, another path")
        #expect(throttle.admit("http://A.test:80/cleanup?x=2", now: t0) == nil, "same origin, explicit port and other case")
        #expect(throttle.admit("http://a.test:8080/cleanup", now: t0) != nil, "another port is another origin")
        #expect(throttle.admit("https://a.test/cleanup", now: t0) != nil, "another scheme is another origin")
        #expect(throttle.admit("http://b.test/cleanup", now: t0) != nil)
        #expect(throttle.inFlight("http://a.test/anything") == 1)
        #expect(Set(throttle.room(now: t0).keys).isSuperset(of: ["http://a.test:80", "http://b.test:80"]))
        // One path's failure opens the breaker for the whole origin.
        throttle.finish(held, targetHealthy: false)
        #expect(throttle.breaker("http://a.test/another-path") == .open)
        #expect(throttle.breaker("http://b.test/cleanup") == .closed)
        // gRPC targets: host:port, the path ignored.
        let grpc = try #require(throttle.admit("orders:50051/x", now: t0))
        #expect(grpc.endpoint == "grpc://orders:50051")
        #expect(throttle.admit("orders:50051/y", now: t0) == nil)
    }

    @Test("origins and logged endpoints carry no credentials or query")
    func redaction() {
        let url = "http://user:s3cret@files.internal:8080/cleanup?token=t0ps3cret#frag"
        #expect(CleanupEndpointText.origin(url) == "http://files.internal:8080")
        let shown = CleanupEndpointText.redacted(url)
        #expect(!shown.contains("s3cret") && !shown.contains("user") && !shown.contains("t0ps3cret"), "\(shown)")
        #expect(shown.contains("files.internal:8080/cleanup"))
        let unparsed = CleanupEndpointText.redacted("http://user:s3cret@[bad/x")
        #expect(!unparsed.contains("s3cret"), "\(unparsed)")
    }

    // MARK: Concurrency

    @Test("an endpoint admits at most endpointConcurrency requests at once; finishing or cancelling frees a slot")
    func concurrencyCap() throws {
        let throttle = EndpointThrottle(limits: CleanupLimits(
            maxConcurrency: 100, endpointConcurrency: 3, endpointRatePerSecond: 0, breakerFailures: 0))
        let permits = (0..<3).compactMap { _ in throttle.admit("a", now: t0) }
        #expect(permits.count == 3)
        #expect(throttle.admit("a", now: t0) == nil, "a fourth request must wait")
        #expect(throttle.inFlight("a") == 3)
        #expect(throttle.blockedEndpoints(now: t0) == ["a"])

        throttle.finish(permits[0], targetHealthy: true)
        #expect(throttle.inFlight("a") == 2)
        let again = try #require(throttle.admit("a", now: t0), "a finished request frees its slot")
        #expect(throttle.admit("a", now: t0) == nil)

        throttle.cancel(again)
        #expect(throttle.inFlight("a") == 2)
        #expect(throttle.admit("a", now: t0) != nil, "a cancelled permit frees its slot")

        #expect(throttle.admit("b", now: t0) != nil, "another endpoint has its own slots")
    }

    // MARK: Rate

    @Test("a rate of 10/s admits a burst of 10, then one more per 100 ms, never more than one second's worth")
    func tokenBucket() {
        let throttle = EndpointThrottle(limits: CleanupLimits(
            maxConcurrency: 1_000, endpointConcurrency: 1_000, endpointRatePerSecond: 10, breakerFailures: 0))
        for i in 0..<10 {
            #expect(throttle.admit("a", now: t0) != nil, "burst request \(i + 1)")
        }
        #expect(throttle.admit("a", now: t0) == nil, "the 11th at the same instant must wait")
        #expect(throttle.blockedEndpoints(now: t0) == ["a"])
        #expect(throttle.admit("a", now: at(50)) == nil, "half a token after 50 ms")
        #expect(throttle.admit("a", now: at(100)) != nil, "one token after 100 ms")
        #expect(throttle.admit("a", now: at(100)) == nil)

        // A long pause refills the bucket to its capacity only.
        let later = at(10_100)
        for i in 0..<10 {
            #expect(throttle.admit("a", now: later) != nil, "refilled request \(i + 1)")
        }
        #expect(throttle.admit("a", now: later) == nil)
        #expect(throttle.admit("b", now: later) != nil, "another endpoint has its own bucket")
    }

    @Test("a cancelled permit gives its token back")
    func cancelReturnsToken() throws {
        let throttle = EndpointThrottle(limits: CleanupLimits(
            maxConcurrency: 10, endpointConcurrency: 10, endpointRatePerSecond: 1, breakerFailures: 0))
        let permit = try #require(throttle.admit("a", now: t0))
        #expect(throttle.admit("a", now: t0) == nil)
        throttle.cancel(permit)
        #expect(throttle.admit("a", now: t0) != nil)
    }

    // MARK: Circuit breaker

    @Test("the breaker opens after N consecutive failures, blocks until the cool-down, then one probe's success closes it")
    func breakerOpensProbesAndCloses() throws {
        let transitions = Transitions()
        let throttle = EndpointThrottle(
            limits: CleanupLimits(maxConcurrency: 100, endpointConcurrency: 10, endpointRatePerSecond: 0,
                                  breakerFailures: 3, breakerCooldownMilliseconds: 1_000),
            onBreakerChange: { transitions.record($0, $1, $2) })
        for i in 1...3 {
            #expect(throttle.breakers["a"] != .open, "still closed before failure \(i)")
            try attempt(throttle, "a", at: t0, healthy: false)
        }
        #expect(throttle.breakers["a"] == .open)
        #expect(throttle.admit("a", now: t0) == nil)
        #expect(throttle.admit("a", now: at(999)) == nil, "blocked for the whole cool-down")
        #expect(throttle.blockedEndpoints(now: at(999)) == ["a"])

        let probe = try #require(throttle.admit("a", now: at(1_000)), "one probe after the cool-down")
        #expect(throttle.breakers["a"] == .halfOpen)
        #expect(throttle.admit("a", now: at(1_000)) == nil, "exactly one probe")
        #expect(throttle.admit("a", now: at(30_000)) == nil, "no second probe while the first is out, however long it takes")
        #expect(throttle.blockedEndpoints(now: at(30_000)) == ["a"])

        throttle.finish(probe, targetHealthy: true)
        #expect(throttle.breakers["a"] == .closed)
        #expect(throttle.admit("a", now: at(30_000)) != nil)
        #expect(throttle.admit("a", now: at(30_000)) != nil, "closed again: more than one request at a time")
        #expect(transitions.all == ["a: closed->open", "a: open->half-open", "a: half-open->closed"])
    }

    @Test("a failed probe re-opens the breaker for another cool-down")
    func failedProbeReopens() throws {
        let throttle = EndpointThrottle(limits: CleanupLimits(
            maxConcurrency: 100, endpointConcurrency: 10, endpointRatePerSecond: 0,
            breakerFailures: 3, breakerCooldownMilliseconds: 1_000))
        for _ in 1...3 { try attempt(throttle, "a", at: t0, healthy: false) }
        #expect(throttle.breakers["a"] == .open)

        try attempt(throttle, "a", at: at(1_000), healthy: false)  // the probe fails
        #expect(throttle.breakers["a"] == .open)
        #expect(throttle.admit("a", now: at(1_500)) == nil)
        #expect(throttle.admit("a", now: at(1_999)) == nil, "the new cool-down counts from the failed probe")
        let probe = try #require(throttle.admit("a", now: at(2_000)), "a second probe after the second cool-down")
        #expect(throttle.breakers["a"] == .halfOpen)
        throttle.finish(probe, targetHealthy: true)
        #expect(throttle.breakers["a"] == .closed)
    }

    @Test("a permanent failure (the target answered) does not count toward the breaker and resets the streak")
    func permanentFailuresDoNotTrip() throws {
        let throttle = EndpointThrottle(limits: CleanupLimits(
            maxConcurrency: 100, endpointConcurrency: 10, endpointRatePerSecond: 0,
            breakerFailures: 3, breakerCooldownMilliseconds: 1_000))
        // Permanent failures are finished with targetHealthy: true.
        for _ in 0..<10 { try attempt(throttle, "a", at: t0, healthy: true) }
        #expect(throttle.breakers["a"] == .closed)

        try attempt(throttle, "a", at: t0, healthy: false)
        try attempt(throttle, "a", at: t0, healthy: false)
        try attempt(throttle, "a", at: t0, healthy: true)
        try attempt(throttle, "a", at: t0, healthy: false)
        try attempt(throttle, "a", at: t0, healthy: false)
        #expect(throttle.breakers["a"] == .closed, "never three transient failures in a row")
        try attempt(throttle, "a", at: t0, healthy: false)
        #expect(throttle.breakers["a"] == .open, "three in a row")
    }

    @Test("one endpoint's open breaker does not affect another endpoint")
    func otherEndpointUnaffected() throws {
        let throttle = EndpointThrottle(limits: CleanupLimits(
            maxConcurrency: 100, endpointConcurrency: 10, endpointRatePerSecond: 0,
            breakerFailures: 2, breakerCooldownMilliseconds: 60_000))
        try attempt(throttle, "dead", at: t0, healthy: false)
        try attempt(throttle, "dead", at: t0, healthy: false)
        #expect(throttle.breakers["dead"] == .open)
        #expect(throttle.admit("dead", now: at(10)) == nil)
        for _ in 0..<5 { try attempt(throttle, "healthy", at: at(10), healthy: true) }
        #expect(throttle.breakers["healthy"] != .open)
        #expect(throttle.blockedEndpoints(now: at(10)) == ["dead"])
    }

    @Test("blockedEndpoints lists exactly the endpoints that cannot take one more request")
    func blockedEndpointsExactly() throws {
        let throttle = EndpointThrottle(limits: CleanupLimits(
            maxConcurrency: 100, endpointConcurrency: 2, endpointRatePerSecond: 5,
            breakerFailures: 2, breakerCooldownMilliseconds: 1_000))
        // full: both slots taken.
        let full = [throttle.admit("full", now: t0), throttle.admit("full", now: t0)]
        #expect(full.allSatisfy { $0 != nil })
        // drained: its 5 tokens spent (requests finished).
        for _ in 0..<5 { try attempt(throttle, "drained", at: t0, healthy: true) }
        // broken: breaker open.
        try attempt(throttle, "broken", at: t0, healthy: false)
        try attempt(throttle, "broken", at: t0, healthy: false)
        // fine: one request in flight, one slot and tokens left.
        #expect(throttle.admit("fine", now: t0) != nil)
        // idle: one request done, tokens left.
        try attempt(throttle, "idle", at: t0, healthy: true)

        #expect(throttle.blockedEndpoints(now: t0) == ["full", "drained", "broken"])
        // A second later the bucket is full again and the cool-down is over;
        // the full endpoint's requests are still out.
        #expect(throttle.blockedEndpoints(now: at(1_000)) == ["full"])
    }
}
