import Testing
@testable import Raft

/// Each message here crashed a node before the peer port was hardened (a precondition, an
/// integer overflow or an out-of-range index), or made the core spin. Now each is refused: the
/// node's state does not change and the reason is counted.
@Suite("PeerRefusal")
struct PeerRefusalTests {
    /// A healthy 3-node cluster with a leader, some committed entries and a snapshot.
    static func warmCluster(seed: UInt64 = 5) -> (FuzzCluster, leader: NodeID, follower: NodeID) {
        let cluster = FuzzCluster(seed: seed)
        for _ in 0..<60 {
            cluster.workload()
            cluster.tick()
        }
        let leader = cluster.leader!
        let follower = cluster.ids.first { $0 != leader }!
        return (cluster, leader, follower)
    }

    /// Steps `m` into `id` and checks it was refused for `reason` without any other effect.
    @discardableResult
    static func expectRefused(_ m: Message, by id: NodeID, in cluster: FuzzCluster, _ reason: RefusalReason,
                              sourceLocation: SourceLocation = #_sourceLocation) -> Refusal? {
        let before = cluster.nodes[id]!
        let refusal = cluster.nodes[id]!.step(m)
        let after = cluster.nodes[id]!
        #expect(refusal?.reason == reason, "\(String(describing: refusal))", sourceLocation: sourceLocation)
        #expect(PeerFuzzTests.comparable(before.status()) == PeerFuzzTests.comparable(after.status()), sourceLocation: sourceLocation)
        #expect(before.messages == after.messages, "a refused message must not be answered", sourceLocation: sourceLocation)
        #expect(after.status().refused[reason, default: 0] == before.status().refused[reason, default: 0] + 1, sourceLocation: sourceLocation)
        return refusal
    }

    @Test("append entries that do not follow the previous index (was: conflict precondition / index out of range)")
    func malformedEntries() {
        let (c, leader, follower) = Self.warmCluster()
        let f = c.nodes[follower]!
        let term = f.term
        // An entry far below the previous index: the old findConflict offset went negative.
        let backwards = Message(type: .append, from: leader, to: follower, term: term, logTerm: f.log.term(at: f.lastIndex)!, index: f.lastIndex,
                                entries: [Entry(term: term + 5, index: 1)], commit: f.commitIndex)
        Self.expectRefused(backwards, by: follower, in: c, .malformedEntries)
        let gap = Message(type: .append, from: leader, to: follower, term: term, logTerm: f.log.term(at: f.lastIndex)!, index: f.lastIndex,
                          entries: [Entry(term: term, index: f.lastIndex + 3)])
        Self.expectRefused(gap, by: follower, in: c, .malformedEntries)
        let futureTerm = Message(type: .append, from: leader, to: follower, term: term, logTerm: f.log.term(at: f.lastIndex)!, index: f.lastIndex,
                                 entries: [Entry(term: term + 1, index: f.lastIndex + 1)])
        Self.expectRefused(futureTerm, by: follower, in: c, .malformedEntries)
    }

    @Test("index and term arithmetic near UInt64.max (was: overflow traps)")
    func outOfRange() {
        let (c, leader, follower) = Self.warmCluster()
        let term = c.nodes[follower]!.term
        // term + 1 on the next campaign overflowed.
        Self.expectRefused(Message(type: .heartbeat, from: leader, to: follower, term: .max), by: follower, in: c, .outOfRange)
        // index + 1 in the leader's progress overflowed.
        Self.expectRefused(Message(type: .appendResponse, from: follower, to: leader, term: term, index: .max), by: leader, in: c, .outOfRange)
        // matchHint + 1 in the leader's back-off overflowed.
        Self.expectRefused(Message(type: .appendResponse, from: follower, to: leader, term: term, index: 3, reject: true, rejectHint: .max),
                           by: leader, in: c, .outOfRange)
        // Restoring a snapshot at UInt64.max overflowed `unstableFrom`.
        let chunk = SnapshotChunk(metadata: SnapshotMetadata(index: .max, term: term, conf: ConfState(voters: Set(c.ids))), offset: 0, totalSize: 1, data: [1])
        Self.expectRefused(Message(type: .snapshot, from: leader, to: follower, term: term, snapshot: chunk), by: follower, in: c, .outOfRange)
    }

