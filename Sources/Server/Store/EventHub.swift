import DequeModule
import LeaseFSM
import Synchronization

/// Fans lease events out to watchers, keeping the most recent ones so a
/// watcher that reconnects can resume from where it stopped.
///
/// Events are ordered by (log index, position within the index). A watcher
/// resumes after the last event it received, so across a resume no event is
/// lost or repeated, as long as this node still retains the events after
/// that point; otherwise it is told so (``WatchError/compacted(requested:oldestRetained:)``).
///
/// With a ``EventBackfill`` source (PostgreSQL mode, where the events live
/// in a table that every sidecar reads), a resume from before what this hub
/// retains is served from that source first, then from the live stream
/// (EventHub+Backfill.swift); only what the source no longer has either is
/// `compacted`. Without one (Raft mode) nothing of that applies.
public final class EventHub: Sendable {
    /// A point in the event stream: after every event up to `position` of
    /// log `index` (`position == nil`: after the whole index).
    public struct Cursor: Hashable, Sendable, Comparable, CustomStringConvertible {
        public var index: UInt64
        public var position: UInt32?

        public init(index: UInt64, position: UInt32? = nil) {
            self.index = index
            self.position = position
        }

        /// Just after `event`.
        public init(after event: LeaseEvent) {
            self.init(index: event.index, position: event.position)
        }

        public static func < (a: Cursor, b: Cursor) -> Bool {
            (a.index, a.position ?? .max) < (b.index, b.position ?? .max)
        }

        /// Whether `event` comes after this point.
        func precedes(_ event: LeaseEvent) -> Bool {
            (index, position ?? .max) < (event.index, event.position)
        }

        public var description: String {
            position.map { "after_index = \(index), after_position = \($0)" } ?? "after_index = \(index)"
        }
    }

    /// Why a watch ended.
    public enum WatchError: Error, Hashable, Sendable {
        /// Events after `requested` are no longer retained here (the oldest
        /// index that is: `oldestRetained`).
        case compacted(requested: UInt64, oldestRetained: UInt64)
        /// The watcher did not keep up; resume after `lastDelivered`.
        case tooSlow(lastDelivered: Cursor)
        /// The node is shutting down; resume elsewhere after `lastDelivered`.
        case closed(lastDelivered: Cursor)
        /// ``maxWatchers`` watchers are connected already.
        case tooManyWatchers(limit: Int)
    }

    // Internal rather than private: EventHub+Backfill.swift works on them.
    struct Subscriber {
        var continuation: AsyncThrowingStream<LeaseEvent, any Error>.Continuation
        var lastDelivered: Cursor
    }

    struct State {
        var retained: Deque<LeaseEvent> = []
        /// ``approximateBytes(of:)`` summed over `retained`.
        var retainedBytes = 0
        var subscribers: [UInt64: Subscriber] = [:]
        var nextSubscriber: UInt64 = 0
        /// Highest index ever published, or known to be applied.
        var lastIndex: UInt64 = 0
        /// Events up to here are not available on this node: dropped for
        /// retention, or inside a snapshot this node started from.
        var unavailableThrough: Cursor?
        /// Set by ``close()``: no more watchers.
        var closed = false
        /// With a ``backfill`` source: whether the feed that publishes here
        /// started (``startFeed(after:)``); until then every watch is served
        /// from the source.
        var feedStarted = false
        /// With a ``backfill`` source: watchers being served from it, not yet
        /// among `subscribers` (they count against ``maxWatchers`` too).
        var backfilling: [UInt64: Subscriber] = [:]
    }

    /// Events kept for resumption, at most.
    public let retention: Int
    /// Bytes of events kept for resumption, at most (``approximateBytes(of:)``;
    /// `GC_EVENT_HISTORY_BYTES`): the oldest events are dropped first.
    public let retentionBytes: Int
    /// Events buffered per watcher before it is cut off as too slow.
    public let watcherBuffer: Int
    /// Watchers connected at once (`GC_MAX_WATCHERS`); one more is refused.
    public let maxWatchers: Int
    let state = Mutex(State())
    /// Where events this hub does not retain are read from; nil in Raft mode.
    let backfill: (any EventBackfill)?
    /// How long a backfilling watcher that caught up with the source waits
    /// before it looks again, while the feed has not started.
    let backfillPollInterval: Duration

    /// The default of ``retentionBytes``: 4 MiB, about 29,000 events of
    /// leases with assigned ids, object ids of up to 30 ASCII bytes and no
    /// metadata (144 bytes each, none of it on the heap).
    public static let defaultRetentionBytes = 4 << 20

    /// A hub that retains at most `retention` events and `retentionBytes`.
    /// With `backfill`, resumes from before what it retains are read from
    /// that source (see ``EventBackfill``), and watchers wait for
    /// ``startFeed(after:)`` before they are served live.
    public init(retention: Int = 100_000, retentionBytes: Int = EventHub.defaultRetentionBytes,
                watcherBuffer: Int = 10_000, maxWatchers: Int = 1_000,
                backfill: (any EventBackfill)? = nil, backfillPollInterval: Duration = .milliseconds(250)) {
        self.backfill = backfill
        self.backfillPollInterval = backfillPollInterval
        self.retention = retention
        self.retentionBytes = max(0, retentionBytes)
        self.watcherBuffer = max(1, watcherBuffer)
        self.maxWatchers = maxWatchers
    }

