import GCProto
import GRPCCore
import LeaseFSM
import Raft
import Server
import Testing

/// Resuming a watch: after the last event received, even inside one log
/// index (an expire decision causes many events at one index), with no
/// event lost or repeated; and refusing a resume the node cannot serve.
@Suite("Watch resume")
struct WatchResumeTests {
    // MARK: Through the gRPC API

    @Test("a watch broken inside one index resumes with (after_index, after_position): no event lost or repeated")
    func resumeInsideAnIndex() async throws {
        try await withTestNode { node in
            let start = try await node.client.createLease(createRequest(object: "start", duration: 600, httpEndpoint: nil))
            let client = node.client
            let total = 50 + 5 + 5 + 40 + 1  // creates, renewals, releases, expiries, the end marker
            // An uninterrupted watcher, live while the events happen.
            async let live = client.watchEvents(afterIndex: start.fencingToken, count: total)

            var ids: [String] = []
            for i in 0..<50 {
                ids.append(try await node.client.createLease(createRequest(object: "o\(i)", duration: 10, httpEndpoint: nil)).leaseID)
            }
            for id in ids[0..<5] { _ = try await node.client.renewLease(renewRequest(id, extend: 600)) }
            for id in ids[5..<10] { _ = try await node.client.releaseLease(releaseRequest(id)) }
            node.clock.advance(seconds: 11)
            #expect(try await node.sidecar.reaper.reapOnce(now: node.clock.now()) == 40, "one decision expires the other 40")
            let end = try await node.client.createLease(createRequest(object: "end", duration: 600, httpEndpoint: nil))

            let full = try await client.watchEvents(afterIndex: start.fencingToken, stopAt: end.leaseID)
            #expect(full.count == total)
            #expect(full.last?.leaseID == end.leaseID)
            let expired = full.filter { $0.kind == .expired }
            #expect(expired.count == 40)
            #expect(Set(expired.map(\.index)).count == 1, "the 40 expiries share one log index")
            #expect(expired.map(\.position) == (0..<40).map { UInt32($0) })
            let liveEvents = try await live
            #expect(liveEvents == full, "a live watcher and a replaying one see the same sequence")

            // Break twice inside the expire decision's index, then read to the end.
            let firstExpired = try #require(full.firstIndex { $0.kind == .expired })
            var resumed = try await client.watchEvents(afterIndex: start.fencingToken, count: firstExpired + 7)
            for limit in [13, Int.max] {
                let last = try #require(resumed.last)
                #expect(last.kind == .expired, "the break is inside the expire decision's index")
                let part = try await client.watchEvents(
                    afterIndex: last.index, afterPosition: last.position, count: limit, stopAt: end.leaseID)
                #expect(part.first?.index == last.index, "the rest of the index comes first")
                resumed += part
            }
            #expect(resumed.count == full.count)
            #expect(resumed == full, "exactly once, in order")
        }
    }

    @Test("resuming from before what the node retains is OUT_OF_RANGE, with a message saying what to do")
    func resumeFromUnavailableIndex() async throws {
        try await withTestNode { node in
            let first = try await node.client.createLease(createRequest(object: "a", httpEndpoint: nil))
            let second = try await node.client.createLease(createRequest(object: "b", httpEndpoint: nil))
            let third = try await node.client.createLease(createRequest(object: "c", httpEndpoint: nil))
            // As if the node had restored a snapshot taken at the second create.
            node.sidecar.store.events.markUnavailable(through: second.fencingToken)

            for (index, position) in [(first.fencingToken, nil), (second.fencingToken, UInt32(0))] as [(UInt64, UInt32?)] {
                let error = await rpcError { try await node.client.watchEvents(afterIndex: index, afterPosition: position, count: 1) }
                let label = position.map { "\($0)" } ?? "unset"
                #expect(error?.code == .outOfRange, "after_index \(index), after_position \(label)")
                #expect(error?.message.contains("no longer retained") == true, "\(error?.message ?? "")")
            }
            // From the end of the gap on, the node can serve the watch.
            let events = try await node.client.watchEvents(afterIndex: second.fencingToken, count: 1)
            #expect(events.map(\.leaseID) == [third.leaseID])
        }
    }

