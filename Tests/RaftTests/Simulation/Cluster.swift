import Synchronization
@testable import Raft

/// A directed network link.
struct Link: Hashable {
    var from: NodeID
    var to: NodeID
}

/// One simulated server: the Raft core, its durable storage and a tiny state machine (a running
/// digest of applied entries).
final class SimNode {
    let id: NodeID
    var raft: RaftNode?
    let storage = MemoryStorage()
    var incarnation: UInt64 = 0
    var restartAt: Int?
    /// State machine: index applied and running digest.
    var appliedIndex: UInt64 = 0
    var digest: UInt64 = 0xCBF2_9CE4_8422_2325
    /// Entries applied by this incarnation (for scenario assertions).
    var applied: [Entry] = []
    var readStates: [ReadState] = []
    var readys: [Ready] = []
    var recordReadys = false

    init(id: NodeID) {
        self.id = id
    }

    var isUp: Bool { raft != nil }
}

/// Single-threaded deterministic cluster: simulated network (delay, loss, duplication,
/// reordering, symmetric and one-way partitions), crashes that lose everything not persisted,
/// restarts from storage, and safety checkers run as it goes. Used both by the randomized
/// simulation and by the scenario tests (with faults off and explicit control).
final class Cluster {
    struct InFlight {
        var deliverAt: Int
        var seq: Int
        var message: Message
    }

    let seed: UInt64
    var options: SimOptions
    var rng: SplitMix64
    private(set) var ids: [NodeID]
    var nodes: [NodeID: SimNode] = [:]
    let bootstrap: ConfState
    var now = 0
    var inFlight: [InFlight] = []
    private var nextSeq = 0
    var blocked: Set<Link> = []
    /// Scenario hook: return false to drop a message.
    var filter: ((Message) -> Bool)?
    /// Reads of released snapshot bytes (``SimOptions/releaseSnapshotData``).
    let snapshotReadBacks = SnapshotReadBacks()
    /// Scenario hook: rewrite (or drop, with nil) a message as it is sent.
    var rewrite: ((Message) -> Message?)?
    var faultsEnabled = true

    // Checker state.
    private(set) var violations: [String] = []
    var leaderOfTerm: [UInt64: NodeID] = [:]
    /// Globally committed entries (what any node applied) and the lowest term a commit was seen in.
    var committed: [UInt64: Entry] = [:]
    var commitTerm: [UInt64: UInt64] = [:]
    var digestAt: [UInt64: UInt64] = [:]
    var snapshotPadding = 0
    /// ReadIndex linearizability: for each read id, the highest commit index any node knew when
    /// the read was issued. The answer must be at least that.
    var readFloor: [UInt64: UInt64] = [:]
    var nextReadID: UInt64 = 1
    var maxKnownCommit: UInt64 = 0

    /// What a run exercised, to make sure the faults actually bite.
    struct Stats {
        var snapshotsInstalled = 0
        var confChangesApplied = 0
        var readStates = 0
        var timeoutNowSent = 0
        var crashes = 0
        var persistFailures = 0
    }
    var stats = Stats()

    init(seed: UInt64, options: SimOptions, voters: [NodeID], spares: [NodeID] = []) {
        self.seed = seed
        self.options = options
        self.rng = SplitMix64(seed: mixSeed(seed, 0xC1_05_7E_12))
        self.ids = (voters + spares).sorted()
        self.bootstrap = ConfState(voters: Set(voters))
        for id in ids {
            let node = SimNode(id: id)
            nodes[id] = node
        }
        for id in ids { start(id) }
    }

    func config(for id: NodeID) -> RaftConfig {
        var c = RaftConfig(id: id, peers: bootstrap.voters.contains(id) ? bootstrap : ConfState())
        c.electionTick = options.electionTick
        c.heartbeatTick = 1
        c.preVote = options.preVote
        c.checkQuorum = options.checkQuorum
        c.maxInflightAppends = options.maxInflight
        c.maxEntriesPerAppend = options.maxEntriesPerAppend
        c.snapshotChunkSize = options.snapshotChunkSize
        return c
    }

