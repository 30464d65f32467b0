import Foundation
import LeaseFSM
import PostgresNIO
@testable import Server
import Synchronization
import Testing

/// Group commit in PostgreSQL mode: the clients' writes that arrive while a
/// transaction is busy are applied together, each answered as if alone.
@Suite("PostgreSQL write batches")
struct PostgresWriteBatchTests {
    /// Holds the runner's first batch until ``open()``.
    actor Gate {
        private var isOpen = false
        private var waiters: [CheckedContinuation<Void, Never>] = []

        func wait() async {
            if isOpen { return }
            await withCheckedContinuation { waiters.append($0) }
        }

        func open() {
            isOpen = true
            for waiter in waiters { waiter.resume() }
            waiters = []
        }
    }

    static func command(_ sequence: UInt64) -> PostgresWriteBatcher.Command {
        .init(command: .retryDeadLetters(.init(jobIDs: [])),
              origin: ClientOrigin(clientID: "t", sequence: sequence, firstUnacknowledged: 1))
    }

    @Test("commands arriving while a batch is applied go, in order, into the next batches of at most maxBatch; each caller gets its own answer")
    func batchesFormWhileBusy() async throws {
        let batcher = PostgresWriteBatcher(maxBatch: 4, maxInFlight: 1)
        let gate = Gate()
        let seen = Mutex<[[UInt64]]>([])
        let runner: PostgresWriteBatcher.Runner = { batch in
            let sequences = batch.compactMap { $0.origin?.sequence }
            seen.withLock { $0.append(sequences) }
            if sequences == [0] { await gate.wait() }
            return sequences.map { .success(.deadLettersRetried([$0 * 10])) }
        }
        try await withThrowingTaskGroup(of: (UInt64, CommandResult).self) { group in
            group.addTask { (0, try await batcher.apply(Self.command(0), run: runner)) }
            try await waitUntil("the first batch is being applied") { seen.withLock { $0.count } == 1 }
            for sequence in UInt64(1)...10 {
                group.addTask { (sequence, try await batcher.apply(Self.command(sequence), run: runner)) }
                try await waitUntil("command \(sequence) is queued") { batcher.stats.queued == Int(sequence) }
            }
            await gate.open()
            var answers: [UInt64: CommandResult] = [:]
            for try await (sequence, result) in group { answers[sequence] = result }
            for sequence in UInt64(0)...10 {
                guard case .deadLettersRetried(let echoed) = answers[sequence] else {
                    Issue.record("command \(sequence) got \(String(describing: answers[sequence]))")
                    continue
                }
                #expect(echoed == [sequence * 10], "command \(sequence) got another command's answer")
            }
        }
        #expect(seen.withLock { $0 } == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]])
        #expect(batcher.stats == .init(batches: 4, commands: 11, queued: 0))
    }

