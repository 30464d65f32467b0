import ChaosCheck
import Foundation
import LeaseFSM
import Logging
import Raft
import Server
import Synchronization

/// One chaos run: a cluster of in-process nodes under a seeded fault
/// schedule and a concurrent client workload, then healed, settled and
/// checked.
///
/// The seed fixes the fault schedule, the workload's choices and Raft's
/// election timers. Thread interleavings are not fixed (the nodes are real
/// actors), so a failing seed is re-run a few times to reproduce.
public final class ChaosRun: Sendable {
    public let options: ChaosOptions
    let seed: UInt64
    let members: [ClusterMember]
    let time = VirtualTime()
    let fabric: Fabric
    let recorder: HistoryRecorder
    let limits: LeaseLimits
    let logger: Logger
    let metrics = SidecarMetrics()
    let nodes: [ChaosNode]
    let directory: String
    let state: Mutex<State>

    struct State {
        var tick = 0
        var sleepers: [(due: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var workloadStopped = false
        var finished = false
        var activeClients = 0
        var knownLeases: [(LeaseID, ObjectKey)] = []
        var random: Raft.SplitMix64
        var faultLog: [String] = []
        var maxAheadMs: Int64 = 0
        var maxBehindMs: Int64 = 0
        var timedOut = false
        /// When faults (and the warm-up and the final heal) were under way.
        var disturbances: [ClosedRange<Int64>] = []
        var lastLeader: (name: String, term: UInt64)?
        var leaderChanges = 0
    }

    public init(options: ChaosOptions, logger: Logger = Logger(label: "chaos", factory: { _ in SwiftLogNoOpLogHandler() })) {
        precondition(options.nodes >= 1, "a chaos run needs at least one node")
        self.options = options
        self.seed = options.seed
        self.logger = logger
        members = (1...options.nodes).map { ClusterMember(name: "n\($0)", host: "127.0.0.1", port: 7000 + $0) }
        fabric = Fabric(members: members, seed: options.seed)
        let time = self.time
        recorder = HistoryRecorder(now: { time.now() })
        var limits = LeaseLimits()
        limits.minDurationSeconds = 1
        limits.cleanupGraceSeconds = options.graceSeconds
        limits.endedRetentionSeconds = 24 * 3600
        self.limits = limits
        directory = (options.directory as NSString).appendingPathComponent("chaos-\(options.seed)-\(UInt32.random(in: 0...UInt32.max))")
        let directory = self.directory
        nodes = members.map { ChaosNode(member: $0, directory: directory + "/" + $0.name, time: time) }
        state = Mutex(State(random: Raft.SplitMix64(seed: options.seed ^ 0xC11E_4715)))
    }

    // MARK: Running

    /// Runs the whole scenario and checks it.
    public func run() async throws -> RunReport {
        let began = ContinuousClock.now
        let schedule = FaultSchedule(seed: seed, kinds: options.faults, nodes: options.nodes,
                                     workloadTicks: options.workloadTicks, maxClockErrorMs: options.maxClockOffsetMs)
        do {
            for node in nodes { try await node.start(run: self) }
        } catch {
            for node in nodes { await node.kill(fabric, reason: "stopped: the cluster could not start") }
            throw error
        }
        // The first election and the new leader's hold-off.
        let warmUp = time.now()
        state.withLock { $0.disturbances.append(warmUp...warmUp + 2 * Int64(options.electionTicks) * options.millisecondsPerTick + options.cleanupHoldOffMilliseconds) }
        state.withLock { $0.activeClients = options.clients }
        var final: FinalState?
        var extra: [Violation] = []
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.tickLoop() }
            group.addTask { await self.watchdog() }
            for client in 0..<options.clients {
                group.addTask {
                    await Workload(run: self).client(client)
                    self.state.withLock { $0.activeClients -= 1 }
                }
            }
            let faults = Task { await self.drive(schedule) }
            await sleep(ticks: options.workloadTicks)
            state.withLock { $0.workloadStopped = true }
            // A fault still under way is undone by its own driver first.
            await faults.value
            let healing = time.now()
            await healEverything()
            let healedAt = time.now()
            state.withLock { $0.disturbances.append(healing...healedAt) }
            let clientWait = 20 * options.electionTicks
            _ = await waitTicks(upTo: clientWait) { self.state.withLock { $0.activeClients == 0 } }
            let settleTicks = options.settleSeconds * 1000 / Int(options.millisecondsPerTick)
            if await !waitTicks(upTo: settleTicks, every: 5, { await self.isSettled() }) {
                extra.append(Violation(.convergence, "the cluster did not settle (a leader, every node caught up, no active lease, no pending cleanup) within \(options.settleSeconds) s after healing: \(await describeCluster())"))
            }
            do {
                final = try await readFinalState()
                extra += await convergence()
            } catch {
                extra.append(Violation(.convergence, "the final state could not be read after healing: \(error)"))
            }
            state.withLock { $0.finished = true }
            wakeAll()
            group.cancelAll()
            // Every client call has a deadline (the request timeout, a few election timeouts at
            // most), so none can still wait now. One that does would keep this group, and the
            // run, from ever ending: it is reported, and its nodes are stopped, which fails it.
            let unanswered = state.withLock { $0.activeClients }
            if unanswered > 0 {
                extra.append(Violation(.convergence, "\(unanswered) client(s) still waited for an answer \(clientWait) ticks after healing and after the final checks (a call without a deadline); the nodes were stopped to end the run: \(await describeCluster())"))
                log("\(unanswered) client(s) still wait for an answer at the end of the run; stopping every node")
                for node in nodes { await node.current?.store.shutDown("stopped: a client call was still unanswered at the end of the run") }
            }
        }
        if state.withLock({ $0.timedOut }) {
            extra.append(Violation(.convergence, "the run did not finish within \(options.realTimeLimit) of real time (a node or the network was stuck; its nodes were stopped): \(await describeCluster())"))
        }
        let settledAt = time.now()
        for node in nodes { await node.kill(fabric, reason: "stopped at the end of the run") }
        let bounds = checkBounds()
        var report = HistoryChecker(bounds: bounds).check(
            operations: recorder.operations, deliveries: recorder.deliveries, leaders: recorder.leaderObservations,
            final: final ?? FinalState(leases: [:], jobs: []), settledAtMs: settledAt)
        report.violations += extra
        if report.passed || !options.keepFailedData { try? FileManager.default.removeItem(atPath: directory) }
        let counters = fabric.counters
        var result = RunReport(
            options: options, schedule: schedule, faultLog: state.withLock { $0.faultLog },
            operations: recorder.operations, deliveries: recorder.deliveries.count,
            duplicateDeliveries: report.duplicateDeliveries, leaderChanges: state.withLock { $0.leaderChanges },
            messagesDropped: counters.dropped, messagesDuplicated: counters.duplicated, messagesDelayed: counters.delayed,
            simulatedMilliseconds: settledAt - time.start, realDuration: ContinuousClock.now - began,
            violations: report.violations, undecidedLeases: report.undecidedLeases, clockErrorMs: bounds.clockErrorMs,
            dataDirectory: report.passed ? nil : directory)
        for node in nodes { result.refusals[node.name] = node.refused.withLock { $0 } }
        return result
    }

