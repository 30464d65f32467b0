import LeaseFSM
import NIOCore
import Raft
import Server
import Testing

/// The node's request path runs on one event loop (``NodeEventLoop``):
/// tasks that prefer its executor, their children and the default actors
/// they call run there, and so do the tasks the renewal batcher starts.
@Suite("Node event loop")
struct NodeEventLoopTests {
    actor Probe {
        func runsOn(_ loop: any EventLoop) -> Bool { loop.inEventLoop }
    }

    @Test("a task that prefers the loop's executor runs on the loop, and so do its child tasks and the default actors it calls")
    func tasksAndActorsRunOnTheLoop() async throws {
        let node = NodeEventLoop()
        let loop = node.executor.loop
        let probe = Probe()
        let (direct, child, inActor) = await withTaskExecutorPreference(node.executor) {
            async let child = loop.inEventLoop
            let inActor = await probe.runsOn(loop)
            return (loop.inEventLoop, await child, inActor)
        }
        #expect(direct, "the task itself")
        #expect(child, "a child task inherits the preference")
        #expect(inActor, "a default actor runs on the calling task's preferred executor")
        // The same actor called from a task without the preference runs on
        // Swift's pool, not on the loop.
        #expect(await probe.runsOn(loop) == false)
        try await node.group.shutdownGracefully()
    }

    @Test("the renewal batcher proposes its batches, and answers their renewals, on its executor")
    func renewalBatchesRunOnTheLoop() async throws {
        let node = NodeEventLoop()
        let loop = node.executor.loop
        let store = try RaftLeaseStore(storage: MemoryStorage(), limits: LeaseLimits(), clock: ManualWallClock(), logger: quietLogger)
        try await store.start()
        guard case .created(let lease) = try await store.propose(.create(.init(
            leaseIDSuffix: "a1", object: ObjectKey(type: .cacheEntry, id: "o1"), serviceID: "svc", durationSeconds: 600))) else {
            throw TestFailure("the lease was not created")
        }
        let batcher = RenewalBatcher(store: store, executor: node.executor)
        // Submitted from tasks on the loop, as the KeepAlive handler does; a
        // batch is proposed from a task the batcher starts, which without its
        // preference runs on Swift's pool (and so would the answers).
        let answeredOnLoop = try await withTaskExecutorPreference(node.executor) {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await withCheckedThrowingContinuation { (answered: CheckedContinuation<Bool, any Error>) in
                            let renewal = LeaseCommand.Renewal(leaseID: lease.id, serviceID: "svc", extendSeconds: 600)
                            let accepted = batcher.submit(renewal) { outcome in
                                answered.resume(with: outcome.map { _ in loop.inEventLoop })
                            }
                            if !accepted { answered.resume(throwing: TestFailure("the batcher refused a renewal")) }
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
        }
        #expect(answeredOnLoop.count == 8)
        #expect(answeredOnLoop.allSatisfy { $0 }, "\(answeredOnLoop.filter { !$0 }.count) of 8 renewals were answered off the loop")
        try await node.group.shutdownGracefully()
    }
}
