import NIOPosix

/// The thread a node's Raft persists run on: one SQLite transaction and one
/// fsync per `Ready`, while the node's event loop (``NodeEventLoop``) keeps
/// reading sockets, stepping peers' messages and taking proposals for the
/// next `Ready`.
///
/// Why a thread of its own: on the loop, a persist held the node's sockets
/// for as long as the disk took to sync (about 1.3 ms a `Ready` on the
/// benchmark machine, with the loop otherwise busy only 40-60 % of the time
/// under load). Jobs run one at a time, in the order they were submitted.
///
/// Used by nodes in a cluster; a node alone persists on its loop, which
/// measured faster there (DESIGN, "Threads"). One per process, like
/// ``NodeEventLoop``: nodes in one process (tests) share it.
public final class PersistThread: Sendable {
    private let pool: NIOThreadPool

    /// Starts one new thread.
    public init() {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    /// The process's persist thread, started on first use and never shut down.
    public static let shared = PersistThread()

    /// Runs `body` on the thread, after every job submitted before it, and
    /// returns its result; nil, with `body` not run, once the thread was shut
    /// down. The awaiting task resumes on its own executor.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T? {
        try? await pool.runIfActive(body)
    }

    /// Stops the thread after the job it is running; jobs not started yet
    /// are not run (their callers get nil). For a node that is stopped for
    /// good (the chaos harness's killed nodes); ``shared`` is never stopped.
    public func shutDown() async {
        try? await pool.shutdownGracefully()
    }
}
