import Testing
@testable import Raft

/// Linearizable reads with ReadIndex (dissertation §6.4).
@Suite("ReadIndex")
struct ReadIndexTests {
    @Test("reads on the leader are confirmed by one batched heartbeat round")
    func leaderRead() throws {
        let c = Cluster.scenario(voters: 3)
        c.elect(1)
        try c.propose(1, bytes("w"))
        c.stabilize()
        let commit = c.raft(1).commitIndex
        try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in
            try raft.readIndex(context: bytes("r1"))
            try raft.readIndex(context: bytes("r2"))
        }
        #expect(c.node(1).readStates.isEmpty, "not before a quorum confirms")
        c.processReadys()
        let rounds = Set(c.pendingMessages.filter { $0.type == .heartbeat }.map(\.readSeq))
        #expect(rounds.count == 1, "both reads share one heartbeat round")
        #expect(c.pendingMessages.filter { $0.type == .heartbeat }.count == 2, "one heartbeat per follower")
        c.stabilize()
        #expect(c.node(1).readStates == [ReadState(index: commit, context: bytes("r1")), ReadState(index: commit, context: bytes("r2"))])
    }

    @Test("a read through a follower is forwarded and answered with the leader's index")
    func followerRead() throws {
        let c = Cluster.scenario(voters: 3)
        c.elect(1)
        try c.propose(1, bytes("w"))
        c.stabilize()
        try c.withRaft(2) { (raft: inout RaftNode) throws(RaftError) in try raft.readIndex(context: bytes("f")) }
        c.stabilize()
        #expect(c.node(2).readStates == [ReadState(index: c.raft(1).commitIndex, context: bytes("f"))])
        #expect(c.node(2).appliedIndex >= c.raft(1).commitIndex)
    }

    @Test("a new leader answers reads only after committing an entry of its term")
    func readWaitsForTermCommit() throws {
        // No leader lease, so node 2 can take over while node 1 is still around.
        let c = Cluster.scenario(voters: 3) { $0.checkQuorum = false }
        c.elect(1)
        c.dropInFlight()
        c.campaign(2)
        // Deliver the election but hold back the new leader's appends.
        c.filter = { !($0.from == 2 && $0.type == .append) }
        c.stabilize()
        #expect(c.raft(2).role == .leader)
        #expect(c.raft(2).log.term(at: c.raft(2).commitIndex) != c.raft(2).term)
        try c.withRaft(2) { (raft: inout RaftNode) throws(RaftError) in try raft.readIndex(context: bytes("early")) }
        c.stabilize()
        #expect(c.node(2).readStates.isEmpty, "held until the no-op commits")
        c.filter = nil
        c.tick(2)
        c.stabilize()
        #expect(c.node(2).readStates.map(\.context) == [bytes("early")])
        #expect(c.node(2).readStates.first?.index == c.raft(2).commitIndex)
    }

    @Test("an isolated leader never answers a read")
    func isolatedLeaderRead() throws {
        let c = Cluster.scenario(voters: 3) { $0.checkQuorum = false }
        c.elect(1)
        c.isolate(1)
        try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.readIndex(context: bytes("stale?")) }
        c.tick(30)
        #expect(c.node(1).readStates.isEmpty)
    }

    @Test("no leader known: the read fails fast")
    func noLeader() {
        let c = Cluster.scenario(voters: 3)
        #expect(throws: RaftError.notLeader(leaderHint: nil)) {
            try c.withRaft(2) { (raft: inout RaftNode) throws(RaftError) in try raft.readIndex(context: []) }
        }
    }
}
