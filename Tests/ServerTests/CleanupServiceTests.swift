import LeaseFSM
import Server
import Testing

/// `CleanupService` runs its reaper and dispatcher loops on the clock it is
/// given, so tests (and the chaos harness) need not wait in real time.
@Suite("Cleanup service")
struct CleanupServiceTests {
    @Test("the loops sleep on the injected clock: a lease that expires after the first pass is reaped and cleaned a reap interval of that clock later, not of real time")
    func loopsSleepOnTheInjectedClock() async throws {
        let wall = ManualWallClock()
        let store = try await CleanupLimitsTests.makeStore(clock: wall)
        let endpoint = "http://orders.test/cleanup"
        guard case .created = try await store.propose(.create(.init(
            leaseIDSuffix: "c1", object: ObjectKey(type: .temporaryFile, id: "scratch-1"), serviceID: "svc",
            durationSeconds: 1, cleanup: CleanupSpec(httpEndpoint: endpoint, maxRetries: 3, retryDelaySeconds: 1)))) else {
            throw TestFailure("not created")
        }
        let sink = SinkTransport(delay: .zero)
        let sleepClock = SkippingClock()
        let reapInterval = Duration.seconds(3600)
        // Assembled as Sidecar and the chaos harness assemble it.
        let service = CleanupService(
            store: store, transport: sink, settings: .init(reapInterval: reapInterval, deliveryTimeout: .seconds(5)),
            clock: wall, metrics: SidecarMetrics(), logger: quietLogger, seed: 1, sleepClock: sleepClock)
        let running = Task { try await service.run() }
        defer { running.cancel() }

        // The first reap pass found nothing due and the loop slept a whole
        // interval on the injected clock (on a real clock: an hour).
        try await waitUntil("the reap loop slept an interval on the injected clock", timeout: .seconds(20)) {
            sleepClock.slept >= reapInterval
        }
        #expect(sink.attempts(endpoint) == 0, "nothing was due before the wall clock moved")
        wall.advance(seconds: 5)
        try await waitUntil("the lease is reaped and its cleanup delivered", timeout: .seconds(20)) {
            sink.succeeded(endpoint) == 1
        }
        let held = try await store.read(.linearizable) { $0.isHeld(ObjectKey(type: .temporaryFile, id: "scratch-1")) }
        #expect(!held)
    }
}