    func checkBounds() -> CheckBounds {
        let error = state.withLock { $0.maxAheadMs + $0.maxBehindMs }
        let tick = options.millisecondsPerTick
        let election = Int64(options.electionTicks) * tick
        let holdOff = election + Int64(options.graceSeconds) * 1000
        // A reap pass, the hold-off after an election, two election rounds and
        // the confirmation round, plus three seconds of slack: on a loaded
        // machine the reaper's task may run some ticks late.
        let latency = Int64(options.reapEveryTicks) * tick + holdOff + 4 * election + 3000
        return CheckBounds(clockErrorMs: error, graceMs: Int64(options.graceSeconds) * 1000,
                           expiryLatencyMs: latency, disturbances: state.withLock { $0.disturbances },
                           deliveriesCarryConfirmation: true)
    }

    /// Ends a run that takes longer than `realTimeLimit` of real time: its
    /// nodes are stopped (which also ends any storm of messages between them)
    /// and the run is reported as stuck.
    private func watchdog() async {
        do { try await Task.sleep(for: options.realTimeLimit) } catch { return }
        state.withLock { $0.timedOut = true }
        log("watchdog: the run is stuck after \(options.realTimeLimit); stopping every node")
        state.withLock { $0.finished = true }
        wakeAll()
        for node in nodes { await node.current?.store.shutDown("stopped by the watchdog") }
    }

