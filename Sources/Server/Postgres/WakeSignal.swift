import Logging
import Synchronization

/// Wakes one waiting loop early: ``signal()`` ends the current or the next
/// ``wait(timeout:)``. Signals do not queue: several before a wait wake it
/// once (the loop then does all the work there is).
///
/// For the PostgreSQL event loops: a NOTIFY or an in-process poke wakes the
/// loop, the timeout is its polling fallback. One waiter at a time: a second
/// concurrent ``wait(timeout:)`` wakes the first.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    /// Wakes the waiter, or the next one if none waits now.
    func signal() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            guard let waiter = s.waiter else {
                s.pending = true
                return nil
            }
            s.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns at the first signal (one already pending: at once), after
    /// `timeout`, or when the task is cancelled.
    func wait(timeout: Duration) async {
        if state.withLock({ s in defer { s.pending = false }; return s.pending }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow: [CheckedContinuation<Void, Never>] = state.withLock { s in
                    // Signalled in between, or cancelled before the handler
                    // could see this waiter (a signal then stays pending for
                    // the next wait): do not wait.
                    if s.pending {
                        s.pending = false
                        return [continuation]
                    }
                    if Task.isCancelled { return [continuation] }
                    let previous = s.waiter
                    s.waiter = continuation
                    return previous.map { [$0] } ?? []
                }
                for waiter in resumeNow { waiter.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume()
        }
    }
}

extension WakeSignal {
    /// Runs `pass` until the task is cancelled: again at once when it
    /// returns true (a full batch: more may wait), else after `interval` or
    /// at the next ``signal()``. A pass that throws is retried after
    /// `interval` doubled per failure in a row (at most `maxDoublings`
    /// times), and never later than `maxBackoff`; the
    /// first failure and every hundredth are logged as `failureMessage`.
    /// The loop of the event sequencer and of the event tail.
    func runPasses(every interval: Duration, maxDoublings: Int, maxBackoff: Duration, logger: Logger,
                   failureMessage: Logger.Message,
                   _ pass: () async throws -> Bool) async {
        var failures = 0
        while !Task.isCancelled {
            var full = false
            do {
                full = try await pass()
                failures = 0
            } catch {
                if Task.isCancelled { return }
                failures += 1
                if failures == 1 || failures % 100 == 0 {
                    logger.warning(failureMessage, metadata: [
                        "error": "\(PostgresFailure.describe(error))", "failures": "\(failures)",
                    ])
                }
            }
            if full { continue }
            let delay = failures == 0 ? interval : min(interval * (1 << min(failures, maxDoublings)), maxBackoff)
            await wait(timeout: delay)
        }
    }
}
