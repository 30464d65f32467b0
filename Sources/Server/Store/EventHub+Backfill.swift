import DequeModule
import LeaseFSM
import Synchronization

/// Where an ``EventHub`` reads the events it does not hold itself: in
/// PostgreSQL mode, the `gc_events` table that every sidecar reads
/// (``PostgresEventLog``).
///
/// The source and the hub number events alike: the event at index `n` of
/// the source is published to the hub with index `n` (position 0 within
/// it), so a cursor means the same on every sidecar.
public protocol EventBackfill: Sendable {
    /// Up to `limit` events after index `index`, in order; fewer or none
    /// when the source holds no more yet.
    ///
    /// - Throws: ``EventHub/WatchError/compacted(requested:oldestRetained:)``
    ///   when some events after `index` are gone from the source too; any
    ///   other error when the source cannot be read now.
    func events(after index: UInt64, limit: Int) async throws -> [LeaseEvent]

    /// The index of the newest event: where a watch "from now on" starts
    /// before the hub's feed has started.
    func head() async throws -> UInt64
}

/// Serving watches with a backfill source (PostgreSQL mode). In Raft mode
/// (no source) none of this runs.
///
/// A watch that the hub can serve (its cursor is within what the hub
/// retains, and the feed publishing here has started) is a plain
/// subscriber. Any other is first served from the source: batches read
/// after its cursor are delivered into its stream until it has caught up
/// with what the hub retains, and then it becomes a plain subscriber in the
/// same lock that replays the hub's retained events after its cursor, so no
/// event falls between the two. The watcher's buffer bounds a backfill as
/// it bounds a replay: when it is full the watch ends with
/// ``WatchError/tooSlow(lastDelivered:)`` naming where to resume.
extension EventHub {
    /// Events read from the source at once.
    static let backfillBatch = 1_000

    /// Whether a watch joined the live subscribers.
    enum Attachment {
        case attached
        /// The hub cannot serve the cursor (yet): read from the source.
        case behind
        /// The replay of retained events overflowed the buffer after this.
        case tooSlow(Cursor)
    }

    /// What a backfilling watch does next.
    private enum Step {
        case read
        case done
        case finish(AsyncThrowingStream<LeaseEvent, any Error>.Continuation, WatchError)
    }

    /// Whether a backfill reads on after `step`; ends the watch of a `.finish`.
    private static func goesOn(_ step: Step) -> Bool {
        switch step {
        case .read: return true
        case .done: return false
        case .finish(let continuation, let error):
            continuation.finish(throwing: error)
            return false
        }
    }

    /// The feed that publishes into this hub (``PostgresEventTail``) starts
    /// after `index`: events up to it are not held here and are served from
    /// the backfill source; watches wait for this (reading the source
    /// meanwhile) before they are served live.
    public func startFeed(after index: UInt64) {
        markUnavailable(through: index)
        state.withLock { $0.feedStarted = true }
    }

    /// Whether ``startFeed(after:)`` was called.
    public var feedStarted: Bool { state.withLock { $0.feedStarted } }

