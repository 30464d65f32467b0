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
/// to the ``PeerTransport`` only after its persist. With
/// ``PersistMode/offloaded(_:resumeOn:)`` the persist runs on a thread of its
/// own while the store keeps taking proposals and messages for the next
/// `Ready`. A follower forwards client
/// writes to the leader under a client session (exactly once across retries,
/// see ``ClientOrigin``) and serves linearizable reads with ReadIndex.
/// Restarting restores every acknowledged command from the latest snapshot
/// plus the log after it.
///
/// Failure model: a storage write that fails poisons the store. It then
/// refuses every command with ``StoreError/Code/unavailable`` rather than
/// acknowledge something that may not be durable.
public actor RaftLeaseStore: LeaseStore, MachineReadable {
    public nonisolated let limits: LeaseLimits
    public nonisolated let events: EventHub

    var node: RaftNode
    let storage: StorageHandle
    let persistMode: PersistMode
    /// A `Ready` is being persisted off this actor (``PersistMode/offloaded(_:resumeOn:)``):
    /// no other `Ready` is taken and nothing else writes to the storage until it returns.
    var persistInFlight = false
    /// A finished snapshot whose record waits for the persist in flight.
    var snapshotAwaitingRecord: SnapshotScheduler.Outcome?
    /// Who waits for the persist in flight to return (``settleSnapshots()``).
    var persistWaiters: [CheckedContinuation<Void, Never>] = []
    var machine: LeaseStateMachine
    let clock: any WallClock
    let logger: Logger
    let onApply: @Sendable (LeaseStateMachine) -> Void
    let cleanupHoldOffMilliseconds: Int64
    /// Membership, transport and timing.
    public nonisolated let cluster: ClusterSettings

    /// Who waits for this node's proposals (local callers, followers).
    var proposals = ProposalWaiters()
    /// This follower's writes waiting for the leader's reply. Outside the
    /// actor: a reply is handed to its caller by the peer service directly,
    /// without waiting for this store (busy with an fsync, say).
    nonisolated let forwards = Mutex(PendingForwards())
    var reads = ReadIndexWaiters()
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

    /// Opens the store over `storage`, restoring the lease state from its
    /// snapshot; committed entries after the snapshot are re-applied on start.
    ///
    /// - Parameters:
    ///   - snapshotThreshold: applied entries between snapshots (log compaction).
    ///   - cleanupHoldOff: after becoming leader, how long to wait before
    ///     reaping (one election timeout + `GC_CLEANUP_GRACE_PERIOD`).
    ///   - persistMode: where each `Ready` is written (a node in a cluster offloads it).
    public init(
        storage: sending any RaftStorage, limits: LeaseLimits, clock: any WallClock, logger: Logger,
        snapshotThreshold: UInt64 = 10_000, cleanupHoldOff: Duration = .zero, events: EventHub = EventHub(),
        cluster: ClusterSettings = .singleNode(), seed: UInt64 = 1, persistMode: PersistMode = .inline,
        onApply: @escaping @Sendable (LeaseStateMachine) -> Void = { _ in }
    ) throws {
        let loadStarted = ContinuousClock.now
        let persisted: PersistedState
        do {
            persisted = try storage.load()
        } catch {
            throw StoreError(.unavailable, "cannot load the Raft log: \(error)")
        }
        var machine = LeaseStateMachine(limits: limits)
        if !persisted.snapshot.isEmpty {
            let decodeStarted = ContinuousClock.now
            do {
                machine = try LeaseStateMachine(snapshot: persisted.snapshot.data, limits: limits)
            } catch {
                throw StoreError(.unavailable, "cannot restore the lease snapshot at index \(persisted.snapshot.metadata.index): \(error)")
            }
            // How long a restart spends before it can serve (DESIGN.md, "Restart").
            logger.info("state restored from snapshot", metadata: [
                "index": "\(persisted.snapshot.metadata.index)", "bytes": "\(persisted.snapshot.data.count)",
                "leases": "\(machine.retainedLeaseCount)", "log_entries": "\(persisted.entries.count)",
                "load_ms": "\(SnapshotScheduler.milliseconds(decodeStarted - loadStarted))",
                "decode_ms": "\(SnapshotScheduler.milliseconds(ContinuousClock.now - decodeStarted))",
            ])
        }
        var config = RaftConfig(id: cluster.local.id, peers: ConfState(voters: cluster.bootstrapVoters))
        config.electionTick = max(2, cluster.electionTicks)
        config.heartbeatTick = 1
        // Distinct nodes must draw distinct election timeouts.
        var node = try RaftNode(config: config, state: persisted, random: SplitMix64(seed: seed ^ cluster.local.id))
        // The snapshot's bytes stay in their file until a follower needs them.
        if let reader = storage.recordedSnapshotReader { node.releaseSnapshotData(readBackWith: reader) }
        self.node = node
        self.cluster = cluster
        self.session = ForwardingSession(clientID: "\(cluster.local.name)/\(String(UInt64.random(in: 1...UInt64.max), radix: 16))")
        self.storage = StorageHandle(storage)
        self.persistMode = persistMode
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
        return cleanupGate.withLock { $0.isOpen(at: now, holdOffMilliseconds: cleanupHoldOffMilliseconds) }
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
            proposals.add(.local(continuation), at: position)
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
            try await waitApplied(try await readIndexWithRetry())
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
    /// and diagnostics: fault injection, closing the database), after the
    /// persist in flight, if any, returns (the store waits for it: not for
    /// the request path).
    public func withStorage<R: Sendable, E: Error>(_ body: @Sendable (any RaftStorage) throws(E) -> R) throws(E) -> R {
        try storage.withStorage(body)
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
        // Inline, whatever the mode: a first persist that fails fails start.
        drain(persistingInline: true)
        if let fault { throw fault }
    }

    func scheduleDrain() {
        // While a persist is in flight its return drains everything queued.
        guard !drainScheduled, !persistInFlight else { return }
        drainScheduled = true
        // Runs after the proposals already queued on this actor: they share
        // one Ready, one transaction and one fsync.
        Task { self.drain() }
    }

    /// Handles every `Ready`: persist, then send, then apply, then advance.
    /// What can be done once per drain is: lease events are published,
    /// metrics observed, followers' replies sent and readers resumed after
    /// the last `Ready`, not per entry.
    ///
    /// With ``PersistMode/offloaded(_:resumeOn:)`` a `Ready` that must be
    /// synced is handed to the persist thread and the drain stops there;
    /// ``persistReturned(_:_:)`` carries on from it. Meanwhile the store keeps
    /// stepping messages and taking proposals, and every drain returns at
    /// once: they all go into the next `Ready`, one persist for all of them.
    func drain(persistingInline: Bool = false) {
        drainScheduled = false
        guard !persistInFlight else { return }
        var pass = DrainPass()
        drainReadies(&pass, persistingInline: persistingInline)
        finish(pass)
    }

    /// What one drain collected to do once at its end.
    struct DrainPass {
        var events: [LeaseEvent] = []
        var appliedAny = false
    }

    private func drainReadies(_ pass: inout DrainPass, persistingInline: Bool) {
        while fault == nil, node.hasReady {
            let ready = node.ready()
            if ready.mustPersist {
                if ready.mustSync, !persistingInline, case .offloaded(let thread, let executor) = persistMode {
                    persistOffloaded(ready, on: thread, resumeOn: executor)
                    return
                }
                do {
                    try storage.persist(ready.persistBatch)
                } catch {
                    persistFailed(error)
                    return
                }
            }
            handle(ready, &pass)
        }
    }

    /// Everything after a `Ready`'s persist.
    private func handle(_ ready: Ready, _ pass: inout DrainPass) {
        // Only after the persist: a vote or an append acknowledgement must be
        // durable before anyone hears of it.
        cluster.transport?.send(ready.messages)
        if let soft = ready.softState { leadershipChanged(soft) }
        if let snapshot = ready.snapshot { install(snapshot) }
        for entry in ready.committedEntries {
            apply(entry, events: &pass.events)
            pass.appliedAny = true
            // An entry that cannot be applied stops this node (see apply).
            if fault != nil { return }
        }
        for read in ready.readStates { reads.complete(context: read.context, index: read.index) }
        node.advance(ready)
    }

    private func finish(_ pass: DrainPass) {
        self.events.publish(pass.events)
        if pass.appliedAny {
            onApply(machine)
            publishApplied()
        }
        sendReplies()
        reads.applied(through: machine.appliedIndex)
        if fault == nil { compactIfDue() }
    }

    /// Writes `ready` on the persist thread; the store carries on with it in
    /// ``persistReturned(_:_:)``, back on `executor`.
    private func persistOffloaded(_ ready: Ready, on thread: PersistThread, resumeOn executor: (any TaskExecutor)?) {
        persistInFlight = true
        let batch = ready.persistBatch
        let storage = self.storage
        Task(executorPreference: executor) {
            let result = await thread.run { () -> Result<Void, RaftStorageError> in
                do throws(RaftStorageError) {
                    try storage.persist(batch)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            await self.persistReturned(ready, result ?? .failure(.unavailable("the persist thread was stopped")))
        }
    }

    /// The persist of `ready` returned: a failure stops the node; otherwise
    /// a snapshot record that waited for it is written, then `ready` is
    /// handled (its messages sent, its entries applied) and the drain goes on
    /// with everything that arrived meanwhile.
    func persistReturned(_ ready: Ready, _ result: Result<Void, RaftStorageError>) {
        persistInFlight = false
        if case .failure(let error) = result {
            persistFailed(error)
        }
        // Recorded now, or abandoned if the node stopped.
        if let outcome = snapshotAwaitingRecord {
            snapshotAwaitingRecord = nil
            finishSnapshot(outcome)
        }
        let waiters = persistWaiters
        persistWaiters = []
        for waiter in waiters { waiter.resume() }
        // Stopped meanwhile (shut down or poisoned): nothing more is sent or applied.
        guard fault == nil else { return }
        drainScheduled = false
        var pass = DrainPass()
        handle(ready, &pass)
        if fault == nil { drainReadies(&pass, persistingInline: false) }
        finish(pass)
    }

    /// A persist failed: the write may or may not be on disk, so the node
    /// stops acknowledging (inline and offloaded alike).
    private func persistFailed(_ error: RaftStorageError) {
        poison(StoreError(.unavailable, "the Raft log could not be written (\(error)); this node stopped acknowledging writes"))
    }

    /// Sends followers the answers to their forwarded writes, one batch each.
    func sendReplies() {
        for (peer, replies) in proposals.takeReplies() {
            cluster.transport?.send(replies.map(PeerTraffic.reply), to: peer)
        }
    }

    private func apply(_ entry: Entry, events: inout [LeaseEvent]) {
        guard entry.index > machine.appliedIndex else { return }
        guard entry.kind == .normal else {
            if entry.kind == .configChange { membershipApplied(entry) }
            machine.skip(index: entry.index)
            proposals.superseded(index: entry.index)
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
            proposals.failed(index: entry.index, fault)
            poison(fault)
            return
        }
        let output = machine.apply(stamped, index: entry.index)
        events.append(contentsOf: output.events)
        proposals.applied(index: entry.index, term: entry.term, output.result)
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

    func publishApplied() {
        let applied = machine.appliedIndex
        cleanupGate.withLock { $0.appliedIndex = applied }
    }

    private func leadershipChanged(_ soft: SoftState) {
        let isLeader = soft.role == .leader
        let lastIndex = node.lastIndex
        let now = clock.now()
        cleanupGate.withLock { $0.roleChanged(isLeader: isLeader, lastIndex: lastIndex, at: now) }
        if soft.leaderID != nil { cluster.metrics?.recordLeaderChange() }
        publishRaftMetrics()
        logger.info("raft role changed", metadata: ["role": "\(soft.role)", "leader": "\(soft.leaderID.map { name(of: $0) } ?? "none")", "term": "\(node.term)"])
        if !isLeader {
            // The outcome of these proposals is unknown: a new leader may
            // still commit them. Callers must treat them as "maybe applied".
            proposals.failAll(StoreError(.unavailable, "leadership lost; the command may or may not have been applied"))
            sendReplies()
        }
        // Writes forwarded to a node that no longer leads are retried with
        // the new one (same session: they apply once).
        giveUp(forwards.withLock { $0.takeNotSentTo(soft.leaderID) }, "the leader changed before it answered")
    }

    /// One ReadIndex round: the commit index once a quorum confirmed this
    /// node's leader still leads. Fails if the answer does not come within
    /// two election timeouts (the request or its answer may be lost).
    func readIndex() async throws -> UInt64 {
        if let fault { throw fault }
        let id = reads.nextID()
        do {
            try node.readIndex(context: ReadIndexWaiters.context(id))
        } catch {
            throw StoreError(.unavailable, describe(error))
        }
        let expiry = ticks + UInt64(2 * max(2, cluster.electionTicks))
        return try await withCheckedThrowingContinuation { continuation in
            reads.add(round: id, expiresAtTick: expiry, continuation)
            scheduleDrain()
        }
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
        proposals.failAll(error)
        sendReplies()
        reads.failAll(error)
        giveUp(forwards.withLock { $0.takeAll() }, error.message)
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

}