    /// Delivers `events` (in log order) to every watcher and retains them.
    public func publish(_ events: [LeaseEvent]) {
        guard !events.isEmpty else { return }
        let cutOff: [(Subscriber, WatchError)] = state.withLock { s in
            for event in events {
                s.retained.append(event)
                s.retainedBytes += Self.approximateBytes(of: event)
                s.lastIndex = max(s.lastIndex, event.index)
            }
            while s.retained.count > retention || s.retainedBytes > retentionBytes, let dropped = s.retained.popFirst() {
                s.retainedBytes -= Self.approximateBytes(of: dropped)
                let gap = Cursor(after: dropped)
                s.unavailableThrough = max(s.unavailableThrough ?? gap, gap)
            }
            var cutOff: [(Subscriber, WatchError)] = []
            for (id, var sub) in s.subscribers {
                var tooSlow = false
                // A watcher that resumed ahead of this node skips what it has.
                for event in events where sub.lastDelivered.precedes(event) {
                    if case .dropped = sub.continuation.yield(event) {
                        tooSlow = true
                        break
                    }
                    sub.lastDelivered = Cursor(after: event)
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

    /// The events up to and including log `index` cannot be served here (the
    /// node restored or installed a snapshot at `index`: it never saw them).
    ///
    /// Watchers that have not seen everything up to `index` are ended with
    /// ``WatchError/compacted(requested:oldestRetained:)``: they would
    /// otherwise miss the events inside the snapshot without knowing.
    public func markUnavailable(through index: UInt64) {
        let gap = Cursor(index: index)
        let cutOff: [Subscriber] = state.withLock { s in
            s.unavailableThrough = max(s.unavailableThrough ?? gap, gap)
            s.lastIndex = max(s.lastIndex, index)
            s.retained.removeAll { $0.index <= index }
            s.retainedBytes = s.retained.reduce(0) { $0 + Self.approximateBytes(of: $1) }
            let behind = s.subscribers.filter { $0.value.lastDelivered < gap }
            for id in behind.keys { s.subscribers[id] = nil }
            return Array(behind.values)
        }
        for sub in cutOff {
            sub.continuation.finish(throwing: WatchError.compacted(requested: sub.lastDelivered.index, oldestRetained: index + 1))
        }
    }

    /// Ends every watch with ``WatchError/closed(lastDelivered:)`` and refuses
    /// new ones (graceful shutdown: long-lived streams must not hold it up).
    public func close() {
        let subscribers = state.withLock { s in
            s.closed = true
            defer {
                s.subscribers = [:]
                s.backfilling = [:]
            }
            return Array(s.subscribers.values) + Array(s.backfilling.values)
        }
        for sub in subscribers { sub.continuation.finish(throwing: WatchError.closed(lastDelivered: sub.lastDelivered)) }
    }

    /// A stream of the events after `after` (nil: only events published from
    /// now on), ending with ``WatchError``.
    ///
    /// - Throws: ``WatchError/compacted(requested:oldestRetained:)`` when
    ///   some events after `after` are no longer available here;
    ///   ``WatchError/tooManyWatchers(limit:)`` at ``maxWatchers``.
    ///
    /// A resume whose backlog is larger than one watcher's buffer gets the
    /// first buffer-full of it and then ``WatchError/tooSlow(lastDelivered:)``
    /// naming the last event delivered, so it resumes from there: no event
    /// is ever skipped without the watcher being told.
    ///
    /// With a ``backfill`` source, events after `after` that this hub does
    /// not hold are read from it, so `compacted` means the source lost them
    /// too (``subscribeWithBackfill(after:source:)``).
    public func subscribe(after: Cursor?) throws(WatchError) -> AsyncThrowingStream<LeaseEvent, any Error> {
        if let backfill { return try subscribeWithBackfill(after: after, source: backfill) }
        let (stream, continuation) = AsyncThrowingStream<LeaseEvent, any Error>.makeStream(
            bufferingPolicy: .bufferingOldest(watcherBuffer))
        let id: UInt64? = try state.withLock { s throws(WatchError) in
            if s.closed { throw WatchError.closed(lastDelivered: after ?? Cursor(index: 0)) }
            guard s.subscribers.count < maxWatchers else { throw WatchError.tooManyWatchers(limit: maxWatchers) }
            var last = Cursor(index: s.lastIndex)
            if let after {
                if let gap = s.unavailableThrough, after < gap {
                    let oldest = s.retained.first?.index ?? (gap.index + 1)
                    throw WatchError.compacted(requested: after.index, oldestRetained: oldest)
                }
                last = after
                for event in s.retained where last.precedes(event) {
                    guard case .enqueued = continuation.yield(event) else {
                        // The backlog overflows the buffer: deliver what fits, then say where to resume.
                        continuation.finish(throwing: WatchError.tooSlow(lastDelivered: last))
                        return nil
                    }
                    last = Cursor(after: event)
                }
            }
            let id = s.nextSubscriber
            s.nextSubscriber += 1
            s.subscribers[id] = Subscriber(continuation: continuation, lastDelivered: last)
            return id
        }
        guard let id else { return stream }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// What retaining `event` costs, roughly: its inline size plus the heap
    /// copies of its strings (counted in full, although most are shared
    /// with the lease while it is retained, so the bound errs low).
    public static func approximateBytes(of event: LeaseEvent) -> Int {
        MemoryLayout<LeaseEvent>.stride + event.leaseID.heapBytes + event.object.heapBytes
            + HeapSize.of(event.serviceID) + HeapSize.of(event.reason)
    }

    /// Events retained for resumption, and their ``approximateBytes(of:)``.
    public var retainedSize: (events: Int, bytes: Int) { state.withLock { ($0.retained.count, $0.retainedBytes) } }

    /// Number of connected watchers (with those being served from a
    /// ``backfill`` source).
    public var watcherCount: Int { state.withLock { $0.subscribers.count + $0.backfilling.count } }
}
