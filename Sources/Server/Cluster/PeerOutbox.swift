import Raft
import Synchronization

/// The messages waiting to go to one peer: the Raft driver adds without
/// waiting, the peer's stream task takes them in batches.
///
/// Bounded: when the peer is slow or down, messages beyond the limit are
/// dropped (``PeerTransport`` counts them in `gc_peer_messages_dropped_total`). Raft tolerates lost messages: it retries appends on
/// the next heartbeat, and a dropped vote or heartbeat is like a lost packet.
final class PeerOutbox: Sendable {
    private struct State {
        var messages: [Message] = []
        var waiter: CheckedContinuation<Void, Never>?
        var closed = false
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int = 4096) {
        self.limit = limit
    }

    /// Queues `messages`; returns how many were dropped because the outbox was full.
    @discardableResult
    func add(_ messages: some Collection<Message>) -> Int {
        let waiter: CheckedContinuation<Void, Never>?
        let dropped: Int
        (waiter, dropped) = state.withLock { s in
            guard !s.closed else { return (nil, messages.count) }
            let room = max(0, limit - s.messages.count)
            s.messages.append(contentsOf: messages.prefix(room))
            let dropped = messages.count - min(room, messages.count)
            let w = s.waiter
            s.waiter = nil
            return (w, dropped)
        }
        waiter?.resume()
        return dropped
    }

    /// Waits for messages and takes up to `maxBytes` of them (at least one);
    /// nil once closed.
    func next(maxBytes: Int) async -> [Message]? {
        while true {
            if let batch = take(maxBytes: maxBytes) { return batch.isEmpty ? nil : batch }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s in
                    if s.closed || !s.messages.isEmpty { return true }
                    s.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// Forgets queued messages (the stream broke: they would be stale by the
    /// time it reconnects, and Raft resends what matters).
    func discardQueued() {
        state.withLock { $0.messages.removeAll() }
    }

    /// Stops the outbox: `next` returns nil from now on.
    func close() {
        let waiter = state.withLock { s in
            s.closed = true
            let w = s.waiter
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    /// nil when there is nothing to take; [] when closed.
    private func take(maxBytes: Int) -> [Message]? {
        state.withLock { s in
            if s.closed { return [] }
            guard !s.messages.isEmpty else { return nil }
            var bytes = 0
            var count = 0
            for message in s.messages {
                let size = RaftMessageCoding.estimatedSize(message)
                if count > 0 && bytes + size > maxBytes { break }
                bytes += size
                count += 1
            }
            let batch = Array(s.messages.prefix(count))
            s.messages.removeFirst(count)
            return batch
        }
    }
}
