import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs long, blocking work (a snapshot's encoding and its file) on a thread of its own at a
/// lower scheduling priority, and hands the result back to the awaiting task.
///
/// Why not a task: Swift's cooperative pool has one thread per core, two on a small node. A
/// snapshot of a million leases encodes for about ten seconds and then writes and fsyncs a
/// 250 MB file; on a pool thread it takes half the pool for that long, and every request
/// queues behind the other half. On its own thread, with a higher nice value, the kernel
/// prefers the threads that serve requests whenever both want a core: the snapshot takes
/// longer on a busy node instead of requests waiting for it. It still gets a share of the
/// CPU (it is not `SCHED_IDLE`), so a node that is always busy still compacts its log.
enum BackgroundThread {
    /// The nice value the thread runs at (0 is normal, 19 the lowest priority).
    static let niceness: Int32 = 10

    /// Runs `body` on a new thread named `name` and returns its result.
    static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                lowerPriority()
                continuation.resume(returning: body())
            }
            thread.name = name
            thread.start()
        }
    }

    /// Lowers the calling thread's priority (best effort: a failure leaves it as it was).
    private static func lowerPriority() {
        #if os(Linux)
        // On Linux the nice value belongs to the thread, and `who == 0` is the caller.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
        #endif
    }
}
