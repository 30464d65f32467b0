import Testing
@testable import Raft

/// Leadership transfer (dissertation §3.10).
@Suite("LeadershipTransfer")
struct TransferTests {
    @Test("transfer to a lagging node: catch it up, then TimeoutNow; proposals refused meanwhile")
    func transferToLaggingNode() throws {
        let c = Cluster.scenario(voters: 3) { $0.preVote = true; $0.checkQuorum = true }
        c.elect(1)
        c.blocked.insert(Link(from: 1, to: 3))
        for i in 0..<10 { try c.propose(1, bytes("t\(i)")) }
        c.stabilize()
        #expect(c.raft(3).lastIndex < c.raft(1).lastIndex, "node 3 lags")
        let oldTerm = c.raft(1).term
        c.heal()
        try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.transferLeadership(to: 3) }
        #expect(throws: RaftError.leadershipTransferInProgress(target: 3)) { try c.propose(1, bytes("during")) }
        c.stabilize()
        #expect(c.leader() == 3)
        #expect(c.raft(3).term == oldTerm + 1, "the target campaigned at once, bypassing pre-vote and the lease")
        #expect(c.raft(1).role == .follower)
        #expect(c.raft(1).leaderID == 3)
        let p = try c.propose(3, bytes("new leader"))
        c.stabilize()
        for id in c.ids {
            #expect(c.raft(id).commitIndex >= p.index)
            #expect(c.appliedData(id).count == 11)
        }
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    @Test("an unreachable target makes the transfer time out; proposals resume")
    func transferTimesOut() throws {
        let c = Cluster.scenario(voters: 3)
        c.elect(1)
        c.isolate(3)
        try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.transferLeadership(to: 3) }
        #expect(throws: RaftError.leadershipTransferInProgress(target: 3)) { try c.propose(1, bytes("x")) }
        c.tick(c.options.electionTick + 1)
        #expect(c.raft(1).role == .leader)
        let p = try c.propose(1, bytes("after timeout"))
        c.stabilize()
        #expect(c.raft(2).commitIndex >= p.index)
    }

    @Test("transfer to a learner or to self is refused")
    func invalidTargets() {
        let c = Cluster.scenario(voters: 3)
        c.elect(1)
        #expect(throws: RaftError.invalidTransferTarget(1)) {
            try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.transferLeadership(to: 1) }
        }
        #expect(throws: RaftError.invalidTransferTarget(9)) {
            try c.withRaft(1) { (raft: inout RaftNode) throws(RaftError) in try raft.transferLeadership(to: 9) }
        }
    }
}
