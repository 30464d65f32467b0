import Testing
@testable import Raft

/// Log compaction and InstallSnapshot (Raft §7).
@Suite("Snapshot")
struct SnapshotTests {
    /// Node 3 down while node 1 leads, takes 30 writes and compacts past them (4-byte chunks).
    private static func leaderCompactedPastNode3(releasingData: Bool) throws -> (Cluster, RaftLog) {
        let c = Cluster.scenario(voters: 3) {
            $0.snapshotChunkSize = 4
            $0.compactThreshold = 5
            $0.releaseSnapshotData = releasingData
        }
        c.elect(1)
        c.crash(3)
        for i in 0..<30 { try c.propose(1, bytes("v\(i)")) }
        c.stabilize()
        let leaderLog = c.raft(1).log
        #expect(leaderLog.snapshotIndex > 5, "the leader compacted")
        return (c, leaderLog)
    }

    @Test("a lagging follower catches up through a chunked InstallSnapshot")
    func snapshotToLaggingFollower() throws {
        let (c, leaderLog) = try Self.leaderCompactedPastNode3(releasingData: false)
        var chunks: [SnapshotChunk] = []
        c.filter = { m in
            if let chunk = m.snapshot { chunks.append(chunk) }
            return true
        }
        c.start(3)
        // The first transfer went to a crashed node; the leader retries after its timeout.
        c.tick(3 * c.options.electionTick)
        c.stabilize()
        #expect(chunks.count > 1, "the snapshot went in several chunks")
        #expect(chunks.allSatisfy { $0.data.count <= 4 })
        #expect(c.raft(3).log.snapshotIndex >= leaderLog.snapshotIndex, "node 3 installed a snapshot")
        #expect(c.raft(3).lastIndex == c.raft(1).lastIndex)
        #expect(c.node(3).digest == c.node(1).digest, "state machines agree")
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    @Test("a leader that let go of its snapshot's bytes reads them back for a lagging follower, and tries again when the read fails")
    func releasedSnapshotIsReadBack() throws {
        let (c, leaderLog) = try Self.leaderCompactedPastNode3(releasingData: true)
        #expect(c.raft(1).latestSnapshot?.data.isEmpty == true, "the bytes were let go")
        c.snapshotReadBacks.failNext(2)
        c.start(3)
        c.tick(6 * c.options.electionTick)
        c.stabilize()
        #expect(c.snapshotReadBacks.failed == 2, "the failed reads sent nothing")
        #expect(c.snapshotReadBacks.served >= 1)
        #expect(c.raft(3).log.snapshotIndex >= leaderLog.snapshotIndex, "node 3 installed the snapshot read back")
        #expect(c.raft(3).lastIndex == c.raft(1).lastIndex)
        #expect(c.node(3).digest == c.node(1).digest, "state machines agree")
        #expect(c.violations.isEmpty, "\(c.violations)")
    }

    @Test("chunks arriving out of order or twice are reassembled once")
    func reorderedChunks() throws {
        var config = RaftConfig(id: 2, peers: ConfState(voters: [1, 2]))
        config.snapshotChunkSize = 3
        var follower = try RaftNode(config: config, state: PersistedState(), random: SplitMix64(seed: 2))
        let data: [UInt8] = Array(0..<10)
        let meta = SnapshotMetadata(index: 7, term: 2, conf: ConfState(voters: [1, 2]))
        let chunks = stride(from: 0, to: data.count, by: 3).map {
            SnapshotChunk(metadata: meta, offset: UInt64($0), totalSize: UInt64(data.count), data: Array(data[$0..<min($0 + 3, data.count)]))
        }
        for index in [3, 1, 1, 0, 2] {
            follower.step(Message(type: .snapshot, from: 1, to: 2, term: 2, snapshot: chunks[index]))
        }
        let rd = follower.ready()
        #expect(rd.snapshot == Snapshot(metadata: meta, data: data))
        #expect(rd.hardState?.commit == 7)
        #expect(rd.messages.filter { $0.type == .appendResponse }.map(\.index) == [7])
        follower.advance(rd)
        #expect(follower.appliedIndex == 7)
        #expect(follower.lastIndex == 7)
    }

    @Test("compaction requires applied entries and returns full metadata")
    func compactionRules() throws {
        let c = Cluster.scenario(voters: 1)
        c.elect(1)
        for i in 0..<5 { try c.propose(1, bytes("c\(i)")) }
        c.stabilize()
        var raft = c.raft(1)
        #expect(throws: RaftError.self) { try raft.compact(appliedIndex: raft.appliedIndex + 1, data: []) }
        let snapshot = try raft.compact(appliedIndex: 4, data: [9])
        #expect(snapshot.metadata.index == 4)
        #expect(snapshot.metadata.term == raft.term)
        #expect(snapshot.metadata.conf.voters == [1])
        #expect(raft.log.firstIndex == 5)
        #expect(throws: RaftError.self) { try raft.compact(appliedIndex: 3, data: []) }
    }
}
