import LeaseFSM
import Logging
import NIOCore
import PostgresNIO
@testable import Server
import Synchronization
import Testing

/// `WatchLeases` in PostgreSQL mode, against a real throwaway PostgreSQL:
/// events written by concurrent transactions reach watchers in commit
/// order with none missed, on every sidecar, woken by NOTIFY or by polling,
/// and a watcher resumes on another sidecar exactly where it was.
@Suite("PostgreSQL events", .serialized, .timeLimit(.minutes(3)))
struct PostgresEventTests {
    /// One sidecar's event machinery over its own pool.
    struct EventSidecar {
        let log: PostgresEventLog
        let hub: EventHub
        let sequencer: PostgresEventSequencer
        let tail: PostgresEventTail

        init(client: PostgresClient, hubRetention: Int = 100_000,
             sequencer sequencerOptions: PostgresEventSequencer.Options = fastSequencer,
             tail tailOptions: PostgresEventTail.Options = PostgresEventTail.Options(),
             pokeTail: Bool = true) {
            log = PostgresEventLog(client: client, logger: quietLogger)
            hub = EventHub(retention: hubRetention, backfill: log, backfillPollInterval: .milliseconds(20))
            let tail = PostgresEventTail(client: client, log: log, hub: hub, options: tailOptions, logger: quietLogger)
            self.tail = tail
            sequencer = PostgresEventSequencer(
                client: client, options: sequencerOptions, logger: quietLogger,
                onSequenced: { _ in if pokeTail { tail.poke() } })
        }

