import Testing
@testable import Raft

/// Persist-before-send and crash recovery (Raft figure 2: "updated on stable storage before
/// responding to RPCs").
@Suite("Persistence")
struct PersistenceTests {
    @Test("messages in a Ready only reference state persisted by that Ready or earlier")
    func persistenceOrdering() throws {
        var config = RaftConfig(id: 2, peers: ConfState(voters: [1, 2, 3]))
        config.preVote = false
        var node = try RaftNode(config: config, state: PersistedState(), random: SplitMix64(seed: 9))
        var durable = HardState()

        // A vote is granted in the same Ready that persists it.
        node.step(Message(type: .vote, from: 1, to: 2, term: 1, logTerm: 0, index: 0))
        var rd = node.ready()
        #expect(rd.messages.map(\.type) == [.voteResponse])
        #expect(rd.messages.first?.reject == false)
        #expect(rd.hardState == HardState(term: 1, vote: 1, commit: 0))
        durable = rd.hardState ?? durable
        node.advance(rd)

        // An append is acknowledged in the same Ready that carries the entries to persist.
        let entries = [Entry(term: 1, index: 1, kind: .noop), Entry(term: 1, index: 2, data: [7])]
        node.step(Message(type: .append, from: 1, to: 2, term: 1, logTerm: 0, index: 0, entries: entries, commit: 1))
        rd = node.ready()
        #expect(rd.entries == entries)
        #expect(rd.messages.map(\.type) == [.appendResponse])
        #expect(rd.messages.first?.index == 2)
        #expect(rd.hardState == HardState(term: 1, vote: 1, commit: 1))
        #expect(rd.committedEntries == [entries[0]])
        node.advance(rd)

        // A candidate's vote requests come with its own durable self-vote.
        var candidate = try RaftNode(config: config, state: PersistedState(hardState: durable), random: SplitMix64(seed: 1))
        candidate.campaign()
        rd = candidate.ready()
        #expect(rd.hardState == HardState(term: 2, vote: 2, commit: 0))
        #expect(rd.messages.allSatisfy { $0.type == .vote && $0.term == 2 })
        #expect(rd.messages.count == 2)

        // Nothing is handed out twice.
        #expect(!candidate.hasReady || candidate.ready().messages.isEmpty)
    }

    @Test("a Ready must be flushed when it carries entries, a vote or a term, not when only the commit index moved")
    func mustSyncOnlyForEntriesTermAndVote() throws {
        var config = RaftConfig(id: 2, peers: ConfState(voters: [1, 2, 3]))
        config.preVote = false
        var node = try RaftNode(config: config, state: PersistedState(), random: SplitMix64(seed: 9))

        node.step(Message(type: .vote, from: 1, to: 2, term: 1, logTerm: 0, index: 0))
        var rd = node.ready()
        #expect(rd.mustSync && rd.persistBatch.mustSync, "a granted vote must be durable before it is sent")
        node.advance(rd)

        let entries = [Entry(term: 1, index: 1, kind: .noop), Entry(term: 1, index: 2, data: [7])]
        node.step(Message(type: .append, from: 1, to: 2, term: 1, logTerm: 0, index: 0, entries: entries, commit: 0))
        rd = node.ready()
        #expect(rd.entries == entries)
        #expect(rd.mustSync, "acknowledged entries must be durable")
        node.advance(rd)

        // The leader's heartbeat moves only the commit index.
        node.step(Message(type: .heartbeat, from: 1, to: 2, term: 1, commit: 2))
        rd = node.ready()
        #expect(rd.hardState == HardState(term: 1, vote: 1, commit: 2))
        #expect(rd.entries.isEmpty && rd.snapshot == nil)
        #expect(!rd.mustSync && !rd.persistBatch.mustSync)
        #expect(rd.mustPersist, "the commit index is still written, without a flush")
        #expect(rd.committedEntries == entries)
        node.advance(rd)
    }

