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
