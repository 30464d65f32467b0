import Foundation
import LeaseFSM
import Raft
import RaftSQLite

/// Writes a node's initial Raft state into an empty data directory: one snapshot (the lease
/// state at `index`) with the membership of the new cluster, and a hard state that has
/// committed it. Shared by `gc-sidecar restore` and `gc-sidecar recover`.
///
/// Nodes seeded with the same state, index, term and voters have identical logs, so they elect
/// a leader among themselves as after a restart and carry on appending after `index`.
enum DataDirectorySeed {
    /// The database file of a node's Raft log in `directory` (as ``Sidecar`` opens it).
    static func databasePath(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("raft.sqlite")
    }

    /// The voters of the new cluster as `config` describes it: every GC_PEERS member, or the node
    /// alone without GC_PEERS.
    static func voters(_ config: SidecarConfig) -> [ClusterMember] {
        if config.peers.isEmpty {
            return [ClusterMember(name: config.nodeID, host: config.raftHost, port: config.raftPort)]
        }
        return config.peers
    }

    /// Refuses anything but an sqlite node, and a data directory that holds anything.
    static func checkTarget(_ config: SidecarConfig) throws(SeedError) {
        guard config.storageBackend == .sqlite else {
            throw SeedError("GC_STORAGE_BACKEND is \(config.storageBackend.rawValue): only an sqlite node has a data directory to seed")
        }
        let directory = config.dataDirectory
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw SeedError("\(directory) exists and is not a directory") }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            guard entries.isEmpty else {
                throw SeedError("data directory \(directory) is not empty (\(entries.sorted().prefix(3).joined(separator: ", "))): restore only seeds a new node; remove it or choose another directory")
            }
        }
    }

    /// Writes `state` (already adjusted) as the initial state of the node in `directory`.
    static func write(_ state: LeaseStateMachine, term: UInt64, voters: Set<NodeID>, directory: String) throws(SeedError) {
        let data: [UInt8]
        do {
            data = try state.snapshot()
        } catch {
            throw SeedError("the lease state could not be encoded: \(error.message)")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SeedError("cannot create \(directory): \(error.localizedDescription)")
        }
        let index = state.appliedIndex
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: index, term: term, conf: ConfState(voters: voters)), data: data)
        let path = databasePath(in: directory)
        do throws(RaftStorageError) {
            let storage = try SQLiteRaftStorage(path: path)
            defer { storage.close() }
            try storage.persist(PersistBatch(hardState: HardState(term: term, vote: 0, commit: index), snapshot: snapshot))
            // Read back what a starting node will read.
            let loaded = try storage.load()
            guard loaded.snapshot.metadata.index == index, loaded.snapshot.data == data, loaded.snapshot.metadata.conf.voters == voters else {
                throw RaftStorageError.corrupted("the seeded snapshot did not read back as written")
            }
        } catch {
            throw SeedError("cannot write the Raft log at \(path): \(error)")
        }
    }
}

/// Why a data directory could not be seeded; nothing usable was written.
public struct SeedError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