    @Test("an acknowledgement beyond the leader's log (was: preconditionFailure in sendSnapshot)")
    func ackBeyondLog() {
        let (c, leader, follower) = Self.warmCluster()
        let l = c.nodes[leader]!
        Self.expectRefused(Message(type: .appendResponse, from: follower, to: leader, term: l.term, index: l.lastIndex + 5), by: leader, in: c, .ackBeyondLog)
        Self.expectRefused(Message(type: .appendResponse, from: follower, to: leader, term: l.term, index: l.lastIndex, reject: true, rejectHint: l.lastIndex + 1),
                           by: leader, in: c, .malformedReject)
    }

    @Test("snapshot chunks with absurd sizes and offsets (was: Int(totalSize) trap, huge reserveCapacity, offset overflow)")
    func snapshotChunks() {
        let (c, leader, follower) = Self.warmCluster()
        let f = c.nodes[follower]!
        let meta = SnapshotMetadata(index: f.lastIndex + 10, term: f.term, conf: ConfState(voters: Set(c.ids)))
        func chunk(offset: UInt64, total: UInt64, count: Int) -> Message {
            Message(type: .snapshot, from: leader, to: follower, term: f.term,
                    snapshot: SnapshotChunk(metadata: meta, offset: offset, totalSize: total, data: Array(repeating: 7, count: count)))
        }
        Self.expectRefused(chunk(offset: 0, total: .max, count: 1), by: follower, in: c, .snapshotTooLarge)
        Self.expectRefused(chunk(offset: 0, total: (1 << 20) + 1, count: 1), by: follower, in: c, .snapshotTooLarge)
        Self.expectRefused(chunk(offset: .max, total: 100, count: 2), by: follower, in: c, .malformedSnapshot)
        Self.expectRefused(chunk(offset: 99, total: 100, count: 2), by: follower, in: c, .malformedSnapshot)
        Self.expectRefused(chunk(offset: 10, total: 100, count: 0), by: follower, in: c, .malformedSnapshot)
        // Overlapping chunks may not hold more than the snapshot's size.
        #expect(c.nodes[follower]!.step(chunk(offset: 0, total: 100, count: 60)) == nil)
        Self.expectRefused(chunk(offset: 10, total: 100, count: 60), by: follower, in: c, .malformedSnapshot)
        // The rest completes it.
        #expect(c.nodes[follower]!.step(chunk(offset: 60, total: 100, count: 40)) == nil)
        #expect(c.nodes[follower]!.snapshotIndex == meta.index)
    }

    @Test("senders that are not members are dropped; a joining node still hears the leader")
    func membership() {
        let (c, leader, follower) = Self.warmCluster()
        let term = c.nodes[follower]!.term
        Self.expectRefused(Message(type: .vote, from: 9, to: follower, term: term + 1, logTerm: 99, index: 99), by: follower, in: c, .notAMember)
        Self.expectRefused(Message(type: .appendResponse, from: 9, to: leader, term: term, index: 1), by: leader, in: c, .notAMember)
        Self.expectRefused(Message(type: .heartbeat, from: leader, to: 7, term: term), by: follower, in: c, .wrongRecipient)
        Self.expectRefused(Message(type: .heartbeat, from: follower, to: follower, term: term), by: follower, in: c, .wrongRecipient)
        // A node joining an existing cluster knows no configuration yet: it hears the leader.
        var joining = try! RaftNode(config: RaftConfig(id: 4, peers: ConfState()), state: PersistedState(), random: SplitMix64(seed: 1))
        #expect(joining.step(Message(type: .append, from: leader, to: 4, term: term, logTerm: term, index: 9)) == nil)
        #expect(joining.leaderID == leader)
    }

