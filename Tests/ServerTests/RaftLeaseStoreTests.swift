import Foundation
import LeaseFSM
import Raft
import RaftSQLite
import Server
import Testing

/// The Raft-backed store: durability across restarts, snapshots, group
/// commit, and refusing to acknowledge after a storage fault.
@Suite("Raft-backed lease store")
struct RaftLeaseStoreTests {
    static func create(_ object: String, service: String = "svc", duration: UInt64 = 600) -> LeaseCommand {
        .create(.init(
            leaseIDSuffix: String(UInt64(bitPattern: Int64(object.hashValue)), radix: 16), object: ObjectKey(type: .databaseRow, id: object), serviceID: service,
            durationSeconds: duration, metadata: ["k": object], cleanup: nil))
    }

    static func withDirectory(_ body: (String) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("raft-store-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await body(path + "/raft.sqlite")
    }

    /// `offloaded`: persists on the persist thread, as a node runs them.
    func makeStore(_ storage: sending any RaftStorage, clock: ManualWallClock, threshold: UInt64 = 10_000, offloaded: Bool = false) throws -> RaftLeaseStore {
        try RaftLeaseStore(storage: storage, limits: LeaseLimits(), clock: clock, logger: quietLogger, snapshotThreshold: threshold,
                           persistMode: offloaded ? .offloaded(.shared, resumeOn: nil) : .inline)
    }

    @Test("every acknowledged create, renew and release survives a restart from SQLite", arguments: [false, true])
    func restartKeepsEverything(offloaded: Bool) async throws {
        try await Self.withDirectory { path in
            let clock = ManualWallClock()
            var acknowledged: [LeaseID] = []
            let before: LeaseStateMachine
            do {
                let store = try makeStore(try SQLiteRaftStorage(path: path), clock: clock, offloaded: offloaded)
                for i in 0..<50 {
                    guard case .created(let lease) = try await store.propose(Self.create("o\(i)")) else { throw TestFailure("not created") }
                    acknowledged.append(lease.id)
                }
                clock.advance(seconds: 10)
                _ = try await store.propose(.renew(.init(leaseIDs: Array(acknowledged.prefix(10)), serviceID: "svc", extendSeconds: 900)))
                _ = try await store.propose(.release(.init(leaseID: acknowledged[20], serviceID: "svc")))
                before = await store.appliedState
                await store.withStorage { ($0 as? SQLiteRaftStorage)?.close() }
            }
            let reopened = try makeStore(try SQLiteRaftStorage(path: path), clock: clock)
            let after = try await reopened.read(.linearizable) { $0 }
            #expect(after.appliedIndex >= before.appliedIndex)
            for id in acknowledged {
                #expect(after.lease(id) == before.lease(id), "lease \(id) restored exactly")
            }
            #expect(after.lease(acknowledged[20])?.state == .released)
            #expect(after.lease(acknowledged[0])?.renewalCount == 1)
            #expect(after.activeLeaseCount == 49)
            // And it keeps serving writes after the restart.
            guard case .created = try await reopened.propose(Self.create("new")) else { throw TestFailure("not created") }
        }
    }

    @Test("snapshots compact the log and a restart restores snapshot plus the log after it", arguments: [false, true])
    func snapshotAndRestart(offloaded: Bool) async throws {
        try await Self.withDirectory { path in
            let clock = ManualWallClock()
            let before: LeaseStateMachine
            do {
                let store = try makeStore(try SQLiteRaftStorage(path: path), clock: clock, threshold: 100, offloaded: offloaded)
                for i in 0..<250 { _ = try await store.propose(Self.create("o\(i)")) }
                await store.settleSnapshots()
                let status = await store.status()
                #expect(status.snapshotIndex >= 200, "a snapshot was taken every 100 entries")
                before = await store.appliedState
                await store.withStorage { ($0 as? SQLiteRaftStorage)?.close() }
            }
            do {
                let inspect = try SQLiteRaftStorage(path: path)
                let persisted = try inspect.load()
                #expect(persisted.snapshot.metadata.index >= 200)
                #expect(persisted.entries.count < 100, "the log before the snapshot was compacted away")
                inspect.close()
            }
            let reopened = try makeStore(try SQLiteRaftStorage(path: path), clock: clock, threshold: 100)
            let after = try await reopened.read(.linearizable) { $0 }
            #expect(after.appliedIndex == before.appliedIndex + 1, "the new term's no-op is the only new entry")
            #expect(after.activeLeaseCount == 250)
            #expect(listAll(after).map(\.id) == listAll(before).map(\.id))
        }
    }

    @Test("concurrent proposals share persists (group commit)", arguments: [false, true])
    func groupCommit(offloaded: Bool) async throws {
        let store = try makeStore(MemoryStorage(), clock: ManualWallClock(), offloaded: offloaded)
        _ = try await store.read(.linearizable) { $0.appliedIndex }
        let persistsBefore = await store.withStorage { ($0 as? MemoryStorage)?.persistCount ?? 0 }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask { _ = try await store.propose(Self.create("o\(i)")) }
            }
            try await group.waitForAll()
        }
        let persists = await store.withStorage { ($0 as? MemoryStorage)?.persistCount ?? 0 } - persistsBefore
        #expect(await store.appliedState.activeLeaseCount == 200)
        #expect(persists <= 150, "200 proposals took \(persists) persists")
    }

    @Test("after a failed write the store acknowledges nothing, and says why")
    func failedWritePoisons() async throws {
        let store = try makeStore(MemoryStorage(), clock: ManualWallClock())
        guard case .created(let lease) = try await store.propose(Self.create("a")) else { throw TestFailure("not created") }
        await store.withStorage { ($0 as? MemoryStorage)?.failPersists = true }
        await #expect(throws: StoreError.self) { _ = try await store.propose(Self.create("b")) }
        await store.withStorage { ($0 as? MemoryStorage)?.failPersists = false }
        do {
            _ = try await store.propose(Self.create("c"))
            Issue.record("a poisoned store acknowledged a write")
        } catch let error as StoreError {
            #expect(error.code == .unavailable)
            #expect(error.message.contains("could not be written"))
        }
        #expect(!store.mayRunCleanup, "a poisoned node never reaps or dispatches")
        #expect(store.healthProblem?.contains("could not be written") == true)
        let stale = try await store.read(.stale) { $0.lease(lease.id) }
        #expect(stale != nil, "stale reads still answer from the applied state")
        await #expect(throws: StoreError.self) { _ = try await store.read(.linearizable) { $0.appliedIndex } }
    }

    @Test("after a restart, start() alone takes office and lets reaping resume, with no client call")
    func startResumesReaping() async throws {
        try await Self.withDirectory { path in
            let clock = ManualWallClock()
            do {
                let store = try makeStore(try SQLiteRaftStorage(path: path), clock: clock)
                _ = try await store.propose(Self.create("a", duration: 30))
                await store.withStorage { ($0 as? SQLiteRaftStorage)?.close() }
            }
            let reopened = try makeStore(try SQLiteRaftStorage(path: path), clock: clock)
            #expect(!reopened.mayRunCleanup, "not leader before start")
            try await reopened.start()
            #expect(reopened.mayRunCleanup)
            clock.advance(seconds: 61)  // past expires_at + the default 30 s grace
            let reaper = Reaper(store: reopened, logger: quietLogger)
            #expect(try await reaper.reapOnce(now: clock.now()) == 1)
        }
    }

    @Test("a committed entry this build cannot decode stops the node, with a health problem saying to upgrade, instead of being skipped")
    func undecodableEntryStopsTheNode() async throws {
        try await Self.withDirectory { path in
            let clock = ManualWallClock()
            let lease: LeaseID
            do {
                let store = try makeStore(try SQLiteRaftStorage(path: path), clock: clock)
                guard case .created(let created) = try await store.propose(Self.create("kept")) else { throw TestFailure("not created") }
                lease = created.id
                await store.withStorage { ($0 as? SQLiteRaftStorage)?.close() }
            }
            // A committed entry from "a newer version": bytes no command of this
            // build decodes to, right after the last entry.
            let unknownIndex: UInt64
            do {
                let storage = try SQLiteRaftStorage(path: path)
                let state = try storage.load()
                let last = try #require(state.entries.last)
                unknownIndex = last.index + 1
                let hard = state.hardState
                try storage.persist(PersistBatch(
                    hardState: HardState(term: hard.term, vote: hard.vote, commit: unknownIndex),
                    entries: [Entry(term: last.term, index: unknownIndex, kind: .normal, data: [0xff, 0xff, 0xff])]))
                storage.close()
            }

            let reopened = try makeStore(try SQLiteRaftStorage(path: path), clock: clock)
            await #expect(throws: StoreError.self) { _ = try await reopened.read(.linearizable) { $0.lease(lease) } }
            let problem = try #require(reopened.healthProblem, "the node reports why it stopped")
            #expect(problem.contains("index \(unknownIndex)") && problem.contains("newer version") && problem.contains("Upgrade"), "\(problem)")
            #expect(await reopened.appliedState.appliedIndex < unknownIndex, "the entry was not skipped as applied")
            await #expect(throws: StoreError.self) { _ = try await reopened.propose(Self.create("after")) }
            #expect(await reopened.leaderName == nil, "a stopped node names no leader (clients would follow it)")
        }
    }

    @Test("a healthy store reports no health problem")
    func healthyStore() async throws {
        let store = try makeStore(MemoryStorage(), clock: ManualWallClock())
        _ = try await store.propose(Self.create("a"))
        #expect(store.healthProblem == nil)
    }

    @Test("a single node may run cleanup only after the hold-off since taking office")
    func cleanupHoldOff() async throws {
        let clock = ManualWallClock()
        let store = try RaftLeaseStore(
            storage: MemoryStorage(), limits: LeaseLimits(), clock: clock, logger: quietLogger,
            cleanupHoldOff: .seconds(30))
        _ = try await store.read(.linearizable) { $0.appliedIndex }
        #expect(!store.mayRunCleanup)
        clock.advance(seconds: 29)
        #expect(!store.mayRunCleanup)
        clock.advance(seconds: 1)
        #expect(store.mayRunCleanup)
    }

    func listAll(_ machine: LeaseStateMachine) -> [Lease] {
        machine.listLeases(LeaseStateMachine.LeaseFilter(), after: nil, limit: 100_000).leases
    }
}
