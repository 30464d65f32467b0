import NIOCore
import NIOPosix

/// The one thread a node's request path runs on: the sockets of its client
/// port, its peer port and its connections to peers, the gRPC handlers, the
/// store's drains (Raft, apply), the peer streams and the renewal
/// batches all run on this event loop.
///
/// Measured on the 2-core benchmark machine (BENCHMARKS, "One event loop per
/// node"): a 3-node create cost about 520 µs of server CPU with the handlers
/// on Swift's global pool and 25,000 context switches per second, and about
/// 390 µs (the side-by-side run's median) and 4,000 switches per second on
/// one loop. Two loops with the work
/// on one of them (hops between the loops) cost 477 µs: the saving comes from
/// not crossing threads at all.
///
/// What stays off it: the store's persists (SQLite and fsync, on
/// ``PersistThread``), snapshot encoding (its own low-priority thread),
/// cleanup delivery, the reaper's loop, the metrics endpoint and the
/// PostgreSQL backend, which keep SwiftNIO's shared group and Swift's pool.
///
/// One per process, like SwiftNIO's singleton group: nodes in one process
/// (tests) share it.
public final class NodeEventLoop: Sendable {
    /// The group of one loop that the node's gRPC transports use.
    public let group: MultiThreadedEventLoopGroup
    /// That loop, as the task executor the request path prefers.
    public let executor: EventLoopTaskExecutor

    /// A group of one new thread.
    public init() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        executor = EventLoopTaskExecutor(loop: group.next())
    }

    /// The process's node loop, started on first use and never shut down.
    public static let shared = NodeEventLoop()
}