    // MARK: Time

    /// Advances the simulated time one tick at a time, ticks every live node's
    /// Raft, and lets the messages that caused settle before the next tick.
    private func tickLoop() async {
        while !state.withLock({ $0.finished }) {
            time.advance(by: options.millisecondsPerTick)
            fabric.tick()
            let tick = state.withLock { $0.tick += 1; return $0.tick }
            for node in nodes {
                if let life = node.current, !fabric.isPaused(node.name) { await life.store.tick() }
            }
            await observeLeaders()
            let due = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                let ready = s.sleepers.filter { $0.due <= tick }.map(\.continuation)
                s.sleepers.removeAll { $0.due <= tick }
                return ready
            }
            for continuation in due { continuation.resume() }
            let deadline = ContinuousClock.now + .milliseconds(20)
            while fabric.inFlight > 0, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .microseconds(200))
            }
            try? await Task.sleep(for: options.realTick)
        }
        wakeAll()
    }

    /// Whether the run is over (its final checks are done, or the watchdog stopped it).
    var isFinished: Bool { state.withLock { $0.finished } }

    /// Waits `ticks` simulated ticks (returns at once when the run is over).
    func sleep(ticks: Int) async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { s -> Bool in
                if s.finished { return true }
                s.sleepers.append((s.tick + max(1, ticks), continuation))
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func wakeAll() {
        let all = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            defer { s.sleepers.removeAll() }
            return s.sleepers.map(\.continuation)
        }
        for continuation in all { continuation.resume() }
    }

    /// Polls `condition` every `every` ticks for at most `limit` ticks.
    func waitTicks(upTo limit: Int, every: Int = 1, _ condition: () async -> Bool) async -> Bool {
        var waited = 0
        while waited <= limit {
            if await condition() { return true }
            await sleep(ticks: every)
            waited += every
        }
        return false
    }

    var workloadStopped: Bool { state.withLock { $0.workloadStopped } }

    // MARK: Nodes

    func node(_ name: String) -> ChaosNode? { nodes.first { $0.name == name } }

    /// A random node for a client call; nil when the pick is down (a refused
    /// connection: the client tries again next turn, nothing is recorded).
    func randomLiveNode(using random: inout Raft.SplitMix64) -> (String, ChaosStore)? {
        let node = nodes[Int.random(in: 0..<nodes.count, using: &random)]
        guard let life = node.current else { return nil }
        return (node.name, life.chaosStore)
    }

    func learn(_ lease: LeaseID, object: ObjectKey) {
        state.withLock { $0.knownLeases.append((lease, object)) }
    }

    func knownLease(using random: inout Raft.SplitMix64) -> (LeaseID, ObjectKey)? {
        state.withLock { $0.knownLeases.randomElement(using: &random) }
    }

    private func observeLeaders() async {
        for node in nodes {
            guard let life = node.current, !fabric.isPaused(node.name) else { continue }
            let status = await life.store.status()
            guard status.role == .leader else { continue }
            recorder.observeLeader(node.name, term: status.term)
            // A new leader is one in a higher term than any seen before (an
            // isolated old leader may still believe it leads meanwhile).
            state.withLock { s in
                if status.term > s.lastLeader?.term ?? 0 {
                    if s.lastLeader != nil { s.leaderChanges += 1 }
                    s.lastLeader = (node.name, status.term)
                }
            }
        }
    }

    /// The node that leads in the highest term, if any.
    func currentLeader() async -> ChaosNode? {
        var best: (ChaosNode, UInt64)?
        for node in nodes {
            guard let life = node.current, !fabric.isPaused(node.name) else { continue }
            let status = await life.store.status()
            if status.role == .leader, status.term > best?.1 ?? 0 { best = (node, status.term) }
        }
        return best?.0
    }
}

struct ChaosError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
