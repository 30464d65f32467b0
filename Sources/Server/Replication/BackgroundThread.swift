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
///
/// The thread is a plain detached POSIX thread. If one cannot be created the work runs on
/// the calling task instead, so the awaiting task is always resumed.
enum BackgroundThread {
    /// The nice value the thread runs at (0 is normal, 19 the lowest priority).
    static let niceness: Int32 = 10

    /// Runs `body` on a new thread and returns its result.
    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let started = spawn {
                lowerPriority()
                continuation.resume(returning: body())
            }
            if !started { continuation.resume(returning: body()) }
        }
    }

    /// What a spawned thread runs, passed to it through `pthread_create`'s argument.
    private final class Job: Sendable {
        let work: @Sendable () -> Void
        init(_ work: @escaping @Sendable () -> Void) { self.work = work }
    }

    /// Starts a detached thread running `work`; false (and `work` not run) if none could be
    /// created.
    private static func spawn(_ work: @escaping @Sendable () -> Void) -> Bool {
        #if os(Linux)
        let job = Unmanaged.passRetained(Job(work)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            Unmanaged<Job>.fromOpaque(argument).takeRetainedValue().work()
            return nil
        }, job)
        guard created == 0 else {
            Unmanaged<Job>.fromOpaque(job).release()
            return false
        }
        pthread_detach(thread)
        return true
        #else
        return false
        #endif
    }

    /// Lowers the calling thread's priority (best effort: a failure leaves it as it was).
    private static func lowerPriority() {
        #if os(Linux)
        // On Linux the nice value belongs to the thread, and `who == 0` is the caller.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
        #endif
    }
}
