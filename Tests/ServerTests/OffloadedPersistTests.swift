import Dispatch
import GCProto
import LeaseFSM
import Raft
@testable import Server
import Synchronization
import Testing

/// The store with its persists on a thread of their own
/// (``PersistMode/offloaded(_:resumeOn:)``, as a node runs it): it keeps
/// taking proposals and messages while one `Ready` syncs, yet one persist is
/// in flight at a time, a `Ready`'s messages go out only after its persist,
/// and nothing else writes to the storage meanwhile.
@Suite("Persists off the store", .timeLimit(.minutes(2)))
struct OffloadedPersistTests {
    static func create(_ object: String) -> LeaseCommand {
        .create(.init(leaseIDSuffix: "1", object: ObjectKey(type: .databaseRow, id: object), serviceID: "svc",
                      durationSeconds: 600, metadata: [:], cleanup: nil))
    }

    /// A thread of this suite's own: its persists are held at gates, which must
    /// not hold other suites' nodes.
    static let thread = PersistThread()

    static func makeStore(_ gate: PersistGate, threshold: UInt64 = 10_000, cluster: ClusterSettings = .singleNode()) throws -> RaftLeaseStore {
        try RaftLeaseStore(storage: GatedStorage(gate: gate), limits: LeaseLimits(), clock: ManualWallClock(), logger: quietLogger,
                           snapshotThreshold: threshold, cluster: cluster, persistMode: .offloaded(thread, resumeOn: nil))
    }

    /// A three-member cluster in which only the first member, a follower, runs.
    static let members = ["n1", "n2", "n3"].enumerated().map { ClusterMember(name: $1, host: "127.0.0.1", port: 7000 + $0) }

    /// The first of ``members``, started, its persists at a gate, its messages recorded.
    static func startFollower() async throws -> (RaftLeaseStore, PersistGate, RecordingNetwork) {
        let network = RecordingNetwork(members: members)
        let settings = ClusterSettings(local: members[0], bootstrapVoters: Set(members.map(\.id)), transport: network)
        let gate = PersistGate()
        let store = try makeStore(gate, cluster: settings)
        try await store.start()
        return (store, gate, network)
    }

    @Test("while a persist is held, the store answers and takes proposals; they share the next persist")
    func storeWorksDuringPersist() async throws {
        let gate = PersistGate()
        let store = try Self.makeStore(gate)
        _ = try await store.propose(Self.create("warm"))
        let before = gate.entered
        let lastBefore = await store.status().lastIndex
        gate.close()
        let first = Task { try await store.propose(Self.create("a")) }
        try await gate.waitUntilEntered(before + 1)
        // One at a time, each in the log before the next: each would make a
        // `Ready` of its own if the store took one during the persist.
        var others: [Task<CommandResult, any Error>] = []
        for i in 0..<20 {
            others.append(Task { try await store.propose(Self.create("b\(i)")) })
            try await poll("proposal \(i) reaches the log") { await store.status().lastIndex >= lastBefore + 2 + UInt64(i) }
            // Its drain, if one was scheduled, runs before this returns.
            _ = await store.status()
        }
        // The store is not blocked on the disk: all 21 are in its log.
        #expect(await store.status().lastIndex == lastBefore + 21)
        #expect(gate.entered == before + 1, "no second persist starts while one is in flight")
        #expect(await store.appliedState.activeLeaseCount == 1, "nothing is applied before its persist returns")
        gate.open()
        guard case .created = try await first.value else { throw TestFailure("not created") }
        for other in others { _ = try await other.value }
        #expect(await store.appliedState.activeLeaseCount == 22)
        #expect(gate.entered == before + 2, "the 20 proposals made while the first persist was held share one persist")
        #expect(gate.maxRunning == 1)
    }

