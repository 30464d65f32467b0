@testable import Raft

/// Makes hostile peer messages: genuine ones (from the cluster's traffic) with a few fields
/// mutated, or messages of any type built from scratch. Every choice comes from one seeded
/// generator, so a failing case replays from its seed.
struct MessageMutator {
    var rng: SplitMix64
    /// The cluster's members; ids outside it (and 0) play non-members.
    let members: [NodeID]

    init(seed: UInt64, members: [NodeID]) {
        rng = SplitMix64(seed: seed)
        self.members = members
    }

    /// Values where arithmetic and bounds checks break, or near `current`.
    mutating func interesting(near current: UInt64) -> UInt64 {
        let values: [UInt64] = [
            0, 1, 2, 3, current, current &+ 1, current &+ 2, current &- 1, current / 2,
            UInt64(Int32.max), UInt64(UInt32.max), UInt64(UInt32.max) + 1,
            RaftNode.maxIndex - 1, RaftNode.maxIndex, RaftNode.maxIndex + 1, 1 << 63,
            RaftNode.maxTerm + 1, UInt64.max - 1, UInt64.max,
        ]
        // Mostly plausible values (which get past the range checks and reach the handlers),
        // often the edges, sometimes anything.
        if rng.chance(0.5) { return current &+ UInt64(rng.int(0...6)) &- 3 }
        if rng.chance(0.2) { return rng.next() }
        return rng.pick(values)!
    }

    /// A term for a message: `interesting(near:)`, except the top 2^32 terms a message may carry
    /// (up to ``RaftNode/maxTerm``), which become `maxTerm + 1` (refused). A forged term there is
    /// accepted by design and ends elections once it spreads (see ``RaftNode/maxTerm`` and
    /// `PeerRefusalTests.aForgedTermAtTheCapEndsElectionsButCrashesNothing`), which would make
    /// the liveness check after a run meaningless; every other term, up to 2^64 − 2^32 − 2^32,
    /// is fair game.
    mutating func term(near current: UInt64) -> UInt64 {
        let value = interesting(near: current)
        return value > RaftNode.maxTerm - (1 << 32) && value <= RaftNode.maxTerm ? RaftNode.maxTerm + 1 : value
    }

    mutating func node() -> NodeID {
        if rng.chance(0.8) { return rng.pick(members)! }
        return rng.pick([0, 4, 99, UInt64.max, rng.next()])!
    }

    mutating func bytes(max: Int) -> [UInt8] {
        (0..<rng.int(0...max)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    mutating func conf() -> ConfState {
        if rng.chance(0.4) { return ConfState(voters: Set(members)) }
        switch rng.int(0...4) {
        case 0: return ConfState()
        case 1: return ConfState(voters: [1, 2], learners: [2])
        case 2: return ConfState(voters: [0, 1])
        case 3: return ConfState(voters: Set(members))
        default: return ConfState(voters: [node(), node()], learners: rng.chance(0.5) ? [node()] : [])
        }
    }

    mutating func entries(after index: UInt64, term: UInt64) -> [Entry] {
        var result: [Entry] = []
        var next = index &+ 1
        var entryTerm = term
        for _ in 0..<rng.int(0...6) {
            if rng.chance(0.15) { next = interesting(near: next) }
            if rng.chance(0.15) { entryTerm = interesting(near: entryTerm) }
            var data = bytes(max: 24)
            let kind = rng.pick([EntryKind.normal, .noop, .configChange])!
            if kind == .configChange && rng.chance(0.7) {
                let type = rng.pick([ConfChangeType.addLearner, .addVoter, .promote, .removeNode])!
                data = ConfChange(type: type, nodeID: node(), resultingConf: conf()).encoded()
            }
            result.append(Entry(term: entryTerm, index: next, kind: kind, data: data))
            next = next &+ 1
        }
        return result
    }

    mutating func chunk() -> SnapshotChunk {
        let total: UInt64 = rng.pick([0, 1, 64, 100, 300, 1 << 20, (1 << 20) + 1, 5 << 30, UInt64.max, interesting(near: 100)])!
        let offset: UInt64 = rng.pick([0, 64, 128, total, total &+ 1, total &- 1, interesting(near: 64)])!
        let meta = SnapshotMetadata(index: interesting(near: 20), term: interesting(near: 2), conf: conf())
        return SnapshotChunk(metadata: meta, offset: offset, totalSize: total, data: bytes(max: 80))
    }

    /// A message of any type built from scratch.
    mutating func fresh(to: NodeID) -> Message {
        let type = rng.pick(MessageType.allCases)!
        let term = self.term(near: 2)
        let index = interesting(near: 10)
        return Message(
            type: type, from: node(), to: rng.chance(0.9) ? to : node(), term: term,
            logTerm: interesting(near: term), index: index,
            entries: type == .append ? entries(after: index, term: term) : [],
            commit: interesting(near: index), reject: rng.chance(0.5), rejectHint: interesting(near: index),
            readSeq: interesting(near: 1), context: bytes(max: 8), isLeadershipTransfer: rng.chance(0.3),
            snapshot: type == .snapshot || rng.chance(0.05) ? chunk() : nil
        )
    }

    /// `m` with one to three fields changed.
    mutating func mutate(_ original: Message) -> Message {
        var m = original
        for _ in 0..<rng.int(1...3) {
            switch rng.int(0...15) {
            case 0: m.term = term(near: m.term)
            case 1: m.logTerm = interesting(near: m.logTerm)
            case 2: m.index = interesting(near: m.index)
            case 3: m.commit = interesting(near: m.commit)
            case 4: m.rejectHint = interesting(near: m.rejectHint)
            case 5: m.readSeq = interesting(near: m.readSeq)
            case 6: m.from = node()
            case 7: m.to = node()
            case 8: m.reject.toggle()
            case 9: m.type = rng.pick(MessageType.allCases)!
            case 10: m.entries = entries(after: m.index, term: m.term)
            case 11:
                // Reorder, drop or duplicate genuine entries.
                if !m.entries.isEmpty {
                    let i = rng.int(0...(m.entries.count - 1))
                    switch rng.int(0...2) {
                    case 0: m.entries.remove(at: i)
                    case 1: m.entries.append(m.entries[i])
                    default: m.entries[i].index = interesting(near: m.entries[i].index)
                    }
                }
            case 12: m.snapshot = rng.chance(0.2) ? nil : chunk()
            case 13:
                if var c = m.snapshot {
                    switch rng.int(0...3) {
                    case 0: c.offset = interesting(near: c.offset)
                    case 1: c.totalSize = interesting(near: c.totalSize)
                    case 2: c.data = bytes(max: 200)
                    default: c.metadata.index = interesting(near: c.metadata.index)
                    }
                    m.snapshot = c
                } else {
                    m.snapshot = chunk()
                }
            case 14: m.context = bytes(max: 16)
            default: m.isLeadershipTransfer.toggle()
            }
        }
        return m
    }
}