    // MARK: Node lifecycle

    func node(_ id: NodeID) -> SimNode {
        guard let node = nodes[id] else { preconditionFailure("no node \(id)") }
        return node
    }

    func raft(_ id: NodeID) -> RaftNode {
        guard let raft = node(id).raft else { preconditionFailure("node \(id) is down") }
        return raft
    }

    /// Starts (or restarts) a node from whatever its storage holds.
    func start(_ id: NodeID) {
        let node = node(id)
        node.storage.reopen()
        node.incarnation += 1
        node.restartAt = nil
        let state: PersistedState
        do {
            state = try node.storage.load()
        } catch {
            fail("node \(id) cannot load: \(error)")
            return
        }
        do {
            node.raft = try RaftNode(config: config(for: id), state: state, random: SplitMix64(seed: mixSeed(seed, id, node.incarnation)))
        } catch {
            fail("node \(id) config: \(error)")
            return
        }
        // The state machine restarts from the snapshot; the log after it is re-applied.
        node.applied = []
        node.appliedIndex = state.snapshot.metadata.index
        node.digest = state.snapshot.isEmpty ? 0xCBF2_9CE4_8422_2325 : u64(state.snapshot.data[...])
    }

    /// Crash: everything not persisted is lost; messages in flight from it stay in the network.
    ///
    /// - Parameter powerLoss: the machine went down, not only the process: what was written
    ///   without a flush (commit-index-only batches) is lost too.
    func crash(_ id: NodeID, restartAfter ticks: Int? = nil, powerLoss: Bool = false) {
        let node = node(id)
        stats.crashes += 1
        if powerLoss { node.storage.loseUnsyncedWrites() }
        node.raft = nil
        node.restartAt = ticks.map { now + $0 }
    }

    // MARK: Network

    func isolate(_ id: NodeID) {
        for other in ids where other != id {
            blocked.insert(Link(from: id, to: other))
            blocked.insert(Link(from: other, to: id))
        }
    }

    func partition(_ groups: [[NodeID]]) {
        for (i, a) in groups.enumerated() {
            for (j, b) in groups.enumerated() where i != j {
                for x in a {
                    for y in b { blocked.insert(Link(from: x, to: y)) }
                }
            }
        }
    }

    func heal() {
        blocked.removeAll()
    }

    private func send(_ original: Message) {
        var m = original
        if let rewrite {
            guard let rewritten = rewrite(m) else { return }
            m = rewritten
        }
        guard !blocked.contains(Link(from: m.from, to: m.to)) else { return }
        if let filter, !filter(m) { return }
        if faultsEnabled && rng.chance(options.lossRate) { return }
        enqueue(m)
        if faultsEnabled && rng.chance(options.duplicateRate) { enqueue(m) }
    }

    private func enqueue(_ m: Message) {
        let delay = options.maxDelay <= 1 ? 1 : rng.int(1...options.maxDelay)
        inFlight.append(InFlight(deliverAt: now + delay, seq: nextSeq, message: m))
        nextSeq += 1
    }

    /// Delivers messages due by `now` (or all, when `all`), in (time, send order).
    func deliver(all: Bool = false) {
        let due: [InFlight]
        if all {
            due = inFlight
            inFlight = []
        } else {
            due = inFlight.filter { $0.deliverAt <= now }.sorted { ($0.deliverAt, $0.seq) < ($1.deliverAt, $1.seq) }
            inFlight.removeAll { $0.deliverAt <= now }
        }
        for item in due {
            let m = item.message
            guard !blocked.contains(Link(from: m.from, to: m.to)), let node = nodes[m.to], node.raft != nil else { continue }
            node.raft?.step(m)
            observe(m.to)
        }
    }

    // MARK: Ready processing

