import LeaseFSM
import Raft
@testable import Server
import Testing

/// A node may never catch up with an index it waits for: cut off from the leader, or refusing
/// a log it no longer holds. The wait (a linearizable read after its ReadIndex round, a
/// membership change) then fails after the request timeout, in the node's own ticks, instead
/// of holding its caller forever.
@Suite("Waits for an applied index")
struct AppliedIndexWaitTests {
    @Test("a wait for an index this node never applies fails after the request timeout, saying how far it got")
    func aWaitForAnIndexNeverAppliedFailsAtTheRequestTimeout() async throws {
        var settings = ClusterSettings.singleNode()
        settings.tickInterval = .milliseconds(50)
        settings.requestTimeout = .seconds(1)
        #expect(settings.requestTimeoutTicks == 20)
        let store = try RaftLeaseStore(storage: MemoryStorage(), limits: LeaseLimits(), clock: ManualWallClock(),
                                       logger: quietLogger, cluster: settings, seed: 1)
        try await store.start()
        let applied = await store.status().applied
        let wait = Task { try await store.waitApplied(applied + 1_000) }
        let deadline = ContinuousClock.now + .seconds(30)
        while await store.reads.waitingForIndexCount == 0 {
            guard ContinuousClock.now < deadline else { throw TestFailure("the wait was never registered") }
            try await Task.sleep(for: .milliseconds(1))
        }
        for _ in 1..<20 { await store.tick() }
        #expect(await store.reads.waitingForIndexCount == 1, "the wait failed before its request timeout")
        await store.tick()
        guard await store.reads.waitingForIndexCount == 0 else {
            await store.shutDown("test over")  // fails the wait, so this test ends either way
            Issue.record("the wait outlived its request timeout")
            return
        }
        let error = await #expect(throws: StoreError.self) { try await wait.value }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("only up to index \(applied), not to index \(applied + 1_000)") == true,
                "\(error?.message ?? "")")
    }
}
