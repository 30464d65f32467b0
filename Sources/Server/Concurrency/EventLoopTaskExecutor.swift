import NIOCore

/// A SwiftNIO event loop as a Swift `TaskExecutor`: a task that prefers it
/// (`withTaskExecutorPreference`, `Task(executorPreference:)`, or a child of
/// such a task) runs its nonisolated code, and the code of the default
/// actors it calls, on the loop's thread.
///
/// Why: a gRPC call's bytes arrive on an event loop, and by default its
/// handler runs on Swift's global pool; every request then crosses threads
/// (loop → pool → store → pool → loop), and each crossing wakes a sleeping
/// thread. On the same loop, a resumed task is queued behind the I/O the
/// loop is already doing, with no wake-up at all (DESIGN, "Threads").
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The loop jobs run on.
    public let loop: any EventLoop

    public init(loop: any EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}
