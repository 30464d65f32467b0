import Synchronization

/// A database step that took longer than allowed.
public struct PostgresAttemptTimedOut: Error, Hashable, Sendable, CustomStringConvertible {
    public var limit: Duration
    public var description: String { "no answer within \(limit) (the database may be overloaded, or a lock is held)" }
}

enum PostgresAttemptTimeout {
    /// Runs `operation`, returning its result, or throwing
    /// ``PostgresAttemptTimedOut`` after `limit` (or `CancellationError` when
    /// the caller is cancelled) even if `operation` does not end: it is
    /// cancelled and left behind.
    ///
    /// Unlike a task group, this does not wait for a child that ignores
    /// cancellation: a query written to a connection that is already closed
    /// can wait forever in postgres-nio, and a start-up attempt must not.
    static func run<T: Sendable>(limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                guard race.arm(continuation) else { return }
                let work = Task {
                    do {
                        race.finish(.success(try await operation()))
                    } catch {
                        race.finish(.failure(error))
                    }
                }
                let timer = Task {
                    try? await Task.sleep(for: limit)
                    race.finish(.failure(PostgresAttemptTimedOut(limit: limit)))
                }
                race.onFinish {
                    work.cancel()
                    timer.cancel()
                }
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// The first of the outcomes resumes the continuation; the others are dropped.
    private final class Race<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var outcome: Result<T, any Error>?
            var cleanup: (@Sendable () -> Void)?
            var finished = false
        }

        private let state = Mutex(State())

        /// Stores the continuation; false (and resumed) if already finished
        /// (cancelled before it began).
        func arm(_ continuation: CheckedContinuation<T, any Error>) -> Bool {
            let outcome: Result<T, any Error>? = state.withLock { state in
                if state.finished { return state.outcome }
                state.continuation = continuation
                return nil
            }
            if let outcome {
                continuation.resume(with: outcome)
                return false
            }
            return true
        }

        func onFinish(_ cleanup: @escaping @Sendable () -> Void) {
            let runNow = state.withLock { state in
                if state.finished { return true }
                state.cleanup = cleanup
                return false
            }
            if runNow { cleanup() }
        }

        func finish(_ outcome: Result<T, any Error>) {
            let (continuation, cleanup) = state.withLock { state -> (CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
                guard !state.finished else { return (nil, nil) }
                state.finished = true
                state.outcome = outcome
                defer {
                    state.continuation = nil
                    state.cleanup = nil
                }
                return (state.continuation, state.cleanup)
            }
            continuation?.resume(with: outcome)
            cleanup?()
        }
    }
}
