import Testing
@testable import Raft

/// Leader election (Raft §5.2), pre-vote (§9.6), check-quorum and the leader lease (§6.2, §4.2.3).
@Suite("Election")
struct ElectionTests {
    @Test("randomized election timeout lies in [electionTick, 2*electionTick)")
    func randomizedTimeoutRange() throws {
        var seen = Set<Int>()
        for seed: UInt64 in 0..<200 {
            var config = RaftConfig(id: 1, peers: ConfState(voters: [1, 2, 3]))
            config.electionTick = 10
            let node = try RaftNode(config: config, state: PersistedState(), random: SplitMix64(seed: seed))
            #expect((10..<20).contains(node.randomizedElectionTimeout))
            seen.insert(node.randomizedElectionTimeout)
        }
        #expect(seen.count > 5, "timeouts should actually be spread")
    }

    @Test("ticking elects exactly one leader, which commits its no-op")
    func electionByTimeout() {
        let c = Cluster.scenario(voters: 3)
        var ticks = 0
        while c.leader() == nil && ticks < 100 {
            c.tick()
            ticks += 1
        }
        c.tick(5)
        let leader = c.leader()
        #expect(leader != nil)
        #expect(c.ids.filter { c.raft($0).role == .leader }.count == 1)
        for id in c.ids {
            #expect(c.raft(id).leaderID == leader)
            #expect(c.raft(id).commitIndex >= 1)
        }
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    @Test("a single-voter cluster elects itself and commits at once")
    func singleVoter() throws {
        let c = Cluster.scenario(voters: 1)
        c.elect(1)
        #expect(c.raft(1).role == .leader)
        let position = try c.propose(1, bytes("solo"))
        c.stabilize()
        #expect(c.raft(1).commitIndex == position.index)
        #expect(c.appliedData(1) == [bytes("solo")])
    }

    @Test("proposal to a follower fails fast with the leader hint")
    func proposalToFollowerFails() {
        let c = Cluster.scenario(voters: 3)
        #expect(throws: RaftError.notLeader(leaderHint: nil)) { try c.propose(2, bytes("x")) }
        c.elect(1)
        #expect(throws: RaftError.notLeader(leaderHint: 1)) { try c.propose(2, bytes("x")) }
        #expect(throws: RaftError.notLeader(leaderHint: 1)) {
            try c.withRaft(3) { (raft: inout RaftNode) throws(RaftError) in try raft.transferLeadership(to: 2) }
        }
        #expect(c.raft(2).lastIndex == c.raft(1).lastIndex, "nothing was appended on the follower")
    }

    @Test("pre-vote: a rejoining partitioned node does not inflate the term")
    func preVotePreventsTermInflation() {
        let c = Cluster.scenario(voters: 3) { $0.preVote = true; $0.checkQuorum = false }
        c.elect(1)
        let term = c.raft(1).term
        c.isolate(3)
        c.tick(200)
        #expect(c.raft(3).term == term, "an isolated pre-candidate never increments its term")
        #expect(c.raft(3).role == .preCandidate || c.raft(3).role == .follower)
        c.heal()
        c.tick(30)
        #expect(c.leader() == 1, "the rejoining node did not depose the leader")
        #expect(c.raft(1).term == term)
        #expect(c.raft(3).leaderID == 1)
    }

    @Test("without pre-vote the same rejoin does inflate the term (control)")
    func noPreVoteInflatesTerm() {
        let c = Cluster.scenario(voters: 3) { $0.preVote = false; $0.checkQuorum = false }
        c.elect(1)
        let term = c.raft(1).term
        c.isolate(3)
        c.tick(200)
        #expect(c.raft(3).term > term + 3)
    }

    @Test("check-quorum: an isolated leader steps down within an election timeout")
    func checkQuorumStepDown() {
        let c = Cluster.scenario(voters: 3) { $0.checkQuorum = true }
        c.elect(1)
        c.isolate(1)
        c.tick(2 * c.options.electionTick + 1)
        #expect(c.raft(1).role == .follower)
        #expect(c.raft(1).leaderID == nil)
        #expect(throws: RaftError.notLeader(leaderHint: nil)) { try c.propose(1, bytes("x")) }
    }

    @Test("without check-quorum an isolated leader keeps believing it leads (control)")
    func noCheckQuorumKeepsLeader() {
        let c = Cluster.scenario(voters: 3) { $0.checkQuorum = false }
        c.elect(1)
        c.isolate(1)
        c.tick(5 * c.options.electionTick)
        #expect(c.raft(1).role == .leader)
    }

