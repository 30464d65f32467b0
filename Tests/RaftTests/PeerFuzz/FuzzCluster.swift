@testable import Raft

/// A small deterministic cluster for the peer fuzz: real ``RaftNode``s over ``MemoryStorage``,
/// a FIFO network, compaction, and a driver that records (instead of trapping on) anything the
/// core must never do: hand storage an invalid batch, or keep producing messages without ticks
/// (a livelock).
final class FuzzCluster {
    let ids: [NodeID]
    var nodes: [NodeID: RaftNode] = [:]
    var storages: [NodeID: MemoryStorage] = [:]
    var queue: [Message] = []
    var rng: SplitMix64
    /// Everything the core did wrong, with context.
    var failures: [String] = []
    /// Recent genuine messages, by type: the corpus the mutator starts from.
    var corpus: [MessageType: [Message]] = [:]
    var ticks = 0
    var proposals = 0
    var compactionEnabled = true

    /// Messages delivered between two ticks before the network counts as livelocked. A quiet
    /// cluster needs a few dozen; the old core's regression loop never stops.
    static let quietBound = 20_000

    init(seed: UInt64, voters: [NodeID] = [1, 2, 3]) {
        ids = voters
        rng = SplitMix64(seed: seed)
        for id in voters {
            storages[id] = MemoryStorage()
            restart(id, from: PersistedState())
        }
    }

    func config(for id: NodeID) -> RaftConfig {
        var config = RaftConfig(id: id, peers: ConfState(voters: Set(ids)))
        config.electionTick = 10
        config.maxEntriesPerAppend = 4
        config.maxInflightAppends = 4
        config.snapshotChunkSize = 64
        config.maxSnapshotBytes = 1 << 20
        return config
    }

    /// (Re)starts node `id` from `state`.
    func restart(_ id: NodeID, from state: PersistedState) {
        // swiftlint:disable:next force_try
        nodes[id] = try! RaftNode(config: config(for: id), state: state, random: SplitMix64(seed: rng.next() ^ id))
    }

    /// Restarts `id` as if its last `count` entries had been acknowledged but never written
    /// (storage that acknowledges before it is durable: the chaos harness's `unsynced-acks`).
    func loseAcknowledgedEntries(_ id: NodeID, count: Int) {
        let storage = MemoryStorage()
        // swiftlint:disable:next force_try
        var state = try! storages[id]!.load()
        state.entries.removeLast(min(count, state.entries.count))
        let last = state.entries.last?.index ?? state.snapshot.metadata.index
        state.hardState.commit = min(state.hardState.commit, last)
        // swiftlint:disable:next force_try
        try! storage.persist(PersistBatch(hardState: state.hardState, snapshot: state.snapshot.isEmpty ? nil : state.snapshot, entries: state.entries))
        storages[id] = storage
        queue.removeAll { $0.to == id }
        restart(id, from: state)
    }

    // MARK: Driving

    /// Hands `m` to its node (if it is one of ours); returns the refusal, if any.
    @discardableResult
    func step(_ m: Message) -> Refusal? {
        guard nodes[m.to] != nil else { return nil }
        return nodes[m.to]!.step(m)
    }

    /// Persists, sends and applies every `Ready` of `id`, compacting now and then.
    func drain(_ id: NodeID) {
        var rounds = 0
        while nodes[id]!.hasReady {
            rounds += 1
            if rounds > 1_000 {
                failures.append("node \(id) keeps having a Ready (1000 rounds without a tick)")
                return
            }
            let rd = nodes[id]!.ready()
            do {
                try storages[id]!.persist(rd.persistBatch)
            } catch {
                failures.append("node \(id) handed storage an invalid batch: \(error)")
                storages[id]!.reopen()
                return
            }
            for m in rd.messages {
                queue.append(m)
                if corpus[m.type, default: []].count < 64 {
                    corpus[m.type, default: []].append(m)
                } else {
                    corpus[m.type]![rng.int(0...63)] = m
                }
            }
            nodes[id]!.advance(rd)
            maybeCompact(id)
        }
    }

    private func maybeCompact(_ id: NodeID) {
        let node = nodes[id]!
        guard compactionEnabled, node.appliedIndex >= node.snapshotIndex + 16 else { return }
        let data = (0..<rng.int(0...300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        guard let snapshot = try? nodes[id]!.compact(appliedIndex: node.appliedIndex, data: data) else { return }
        do {
            try storages[id]!.compact(to: snapshot)
        } catch {
            failures.append("node \(id): storage refused the core's snapshot: \(error)")
        }
    }

    /// Delivers messages until the network is quiet. Returns false (and records a failure) if it
    /// is not quiet after ``quietBound`` messages: the nodes talk to each other forever.
    @discardableResult
    func deliverAll() -> Bool {
        for id in ids { drain(id) }
        var delivered = 0
        while !queue.isEmpty {
            let m = queue.removeFirst()
            // Answers to forged senders go nowhere.
            guard nodes[m.to] != nil else { continue }
            step(m)
            drain(m.to)
            delivered += 1
            if delivered > Self.quietBound {
                failures.append("livelock: \(delivered) messages without a tick; last \(m.type) \(m.from)->\(m.to) index \(m.index) reject \(m.reject)")
                queue.removeAll()
                return false
            }
        }
        return true
    }

    func tick() {
        ticks += 1
        for id in ids { nodes[id]!.tick() }
        deliverAll()
    }

    var leader: NodeID? {
        ids.filter { nodes[$0]!.role == .leader }.max { nodes[$0]!.term < nodes[$1]!.term }
    }

    /// Normal traffic: a proposal, a read or a leadership transfer now and then.
    func workload() {
        guard let leader else { return }
        switch rng.int(0...9) {
        case 0...5:
            proposals += 1
            _ = try? nodes[leader]!.propose(Array("p\(proposals)".utf8))
        case 6:
            _ = try? nodes[leader]!.readIndex(context: [UInt8(truncatingIfNeeded: proposals)])
        case 7:
            if let follower = ids.filter({ $0 != leader }).randomElement(using: &rng) {
                _ = try? nodes[follower]!.readIndex(context: [1])
            }
        case 8:
            if rng.chance(0.2), let target = ids.filter({ $0 != leader }).randomElement(using: &rng) {
                try? nodes[leader]!.transferLeadership(to: target)
            }
        default:
            break
        }
        drain(leader)
    }

    /// Runs the healthy cluster for up to `ticks` ticks until a leader commits a new entry.
    /// Returns the committed proposal's index, or nil if none committed (the cluster is wedged).
    func commitsAProposal(within ticks: Int) -> UInt64? {
        queue.removeAll()
        var pending: (leader: NodeID, position: LogPosition)?
        for _ in 0..<ticks {
            tick()
            if let (leader, position) = pending {
                let node = nodes[leader]!
                // Committed on a majority of the original voters, with the same entry.
                let holders = ids.filter { nodes[$0]!.commitIndex >= position.index && nodes[$0]!.log.term(at: position.index) == position.term }
                if holders.count > ids.count / 2 { return position.index }
                if node.role != .leader || node.term != position.term { pending = nil }
            }
            if pending == nil, let leader, let position = try? nodes[leader]!.propose(Array("after-fuzz".utf8)) {
                pending = (leader, position)
                drain(leader)
            }
        }
        return nil
    }
}