    @Test("a removed node's messages are dropped and cannot disrupt the cluster (dissertation §4.2.3)")
    func removedNodeIsNotHeard() throws {
        let (c, leader, removed) = Self.warmCluster()
        let remaining = c.ids.first { $0 != leader && $0 != removed }!
        _ = try c.nodes[leader]!.proposeConfChange(ConfChange(type: .removeNode, nodeID: removed))
        for _ in 0..<30 { c.tick() }
        #expect(!c.nodes[leader]!.conf.voters.contains(removed) && !c.nodes[remaining]!.conf.voters.contains(removed))
        let term = c.nodes[remaining]!.term
        // Even a vote request that passes the leader lease (a transfer's) changes nothing.
        let vote = Message(type: .vote, from: removed, to: remaining, term: term + 5, logTerm: 99, index: 999, isLeadershipTransfer: true)
        Self.expectRefused(vote, by: remaining, in: c, .notAMember)
        #expect(c.nodes[remaining]!.term == term && c.nodes[remaining]!.leaderID == leader)
        Self.expectRefused(Message(type: .heartbeatResponse, from: removed, to: leader, term: c.nodes[leader]!.term), by: leader, in: c, .notAMember)
    }

    @Test("a follower that lost acknowledged entries is refused, not probed forever (was: livelock)")
    func lostAcknowledgedEntries() {
        let (c, leader, follower) = Self.warmCluster()
        // Keep a tail of entries after the last snapshot, so there is something to lose.
        c.compactionEnabled = false
        for i in 0..<4 { _ = try? c.nodes[leader]!.propose([UInt8(i)]) }
        c.deliverAll()
        let acknowledged = c.nodes[leader]!.status().progress[follower]!.match
        c.loseAcknowledgedEntries(follower, count: 3)
        #expect(c.nodes[follower]!.lastIndex < acknowledged)
        // New proposals: the leader learns the follower went backwards. The old core answered
        // each rejection with the same probe at once, forever, without a tick.
        for _ in 0..<40 {
            c.workload()
            c.tick()
        }
        #expect(c.failures.isEmpty, "\(c.failures)")
        let reported = c.nodes[leader]!.status().refused[.rejectBelowMatch, default: 0] + c.nodes[follower]!.status().refused[.commitBeyondLog, default: 0]
        #expect(reported > 0, "neither the leader nor the follower reported the log that went backwards")
        // The cluster still commits with the other follower.
        #expect(c.commitsAProposal(within: 200) != nil)
    }

    @Test("a forged term at the cap ends elections but crashes nothing")
    func aForgedTermAtTheCapEndsElectionsButCrashesNothing() {
        let (c, leader, follower) = Self.warmCluster()
        Self.expectRefused(Message(type: .heartbeat, from: leader, to: follower, term: RaftNode.maxTerm + 1), by: follower, in: c, .outOfRange)
        // A term far ahead is a term like any other (a node that was away long enough).
        #expect(c.nodes[follower]!.step(Message(type: .heartbeat, from: leader, to: follower, term: 1 << 63)) == nil)
        #expect(c.commitsAProposal(within: 300) != nil)
        // At the cap: adopted, and it spreads; campaigns for the next term are refused as out
        // of range, so no leader is elected any more. Nothing overflows or crashes.
        let other = c.ids.first { $0 != follower }!
        #expect(c.nodes[follower]!.step(Message(type: .heartbeat, from: other, to: follower, term: RaftNode.maxTerm)) == nil)
        #expect(c.commitsAProposal(within: 300) == nil)
        #expect(c.ids.allSatisfy { c.nodes[$0]!.term == RaftNode.maxTerm })
        #expect(c.ids.contains { c.nodes[$0]!.status().refused[.outOfRange, default: 0] > 0 })
        #expect(c.failures.isEmpty, "\(c.failures)")
    }
}