    /// Runs the driver loop for every up node: persist, check, send, apply, advance.
    func processReadys() {
        var progress = true
        while progress {
            progress = false
            for id in ids where nodes[id]?.raft?.hasReady == true {
                processReady(id)
                progress = true
            }
        }
    }

    func processReady(_ id: NodeID) {
        let node = node(id)
        while var raft = node.raft, raft.hasReady {
            let rd = raft.ready()
            node.raft = raft
            if faultsEnabled && rng.chance(options.persistFailRate) {
                node.storage.failPersists = true
            }
            do {
                try node.storage.persist(rd.persistBatch)
            } catch {
                // A node that cannot persist stops (never sends what it could not make durable).
                stats.persistFailures += 1
                crash(id, restartAfter: rng.int(5...30))
                return
            }
            checkPersistenceOrdering(node, rd)
            if node.recordReadys { node.readys.append(rd) }
            for m in rd.messages { send(m) }
            if let snapshot = rd.snapshot {
                stats.snapshotsInstalled += 1
                node.appliedIndex = snapshot.metadata.index
                node.digest = u64(snapshot.data[...])
                node.applied = []
            }
            for entry in rd.committedEntries { apply(entry, on: node, term: raft.term) }
            node.readStates.append(contentsOf: rd.readStates)
            for read in rd.readStates where read.context.count == 8 {
                if let floor = readFloor[u64(read.context[...])], read.index < floor {
                    fail("linearizability: node \(id) got read index \(read.index) below commit \(floor) known when the read was issued")
                }
            }
            stats.readStates += rd.readStates.count
            stats.timeoutNowSent += rd.messages.filter { $0.type == .timeoutNow }.count
            stats.confChangesApplied += rd.committedEntries.filter { $0.kind == .configChange }.count
            node.raft?.advance(rd)
            maybeCompact(node)
            observe(id)
        }
    }

    private func apply(_ entry: Entry, on node: SimNode, term: UInt64) {
        if entry.index != node.appliedIndex + 1 {
            fail("node \(node.id) applies \(entry.index) after \(node.appliedIndex)")
        }
        if let known = committed[entry.index] {
            if known != entry {
                fail("state machine safety: node \(node.id) applies \(entry) at \(entry.index), others applied \(known)")
            }
        } else {
            committed[entry.index] = entry
        }
        commitTerm[entry.index] = min(commitTerm[entry.index] ?? term, term)
        node.digest = fnv(fnv(node.digest, u64Bytes(entry.index)), [entry.kind.rawValue] + entry.data)
        node.appliedIndex = entry.index
        node.applied.append(entry)
        if let expected = digestAt[entry.index] {
            if expected != node.digest { fail("state machine digest differs at \(entry.index) on node \(node.id)") }
        } else {
            digestAt[entry.index] = node.digest
        }
    }

    private func maybeCompact(_ node: SimNode) {
        guard options.compactThreshold > 0, var raft = node.raft else { return }
        let status = raft.status()
        guard status.applied >= status.snapshotIndex + UInt64(options.compactThreshold) else { return }
        // Snapshot data: the digest, padded so chunking is exercised.
        snapshotPadding = (snapshotPadding + 7) % 50
        let data = u64Bytes(node.digest) + u64Bytes(node.appliedIndex) + [UInt8](repeating: 0xAB, count: snapshotPadding)
        do {
            let snapshot = try raft.compact(appliedIndex: status.applied, data: data)
            try node.storage.compact(to: snapshot)
            if options.releaseSnapshotData {
                let readBacks = snapshotReadBacks
                raft.releaseSnapshotData(readBackWith: { readBacks.read(data) })
            }
            node.raft = raft
        } catch {
            fail("compaction on node \(node.id) failed: \(error)")
        }
    }

    // MARK: Driving

    /// One simulated tick: tick every up node (with skew), deliver due messages, run Readys.
    func tick() {
        now += 1
        for id in ids {
            let node = node(id)
            if node.raft == nil, let at = node.restartAt, at <= now { start(id) }
        }
        for id in ids where nodes[id]?.raft != nil {
            let node = node(id)
            var ticks = 1
            if faultsEnabled && rng.chance(options.skewRate) { ticks = rng.chance(0.5) ? 0 : 2 }
            for _ in 0..<ticks {
                node.raft?.tick()
                observe(id)
            }
        }
        processReadys()
        deliver()
        processReadys()
    }

