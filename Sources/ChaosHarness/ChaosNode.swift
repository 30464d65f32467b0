import ChaosCheck
import Foundation
import LeaseFSM
import Logging
import Raft
import RaftSQLite
import Server
import Synchronization

/// One in-process node: the real store (LeaseFSM + Raft + SQLite in a temp
/// directory), reaper and cleanup dispatcher, with its own clock and disk.
/// It can be killed (its memory dropped, its SQLite file kept) and started
/// again from that file.
final class ChaosNode: Sendable {
    /// The dispatcher's limits in the harness: the product's per-endpoint
    /// concurrency and rate, but no circuit breaker. The harness's failing
    /// targets fail for good, and an open breaker holds their jobs pending
    /// without attempts for as long as that lasts (by design: see DESIGN.md),
    /// which the "cleaned or dead-lettered once settled" check cannot tell
    /// from a lost job. The breaker has its own tests (EndpointThrottleTests,
    /// CleanupLimitsTests).
    static let cleanupLimits = CleanupLimits(maxConcurrency: 16, breakerFailures: 0)

    /// The parts that live and die with one incarnation of the node.
    struct Life: Sendable {
        var incarnation: Int
        var store: RaftLeaseStore
        /// This incarnation's persist thread (a node of its own, as in
        /// production: one node's slow disk does not hold the others').
        var persistThread: PersistThread
        var chaosStore: ChaosStore
        var reaper: Reaper
        var dispatcher: CleanupDispatcher
        var tasks: [Task<Void, Never>]
    }

    let member: ClusterMember
    let directory: String
    let clock: NodeClock
    let disk = DiskFaults()
    /// Peers' messages this node refused, by reason, over all its incarnations.
    let refused = Mutex<[String: UInt64]>([:])
    private let life = Mutex<Life?>(nil)
    private let incarnations = Mutex(0)
    /// Set while a start or a kill is under way: they never overlap.
    private let changing = Mutex(false)

    var name: String { member.name }

    init(member: ClusterMember, directory: String, time: VirtualTime) {
        self.member = member
        self.directory = directory
        self.clock = NodeClock(time: time)
    }

    var current: Life? { life.withLock { $0 } }
    var isUp: Bool { current != nil }

    /// Starts (or restarts) the node from its SQLite file.
    func start(run: ChaosRun) async throws {
        guard await begin() else { return }
        defer { end() }
        guard !isUp else { return }
        let incarnation = incarnations.withLock { $0 += 1; return $0 }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let sqlite = try SQLiteRaftStorage(path: directory + "/raft.sqlite", options: SQLiteRaftStorageOptions(synchronous: run.options.fsync ? .full : .normal))
        let storage = FaultyStorage(inner: sqlite, faults: disk, unsynced: run.options.bugs.contains(.unsyncedAcks))
        var settings = ClusterSettings(
            local: member, bootstrapVoters: Set(run.members.map(\.id)),
            transport: ChaosNetwork(local: member, incarnation: incarnation, fabric: run.fabric, members: run.members),
            electionTicks: run.options.electionTicks, tickInterval: run.options.realTick,
            requestTimeout: run.options.requestTimeout)
        settings.metrics = nil
        // Persists off the store, as a node runs them.
        let persistThread = PersistThread()
        let store: RaftLeaseStore
        do {
            store = try RaftLeaseStore(
                storage: storage, limits: run.limits, clock: clock, logger: run.logger,
                snapshotThreshold: run.options.snapshotThreshold, cleanupHoldOff: run.options.cleanupHoldOff,
                cluster: settings, seed: run.seed &+ UInt64(incarnation) &* 7919,
                persistMode: .offloaded(persistThread, resumeOn: nil))
            try await store.start()
        } catch {
            await persistThread.shutDown()
            throw error
        }
        let chaosStore = ChaosStore(inner: store, node: name, bugs: run.options.bugs, recorder: run.recorder, fabric: run.fabric)
        // The cleanup loops are the product's, on the run's simulated time.
        let sleepClock = TickClock(run: run, node: self, incarnation: incarnation)
        let stalled = run.options.bugs.contains(.stalledReaper) ? 100 : 1
        let cleanupService = CleanupService(
            store: chaosStore,
            transport: CleanupSink(node: name, recorder: run.recorder, store: chaosStore, isAlive: { [weak self] in self?.isCurrent(incarnation) ?? false }),
            settings: .init(
                reapInterval: .milliseconds(Int64(run.options.reapEveryTicks * stalled) * run.options.millisecondsPerTick),
                deliveryTimeout: .seconds(1), limits: Self.cleanupLimits),
            clock: clock, metrics: run.metrics, logger: run.logger, seed: run.seed ^ member.id, sleepClock: sleepClock)
        let (reaper, dispatcher) = (cleanupService.reaper, cleanupService.dispatcher)
        // This incarnation is current before its tasks start: they run
        // only while it is.
        life.withLock {
            $0 = Life(incarnation: incarnation, store: store, persistThread: persistThread, chaosStore: chaosStore, reaper: reaper,
                      dispatcher: dispatcher, tasks: [])
        }
        let (inbox, continuation) = AsyncStream.makeStream(of: Fabric.Delivery.self)
        run.fabric.attach(name, incarnation: incarnation, continuation: continuation)
        let fabric = run.fabric
        let receiver = Task {
            for await delivery in inbox {
                await store.receive(delivery.traffic, from: delivery.from)
                fabric.received(by: self.name, incarnation: incarnation)
            }
        }
        let cleanup = Task { _ = try? await cleanupService.run() }
        life.withLock { $0?.tasks = [receiver, cleanup] }
    }

    /// Kills the node: it stops receiving, sending and serving at once; its
    /// waiting clients get "may or may not have been applied"; what it
    /// persisted stays on disk.
    func kill(_ fabric: Fabric, reason: String = "killed") async {
        guard await begin() else { return }
        defer { end() }
        guard let dead = life.withLock({ l -> Life? in defer { l = nil }; return l }) else { return }
        fabric.detach(name)
        for task in dead.tasks { task.cancel() }
        await dead.store.shutDown("node \(name) was \(reason)")
        let counts = dead.store.refusals.byReason
        refused.withLock { $0.merge(counts, uniquingKeysWith: +) }
        await dead.store.settleSnapshots()
        await dead.store.withStorage { ($0 as? FaultyStorage)?.close() }
        await dead.persistThread.shutDown()
    }

    /// Waits (bounded polling) until no other start or kill runs, and claims the node.
    private func begin() async -> Bool {
        while true {
            if changing.withLock({ busy in
                if busy { return false }
                busy = true
                return true
            }) { return true }
            do { try await Task.sleep(for: .milliseconds(1)) } catch { return false }
        }
    }

    private func end() { changing.withLock { $0 = false } }

    func isCurrent(_ incarnation: Int) -> Bool { current?.incarnation == incarnation }
}