    /// ``subscribe(after:)`` with a backfill source.
    func subscribeWithBackfill(after: Cursor?, source: any EventBackfill) throws(WatchError) -> AsyncThrowingStream<LeaseEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<LeaseEvent, any Error>.makeStream(
            bufferingPolicy: .bufferingOldest(watcherBuffer))
        enum Start {
            case live(UInt64)
            case backfill(UInt64)
            case tooSlow(Cursor)
        }
        let start: Start = try state.withLock { s throws(WatchError) in
            if s.closed { throw WatchError.closed(lastDelivered: after ?? Cursor(index: 0)) }
            guard s.subscribers.count + s.backfilling.count < maxWatchers else { throw WatchError.tooManyWatchers(limit: maxWatchers) }
            let id = s.nextSubscriber
            s.nextSubscriber += 1
            switch Self.attach(&s, id: id, continuation: continuation, after: after ?? Cursor(index: s.lastIndex)) {
            case .attached: return .live(id)
            case .tooSlow(let last): return .tooSlow(last)
            case .behind:
                s.backfilling[id] = Subscriber(continuation: continuation, lastDelivered: after ?? Cursor(index: 0))
                return .backfill(id)
            }
        }
        switch start {
        case .tooSlow(let last):
            continuation.finish(throwing: WatchError.tooSlow(lastDelivered: last))
        case .live(let id):
            continuation.onTermination = { [weak self] _ in self?.unregister(id) }
        case .backfill(let id):
            let task = BackfillTask()
            continuation.onTermination = { [weak self] _ in
                self?.unregister(id)
                task.cancel()
            }
            task.start { await self.runBackfill(id: id, after: after, source: source) }
        }
        return stream
    }

    /// Makes watch `id` a live subscriber after `cursor` if the hub can
    /// serve that, replaying the retained events after it.
    private static func attach(
        _ s: inout State, id: UInt64, continuation: AsyncThrowingStream<LeaseEvent, any Error>.Continuation, after cursor: Cursor
    ) -> Attachment {
        guard s.feedStarted else { return .behind }
        if let gap = s.unavailableThrough, cursor < gap { return .behind }
        var last = cursor
        for event in s.retained where last.precedes(event) {
            guard case .enqueued = continuation.yield(event) else { return .tooSlow(last) }
            last = Cursor(after: event)
        }
        s.subscribers[id] = Subscriber(continuation: continuation, lastDelivered: last)
        return .attached
    }

    private func unregister(_ id: UInt64) {
        state.withLock { s in
            s.subscribers[id] = nil
            s.backfilling[id] = nil
        }
    }

    /// Serves watch `id` from `source` until it can attach.
    private func runBackfill(id: UInt64, after: Cursor?, source: any EventBackfill) async {
        var last = after ?? Cursor(index: 0)
        do {
            if after == nil {
                last = Cursor(index: try await source.head())
                state.withLock { $0.backfilling[id]?.lastDelivered = last }
            }
            while true {
                try Task.checkCancellation()
                let attached: Step = state.withLock { s in
                    guard let sub = s.backfilling[id] else { return .done }
                    switch Self.attach(&s, id: id, continuation: sub.continuation, after: last) {
                    case .attached:
                        s.backfilling[id] = nil
                        return .done
                    case .tooSlow(let delivered):
                        s.backfilling[id] = nil
                        return .finish(sub.continuation, WatchError.tooSlow(lastDelivered: delivered))
                    case .behind:
                        return .read
                    }
                }
                guard Self.goesOn(attached) else { return }
                let events = try await source.events(after: last.index, limit: min(Self.backfillBatch, watcherBuffer))
                if events.isEmpty {
                    // Caught up with the source, but the feed has not started
                    // (or not reached this far): look again shortly.
                    try await Task.sleep(for: backfillPollInterval)
                    continue
                }
                let delivered: Step = state.withLock { s in
                    guard var sub = s.backfilling[id] else { return .done }
                    for event in events where last.precedes(event) {
                        guard case .enqueued = sub.continuation.yield(event) else {
                            s.backfilling[id] = nil
                            return .finish(sub.continuation, WatchError.tooSlow(lastDelivered: last))
                        }
                        last = Cursor(after: event)
                    }
                    sub.lastDelivered = last
                    s.backfilling[id] = sub
                    return .read
                }
                guard Self.goesOn(delivered) else { return }
            }
        } catch is CancellationError {
            // The watcher went away (its stream's termination cancelled this).
            unregister(id)
        } catch {
            let reason = (error as? StoreError)?.message ?? "\(error)"
            let ending: any Error = error is WatchError ? error
                : StoreError(.unavailable, "cannot read the event history now (\(reason)); resume with \(last)")
            let sub = state.withLock { $0.backfilling.removeValue(forKey: id) }
            sub?.continuation.finish(throwing: ending)
        }
    }
}

/// The task serving one backfilling watch, cancelled when the watch ends
/// (also when that happens before the task is stored).
private final class BackfillTask: Sendable {
    private let state = Mutex<(task: Task<Void, Never>?, cancelled: Bool)>((nil, false))

    func start(_ body: @escaping @Sendable () async -> Void) {
        let started = Task { await body() }
        let cancelledAlready = state.withLock { s in
            s.task = started
            return s.cancelled
        }
        if cancelledAlready { started.cancel() }
    }

    func cancel() {
        let task = state.withLock { s in
            s.cancelled = true
            return s.task
        }
        task?.cancel()
    }
}