    func tick(_ count: Int) {
        for _ in 0..<count { tick() }
    }

    /// Scenario helper: deliver everything (ignoring delays) until the cluster is quiet.
    func stabilize(maxRounds: Int = 1_000) {
        for _ in 0..<maxRounds {
            processReadys()
            if inFlight.isEmpty { return }
            deliver(all: true)
        }
        fail("cluster did not stabilize")
    }

    /// The up node that is leader in the highest term, if any.
    func leader() -> NodeID? {
        var best: (term: UInt64, id: NodeID)?
        for id in ids {
            guard let raft = nodes[id]?.raft, raft.role == .leader else { continue }
            if best == nil || raft.term > best?.term ?? 0 { best = (raft.term, id) }
        }
        return best?.id
    }

    @discardableResult
    func withRaft<T>(_ id: NodeID, _ body: (inout RaftNode) throws(RaftError) -> T) throws(RaftError) -> T {
        let node = node(id)
        guard var raft = node.raft else { preconditionFailure("node \(id) is down") }
        let result = try body(&raft)
        node.raft = raft
        observe(id)
        return result
    }

    @discardableResult
    func propose(_ id: NodeID, _ data: [UInt8]) throws(RaftError) -> LogPosition {
        try withRaft(id) { (raft: inout RaftNode) throws(RaftError) in try raft.propose(data) }
    }

    /// Issues a ReadIndex request on `id`, remembering the commit floor it must respect.
    func issueRead(_ id: NodeID) {
        let readID = nextReadID
        nextReadID += 1
        readFloor[readID] = maxKnownCommit
        _ = try? withRaft(id) { (raft: inout RaftNode) throws(RaftError) in try raft.readIndex(context: u64Bytes(readID)) }
    }

    func campaign(_ id: NodeID) {
        let node = node(id)
        node.raft?.campaign()
        observe(id)
    }

    /// One line per node, for failure reports.
    func summary() -> String {
        ids.map { id in
            guard let r = nodes[id]?.raft else { return "node \(id): down" }
            let st = r.status()
            return "node \(id): \(st.role) term=\(st.term) vote=\(st.vote) leader=\(st.leaderID ?? 0) commit=\(st.commit) last=\(st.lastIndex) snap=\(st.snapshotIndex) voters=\(st.conf.voters.sorted()) learners=\(st.conf.learners.sorted())"
        }.joined(separator: "\n")
    }

    // MARK: Checkers

    func fail(_ message: String) {
        violations.append("[seed \(seed) t=\(now)] \(message)")
    }

    /// Election safety and leader completeness, checked whenever a node's state may change.
    func observe(_ id: NodeID) {
        guard let raft = nodes[id]?.raft else { return }
        maxKnownCommit = max(maxKnownCommit, raft.commitIndex)
        guard raft.role == .leader else { return }
        if let existing = leaderOfTerm[raft.term] {
            if existing != id { fail("election safety: nodes \(existing) and \(id) both lead term \(raft.term)") }
            return
        }
        leaderOfTerm[raft.term] = id
        // Leader completeness (Raft §5.4): entries committed in earlier terms are in its log.
        let snapshotIndex = raft.log.snapshotIndex
        for (index, entry) in committed where index > snapshotIndex {
            guard let term = commitTerm[index], term < raft.term else { continue }
            if raft.log.term(at: index) != entry.term {
                fail("leader completeness: leader \(id) of term \(raft.term) lacks committed entry \(index)")
            }
        }
    }

