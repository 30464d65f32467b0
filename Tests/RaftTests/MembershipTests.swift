import Testing
@testable import Raft

/// Single-server membership changes (dissertation §4.1-§4.2).
@Suite("Membership")
struct MembershipTests {
    @Test("add a learner, let it catch up, promote it, then remove a voter")
    func learnerPromoteRemove() throws {
        let c = Cluster.scenario(voters: 3, spares: [4])
        c.elect(1)
        for i in 0..<5 { try c.propose(1, bytes("d\(i)")) }
        c.stabilize()
        try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.proposeConfChange(ConfChange(type: .addLearner, nodeID: 4, context: bytes("addr4"))) }
        #expect(throws: RaftError.confChangeInProgress) {
            try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.proposeConfChange(ConfChange(type: .promote, nodeID: 4)) }
        }
        c.stabilize()
        c.tick(2)
        c.stabilize()
        #expect(c.raft(4).conf == ConfState(voters: [1, 2, 3], learners: [4]))
        #expect(c.raft(4).lastIndex == c.raft(1).lastIndex, "the learner caught up")
        #expect(c.appliedData(4) == c.appliedData(1))
        #expect(c.raft(1).status().progress[4]?.isLearner == true)
        // A learner never campaigns.
        c.tick(100)
        #expect(c.raft(4).role == .follower)
        #expect(c.raft(4).term == c.raft(1).term)

        try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.proposeConfChange(ConfChange(type: .promote, nodeID: 4)) }
        c.stabilize()
        #expect(c.ids.allSatisfy { c.raft($0).conf == ConfState(voters: [1, 2, 3, 4]) })
        #expect(c.raft(4).isPromotable)

        try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.proposeConfChange(ConfChange(type: .removeNode, nodeID: 3)) }
        c.stabilize()
        #expect(c.raft(1).conf == ConfState(voters: [1, 2, 4]))
        #expect(c.raft(1).status().progress[3] == nil)
        c.crash(3)
        let p = try c.propose(1, bytes("after"))
        c.stabilize()
        #expect(c.raft(4).commitIndex >= p.index)
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    @Test("invalid changes are refused")
    func invalidChanges() {
        let c = Cluster.scenario(voters: 3)
        c.elect(1)
        #expect(throws: RaftError.self) {
            try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.proposeConfChange(ConfChange(type: .promote, nodeID: 9)) }
        }
        #expect(throws: RaftError.self) {
            try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.proposeConfChange(ConfChange(type: .addVoter, nodeID: 2)) }
        }
        #expect(throws: RaftError.notLeader(leaderHint: 1)) {
            try c.withRaft(2) { (raft: inout RaftNode) throws(RaftError) in try raft.proposeConfChange(ConfChange(type: .addLearner, nodeID: 4)) }
        }
    }

    @Test("membership change survives the leader failing before it commits")
    func changeDuringLeaderFailure() throws {
        let c = Cluster.scenario(voters: 3, spares: [4]) { $0.preVote = false }
        c.elect(1)
        // The change reaches node 2 only, then the leader crashes before it commits.
        c.blocked.insert(Link(from: 1, to: 3))
        c.blocked.insert(Link(from: 1, to: 4))
        let change = try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.proposeConfChange(ConfChange(type: .addVoter, nodeID: 4)) }
        c.filter = { !($0.type == .appendResponse && $0.to == 1) }
        c.stabilize()
        #expect(c.raft(2).conf.voters == [1, 2, 3, 4], "node 2 uses the configuration as soon as it is appended")
        #expect(c.raft(1).commitIndex < change.index)
        c.crash(1)
        c.heal()
        c.filter = nil
        // Node 3 (old configuration, shorter log) cannot win: node 2 refuses it.
        c.elect(3)
        #expect(c.raft(3).role != .leader)
        c.tick(4 * c.options.electionTick)
        c.stabilize()
        let leader = try #require(c.leader())
        #expect(leader == 2 || leader == 4 || leader == 3)
        #expect(c.raft(leader).commitIndex >= change.index, "the new leader committed the change")
        let p = try c.propose(leader, bytes("after failover"))
        c.stabilize()
        for id: NodeID in [2, 3, 4] {
            #expect(c.raft(id).conf.voters == [1, 2, 3, 4])
            #expect(c.raft(id).commitIndex >= p.index)
        }
        c.start(1)
        c.tick(3)
        c.stabilize()
        #expect(c.raft(1).conf.voters == [1, 2, 3, 4])
        #expect(c.raft(1).role == .follower)
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    @Test("a leader that removes itself steps down once the change commits")
    func leaderRemovesItself() throws {
        let c = Cluster.scenario(voters: 3)
        c.elect(1)
        let change = try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.proposeConfChange(ConfChange(type: .removeNode, nodeID: 1)) }
        c.stabilize()
        #expect(c.raft(1).role == .follower)
        #expect(!c.raft(1).isPromotable)
        #expect(c.raft(2).commitIndex >= change.index)
        c.tick(5 * c.options.electionTick)
        c.stabilize()
        let leader = try #require(c.leader())
        #expect(leader != 1)
        let p = try c.propose(leader, bytes("without 1"))
        c.stabilize()
        #expect(c.raft(leader).commitIndex >= p.index)
        #expect(c.raft(1).role == .follower, "the removed node never campaigns")
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    @Test("ConfChange encoding round-trips and rejects garbage")
    func encoding() throws {
        let change = ConfChange(type: .promote, nodeID: 7, context: bytes("host:1"), resultingConf: ConfState(voters: [1, 7], learners: [9]))
        #expect(try ConfChange.decode(change.encoded()) == change)
        #expect(throws: RaftError.malformedConfChange) { try ConfChange.decode([1, 2, 3]) }
        #expect(throws: RaftError.malformedConfChange) { try ConfChange.decode(change.encoded() + [0]) }
    }
}
