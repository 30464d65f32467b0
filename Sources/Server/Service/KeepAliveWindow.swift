import Synchronization

/// One `KeepAlive` stream's flow of answers: the renewals it has read and
/// not yet answered (at most ``limit``), and the answers waiting to be
/// written.
///
/// The reader calls ``admit()`` before reading each request, and past the
/// limit waits there, so the transport's flow control slows a client that sends
/// faster than its renewals commit, and server memory per stream stays
/// bounded. Answers are ``push(_:)``ed from anywhere (the batcher's task);
/// the writer takes them all at once with ``next()`` and reports them
/// written with ``written(_:)``, which frees their places.
///
/// Cancelling the task waiting in ``admit()`` or ``next()`` ends the stream:
/// both waiters are woken, the reader with `CancellationError`.
final class KeepAliveWindow<Answer: Sendable>: Sendable {
    /// Most renewals read and not yet answered and written.
    let limit: Int

    private struct State: Sendable {
        var outstanding = 0
        var pending: [Answer] = []
        var inputEnded = false
        var cancelled = false
        var reader: CheckedContinuation<Void, any Error>?
        var writer: CheckedContinuation<[Answer]?, Never>?
    }

    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Takes a place for one more request; waits while ``limit`` are taken.
    func admit() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let admitted: Result<Void, any Error>? = state.withLock { s in
                    if s.cancelled { return .failure(CancellationError()) }
                    guard s.outstanding >= limit else {
                        s.outstanding += 1
                        return .success(())
                    }
                    s.reader = continuation
                    return nil
                }
                if let admitted { continuation.resume(with: admitted) }
            }
        } onCancel: {
            cancel()
        }
    }

    /// Whether the reader is waiting in ``admit()`` for a place (tests).
    var readerIsWaiting: Bool { state.withLock { $0.reader != nil } }

    /// An answer to write (for a request that was admitted).
    func push(_ answer: Answer) {
        let wake: (CheckedContinuation<[Answer]?, Never>, [Answer])? = state.withLock { s in
            guard !s.cancelled else { return nil }
            s.pending.append(answer)
            guard let writer = s.writer else { return nil }
            s.writer = nil
            defer { s.pending = [] }
            return (writer, s.pending)
        }
        if let wake { wake.0.resume(returning: wake.1) }
    }

    /// No more requests will be admitted.
    func endInput() {
        let writer: CheckedContinuation<[Answer]?, Never>? = state.withLock { s in
            s.inputEnded = true
            guard s.outstanding == 0, let writer = s.writer else { return nil }
            s.writer = nil
            return writer
        }
        writer?.resume(returning: nil)
    }

    /// Every answer pushed and not yet taken; waits while there is none.
    /// Nil once the input has ended and every admitted request was answered
    /// and written, or when the stream is cancelled.
    func next() async -> [Answer]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[Answer]?, Never>) in
                let ready: [Answer]?? = state.withLock { s in
                    if s.cancelled { return .some(nil) }
                    if !s.pending.isEmpty {
                        defer { s.pending = [] }
                        return .some(s.pending)
                    }
                    if s.inputEnded && s.outstanding == 0 { return .some(nil) }
                    s.writer = continuation
                    return .none
                }
                if case .some(let answers) = ready { continuation.resume(returning: answers) }
            }
        } onCancel: {
            cancel()
        }
    }

    /// `count` answers taken with ``next()`` are written: their places are free.
    func written(_ count: Int) {
        let reader: CheckedContinuation<Void, any Error>? = state.withLock { s in
            s.outstanding -= count
            guard s.outstanding < limit, let waiting = s.reader else { return nil }
            // The waiting reader takes the freed place.
            s.reader = nil
            s.outstanding += 1
            return waiting
        }
        reader?.resume()
    }

    /// Ends the stream: wakes the reader (with `CancellationError`) and the
    /// writer (with nil); later answers are dropped.
    func cancel() {
        let (reader, writer) = state.withLock { s in
            s.cancelled = true
            s.pending = []
            defer { s.reader = nil; s.writer = nil }
            return (s.reader, s.writer)
        }
        reader?.resume(throwing: CancellationError())
        writer?.resume(returning: nil)
    }
}
