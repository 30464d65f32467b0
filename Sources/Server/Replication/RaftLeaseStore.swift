import LeaseFSM
import Logging
import Raft
import Synchronization

/// The lease store with a Raft log behind it: every command is stamped,
/// appended to the log, persisted (one transaction and one fsync per `Ready`:
/// group commit), and applied to the ``LeaseStateMachine`` once committed.
///
/// This is the `GC_STORAGE_BACKEND=sqlite` store (and, with in-memory Raft
/// storage, the `memory` one). Alone (no GC_PEERS) the node elects itself at
/// start. In a cluster, ``tick()`` drives elections and heartbeats, peers'
/// messages arrive through ``receive(_:)`` and the messages of each `Ready` go
/// to the ``PeerTransport`` only after its persist. A follower forwards client
/// writes to the leader under a client session (exactly once across retries,
/// see ``ClientOrigin``) and serves linearizable reads with ReadIndex.
/// Restarting restores every acknowledged command from the latest snapshot
/// plus the log after it.
///
/// Failure model: a storage write that fails poisons the store. It then
/// refuses every command with ``StoreError/Code/unavailable`` rather than
/// acknowledge something that may not be durable.
public actor RaftLeaseStore: LeaseStore {
    public nonisolated let limits: LeaseLimits
    public nonisolated let events: EventHub

    var node: RaftNode
    let storage: any RaftStorage
    var machine: LeaseStateMachine
    let clock: any WallClock
    let logger: Logger
    let onApply: @Sendable (LeaseStateMachine) -> Void
    let cleanupHoldOffMilliseconds: Int64
    /// Membership, transport and timing.
    public nonisolated let cluster: ClusterSettings

    var waiters: [UInt64: Waiter] = [:]
    var pendingReads: [UInt64: PendingRead] = [:]
    var applyWaiters: [(index: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    var nextReadID: UInt64 = 0
    var drainScheduled = false
    var started = false
    var fault: StoreError?
    var ticks: UInt64 = 0
    /// When to snapshot; encodes and writes snapshot files off this actor.
    var snapshots: SnapshotScheduler
    /// When each peer was last heard from (for `gcctl cluster status`).
    var lastHeard: [NodeID: WallTime] = [:]
    /// This node's client session for forwarded writes.
    var session: ForwardingSession
    /// Peers' messages this node refused: counted, and logged once per reason.
    public nonisolated let refusals: PeerRefusals
    nonisolated let cleanupGate = Mutex(CleanupGate())
    nonisolated let faultDescription = Mutex<String?>(nil)

    struct Waiter {
        var term: UInt64
        var continuation: CheckedContinuation<Result<CommandResult, LeaseError>, any Error>
    }

    /// A ReadIndex request in flight; failed after `expiresAtTick` (the
    /// request or its answer may be lost), and retried by the reader.
    struct PendingRead {
        var continuation: CheckedContinuation<UInt64, any Error>
        var expiresAtTick: UInt64
    }

    /// When this node may reap and dispatch (DESIGN.md: leader-only, after
    /// committing an entry of its term and a hold-off after taking office).
    struct CleanupGate {
        var isLeader = false
        var termStartIndex: UInt64 = 0
        var appliedIndex: UInt64 = 0
        var leaderSince = WallTime(milliseconds: 0)
    }

    /// Opens the store over `storage`, restoring the lease state from its
    /// snapshot; committed entries after the snapshot are re-applied on start.
    ///
    /// - Parameters:
    ///   - snapshotThreshold: applied entries between snapshots (log compaction).
    ///   - cleanupHoldOff: after becoming leader, how long to wait before
    ///     reaping (one election timeout + `GC_CLEANUP_GRACE_PERIOD`).
    public init(
        storage: sending any RaftStorage, limits: LeaseLimits, clock: any WallClock, logger: Logger,
        snapshotThreshold: UInt64 = 10_000, cleanupHoldOff: Duration = .zero, events: EventHub = EventHub(),
        cluster: ClusterSettings = .singleNode(), seed: UInt64 = 1,
        onApply: @escaping @Sendable (LeaseStateMachine) -> Void = { _ in }
    ) throws {
        let persisted: PersistedState
        do {
            persisted = try storage.load()
        } catch {
            throw StoreError(.unavailable, "cannot load the Raft log: \(error)")
        }
        var machine = LeaseStateMachine(limits: limits)
        if !persisted.snapshot.isEmpty {
            do {
                machine = try LeaseStateMachine(snapshot: persisted.snapshot.data, limits: limits)
            } catch {
                throw StoreError(.unavailable, "cannot restore the lease snapshot at index \(persisted.snapshot.metadata.index): \(error)")
            }
        }
        var config = RaftConfig(id: cluster.local.id, peers: ConfState(voters: cluster.bootstrapVoters))
        config.electionTick = max(2, cluster.electionTicks)
        config.heartbeatTick = 1
        // Distinct nodes must draw distinct election timeouts.
        self.node = try RaftNode(config: config, state: persisted, random: SplitMix64(seed: seed ^ cluster.local.id))
        self.cluster = cluster
        self.session = ForwardingSession(clientID: "\(cluster.local.name)/\(String(UInt64.random(in: 1...UInt64.max), radix: 16))")
        self.storage = storage
        self.machine = machine
        self.limits = limits
        self.clock = clock
        self.logger = logger
        self.refusals = PeerRefusals(logger: logger, metrics: cluster.metrics)
        self.events = events
        self.onApply = onApply
        self.snapshots = SnapshotScheduler(threshold: snapshotThreshold)
        // Events inside the snapshot were never seen here: a watch resuming
        // from before it must be told, not silently skip them.
        if !persisted.snapshot.isEmpty { events.markUnavailable(through: persisted.snapshot.metadata.index) }
        self.cleanupHoldOffMilliseconds = Int64(cleanupHoldOff.components.seconds) * 1000
            + Int64(cleanupHoldOff.components.attoseconds / 1_000_000_000_000_000)
    }

    // MARK: LeaseStore

    public nonisolated var mayRunCleanup: Bool {
        let now = clock.now()
        return cleanupGate.withLock { gate in
            gate.isLeader && gate.appliedIndex >= gate.termStartIndex
                && now >= gate.leaderSince.adding(milliseconds: cleanupHoldOffMilliseconds)
        }
    }

    public nonisolated var healthProblem: String? { faultDescription.withLock { $0 } }

    public func propose(_ command: LeaseCommand, origin: ClientOrigin?) async throws -> CommandResult {
        if let error = limits.validate(command) { throw error }
        try start()
        let origin = command.isClientWrite ? origin : nil
        if node.role == .leader || cluster.transport == nil || !command.isClientWrite {
            return try await proposeLocally(StampedCommand(command, stamp: clock.now(), origin: origin)).get()
        }
        return try await forward(command, origin: origin).get()
    }

    /// Appends `stamped` to the log on this node (the leader) and waits until
    /// it is applied.
    func proposeLocally(_ stamped: StampedCommand) async throws -> Result<CommandResult, LeaseError> {
        if let fault { throw fault }
        let position: LogPosition
        do {
            position = try node.propose(stamped.encoded())
        } catch {
            throw StoreError(.unavailable, describe(error))
        }
        return try await withCheckedThrowingContinuation { continuation in
            waiters[position.index] = Waiter(term: position.term, continuation: continuation)
            scheduleDrain()
        }
    }

    public func read<R: Sendable>(_ consistency: ReadConsistency, _ query: @Sendable (LeaseStateMachine) -> R) async throws -> R {
        do {
            try start()
        } catch {
            // A poisoned store still answers stale reads from what it applied.
            if consistency == .linearizable { throw error }
        }
        if consistency == .linearizable {
            let index = try await readIndexWithRetry()
            if machine.appliedIndex < index {
                try await withCheckedThrowingContinuation { continuation in
                    applyWaiters.append((index, continuation))
                }
            }
        }
        return query(machine)
    }

    // MARK: Observation

    /// Raft's view of this node (for health and `gcctl cluster status`).
    public func status() -> RaftStatus { node.status() }

    /// What `gcctl cluster status` shows of this node.
    public func observe() -> StoreObservation {
        StoreObservation(raft: node.status(), activeLeases: machine.activeLeaseCount, lastHeard: lastHeard,
                         now: clock.now(), healthProblem: fault?.message)
    }

    /// The lease state as applied so far.
    public var appliedState: LeaseStateMachine { machine }

    /// Runs `body` with the Raft storage on this store's isolation (tests
    /// and diagnostics: fault injection, closing the database).
    public func withStorage<R: Sendable>(_ body: @Sendable (any RaftStorage) throws -> R) rethrows -> R {
        try body(storage)
    }

    // MARK: Driving Raft

    /// Elects this (single-voter) node and applies the committed log after
    /// the snapshot. Called by the node at start-up, so reaping resumes
    /// after a restart even if no client calls; every other entry point also
    /// calls it, and calls after the first do nothing.
    ///
    /// - Throws: ``StoreError`` when the first persist failed.
    public func start() throws {
        if let fault { throw fault }
        guard !started else { return }
        started = true
        // Alone, take office at once; with peers, elections run on ticks.
        if node.conf.voters == [cluster.local.id] { node.campaign() }
        drain()
        if let fault { throw fault }
    }

    func scheduleDrain() {
        guard !drainScheduled else { return }
        drainScheduled = true
        // Runs after the proposals already queued on this actor: they share
        // one Ready, one transaction and one fsync.
        Task { await self.drain() }
    }

    /// Handles every `Ready`: persist, then send, then apply, then advance.
    func drain() {
        drainScheduled = false
        while fault == nil, node.hasReady {
            let ready = node.ready()
            if ready.mustPersist {
                do {
                    try storage.persist(ready.persistBatch)
                } catch {
                    poison(StoreError(.unavailable, "the Raft log could not be written (\(error)); this node stopped acknowledging writes"))
                    return
                }
            }
            // Only after the persist above: a vote or an append
            // acknowledgement must be durable before anyone hears of it.
            cluster.transport?.send(ready.messages)
            if let soft = ready.softState { leadershipChanged(soft) }
            if let snapshot = ready.snapshot { install(snapshot) }
            for entry in ready.committedEntries {
                apply(entry)
                // An entry that cannot be applied stops this node (see apply).
                if fault != nil { return }
            }
            for read in ready.readStates { completeRead(read) }
            node.advance(ready)
        }
        releaseApplyWaiters()
        compactIfDue()
    }

    private func apply(_ entry: Entry) {
        guard entry.index > machine.appliedIndex else { return }
        let waiter = waiters.removeValue(forKey: entry.index)
        guard entry.kind == .normal else {
            if entry.kind == .configChange { membershipApplied(entry) }
            machine.skip(index: entry.index)
            waiter?.continuation.resume(throwing: StoreError(.unavailable, "leadership changed before the command committed; it was not applied"))
            publishApplied()
            return
        }
        let stamped: StampedCommand
        do {
            stamped = try StampedCommand(decoding: entry.data)
        } catch {
            // Written by a newer version of gc-sidecar (a command kind this
            // build does not know), or damaged past its checksum. Skipping it
            // would let this replica differ from nodes that apply it (in a
            // cluster mid-upgrade, a lease acknowledged by a newer leader
            // would be missing here), so stop applying, like a crashed node,
            // until it is upgraded (see DESIGN: unavailable, never divergent).
            let fault = StoreError(.unavailable, "cannot apply the log entry at index \(entry.index) (\(error)): it was written by a newer version of gc-sidecar or is damaged; this node stopped applying the log. Upgrade it to the other nodes' version and restart it")
            waiter?.continuation.resume(throwing: fault)
            poison(fault)
            return
        }
        let output = machine.apply(stamped, index: entry.index)
        events.publish(output.events)
        onApply(machine)
        publishApplied()
        guard let waiter else { return }
        if waiter.term == entry.term {
            waiter.continuation.resume(returning: output.result)
        } else {
            waiter.continuation.resume(throwing: StoreError(.unavailable, "leadership changed before the command committed; it was not applied"))
        }
    }

    private func install(_ snapshot: Snapshot) {
        do {
            machine = try LeaseStateMachine(snapshot: snapshot.data, limits: limits)
            events.markUnavailable(through: snapshot.metadata.index)
            onApply(machine)
            publishApplied()
        } catch {
            poison(StoreError(.unavailable, "cannot restore the snapshot at index \(snapshot.metadata.index): \(error)"))
        }
    }

    private func publishApplied() {
        let applied = machine.appliedIndex
        cleanupGate.withLock { $0.appliedIndex = applied }
    }

    private func leadershipChanged(_ soft: SoftState) {
        let isLeader = soft.role == .leader
        let termStart = node.lastIndex
        let now = clock.now()
        cleanupGate.withLock { gate in
            if isLeader && !gate.isLeader {
                gate.termStartIndex = termStart
                gate.leaderSince = now
            }
            gate.isLeader = isLeader
        }
        if soft.leaderID != nil { cluster.metrics?.recordLeaderChange() }
        publishRaftMetrics()
        logger.info("raft role changed", metadata: ["role": "\(soft.role)", "leader": "\(soft.leaderID.map { name(of: $0) } ?? "none")", "term": "\(node.term)"])
        if !isLeader {
            // The outcome of these proposals is unknown: a new leader may
            // still commit them. Callers must treat them as "maybe applied".
            failWaiters(StoreError(.unavailable, "leadership lost; the command may or may not have been applied"))
        }
    }

    /// One ReadIndex round: the commit index once a quorum confirmed this
    /// node's leader still leads. Fails if the answer does not come within
    /// two election timeouts (the request or its answer may be lost).
    func readIndex() async throws -> UInt64 {
        if let fault { throw fault }
        nextReadID += 1
        let id = nextReadID
        do {
            try node.readIndex(context: Self.encode(id))
        } catch {
            throw StoreError(.unavailable, describe(error))
        }
        let expiry = ticks + UInt64(2 * max(2, cluster.electionTicks))
        return try await withCheckedThrowingContinuation { continuation in
            pendingReads[id] = PendingRead(continuation: continuation, expiresAtTick: expiry)
            scheduleDrain()
        }
    }

    private func completeRead(_ read: ReadState) {
        guard let id = Self.decode(read.context), let pending = pendingReads.removeValue(forKey: id) else { return }
        pending.continuation.resume(returning: read.index)
    }

    /// Fails reads whose answer is overdue (called on every tick).
    func expireOverdueReads() {
        let overdue = pendingReads.filter { $0.value.expiresAtTick <= ticks }
        for (id, read) in overdue {
            pendingReads.removeValue(forKey: id)
            read.continuation.resume(throwing: StoreError(.unavailable, "the leader did not confirm the read in time"))
        }
    }

    private func releaseApplyWaiters() {
        let applied = machine.appliedIndex
        var waiting: [(index: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        for waiter in applyWaiters {
            if waiter.index <= applied { waiter.continuation.resume() } else { waiting.append(waiter) }
        }
        applyWaiters = waiting
    }

    /// Takes a snapshot once `snapshotThreshold` entries were applied since
    /// the last one (see ``SnapshotScheduler``: encoding and the file write run
    /// off this actor; only the short record-and-compact runs here).
    private func compactIfDue() {
        guard fault == nil else { return }
        snapshots.startIfDue(machine: machine, snapshotIndex: node.snapshotIndex, stager: storage.snapshotStager) { [self] outcome in
            await self.finishSnapshot(outcome)
        }
    }

    private func finishSnapshot(_ outcome: SnapshotScheduler.Outcome) {
        guard fault == nil else { return snapshots.abandon(outcome, stager: storage.snapshotStager) }
        switch snapshots.finish(outcome, node: &node, storage: storage, logger: logger) {
        case .poison(let message): poison(StoreError(.unavailable, message))
        case .checkAgain: compactIfDue()
        }
    }

    /// Waits until no snapshot is being taken (tests and diagnostics).
    public func settleSnapshots() async {
        while let task = snapshots.inFlight { await task.value }
    }

    /// Stops this store for good: every waiting write and read fails with
    /// ``StoreError/Code/unavailable`` ("may or may not have been applied")
    /// and nothing more is accepted, ticked or applied. What was persisted
    /// stays; a new store over the same storage carries on (a restart).
    public func shutDown(_ reason: String) {
        guard fault == nil else { return }
        fault = StoreError(.unavailable, reason)
        faultDescription.withLock { $0 = reason }
        cleanupGate.withLock { $0.isLeader = false }
        failWaiters(StoreError(.unavailable, "\(reason); the command may or may not have been applied"))
    }

    func poison(_ error: StoreError) {
        guard fault == nil else { return }
        fault = error
        faultDescription.withLock { $0 = error.message }
        logger.critical("node stopped; refusing all commands", metadata: ["error": "\(error.message)"])
        cleanupGate.withLock { $0.isLeader = false }
        failWaiters(error)
    }

    func failWaiters(_ error: StoreError) {
        for waiter in waiters.values { waiter.continuation.resume(throwing: error) }
        waiters.removeAll()
        for read in pendingReads.values { read.continuation.resume(throwing: error) }
        pendingReads.removeAll()
        for waiter in applyWaiters { waiter.continuation.resume(throwing: error) }
        applyWaiters.removeAll()
    }

    func describe(_ error: RaftError) -> String {
        switch error {
        case .notLeader(let hint): "this node is not the leader" + (hint.map { " (leader: \(name(of: $0)))" } ?? " and knows no leader") + "; retry"
        case .leaderNotReady: "the leader has just been elected and is not ready yet; retry"
        case .tooManyUncommittedEntries: "too many writes are waiting to commit; retry with backoff"
        case .leadershipTransferInProgress(let target): "leadership is moving to \(name(of: target)); retry"
        default: "the Raft log refused the command: \(error)"
        }
    }

    private static func encode(_ id: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: id >> (8 * $0)) }
    }

    private static func decode(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }
}
