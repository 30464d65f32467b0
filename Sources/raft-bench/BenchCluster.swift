import Foundation
import Raft
import RaftSQLite

/// Three Raft nodes and their storages, driven in rounds by one thread.
///
/// Nodes are mutated in place (`nodes[i].step(...)`): copying a `RaftNode`
/// out and back would copy its in-memory log on every round.
struct BenchCluster {
    private var nodes: [RaftNode] = []
    private var storages: [any RaftStorage] = []
    private var mailbox: [Message] = []
    private(set) var leader = 0
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
            nodes.append(try RaftNode(config: config, state: try storage.load(), random: SplitMix64(seed: id)))
            storages.append(storage)
        }
    }

    private func slot(of id: NodeID) -> Int? { nodes.firstIndex { $0.id == id } }

    /// Makes node `id` campaign and runs rounds until it leads and has committed its no-op.
    mutating func electLeader(_ id: NodeID) throws {
        guard let i = slot(of: id) else { throw BenchError("no node \(id)") }
        nodes[i].campaign()
        for _ in 0..<1000 {
            _ = try round()
            if nodes[i].role == .leader, nodes[i].commitIndex >= nodes[i].lastIndex {
                leader = i
                return
            }
        }
        throw BenchError("node \(id) did not become leader")
    }

    mutating func propose(_ data: [UInt8]) throws -> LogPosition {
        try nodes[leader].propose(data)
    }

    mutating func tick() {
        for i in nodes.indices { nodes[i].tick() }
    }

    /// One round: every node persists and hands over its `Ready` (messages are
    /// sent only after the persist), then all messages are delivered. Returns
    /// the indexes the leader applied.
    mutating func round() throws -> [UInt64] {
        var applied: [UInt64] = []
        for i in nodes.indices where nodes[i].hasReady {
            let ready = nodes[i].ready()
            if ready.mustPersist {
                try storages[i].persist(ready.persistBatch)
                persistCount += 1
            }
            mailbox.append(contentsOf: ready.messages)
            if i == leader { applied.append(contentsOf: ready.committedEntries.map(\.index)) }
            nodes[i].advance(ready)
        }
        let delivering = mailbox
        mailbox.removeAll(keepingCapacity: true)
        for message in delivering {
            if let i = slot(of: message.to) { nodes[i].step(message) }
        }
        return applied
    }
}
