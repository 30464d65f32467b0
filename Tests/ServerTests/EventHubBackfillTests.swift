import LeaseFSM
import Server
import Synchronization
import Testing

/// An ``EventHub`` with a backfill source (PostgreSQL mode): resumes the
/// hub cannot serve are read from the source, then joined to the live
/// stream, each event once; only what the source lost is `compacted`.
@Suite("Event hub backfill")
struct EventHubBackfillTests {
    @Test("before the feed starts a resume reads from the source, then joins the live stream: each event once, in order",
          .timeLimit(.minutes(1)))
    func backfillBeforeTheFeedStarts() async throws {
        let source = FakeEventSource(events: (1...10).map { testEvent($0) })
        let hub = EventHub(backfill: source, backfillPollInterval: .milliseconds(10))
        let watch = EventRecorder(try hub.subscribe(after: EventHub.Cursor(index: 3, position: 0)))
        #expect(try await watch.wait(for: 7).map(\.index) == Array(4...10))
        // Still before the feed: new events in the source reach the watch by polling it.
        source.append((11...12).map { testEvent($0) })
        #expect(try await watch.wait(for: 9).map(\.index) == Array(4...12))
        // The feed starts and publishes at once: whether the watch joins
        // before or after these, it gets each once (from the source or the
        // hub's replay).
        hub.startFeed(after: 12)
        let live = (13...15).map { testEvent($0) }
        source.append(live)
        hub.publish(live)
        #expect(try await watch.wait(for: 12).map(\.index) == Array(4...15), "no event lost or repeated at the join")
    }

    @Test("a resume older than what the hub retains is served from the source, then live", .timeLimit(.minutes(1)))
    func backfillOlderThanRetained() async throws {
        let source = FakeEventSource(events: [])
        let hub = EventHub(retention: 3, backfill: source)
        hub.startFeed(after: 0)
        let events = (1...10).map { testEvent($0) }
        source.append(events)
        hub.publish(events)
        let watch = EventRecorder(try hub.subscribe(after: EventHub.Cursor(index: 2, position: 0)))
        #expect(try await watch.wait(for: 8).map(\.index) == Array(3...10))
        let next = testEvent(11)
        source.append([next])
        hub.publish([next])
        #expect(try await watch.wait(for: 9).map(\.index) == Array(3...11))
        #expect(source.reads > 0, "the first events came from the source")
    }

    @Test("a resume from before what the source retains is compacted, naming the oldest it has")
    func compactedWhenTheSourceLostThem() async throws {
        let source = FakeEventSource(events: (6...10).map { testEvent($0) }, prunedThrough: 5)
        let hub = EventHub(retention: 2, backfill: source)
        hub.startFeed(after: 10)
        let watch = EventRecorder(try hub.subscribe(after: EventHub.Cursor(index: 2, position: 0)))
        let error = try await watch.waitForEnd()
        #expect(error as? EventHub.WatchError == .compacted(requested: 2, oldestRetained: 6))
        // From the oldest retained on, the source serves it.
        let served = EventRecorder(try hub.subscribe(after: EventHub.Cursor(index: 5)))
        #expect(try await served.wait(for: 5).map(\.index) == Array(6...10))
    }

    @Test("a watch from now, before the feed starts, begins at the source's head")
    func fromNowBeforeTheFeed() async throws {
        let source = FakeEventSource(events: (1...10).map { testEvent($0) })
        let hub = EventHub(backfill: source, backfillPollInterval: .milliseconds(10))
        let watch = EventRecorder(try hub.subscribe(after: nil))
        try await waitUntil("the watch read the head") { source.headReads > 0 }
        source.append([testEvent(11)])
        #expect(try await watch.wait(for: 1).map(\.index) == [11])
    }

    @Test("a backfill larger than the watcher's buffer ends as too slow, naming the last event delivered")
    func backfillOverflowsTheBuffer() async throws {
        let source = FakeEventSource(events: (1...50).map { testEvent($0) })
        let hub = EventHub(watcherBuffer: 8, backfill: source)
        hub.startFeed(after: 50)
        // Nobody consumes: the buffer fills.
        let stream = try hub.subscribe(after: EventHub.Cursor(index: 0, position: 0))
        try await waitUntil("the backfill gave up") { hub.watcherCount == 0 }
        var received: [UInt64] = []
        do {
            for try await event in stream { received.append(event.index) }
            Issue.record("the watch ended without an error")
        } catch EventHub.WatchError.tooSlow(let last) {
            #expect(received == Array(1...8))
            #expect(last == EventHub.Cursor(index: 8, position: 0))
        }
    }

    @Test("close() ends a watch that is still backfilling, saying where to resume")
    func closeEndsBackfillingWatches() async throws {
        let source = FakeEventSource(events: (1...3).map { testEvent($0) })
        let hub = EventHub(backfill: source, backfillPollInterval: .milliseconds(10))
        let watch = EventRecorder(try hub.subscribe(after: EventHub.Cursor(index: 0, position: 0)))
        _ = try await watch.wait(for: 3)
        hub.close()
        let error = try await watch.waitForEnd()
        #expect(error as? EventHub.WatchError == .closed(lastDelivered: EventHub.Cursor(index: 3, position: 0)))
        #expect(hub.watcherCount == 0)
    }
}

