import Raft
import Synchronization

/// The traffic waiting to go to one peer (Raft messages, forwarded writes
/// and their replies, in order): the store adds without waiting, the peer's
/// stream task takes it in batches.
///
/// Bounded: when the peer is slow or down, items beyond the limit are
/// dropped (``PeerTransport`` counts them in `gc_peer_messages_dropped_total`).
/// Raft tolerates lost messages: it retries appends on the next heartbeat,
/// and a dropped vote or heartbeat is like a lost packet. A dropped
/// forwarded write or reply is retried by the follower under the same
/// session, so it still applies once.
final class PeerOutbox: Sendable {
    private struct State {
        var items: [PeerTraffic] = []
        var waiter: CheckedContinuation<Void, Never>?
        var closed = false
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int = 4096) {
        self.limit = limit
    }

    /// Queues `items`; returns how many were dropped because the outbox was full.
    @discardableResult
    func add(_ items: some Collection<PeerTraffic>) -> Int {
        let waiter: CheckedContinuation<Void, Never>?
        let dropped: Int
        (waiter, dropped) = state.withLock { s in
            guard !s.closed else { return (nil, items.count) }
            let room = max(0, limit - s.items.count)
            s.items.append(contentsOf: items.prefix(room))
            let dropped = items.count - min(room, items.count)
            let w = s.waiter
            s.waiter = nil
            return (w, dropped)
        }
        waiter?.resume()
        return dropped
    }

    /// Waits for traffic and takes up to `maxBytes` of it (at least one
    /// item); nil once closed.
    func next(maxBytes: Int) async -> [PeerTraffic]? {
        while true {
            if let batch = take(maxBytes: maxBytes) { return batch.isEmpty ? nil : batch }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s in
                    if s.closed || !s.items.isEmpty { return true }
                    s.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// Forgets queued traffic (the stream broke: it would be stale by the
    /// time it reconnects; Raft resends what matters, and followers retry
    /// their forwarded writes).
    func discardQueued() {
        state.withLock { $0.items.removeAll() }
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
    private func take(maxBytes: Int) -> [PeerTraffic]? {
        state.withLock { s in
            if s.closed { return [] }
            guard !s.items.isEmpty else { return nil }
            var bytes = 0
            var count = 0
            for item in s.items {
                let size = item.estimatedSize
                if count > 0 && bytes + size > maxBytes { break }
                bytes += size
                count += 1
            }
            if count == s.items.count {
                // The common case: take everything, keep the buffer's capacity.
                defer { s.items.removeAll(keepingCapacity: true) }
                return s.items
            }
            let batch = Array(s.items.prefix(count))
            s.items.removeFirst(count)
            return batch
        }
    }
}