    @Test("leader lease: a follower that hears from its leader ignores higher-term vote requests")
    func leaderLease() {
        let c = Cluster.scenario(voters: 3) { $0.checkQuorum = true }
        c.elect(1)
        let term = c.raft(2).term
        let raft2 = c.raft(2)
        c.node(2).raft?.step(Message(
            type: .vote, from: 3, to: 2, term: term + 5,
            logTerm: raft2.log.lastTerm, index: raft2.lastIndex
        ))
        #expect(c.raft(2).term == term, "the vote was ignored")
        #expect(c.raft(2).leaderID == 1)
        var follower = c.raft(2)
        let sent = follower.hasReady ? follower.ready().messages : []
        #expect(!sent.contains { $0.type == .voteResponse }, "no answer at all")
    }

    @Test("stale leader after a partition cannot commit, and its entries are overwritten")
    func staleLeaderCannotCommit() throws {
        let c = Cluster.scenario(voters: 5) { $0.checkQuorum = false }
        c.elect(1)
        let oldTerm = c.raft(1).term
        c.partition([[1, 2], [3, 4, 5]])
        let stale = try c.propose(1, bytes("stale"))
        c.stabilize()
        #expect(c.raft(1).commitIndex < stale.index, "two of five cannot commit")
        c.elect(3)
        #expect(c.raft(3).role == .leader)
        #expect(c.raft(3).term > oldTerm)
        let fresh = try c.propose(3, bytes("fresh"))
        c.stabilize()
        #expect(c.raft(3).commitIndex >= fresh.index)
        #expect(c.raft(1).role == .leader, "the stale leader does not know yet")
        #expect(c.raft(1).commitIndex < stale.index)
        c.heal()
        c.tick(3)
        c.stabilize()
        #expect(c.raft(1).role == .follower)
        #expect(c.raft(1).leaderID == 3)
        for id in c.ids {
            #expect(!c.appliedData(id).contains(bytes("stale")))
            #expect(c.raft(id).log.entry(at: stale.index)?.data != bytes("stale"))
        }
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    /// Raft paper figure 8: an entry of an older term stored on a majority is not committed by
    /// counting replicas; only committing an entry of the current term commits it (§5.4.2).
    @Test("figure 8: an old-term entry on a majority is not committed by counting")
    func figure8() throws {
        let c = Cluster.scenario(voters: 5) {
            $0.preVote = false
            $0.checkQuorum = false
            $0.maxEntriesPerAppend = 1
            $0.maxInflight = 1
        }
        // (a) S1 leads term 1 and replicates entry 2 to S2 only.
        c.elect(1)
        #expect(c.raft(1).commitIndex == 1)
        for peer: NodeID in [3, 4, 5] { c.blocked.insert(Link(from: 1, to: peer)) }
        let old = try c.propose(1, bytes("term-1 entry"))
        c.stabilize()
        #expect(c.raft(2).log.term(at: old.index) == old.term)
        #expect(c.raft(1).commitIndex == 1)

        // (b) S1 crashes; S5 wins term 2 with S3 and S4, appends its own entry 2, and crashes
        // before replicating it.
        c.crash(1)
        c.heal()
        c.filter = { !($0.from == 5 && $0.type == .append && !$0.entries.isEmpty) }
        c.elect(5)
        #expect(c.raft(5).role == .leader)
        let s5Term = c.raft(5).term
        #expect(c.raft(5).log.term(at: old.index) == s5Term)
        c.crash(5)
        c.filter = nil

        // (c) S1 restarts and wins term 3; it replicates entry 2 (term 1) to S3, but its own
        // no-op (entry 3) is held back. Entry 2 is now on S1, S2, S3: a majority.
        c.start(1)
        c.rewrite = { m in
            guard m.from == 1, m.type == .append else { return m }
            var held = m
            held.entries.removeAll { $0.index >= 3 }
            return held
        }
        // S3 and S4 voted for S5 in term 2; S1 wins at the next term.
        for _ in 0..<3 where c.leader() != 1 { c.elect(1) }
        #expect(c.raft(1).role == .leader)
        #expect(c.raft(1).term > s5Term)
        let holders = c.ids.filter { c.node($0).isUp && c.raft($0).log.term(at: old.index) == old.term }
        #expect(holders.count >= 3, "entry 2 of term 1 is on a majority: \(holders)")
        #expect(c.raft(1).commitIndex < old.index, "but it must not be committed by counting")

        // (d) S1 crashes; S5 restarts and can win (its last term beats theirs), then overwrites
        // entry 2 everywhere. Had S1 committed it, this would break state machine safety.
        c.crash(1)
        c.rewrite = nil
        c.start(5)
        for _ in 0..<3 where c.leader() != 5 { c.elect(5) }
        #expect(c.leader() == 5)
        c.stabilize()
        for id: NodeID in [2, 3, 4, 5] {
            #expect(c.raft(id).log.term(at: old.index) == s5Term, "node \(id) replaced the old entry")
            #expect(!c.appliedData(id).contains(bytes("term-1 entry")))
        }
        c.start(1)
        c.tick(5)
        c.stabilize()
        #expect(c.raft(1).log.term(at: old.index) == s5Term)
        #expect(c.violations.isEmpty, "\(c.violations)")
    }
}