    @Test("after a crash loses the commit indexes written without a flush, a cluster recovers them and stays safe")
    func crashLosingUnflushedCommitsIsSafe() throws {
        let c = Cluster.scenario(voters: 3) { $0.compactThreshold = 1_000 }
        c.elect(1)
        for i in 0..<20 { _ = try c.propose(1, bytes("w\(i)")) }
        c.tick(10)
        let committed = c.node(2).raft?.status().commit ?? 0
        #expect(committed >= 21)
        // Every node crashes at once (a power loss): the commit indexes since each one's last
        // flush are lost, the entries are not.
        for id in [1, 2, 3] as [NodeID] { c.crash(id, restartAfter: 5, powerLoss: true) }
        let restored = try [1, 2, 3].map { (id: NodeID) in try c.node(id).storage.load().hardState.commit }
        #expect(restored.contains { $0 < committed }, "the crash model must have lost a commit index (\(restored))")
        c.tick(60)
        let leader = try #require(c.leader())
        _ = try c.propose(leader, bytes("after"))
        c.tick(20)
        for id in [1, 2, 3] as [NodeID] {
            #expect((c.node(id).raft?.status().commit ?? 0) > committed)
        }
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    @Test("the checker holds over a busy cluster with elections and crashes")
    func orderingUnderChurn() throws {
        let c = Cluster.scenario(voters: 5) { $0.compactThreshold = 4; $0.snapshotChunkSize = 8 }
        c.elect(1)
        for round in 0..<5 {
            for i in 0..<5 { _ = try? c.propose(c.leader() ?? 1, bytes("r\(round)-\(i)")) }
            c.tick(3)
            if let leader = c.leader() { c.crash(leader, restartAfter: 15) }
            c.tick(40)
        }
        c.tick(40)
        #expect(c.leader() != nil)
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    @Test("restart restores term, vote and log; a failed persist stops the node")
    func restartRestoresState() throws {
        let c = Cluster.scenario(voters: 3)
        c.elect(1)
        for i in 0..<5 { try c.propose(1, bytes("k\(i)")) }
        c.stabilize()
        let before = c.ids.map { c.raft($0).status() }
        for id in c.ids { c.crash(id) }
        for id in c.ids { c.start(id) }
        for (id, old) in zip(c.ids, before) {
            let new = c.raft(id).status()
            #expect(new.term == old.term)
            #expect(new.vote == old.vote)
            #expect(new.lastIndex == old.lastIndex)
            #expect(new.commit == old.commit)
            #expect(new.role == .follower)
        }
        // The state machine is rebuilt from the log.
        c.stabilize()
        #expect(c.appliedData(2) == (0..<5).map { bytes("k\($0)") })
        c.tick(5 * c.options.electionTick)
        c.stabilize()
        let leader = try #require(c.leader())
        #expect(c.raft(leader).term > before[0].term)

        // Inject a write failure: the node stops instead of sending unpersisted promises.
        let victim: NodeID = leader == 2 ? 3 : 2
        c.node(victim).storage.failPersists = true
        let p = try c.propose(leader, bytes("while failing"))
        c.stabilize()
        #expect(!c.node(victim).isUp, "a node that cannot persist stops")
        #expect(c.node(victim).storage.isPoisoned)
        #expect(c.raft(leader).commitIndex >= p.index, "the other two still commit")
        c.start(victim)
        c.tick(3)
        c.stabilize()
        #expect(c.raft(victim).lastIndex == c.raft(leader).lastIndex)
        #expect(c.violations.isEmpty, "\(c.violations)")
    }
}

/// The simulation's checkers must themselves catch violations, or a green run means nothing.
@Suite("CheckerSelfTest")
struct CheckerSelfTests {
    @Test("the persistence checker flags a vote or an entry that is not durable")
    func persistenceCheckerFlags() {
        let c = Cluster.scenario(voters: 3)
        var rd = Ready()
        rd.messages = [Message(type: .voteResponse, from: 2, to: 1, term: 5)]
        c.checkPersistenceOrdering(c.node(2), rd)
        rd.messages = [Message(type: .append, from: 2, to: 1, term: 0, entries: [Entry(term: 0, index: 1)])]
        c.checkPersistenceOrdering(c.node(2), rd)
        #expect(c.violations.count >= 2, "\(c.violations)")
    }

    @Test("the log matching checker flags divergent prefixes")
    func logMatchingCheckerFlags() throws {
        let c = Cluster.scenario(voters: 2)
        let state1 = PersistedState(entries: [Entry(term: 1, index: 1, data: [1]), Entry(term: 2, index: 2)])
        let state2 = PersistedState(entries: [Entry(term: 1, index: 1, data: [2]), Entry(term: 2, index: 2)])
        c.node(1).raft = try RaftNode(config: c.config(for: 1), state: state1, random: SplitMix64(seed: 1))
        c.node(2).raft = try RaftNode(config: c.config(for: 2), state: state2, random: SplitMix64(seed: 2))
        c.checkLogMatching()
        #expect(!c.violations.isEmpty)
    }
}