    @Test("a watcher resuming ahead of the node's last index gets nothing until events past its cursor arrive")
    func resumeAheadOfTheNode() async throws {
        try await withTestNode { node in
            let before = try await node.client.createLease(createRequest(object: "before", httpEndpoint: nil))
            let ahead = before.fencingToken + 3
            let client = node.client
            async let watched = client.watchEvents(afterIndex: ahead, count: 2)
            var created: [DistributedGc_CreateLeaseResponse] = []
            for i in 0..<5 {
                created.append(try await node.client.createLease(createRequest(object: "later-\(i)", httpEndpoint: nil)))
            }
            let expected = created.filter { $0.fencingToken > ahead }.prefix(2).map(\.leaseID)
            #expect(expected.count == 2)
            let events = try await watched
            #expect(events.map(\.leaseID) == expected, "only events after the cursor, once each")
            #expect(events.allSatisfy { $0.index > ahead })
        }
    }

    // MARK: The event hub under a store

    /// A single-node store publishing to `events`.
    static func makeStore(events: EventHub, clock: ManualWallClock) async throws -> RaftLeaseStore {
        var limits = LeaseLimits()
        limits.minDurationSeconds = 1
        limits.cleanupGraceSeconds = 0
        let store = try RaftLeaseStore(storage: MemoryStorage(), limits: limits, clock: clock, logger: quietLogger, events: events)
        try await store.start()
        return store
    }

    static func create(_ store: RaftLeaseStore, _ i: Int, duration: UInt64 = 600) async throws -> Lease {
        let command = LeaseCommand.create(.init(
            leaseIDSuffix: String(i + 1, radix: 16), object: ObjectKey(type: .databaseRow, id: "o\(i)"), serviceID: "svc",
            durationSeconds: duration))
        guard case .created(let lease) = try await store.propose(command) else { throw TestFailure("not created") }
        return lease
    }

    /// The next `count` events of `stream`, or fewer if it ends; fails
    /// after 5 s rather than wait for ever for events that never come.
    static func take(_ count: Int, from stream: AsyncThrowingStream<LeaseEvent, any Error>) async throws -> [LeaseEvent] {
        guard count > 0 else { return [] }
        return try await withThrowingTaskGroup(of: [LeaseEvent]?.self) { group in
            group.addTask {
                var events: [LeaseEvent] = []
                for try await event in stream {
                    events.append(event)
                    if events.count == count { break }
                }
                return events
            }
            group.addTask {
                try await Task.sleep(for: .seconds(30))
                return nil
            }
            defer { group.cancelAll() }
            guard case .some(.some(let events)) = try await group.next() else {
                throw TestFailure("fewer than \(count) events within 30 s")
            }
            return events
        }
    }

    @Test("EventHub: subscribing after an event inside an index replays the rest of that index, then the later ones")
    func hubResumeInsideAnIndex() async throws {
        let hub = EventHub()
        let clock = ManualWallClock()
        let store = try await Self.makeStore(events: hub, clock: clock)
        let everything = try hub.subscribe(after: nil)
        var leases: [Lease] = []
        for i in 0..<30 { leases.append(try await Self.create(store, i, duration: 10)) }
        clock.advance(seconds: 11)
        guard case .expired(let expired) = try await store.propose(.expire(.init(leaseIDs: leases.map(\.id)))) else {
            throw TestFailure("not expired")
        }
        #expect(expired.count == 30)
        let full = try await Self.take(60, from: everything)
        #expect(full.count == 60)
        #expect(Set(full.suffix(30).map(\.index)).count == 1, "one index for the expire decision")

        // 30 creates, then 7 of the 30 expiries: the break is inside the expire index.
        let fromStart = try hub.subscribe(after: EventHub.Cursor(index: leases[0].fencingToken - 1))
        let head = try await Self.take(37, from: fromStart)
        let last = try #require(head.last)
        #expect(last.kind == .expired && last.position == 6)
        let resumed = try hub.subscribe(after: EventHub.Cursor(after: last))
        let tail = try await Self.take(23, from: resumed)
        #expect(tail.first?.index == last.index && tail.first?.position == 7)
        #expect(head + tail == full)
    }

    @Test("EventHub: events dropped for retention cannot be resumed from: compacted, naming the oldest index kept")
    func hubRetention() async throws {
        let hub = EventHub(retention: 10)
        let clock = ManualWallClock()
        let store = try await Self.makeStore(events: hub, clock: clock)
        var leases: [Lease] = []
        for i in 0..<30 { leases.append(try await Self.create(store, i)) }

        do {
            _ = try hub.subscribe(after: EventHub.Cursor(index: leases[0].fencingToken))
            Issue.record("resumed from an event no longer retained")
        } catch EventHub.WatchError.compacted(let requested, let oldestRetained) {
            #expect(requested == leases[0].fencingToken)
            #expect(oldestRetained == leases[20].fencingToken, "the last 10 events are kept")
        } catch {
            Issue.record("unexpected \(error)")
        }

        // Right after the last dropped event, everything kept is replayed.
        let kept = try hub.subscribe(after: EventHub.Cursor(index: leases[19].fencingToken))
        let replayed = try await Self.take(10, from: kept)
        #expect(replayed.map(\.leaseID) == leases[20...].map(\.id))
    }