        /// Runs the sequencer and the tail for the duration of `body`.
        func running<T: Sendable>(_ body: () async throws -> T) async throws -> T {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await sequencer.run() }
                group.addTask { try await tail.run() }
                defer { group.cancelAll() }
                try await waitUntil("the tail started its feed") { hub.feedStarted }
                return try await body()
            }
        }
    }

    static var fastSequencer: PostgresEventSequencer.Options {
        var options = PostgresEventSequencer.Options()
        options.interval = .milliseconds(5)
        return options
    }

    // MARK: Writers, as the lease store writes

    /// A command's events as the store writes them (`PostgresEventWriter`,
    /// one statement); a single event row by row, as plain SQL would.
    static func insert(_ events: [LeaseEvent], on connection: PostgresConnection) async throws {
        if events.count > 1 {
            try await PostgresEventWriter.insert(events, on: connection, logger: quietLogger)
            return
        }
        for event in events {
            try await connection.query(
                "INSERT INTO gc_events (at, record) VALUES (\(event.at.milliseconds), \(PostgresEventRecord.encodeBuffer(event)))",
                logger: quietLogger)
        }
    }

    static func insert(_ events: [LeaseEvent], with client: PostgresClient) async throws {
        try await client.withTransaction(logger: quietLogger) { connection in try await insert(events, on: connection) }
    }

    /// `writers` concurrent writers, each committing `transactions`
    /// transactions of 1 to 3 events, holding each open for a random 0–15 ms
    /// so that commits land out of id order. Returns the lease ids written.
    static func concurrentWrites(client: PostgresClient, writers: Int, transactions: Int, prefix: String) async throws -> Set<String> {
        try await withThrowingTaskGroup(of: [String].self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var written: [String] = []
                    for t in 0..<transactions {
                        let events = (0..<Int.random(in: 1...3)).map { e in
                            var event = testEvent(0)
                            event.leaseID = LeaseID("\(prefix)-\(writer)-\(t)-\(e)")
                            return event
                        }
                        try await client.withTransaction(logger: quietLogger) { connection in
                            try await insert(events, on: connection)
                            try await Task.sleep(for: .milliseconds(Int.random(in: 0...15)))
                        }
                        written += events.map(\.leaseID.rawValue)
                    }
                    return written
                }
            }
            var all = Set<String>()
            for try await written in group { all.formUnion(written) }
            return all
        }
    }

    /// What the table holds: (events, unsequenced, lowest and highest position).
    static func tableState(_ client: PostgresClient) async throws -> (count: Int64, unsequenced: Int64, min: Int64, max: Int64) {
        let rows = try await client.query("""
            SELECT count(*), count(*) FILTER (WHERE position IS NULL), coalesce(min(position), 0), coalesce(max(position), 0)
            FROM gc_events
            """, logger: quietLogger)
        for try await row in rows.decode((Int64, Int64, Int64, Int64).self) { return row }
        throw TestFailure("no row")
    }

    /// The events are numbered 1, 2, 3, … with no gap or repeat, from `first`.
    static func expectContiguous(_ events: [LeaseEvent], from first: UInt64, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(events.map(\.index) == Array(first..<(first + UInt64(events.count))), sourceLocation: sourceLocation)
        #expect(events.allSatisfy { $0.position == 0 }, sourceLocation: sourceLocation)
    }

    // MARK: Tests

    @Test("the record column round-trips a lease event; the row's position becomes its index")
    func recordRoundTrip() throws {
        var event = testEvent(7)
        event.index = 12_345
        event.position = 3
        event.kind = .cleanupFailed
        event.reason = "HTTP 503"
        event.attempt = 4
        event.expiresAt = nil
        let decoded = try PostgresEventRecord.decode(PostgresEventRecord.encode(event), position: 99)
        var expected = event
        expected.index = 99
        expected.position = 0
        #expect(decoded == expected)
        #expect(throws: PostgresEventRecord.DecodingError.self) { try PostgresEventRecord.decode([0xFF, 0xFF], position: 1) }
    }

    @Test("events committed out of id order are delivered in commit order, none missed or repeated")
    func commitOrder() async throws {
        try await withFreshDatabase { _, client in
            let sidecar = EventSidecar(client: client)
            try await sidecar.running {
                let watch = EventRecorder(try sidecar.hub.subscribe(after: nil))
                // A transaction that took the lower id commits after one with a higher id.
                var early = testEvent(0)
                early.leaseID = LeaseID("inserted-first-committed-second")
                var late = testEvent(0)
                late.leaseID = LeaseID("inserted-second-committed-first")
                try await client.withConnection { first in
                    try await first.query("BEGIN", logger: quietLogger)
                    try await Self.insert([early], on: first)
                    try await Self.insert([late], with: client)
                    let delivered = try await watch.wait(for: 1)
                    #expect(delivered.map(\.leaseID) == [late.leaseID], "the committed event is not held up by the open one")
                    try await first.query("COMMIT", logger: quietLogger)
                }
                let both = try await watch.wait(for: 2)
                #expect(both.map(\.leaseID) == [late.leaseID, early.leaseID])
                Self.expectContiguous(both, from: 1)

                // Many concurrent writers, commits interleaved at random.
                let written = try await Self.concurrentWrites(client: client, writers: 8, transactions: 20, prefix: "w")
                let all = try await watch.wait(for: 2 + written.count)
                let concurrent = Array(all.dropFirst(2))
                #expect(Set(concurrent.map(\.leaseID.rawValue)) == written, "every event, once")
                #expect(concurrent.count == written.count)
                Self.expectContiguous(all, from: 1)
                let table = try await Self.tableState(client)
                #expect(table.unsequenced == 0)
                #expect(table.max == table.count, "positions 1…n, no gaps")

                // A watcher replaying from the start sees the same sequence.
                let replay = EventRecorder(try sidecar.hub.subscribe(after: EventHub.Cursor(index: 0, position: 0)))
                #expect(try await replay.wait(for: all.count) == all)
            }
        }
    }

    @Test("a watcher resumes on another sidecar after the last position it received and gets exactly the rest")
    func resumeOnAnotherSidecar() async throws {
        try await withFreshDatabase { database, clientA in
            try await withPostgresClient(database) { clientB in
                let a = EventSidecar(client: clientA)
                // B keeps only 5 events itself: the resume must come from the table.
                let b = EventSidecar(client: clientB, hubRetention: 5)
                try await a.running {
                    try await b.running {
                        let onA = EventRecorder(try a.hub.subscribe(after: nil))
                        try await Self.insert((1...40).map { testEvent($0) }, with: clientA)
                        let seen = try await onA.wait(for: 15)
                        onA.cancel()  // the watcher's connection to A breaks here
                        let cursor = EventHub.Cursor(after: try #require(seen.last))

                        try await Self.insert((41...60).map { testEvent($0) }, with: clientB)
                        try await waitUntil("B published all 60") { b.tail.status.position == 60 }
                        let onB = EventRecorder(try b.hub.subscribe(after: cursor))
                        let rest = try await onB.wait(for: 45)
                        #expect(rest.map(\.leaseID) == (16...60).map { LeaseID("lease-\($0)") })
                        Self.expectContiguous(rest, from: 16)
                        // Then live, from either sidecar's writes.
                        try await Self.insert((61...65).map { testEvent($0) }, with: clientA)
                        let live = try await onB.wait(for: 50)
                        #expect(live.dropFirst(45).map(\.leaseID) == (61...65).map { LeaseID("lease-\($0)") })
                        try await Task.sleep(for: .milliseconds(100))
                        #expect(onB.count == 50, "nothing repeated")
                    }
                }
            }
        }
    }

    @Test("NOTIFY wakes a tail long before its polling interval")
    func notifyWakesTheTail() async throws {
        try await withFreshDatabase { database, client in
            try await withPostgresClient(database) { writerClient in
                // The writer's sidecar numbers events; the watched sidecar
                // learns of them only through NOTIFY (no in-process poke, and
                // a poll interval far beyond the deadline below).
                let writer = EventSidecar(client: writerClient, pokeTail: false)
                var slowPolling = PostgresEventTail.Options()
                slowPolling.pollInterval = .seconds(120)
                var idle = PostgresEventSequencer.Options()
                idle.interval = .seconds(120)
                let watched = EventSidecar(client: client, sequencer: idle, tail: slowPolling, pokeTail: false)
                try await writer.running {
                    try await watched.running {
                        try await waitUntil("the tail listens") { watched.tail.status.listening }
                        let watch = EventRecorder(try watched.hub.subscribe(after: nil))
                        let start = ContinuousClock.now
                        try await Self.insert([testEvent(1)], with: writerClient)
                        _ = try await watch.wait(for: 1, timeout: .seconds(10))
                        let elapsed = start.duration(to: .now)
                        #expect(elapsed < .seconds(5), "delivered in \(elapsed), with polling every 120 s")
                        // And again, the listener stays.
                        try await Self.insert([testEvent(2)], with: writerClient)
                        #expect(try await watch.wait(for: 2, timeout: .seconds(10)).map(\.index) == [1, 2])
                    }
                }
            }
        }
    }

    @Test("polling alone (no LISTEN, no NOTIFY, no advisory lock, two sequencers racing) still delivers everything in order")
    func pollingAlone() async throws {
        try await withFreshDatabase { database, clientA in
            try await withPostgresClient(database) { clientB in
                var bare = PostgresEventSequencer.Options()
                bare.interval = .milliseconds(2)
                bare.useAdvisoryLock = false
                bare.notify = false
                var polling = PostgresEventTail.Options()
                polling.listen = false
                polling.pollInterval = .milliseconds(100)
                let a = EventSidecar(client: clientA, sequencer: bare, tail: polling, pokeTail: false)
                let b = EventSidecar(client: clientB, sequencer: bare, tail: polling, pokeTail: false)
                try await a.running {
                    try await b.running {
                        let onA = EventRecorder(try a.hub.subscribe(after: nil))
                        let onB = EventRecorder(try b.hub.subscribe(after: nil))
                        async let fromA = Self.concurrentWrites(client: clientA, writers: 4, transactions: 25, prefix: "a")
                        async let fromB = Self.concurrentWrites(client: clientB, writers: 4, transactions: 25, prefix: "b")
                        let (writtenOnA, writtenOnB) = try await (fromA, fromB)
                        let written = writtenOnA.union(writtenOnB)
                        let seenOnA = try await onA.wait(for: written.count)
                        let seenOnB = try await onB.wait(for: written.count)
                        #expect(Set(seenOnA.map(\.leaseID.rawValue)) == written)
                        Self.expectContiguous(seenOnA, from: 1)
                        #expect(seenOnB == seenOnA, "both sidecars serve one order")
                        #expect(!a.tail.status.listening && !b.tail.status.listening)
                        let table = try await Self.tableState(clientA)
                        #expect(table.unsequenced == 0 && table.max == table.count)
                    }
                }
            }
        }
    }

    @Test("an event this build cannot decode stops the stream at it: nothing after it is delivered, a resume is told why")
    func undecodableEventStopsTheStream() async throws {
        try await withFreshDatabase { _, client in
            let sidecar = EventSidecar(client: client)
            try await sidecar.running {
                let watch = EventRecorder(try sidecar.hub.subscribe(after: nil))
                try await Self.insert((1...3).map { testEvent($0) }, with: client)
                try await waitUntil("3 events numbered") { sidecar.tail.status.position == 3 }
                // As if a newer sidecar wrote a record this build cannot read.
                try await client.query(
                    "INSERT INTO gc_events (at, record) VALUES (0, \(ByteBuffer(bytes: [0xFF, 0xFF])))", logger: quietLogger)
                try await Self.insert((5...6).map { testEvent($0) }, with: client)
                try await waitUntil("all 6 numbered") { try await Self.tableState(client).max == 6 }
                #expect(try await watch.wait(for: 3).map(\.index) == [1, 2, 3])
                try await Task.sleep(for: .milliseconds(500))
                #expect(watch.count == 3, "nothing is delivered past the undecodable event")
                #expect(sidecar.tail.status.position == 3)

            }
            // A sidecar started later serves a resume from the table: it ends
            // at the undecodable event, saying so.
            let later = EventSidecar(client: client)
            try await later.running {
                let resumed = EventRecorder(try later.hub.subscribe(after: EventHub.Cursor(index: 3, position: 0)))
                let error = try await resumed.waitForEnd()
                #expect(resumed.count == 0)
                #expect((error as? StoreError)?.message.contains("position 4") == true, "\(String(describing: error))")
            }
        }
    }

    @Test("retention deletes the oldest events beyond the bound; a resume from before them is compacted, after them is served")
    func retentionAndCompaction() async throws {
        try await withFreshDatabase { _, client in
            let now = Int64(1_700_000_000_000)
            try await Self.insert((1...30).map { testEvent($0, at: now) }, with: client)
            let sequencer = PostgresEventSequencer(client: client, logger: quietLogger)
            while case .numbered = try await sequencer.sequenceOnce() {}
            var policy = PostgresEventRetention.Policy()
            policy.maxEvents = 10
            policy.maxAge = .seconds(3600 * 24 * 365 * 1000)
            let retention = PostgresEventRetention(client: client, policy: policy, logger: quietLogger)
            #expect(try await retention.pruneOnce() == 20)
            #expect(try await retention.pruneOnce() == 0)
            let table = try await Self.tableState(client)
            #expect(table.min == 21 && table.max == 30)

            let sidecar = EventSidecar(client: client)
            try await sidecar.running {
                let tooOld = EventRecorder(try sidecar.hub.subscribe(after: EventHub.Cursor(index: 5, position: 0)))
                let error = try await tooOld.waitForEnd()
                #expect(error as? EventHub.WatchError == .compacted(requested: 5, oldestRetained: 21))
                let kept = EventRecorder(try sidecar.hub.subscribe(after: EventHub.Cursor(index: 20, position: 0)))
                #expect(try await kept.wait(for: 10).map(\.leaseID) == (21...30).map { LeaseID("lease-\($0)") })
            }

            // By age: everything older than the bound goes, except the newest event.
            var byAge = PostgresEventRetention.Policy()
            byAge.maxAge = .seconds(3600)
            #expect(try await PostgresEventRetention(client: client, policy: byAge, logger: quietLogger).pruneOnce() == 9)
            let left = try await Self.tableState(client)
            #expect(left.count == 1 && left.max == 30, "the newest event stays, so positions never restart")
        }
    }
}