    @Test("a follower acknowledges appended entries only after their persist returns")
    func messagesWaitForTheirPersist() async throws {
        let (store, gate, network) = try await Self.startFollower()
        let leader = Self.members[1].id, local = Self.members[0].id
        func append(_ index: UInt64) -> Message {
            Message(type: .append, from: leader, to: local, term: 1, logTerm: index == 1 ? 0 : 1, index: index - 1,
                    entries: [Entry(term: 1, index: index)], commit: 0)
        }
        let before = gate.entered
        gate.close()
        await store.receive([append(1)])
        try await gate.waitUntilEntered(before + 1)
        await store.receive([append(2)])
        #expect(await store.status().lastIndex == 2, "the second append is taken while the first persist is held")
        #expect(network.sent(to: leader).isEmpty, "no acknowledgement before the persist returns")
        #expect(gate.entered == before + 1, "no second persist while one is in flight")
        gate.open()
        try await poll("the acknowledgement of both entries goes out") {
            network.sent(to: leader).contains { $0.type == .appendResponse && !$0.reject && $0.index == 2 }
        }
        #expect(gate.maxRunning == 1)
        #expect(network.sent(to: leader).allSatisfy { $0.index <= gate.persistedLastIndex }, "every acknowledged index was persisted first")
    }

    @Test("a held persist that fails stops the node and fails the waiting write")
    func failedPersistStopsTheNode() async throws {
        let gate = PersistGate()
        let store = try Self.makeStore(gate)
        _ = try await store.propose(Self.create("warm"))
        gate.failNext()
        do {
            _ = try await store.propose(Self.create("lost"))
            Issue.record("a write whose persist failed was acknowledged")
        } catch let error as StoreError {
            #expect(error.code == .unavailable)
            #expect(error.message.contains("could not be written"))
        }
        await #expect(throws: StoreError.self) { _ = try await store.propose(Self.create("after")) }
        #expect(store.healthProblem?.contains("could not be written") == true)
        #expect(await store.appliedState.activeLeaseCount == 1)
    }

    @Test("a first persist that fails fails start(), as inline")
    func failedFirstPersistFailsStart() async throws {
        let gate = PersistGate()
        let store = try Self.makeStore(gate)
        gate.failNext()
        await #expect(throws: StoreError.self) { try await store.start() }
        #expect(store.healthProblem?.contains("could not be written") == true)
    }

    @Test("a node stopped while its persist is held neither applies nor sends that Ready")
    func stopDuringPersistDropsTheReady() async throws {
        let (store, gate, network) = try await Self.startFollower()
        let leader = Self.members[1].id
        let before = gate.entered
        gate.close()
        await store.receive([Message(type: .append, from: leader, to: Self.members[0].id, term: 1, entries: [Entry(term: 1, index: 1)], commit: 0)])
        try await gate.waitUntilEntered(before + 1)
        await store.shutDown("stopped for the test")
        gate.open()
        // The store handles the return in one turn, which starts by clearing this.
        try await poll("the store handles the held persist's return") { await !store.persistInFlight }
        #expect(network.sent(to: leader).isEmpty, "a stopped node acknowledges nothing")
    }

    @Test("a snapshot finished during a persist is recorded after it, never beside it")
    func snapshotRecordWaitsForThePersist() async throws {
        let gate = PersistGate()
        let store = try Self.makeStore(gate, threshold: 10)
        var count = 0
        while await store.status().applied < 9 {
            _ = try await store.propose(Self.create("o\(count)"))
            count += 1
        }
        // Entry 10 makes a snapshot due once applied; entry 11's persist is then held.
        let before = gate.entered
        gate.close()
        let tenth = Task { try await store.propose(Self.create("tenth")) }
        try await gate.waitUntilEntered(before + 1)
        let eleventh = Task { try await store.propose(Self.create("eleventh")) }
        try await poll("entry 11 reaches the log") { await store.status().lastIndex >= 11 }
        gate.allow(1)
        _ = try await tenth.value
        try await poll("the snapshot is encoded and its record waits") { await store.snapshotAwaitingRecord != nil }
        try await gate.waitUntilEntered(before + 2)
        #expect(gate.entered == before + 2, "entry 11's persist is the one held")
        #expect(gate.compactions == 0, "no record while a persist is in flight")
        let settled = Task { await store.settleSnapshots() }
        gate.open()
        await settled.value
        _ = try await eleventh.value
        #expect(gate.compactions == 1)
        #expect(gate.overlaps == 0, "the record never ran beside a persist")
        #expect(await store.status().snapshotIndex >= 10)
    }
}