/// A lease event at stream index `index` (position 0), as PostgreSQL mode numbers them.
func testEvent(_ index: Int, at: Int64 = 1_700_000_000_000) -> LeaseEvent {
    LeaseEvent(
        index: UInt64(index), position: 0, kind: .created, leaseID: LeaseID("lease-\(index)"),
        object: ObjectKey(type: .databaseRow, id: "o\(index)"), serviceID: "svc", incarnation: 1,
        fencingToken: UInt64(index), at: WallTime(milliseconds: at), expiresAt: WallTime(milliseconds: at + 60_000),
        reason: "", attempt: 0)
}

/// An in-memory ``EventBackfill`` that counts its reads.
final class FakeEventSource: EventBackfill {
    private struct State {
        var events: [LeaseEvent]
        var prunedThrough: UInt64
        var reads = 0
        var headReads = 0
    }

    private let state: Mutex<State>

    init(events: [LeaseEvent], prunedThrough: UInt64 = 0) {
        state = Mutex(State(events: events, prunedThrough: prunedThrough))
    }

    func append(_ events: [LeaseEvent]) { state.withLock { $0.events += events } }
    var reads: Int { state.withLock { $0.reads } }
    var headReads: Int { state.withLock { $0.headReads } }

    func events(after index: UInt64, limit: Int) async throws -> [LeaseEvent] {
        try state.withLock { s throws(EventHub.WatchError) in
            s.reads += 1
            if index < s.prunedThrough { throw .compacted(requested: index, oldestRetained: s.prunedThrough + 1) }
            return Array(s.events.filter { $0.index > index }.prefix(limit))
        }
    }

    func head() async throws -> UInt64 {
        state.withLock { s in
            s.headReads += 1
            return s.events.last?.index ?? s.prunedThrough
        }
    }
}

/// Consumes a watch in the background, keeping what arrived and how it ended.
final class EventRecorder: Sendable {
    private let box: RecorderBox
    private let task: Task<Void, Never>

    init(_ stream: AsyncThrowingStream<LeaseEvent, any Error>) {
        let box = RecorderBox()
        self.box = box
        task = Task {
            do {
                for try await event in stream { box.record(event) }
                box.finish(nil)
            } catch {
                box.finish(error)
            }
        }
    }

    deinit { task.cancel() }

    var count: Int { box.events.count }
    var events: [LeaseEvent] { box.events }

    /// The first `count` events, once they arrived (fails after `timeout`,
    /// or if the watch ended before).
    func wait(for count: Int, timeout: Duration = .seconds(30)) async throws -> [LeaseEvent] {
        try await waitUntil("\(count) events arrived (have \(box.events.count))", timeout: timeout) {
            box.events.count >= count || box.hasEnded
        }
        let events = box.events
        guard events.count >= count else {
            throw TestFailure("the watch ended after \(events.count) of \(count) events: \(box.ending.map { "\($0)" } ?? "no error")")
        }
        return Array(events.prefix(count))
    }

    /// The error the watch ended with (nil: it finished normally).
    func waitForEnd(timeout: Duration = .seconds(30)) async throws -> (any Error)? {
        try await waitUntil("the watch ended", timeout: timeout) { box.hasEnded }
        return box.ending
    }

    /// Stops consuming (the watch ends as a client going away).
    func cancel() { task.cancel() }
}

private final class RecorderBox: Sendable {
    private struct State {
        var events: [LeaseEvent] = []
        var ended = false
        var error: (any Error)?
    }

    private let state = Mutex(State())

    func record(_ event: LeaseEvent) { state.withLock { $0.events.append(event) } }
    func finish(_ error: (any Error)?) {
        state.withLock { s in
            s.ended = true
            s.error = error
        }
    }

    var events: [LeaseEvent] { state.withLock { $0.events } }
    var hasEnded: Bool { state.withLock { $0.ended } }
    var ending: (any Error)? { state.withLock { $0.error } }
}

/// Polls `condition` every 10 ms until it holds; fails after `timeout`.
func waitUntil(_ what: @autoclosure () -> String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting until \(what())") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// What the event history counts against `GC_EVENT_HISTORY_BYTES`.
@Suite("Event history size")
struct EventHistorySizeTests {
    @Test("an event is counted by what it holds: assigned lease ids and short ASCII object ids cost no heap, ids kept as text do")
    func eventsAreCountedByWhatTheyHold() {
        var event = testEvent(1)
        event.leaseID = LeaseID(index: 7, suffix: "0badcafe")
        event.object = ObjectKey(type: .databaseRow, id: String(repeating: "o", count: 20))
        // The inline event alone: a 20-byte ASCII object id is held inline too.
        #expect(EventHub.approximateBytes(of: event) == MemoryLayout<LeaseEvent>.stride)
        event.leaseID = LeaseID("lease-with-an-id-of-its-own")  // 27 bytes: a box and a heap string
        #expect(EventHub.approximateBytes(of: event) == MemoryLayout<LeaseEvent>.stride + 32 + 64)
        event.object = ObjectKey(type: .databaseRow, id: String(repeating: "o", count: 40))
        // A 40-byte id: its box (48) and its heap string (32-byte header + 41, rounded to 16).
        #expect(EventHub.approximateBytes(of: event) == MemoryLayout<LeaseEvent>.stride + 32 + 64 + 48 + 80)
        // The default budget keeps about 30,000 such events (assigned ids, 20-byte object ids).
        let perEvent = MemoryLayout<LeaseEvent>.stride
        #expect((25_000...40_000).contains(EventHub.defaultRetentionBytes / perEvent),
                "\(EventHub.defaultRetentionBytes / perEvent) events of \(perEvent) bytes")
    }
}
