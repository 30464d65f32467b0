import Foundation
import Raft
import RaftSQLite

/// Three Raft nodes and their storages, driven in rounds by one thread.
struct BenchCluster {
    private var nodes: [NodeID: RaftNode] = [:]
    private var storages: [NodeID: any RaftStorage] = [:]
    private var mailbox: [Message] = []
    private(set) var leader: NodeID = 0
    private(set) var persistCount = 0

    init(storage kind: StorageKind, directory: URL) throws {
        let voters: Set<NodeID> = [1, 2, 3]
        for id in voters.sorted() {
            let storage: any RaftStorage
            switch kind {
            case .sqlite: storage = try SQLiteRaftStorage(path: directory.appendingPathComponent("node-\(id).sqlite").path)
            case .memory: storage = MemoryStorage()
            }
            var config = RaftConfig(id: id, peers: ConfState(voters: voters))
            config.maxEntriesPerAppend = 512
            config.maxInflightAppends = 512
            nodes[id] = try RaftNode(config: config, state: try storage.load(), random: SplitMix64(seed: id))
            storages[id] = storage
        }
    }

    /// Makes `id` campaign and runs rounds until it leads and has committed its no-op.
    mutating func electLeader(_ id: NodeID) throws {
        nodes[id]?.campaign()
        for _ in 0..<1000 {
            _ = try round()
            if let node = nodes[id], node.role == .leader, node.commitIndex >= node.lastIndex {
                leader = id
                return
            }
        }
        throw BenchError("node \(id) did not become leader")
    }

    mutating func propose(_ data: [UInt8]) throws -> LogPosition {
        guard var node = nodes[leader] else { throw BenchError("no leader") }
        let position = try node.propose(data)
        nodes[leader] = node
        return position
    }

    mutating func tick() {
        for id in nodes.keys { nodes[id]?.tick() }
    }

    /// One round: every node persists and hands over its `Ready` (messages are
    /// sent only after the persist), then all messages are delivered. Returns
    /// the indexes the leader applied.
    mutating func round() throws -> [UInt64] {
        var applied: [UInt64] = []
        for id in nodes.keys.sorted() {
            guard var node = nodes[id], node.hasReady, let storage = storages[id] else { continue }
            let ready = node.ready()
            if ready.mustPersist {
                try storage.persist(ready.persistBatch)
                persistCount += 1
            }
            mailbox.append(contentsOf: ready.messages)
            if id == leader { applied.append(contentsOf: ready.committedEntries.map(\.index)) }
            node.advance(ready)
            nodes[id] = node
        }
        let delivering = mailbox
        mailbox.removeAll(keepingCapacity: true)
        for message in delivering { nodes[message.to]?.step(message) }
        return applied
    }
}