/// Polls `condition` every millisecond until it holds; fails after `timeout`.
func poll(_ what: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(1))
    }
    throw TestFailure("timed out waiting: \(what)")
}

/// Holds, counts and fails the synced persists of a ``GatedStorage``.
final class PersistGate: Sendable {
    private struct State {
        var closed = false
        var allowed = 0
        var waiting = 0
        var entered = 0
        var running = 0
        var maxRunning = 0
        var compactions = 0
        var overlaps = 0
        var failNext = false
        var persistedLastIndex: UInt64 = 0
    }
    private let state = Mutex(State())
    private let opened = DispatchSemaphore(value: 0)

    /// Synced persists started so far.
    var entered: Int { state.withLock { $0.entered } }
    /// The most persists that ever ran at once.
    var maxRunning: Int { state.withLock { $0.maxRunning } }
    var compactions: Int { state.withLock { $0.compactions } }
    /// Compactions that ran while a persist did.
    var overlaps: Int { state.withLock { $0.overlaps } }
    /// The last log index persisted.
    var persistedLastIndex: UInt64 { state.withLock { $0.persistedLastIndex } }

    /// Holds every persist from now on.
    func close() { state.withLock { $0.closed = true } }

    /// Lets every held and later persist through.
    func open() {
        let waiting = state.withLock { s in
            s.closed = false
            defer { s.waiting = 0 }
            return s.waiting
        }
        for _ in 0..<waiting { opened.signal() }
    }

    /// Lets `count` persists through (held ones first) and keeps the gate closed.
    func allow(_ count: Int) {
        let release = state.withLock { s in
            let now = min(count, s.waiting)
            s.waiting -= now
            s.allowed += count - now
            return now
        }
        for _ in 0..<release { opened.signal() }
    }

    /// The next synced persist fails.
    func failNext() { state.withLock { $0.failNext = true } }

    func waitUntilEntered(_ count: Int) async throws {
        try await poll("persist \(count) starts") { entered >= count }
    }

    /// On the persist thread: waits while the gate is closed; true if this persist must fail.
    fileprivate func enter() -> Bool {
        let (mustWait, fail) = state.withLock { s in
            s.entered += 1
            s.running += 1
            s.maxRunning = max(s.maxRunning, s.running)
            let fail = s.failNext
            s.failNext = false
            guard s.closed else { return (false, fail) }
            if s.allowed > 0 {
                s.allowed -= 1
                return (false, fail)
            }
            s.waiting += 1
            return (true, fail)
        }
        if mustWait { opened.wait() }
        return fail
    }

    fileprivate func leave(lastIndex: UInt64?) {
        state.withLock { s in
            s.running -= 1
            if let lastIndex { s.persistedLastIndex = lastIndex }
        }
    }

    fileprivate func compacted() {
        state.withLock { s in
            s.compactions += 1
            if s.running > 0 { s.overlaps += 1 }
        }
    }
}

/// Memory storage whose synced persists pass a ``PersistGate``.
final class GatedStorage: RaftStorage {
    private let inner = MemoryStorage()
    private let gate: PersistGate

    init(gate: PersistGate) { self.gate = gate }

    func load() throws(RaftStorageError) -> PersistedState { try inner.load() }

    func persist(_ batch: PersistBatch) throws(RaftStorageError) {
        guard batch.mustSync else { return try inner.persist(batch) }
        if gate.enter() {
            gate.leave(lastIndex: nil)
            throw .writeFailed("injected")
        }
        do {
            try inner.persist(batch)
        } catch {
            gate.leave(lastIndex: nil)
            throw error
        }
        gate.leave(lastIndex: batch.entries.last?.index)
    }

    func compact(to snapshot: Snapshot) throws(RaftStorageError) {
        gate.compacted()
        try inner.compact(to: snapshot)
    }
}
