import Testing
@testable import Raft

/// Log replication (Raft §5.3): batching, pipelining, fast back-off.
@Suite("Replication")
struct ReplicationTests {
    @Test("entries replicate in batches with bounded pipelining and apply in order everywhere")
    func batchingAndPipelining() throws {
        let c = Cluster.scenario(voters: 3) { $0.maxEntriesPerAppend = 3; $0.maxInflight = 2 }
        c.elect(1)
        var maxEntries = 0
        var maxOutstanding = 0
        c.filter = { m in
            if m.type == .append { maxEntries = max(maxEntries, m.entries.count) }
            return true
        }
        let payloads = (0..<20).map { bytes("e\($0)") }
        for p in payloads { try c.propose(1, p) }
        // Before anything is acknowledged, at most `maxInflight` appends carry entries per follower.
        c.processReadys()
        for peer: NodeID in [2, 3] {
            let outstanding = c.pendingMessages.filter { $0.to == peer && $0.type == .append && !$0.entries.isEmpty }.count
            maxOutstanding = max(maxOutstanding, outstanding)
        }
        c.stabilize()
        #expect(maxEntries <= 3 && maxEntries > 1, "batched, bounded: \(maxEntries)")
        #expect(maxOutstanding <= 2 && maxOutstanding >= 1, "pipelined, bounded: \(maxOutstanding)")
        for id in c.ids {
            #expect(c.appliedData(id) == payloads)
        }
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    @Test("fast back-off: a long divergent suffix is repaired in a few round trips")
    func fastBackoff() throws {
        let c = Cluster.scenario(voters: 3) { $0.checkQuorum = false; $0.maxEntriesPerAppend = 100; $0.maxInflight = 100 }
        c.elect(1)
        c.isolate(1)
        for i in 0..<50 { try c.propose(1, bytes("lost\(i)")) }
        c.stabilize()
        c.heal()
        c.isolate(1)
        c.blocked.remove(Link(from: 2, to: 3))
        c.blocked.remove(Link(from: 3, to: 2))
        c.elect(2)
        #expect(c.raft(2).role == .leader)
        for i in 0..<5 { try c.propose(2, bytes("kept\(i)")) }
        c.stabilize()
        var rejections = 0
        c.filter = { m in
            if m.type == .appendResponse && m.reject && m.from == 1 { rejections += 1 }
            return true
        }
        c.heal()
        c.tick(2)
        c.stabilize()
        #expect(c.raft(1).role == .follower)
        #expect(c.raft(1).lastIndex == c.raft(2).lastIndex)
        #expect(rejections <= 3, "one round trip per term, not per entry: \(rejections)")
        #expect(c.appliedData(1).filter { $0.starts(with: bytes("lost")) }.isEmpty)
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    @Test("lost and duplicated appends are repaired by probing")
    func lossRecovery() throws {
        let c = Cluster.scenario(voters: 3) { $0.maxInflight = 4; $0.maxEntriesPerAppend = 2 }
        c.elect(1)
        var dropped = 0
        c.filter = { m in
            if m.type == .append && m.to == 3 && !m.entries.isEmpty && dropped < 3 {
                dropped += 1
                return false
            }
            return true
        }
        for i in 0..<10 { try c.propose(1, bytes("x\(i)")) }
        c.stabilize()
        c.tick(3)
        c.stabilize()
        #expect(dropped == 3)
        #expect(c.raft(3).lastIndex == c.raft(1).lastIndex)
        #expect(c.appliedData(3) == c.appliedData(1))
    }

    @Test("uncommitted backlog is bounded")
    func uncommittedBound() throws {
        let c = Cluster.scenario(voters: 3)
        c.elect(1)
        c.isolate(1)
        var raft = c.raft(1)
        var refused = false
        for i in 0..<20_000 {
            do {
                try raft.propose([UInt8(truncatingIfNeeded: i)])
            } catch {
                #expect(error == .tooManyUncommittedEntries)
                refused = true
                break
            }
        }
        #expect(refused)
    }
}
