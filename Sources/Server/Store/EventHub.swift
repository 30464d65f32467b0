import DequeModule
import LeaseFSM
import Synchronization

/// Fans lease events out to watchers, keeping the most recent ones so a
/// watcher that reconnects can resume from a log index.
public final class EventHub: Sendable {
    /// Why a watch ended.
    public enum WatchError: Error, Hashable, Sendable {
        /// Events after `requested` are no longer retained (oldest kept: `oldestRetained`).
        case compacted(requested: UInt64, oldestRetained: UInt64)
        /// The watcher did not keep up; resume after `lastDelivered`.
        case tooSlow(lastDelivered: UInt64)
        /// The node is shutting down; resume elsewhere after `lastDelivered`.
        case closed(lastDelivered: UInt64)
    }

    private struct Subscriber {
        var continuation: AsyncThrowingStream<LeaseEvent, any Error>.Continuation
        var lastDelivered: UInt64
    }

    private struct State {
        var retained: Deque<LeaseEvent> = []
        var subscribers: [UInt64: Subscriber] = [:]
        var nextSubscriber: UInt64 = 0
        /// Highest index ever published.
        var lastIndex: UInt64 = 0
        /// Highest index of any event no longer retained (0: none dropped).
        var droppedThrough: UInt64 = 0
        /// Set by ``close()``: no more watchers.
        var closed = false
    }

    /// Events kept for resumption.
    public let retention: Int
    /// Events buffered per watcher before it is cut off as too slow.
    public let watcherBuffer: Int
    private let state = Mutex(State())

    public init(retention: Int = 100_000, watcherBuffer: Int = 10_000) {
        self.retention = retention
        self.watcherBuffer = watcherBuffer
    }

    /// Delivers `events` (in log order) to every watcher and retains them.
    public func publish(_ events: [LeaseEvent]) {
        guard !events.isEmpty else { return }
        let cutOff: [(Subscriber, WatchError)] = state.withLock { s in
            for event in events {
                s.retained.append(event)
                s.lastIndex = max(s.lastIndex, event.index)
            }
            while s.retained.count > retention, let dropped = s.retained.popFirst() {
                s.droppedThrough = max(s.droppedThrough, dropped.index)
            }
            var cutOff: [(Subscriber, WatchError)] = []
            for (id, var sub) in s.subscribers {
                var tooSlow = false
                for event in events {
                    if case .dropped = sub.continuation.yield(event) {
                        tooSlow = true
                        break
                    }
                    sub.lastDelivered = event.index
                }
                if tooSlow {
                    s.subscribers[id] = nil
                    cutOff.append((sub, .tooSlow(lastDelivered: sub.lastDelivered)))
                } else {
                    s.subscribers[id] = sub
                }
            }
            return cutOff
        }
        // Finished outside the lock: finishing runs the stream's termination
        // handler, which takes the lock to unregister.
        for (sub, error) in cutOff { sub.continuation.finish(throwing: error) }
    }

    /// Ends every watch with ``WatchError/closed(lastDelivered:)`` and refuses
    /// new ones (graceful shutdown: long-lived streams must not hold it up).
    public func close() {
        let subscribers = state.withLock { s in
            s.closed = true
            defer { s.subscribers = [:] }
            return Array(s.subscribers.values)
        }
        for sub in subscribers { sub.continuation.finish(throwing: WatchError.closed(lastDelivered: sub.lastDelivered)) }
    }

    /// A stream of events with a log index greater than `afterIndex` (nil or
    /// 0: only events published from now on), ending with ``WatchError``.
    public func subscribe(afterIndex: UInt64?) throws(WatchError) -> AsyncThrowingStream<LeaseEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<LeaseEvent, any Error>.makeStream(
            bufferingPolicy: .bufferingOldest(watcherBuffer))
        let id: UInt64 = try state.withLock { s throws(WatchError) in
            if s.closed { throw WatchError.closed(lastDelivered: afterIndex ?? 0) }
            var last = s.lastIndex
            if let after = afterIndex, after > 0, after < s.lastIndex {
                // Everything after `after` is retained only if nothing at or
                // after it was dropped (an index's events may be cut part-way).
                guard after >= s.droppedThrough else {
                    throw WatchError.compacted(requested: after, oldestRetained: s.droppedThrough + 1)
                }
                last = after
                for event in s.retained where event.index > after {
                    continuation.yield(event)
                    last = event.index
                }
            }
            let id = s.nextSubscriber
            s.nextSubscriber += 1
            s.subscribers[id] = Subscriber(continuation: continuation, lastDelivered: last)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Number of connected watchers.
    public var watcherCount: Int { state.withLock { $0.subscribers.count } }
}