    @Test("EventHub: the history is bounded in bytes too: the oldest events go first, resuming before them is compacted")
    func hubByteRetention() async throws {
        let hub = EventHub(retentionBytes: 4096)
        let clock = ManualWallClock()
        let store = try await Self.makeStore(events: hub, clock: clock)
        var leases: [Lease] = []
        for i in 0..<30 { leases.append(try await Self.create(store, i)) }
        let (count, bytes) = hub.retainedSize
        #expect(count > 0 && count < 30, "some but not all of 30 events fit in 4 KiB")
        #expect(bytes <= 4096)
        let firstKept = 30 - count

        do {
            _ = try hub.subscribe(after: EventHub.Cursor(index: leases[0].fencingToken))
            Issue.record("resumed from an event no longer retained")
        } catch EventHub.WatchError.compacted(_, let oldestRetained) {
            #expect(oldestRetained == leases[firstKept].fencingToken)
        } catch {
            Issue.record("unexpected \(error)")
        }
        let kept = try hub.subscribe(after: EventHub.Cursor(index: leases[firstKept - 1].fencingToken))
        let replayed = try await Self.take(count, from: kept)
        #expect(replayed.map(\.leaseID) == leases[firstKept...].map(\.id))
    }

    @Test("EventHub: a subscriber ahead of the hub skips what it has and gets each later event once")
    func hubSubscriberAhead() async throws {
        let hub = EventHub()
        let clock = ManualWallClock()
        let store = try await Self.makeStore(events: hub, clock: clock)
        let first = try await Self.create(store, 0)
        let ahead = EventHub.Cursor(index: first.fencingToken + 2)
        let stream = try hub.subscribe(after: ahead)
        var later: [Lease] = []
        for i in 1...5 { later.append(try await Self.create(store, i)) }
        let expected = later.filter { $0.fencingToken > ahead.index }
        let events = try await Self.take(expected.count, from: stream)
        #expect(events.map(\.leaseID) == expected.map(\.id))
        #expect(events.allSatisfy { ahead < EventHub.Cursor(after: $0) })
    }

    @Test("EventHub: a resume whose backlog overflows the buffer gets a buffer-full, then where to resume; nothing is skipped",
          .timeLimit(.minutes(1)))
    func hubBacklogLargerThanTheBuffer() async throws {
        let hub = EventHub(watcherBuffer: 8)
        let clock = ManualWallClock()
        let store = try await Self.makeStore(events: hub, clock: clock)
        var leases: [Lease] = []
        for i in 0..<20 { leases.append(try await Self.create(store, i)) }
        var received: [LeaseEvent] = []
        var cursor = EventHub.Cursor(index: leases[0].fencingToken - 1)
        var resumes = 0
        // Resume wherever the hub says, until every event arrived.
        while received.count < 20 && resumes < 10 {
            do {
                for try await event in try hub.subscribe(after: cursor) {
                    received.append(event)
                    cursor = EventHub.Cursor(after: event)
                    if received.count == 20 { break }
                }
            } catch EventHub.WatchError.tooSlow(let last) {
                #expect(last == cursor, "the hub names the last event it delivered")
                resumes += 1
            }
        }
        #expect(resumes >= 2, "a backlog of 20 does not fit a buffer of 8")
        #expect(received.map(\.leaseID) == leases.map(\.id), "each event once, in order")
    }

    @Test("EventHub: past GC_MAX_WATCHERS a new watcher is refused; a finished one frees its slot")
    func hubWatcherLimit() throws {
        let hub = EventHub(maxWatchers: 2)
        var first: AsyncThrowingStream<LeaseEvent, any Error>? = try hub.subscribe(after: nil)
        let second = try hub.subscribe(after: nil)
        #expect(throws: EventHub.WatchError.tooManyWatchers(limit: 2)) { _ = try hub.subscribe(after: nil) }
        #expect(first != nil)
        first = nil
        #expect(hub.watcherCount == 1)
        _ = try hub.subscribe(after: nil)
        _ = second
    }
}