    @Test("a batch that fails as a whole fails every command in it with that error")
    func wholeBatchFailure() async throws {
        let batcher = PostgresWriteBatcher(maxInFlight: 1)
        let runner: PostgresWriteBatcher.Runner = { batch in
            batch.map { _ in .failure(StoreError(.unavailable, "the database is down")) }
        }
        await #expect(throws: StoreError(.unavailable, "the database is down")) {
            try await batcher.apply(Self.command(1), run: runner)
        }
    }

    static func create(_ object: String, service: String = "svc", origin: ClientOrigin? = nil,
                       cleanup: CleanupSpec? = nil) -> PostgresWriteBatcher.Command {
        .init(command: .create(.init(leaseIDSuffix: "b0", object: ObjectKey(type: .databaseRow, id: object), serviceID: service,
                                     durationSeconds: 60, metadata: [:], cleanup: cleanup)),
              origin: origin)
    }

    static func activeUnits(_ b: PostgresBackend, scope: String) async throws -> Int64 {
        var total: Int64 = 0
        for try await units in try await b.client.query("SELECT coalesce(sum(active), 0)::bigint FROM gc_quota WHERE scope = \(scope)",
                                                         logger: quietLogger).decode(Int64.self) {
            total = units
        }
        return total
    }

    @Test("one transaction of mixed writes answers each as applied alone, in order: shared objects, a replayed retry, a release's cleanup, a refusal, exact quota")
    func mixedBatch() async throws {
        try await PostgresBackend.run(limits: .contract) { b in
            let kept = try await b.create("keep")
            let ending = try await b.create("gone", cleanup: cleanupSpec())
            // svc-2's quota shards exist (a service's first create, alone, makes them).
            try await b.create("elsewhere", service: "svc-2")
            let origin = ClientOrigin(clientID: "client-1", sequence: 1, firstUnacknowledged: 1)
            let batch: [PostgresWriteBatcher.Command] = [
                Self.create("new-1", origin: origin),
                Self.create("keep", service: "svc-2"),
                .init(command: .renew(.init(leaseIDs: [kept.id], serviceID: "svc", extendSeconds: 120))),
                .init(command: .release(.init(leaseID: ending.id, serviceID: "svc"))),
                Self.create("new-1", origin: origin),  // the client's retry of the first
                Self.create("new-2"),
                .init(command: .release(.init(leaseID: LeaseID("no-such-lease"), serviceID: "svc"))),
            ]
            let store = b.postgres
            let results = try await store.transaction("a test batch") { connection in
                try await store.apply(batch: batch, on: connection)
            }
            #expect(results.count == batch.count)
            guard case .success(.created(let first)) = results[0], case .success(.created(let shared)) = results[1],
                  case .success(.renewed(let renewed)) = results[2], case .success(.released(let released)) = results[3],
                  case .success(.created(let retried)) = results[4], case .success(.created(let second)) = results[5],
                  case .failure(let refused) = results[6] else {
                Issue.record("unexpected results: \(results)")
                return
            }
            #expect(retried.id == first.id, "a retried create in the same batch is answered from the session, not applied again")
            #expect(shared.incarnation == kept.incarnation, "a create on an object with an active lease joins its incarnation")
            #expect(first.createdIndex < shared.createdIndex && shared.createdIndex < second.createdIndex,
                    "indexes grow in the batch's order")
            #expect(try renewed.first?.result.get().expiresAt ?? .zero > kept.expiresAt)
            let job = try #require(released.cleanupJobID, "releasing the last lease on an object schedules its cleanup")
            #expect(try await b.job(job)?.object == ObjectKey(type: .databaseRow, id: "gone"))
            #expect(refused.code == .notFound)
            let summary = try await b.summary()
            #expect(summary.activeLeases == 5)
            #expect(summary.activeByService == ["svc": 3, "svc-2": 2])
            #expect(summary.stats.created == 6)
            #expect(try await Self.activeUnits(b, scope: "") == 5)
            #expect(try await Self.activeUnits(b, scope: "svc") == 3)
            #expect(try await Self.activeUnits(b, scope: "svc-2") == 2)
            #expect(try await b.detail(first.id)?.lease == first)
        }
    }

    @Test("a batch whose new leases do not fit its quota shards is rolled back whole, to be applied one by one")
    func quotaSplits() async throws {
        try await PostgresBackend.run(limits: .contract { $0.maxLeasesPerService = 2 }) { b in
            let store = b.postgres
            let batch = (0..<3).map { Self.create("o\($0)") }
            var split = false
            do {
                _ = try await store.transaction("a test batch") { connection in
                    try await store.apply(batch: batch, on: connection)
                }
            } catch is PostgresLeaseStore.BatchNeedsSplitting {
                split = true
            }
            #expect(split)
            #expect(try await b.summary().activeLeases == 0, "nothing of the batch was applied")
            #expect(try await Self.activeUnits(b, scope: "svc") == 0)
        }
    }

    @Test("64 concurrent creates and releases through two write transactions: every answer right, quota exact, one cleanup per object")
    func concurrentThroughTheBatcher() async throws {
        try await PostgresBackend.run(limits: .contract) { b in
            let store = PostgresLeaseStore(client: b.client, limits: .contract, events: EventHub(retentionBytes: 1 << 20, maxWatchers: 1),
                                           logger: quietLogger, writeTransactions: 2)
            let leases = try await withThrowingTaskGroup(of: CommandResult.self) { group in
                for i in 0..<64 {
                    group.addTask {
                        try await store.propose(Self.create("o\(i % 16)", service: "svc-\(i % 3)", cleanup: cleanupSpec()).command,
                                                origin: nil)
                    }
                }
                return try await group.reduce(into: [Lease]()) { leases, result in
                    if case .created(let lease) = result { leases.append(lease) }
                }
            }
            #expect(leases.count == 64)
            #expect(Set(leases.map(\.id)).count == 64)
            let incarnations = Dictionary(grouping: leases, by: \.object).mapValues { Set($0.map(\.incarnation)) }
            #expect(incarnations.count == 16 && incarnations.values.allSatisfy { $0.count == 1 }, "\(incarnations)")
            #expect(try await Self.activeUnits(b, scope: "") == 64)
            let released = try await withThrowingTaskGroup(of: CommandResult.self) { group in
                for lease in leases {
                    group.addTask { try await store.propose(.release(.init(leaseID: lease.id, serviceID: lease.serviceID)), origin: nil) }
                }
                return try await group.reduce(into: [Lease]()) { released, result in
                    if case .released(let lease) = result { released.append(lease) }
                }
            }
            #expect(released.count == 64)
            #expect(released.compactMap(\.cleanupJobID).count == 16, "the last release on each object schedules its one cleanup")
            #expect(Set(released.compactMap(\.cleanupJobID)).count == 16)
            #expect(try await Self.activeUnits(b, scope: "") == 0)
            #expect(try await b.summary().activeLeases == 0)
            let stats = store.writes.stats
            #expect(stats.commands == 128)
            print("64 creates and 64 releases in \(stats.batches) write transactions")
        }
    }
}

/// Polls `condition` every millisecond until it holds, failing after 10 s.
private func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TestFailure("\(what): not after 10 s") }
        try await Task.sleep(for: .milliseconds(1))
    }
}