    /// Log matching (Raft §5.3): if two logs hold an entry with the same index and term, the logs
    /// are identical up to it.
    func checkLogMatching() {
        let up = ids.compactMap { id in nodes[id]?.raft.map { (id, $0.log) } }
        for i in 0..<up.count {
            for j in (i + 1)..<up.count {
                let (a, la) = up[i]
                let (b, lb) = up[j]
                let low = max(la.firstIndex, lb.firstIndex)
                let high = min(la.lastIndex, lb.lastIndex)
                guard low <= high else { continue }
                var matched = false
                var index = high
                while index >= low {
                    let ea = la.entry(at: index)
                    let eb = lb.entry(at: index)
                    if matched {
                        if ea != eb { fail("log matching: nodes \(a) and \(b) differ at \(index) below a matching entry") ; return }
                    } else if ea?.term == eb?.term {
                        matched = true
                        if ea != eb { fail("log matching: nodes \(a) and \(b) have different entries with the same term at \(index)"); return }
                    }
                    if index == 0 { break }
                    index -= 1
                }
            }
        }
    }

    /// Persist-before-send: no message of a `Ready` may promise state that is not durable once
    /// that `Ready`'s batch is persisted.
    func checkPersistenceOrdering(_ node: SimNode, _ rd: Ready) {
        guard let stored = try? node.storage.load() else { return }
        let hs = stored.hardState
        let snapIndex = stored.snapshot.metadata.index
        let last = snapIndex + UInt64(stored.entries.count)
        func storedTerm(_ index: UInt64) -> UInt64? {
            if index == snapIndex { return stored.snapshot.metadata.term }
            guard index > snapIndex, index <= last else { return nil }
            return stored.entries[Int(index - snapIndex - 1)].term
        }
        for m in rd.messages {
            if m.type != .preVote && m.type != .preVoteResponse && m.term > hs.term {
                fail("persistence: node \(node.id) sends \(m.type) at term \(m.term) with durable term \(hs.term)")
            }
            switch m.type {
            case .vote:
                // A later term in the same batch supersedes the vote (it can never be reused).
                if hs.term == m.term && hs.vote != node.id {
                    fail("persistence: node \(node.id) asks for votes without a durable self-vote")
                }
            case .voteResponse where !m.reject:
                if hs.term == m.term && hs.vote != m.to {
                    fail("persistence: node \(node.id) grants a vote to \(m.to) that is not durable")
                }
            case .append where m.term == hs.term:
                // Messages of an older term in the same batch were produced before the term
                // changed; sending them now is indistinguishable from having sent them then and
                // the network delaying them, so they are only checked against the durable term.
                // (The batch also made their promises durable before the newer state replaced them.)
                if m.index >= snapIndex, storedTerm(m.index) != m.logTerm {
                    fail("persistence: node \(node.id) sends append with prev \(m.index) not durable")
                }
                for e in m.entries where e.index > snapIndex && storedTerm(e.index) != e.term {
                    fail("persistence: node \(node.id) sends entry \(e.index) that is not durable")
                }
            case .appendResponse where !m.reject && m.term == hs.term:
                if m.index > last {
                    fail("persistence: node \(node.id) acknowledges \(m.index) beyond durable \(last)")
                }
            default:
                break
            }
        }
        if let commit = rd.hardState?.commit, commit > last {
            fail("persistence: node \(node.id) persists commit \(commit) beyond its durable log \(last)")
        }
    }
}

/// The simulated storage's read-back of released snapshot bytes: counts reads, and fails the
/// next `failuresLeft` of them (a missing or unreadable file).
final class SnapshotReadBacks: Sendable {
    private let state = Mutex((failuresLeft: 0, served: 0, failed: 0))

    func failNext(_ count: Int) { state.withLock { $0.failuresLeft = count } }

    var served: Int { state.withLock { $0.served } }
    var failed: Int { state.withLock { $0.failed } }

    func read(_ data: [UInt8]) -> [UInt8]? {
        state.withLock { s in
            if s.failuresLeft > 0 {
                s.failuresLeft -= 1
                s.failed += 1
                return nil
            }
            s.served += 1
            return data
        }
    }
}
