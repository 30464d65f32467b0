import Foundation
import LeaseFSM
import Raft
import RaftSQLite

/// `gc-sidecar recover`: lost-quorum recovery, like etcd's `--force-new-cluster`. Turns one
/// surviving node's data directory into a new single-member cluster holding everything the
/// survivor knew; `gcctl cluster add` then grows it with fresh members.
///
/// What is kept: the survivor's snapshot and every entry of its log, including entries after
/// its known commit index. Such an entry may have been committed (and acknowledged to a client)
/// by the old leader without the survivor hearing of the commit yet; dropping it could lose an
/// acknowledged write. Keeping one that was not committed only applies a write whose client was
/// told "unavailable: may or may not have been applied", which that answer allows.
///
/// What may be lost: entries the survivor never received (committed by a majority it was not
/// part of). Recover the most up-to-date survivor (`gcctl cluster status` shows each node's last
/// log index while it runs; the recover command prints it). Never start the old members again
/// with their old data: wipe them and add them as new members.
///
/// The old database is moved aside into `<data-dir>/pre-recovery-<time>/`, not deleted.
public enum ForceNewCluster {
    /// What a recovery wrote.
    public struct Summary: Sendable {
        /// The survivor's known commit index and its last log index (all of it is kept).
        public var commitIndex: UInt64
        public var lastIndex: UInt64
        /// The old membership (node ids as names where GC_PEERS knows them).
        public var previousVoters: [String]
        public var term: UInt64
        public var activeLeases: Int
        public var pendingCleanups: Int
        public var deadLetteredCleanups: Int
        /// Active leases given the restore grace, and those that kept their deadline.
        public var leasesExtended: Int
        public var leasesKept: Int
        /// Where the old database went.
        public var movedAside: String
    }

    /// Rewrites the data directory of the node `config` describes (it must be stopped) as a single-member
    /// cluster of that node, keeping its whole log (see the type's notes).
    public static func recover(config: SidecarConfig, grace: Duration = SnapshotRestore.defaultLeaseGrace, clock: any WallClock = SystemWallClock()) throws(SeedError) -> Summary {
        let restoredAt = clock.now()
        guard config.storageBackend == .sqlite else {
            throw SeedError("GC_STORAGE_BACKEND is \(config.storageBackend.rawValue): only an sqlite node keeps data to recover from")
        }
        let directory = config.dataDirectory
        let path = DataDirectorySeed.databasePath(in: directory)
        guard FileManager.default.fileExists(atPath: path) else {
            throw SeedError("no Raft log at \(path): recover runs on the data directory of a node that was a member")
        }
        let persisted: PersistedState
        do throws(RaftStorageError) {
            let storage = try SQLiteRaftStorage(path: path)
            defer { storage.close() }
            persisted = try storage.load()
        } catch {
            throw SeedError("cannot read the Raft log at \(path) (is the node still running?): \(error)")
        }
        var machine = LeaseStateMachine(limits: config.limits)
        if !persisted.snapshot.isEmpty {
            do {
                machine = try LeaseStateMachine(snapshot: persisted.snapshot.data, limits: config.limits)
            } catch {
                throw SeedError("cannot decode the snapshot at index \(persisted.snapshot.metadata.index): \(error)")
            }
        }
        var previousConf = persisted.snapshot.isEmpty
            ? ConfState(voters: Set(DataDirectorySeed.voters(config).map(\.id))) : persisted.snapshot.metadata.conf
        var lastTerm = persisted.snapshot.metadata.term
        for entry in persisted.entries where entry.index > machine.appliedIndex {
            lastTerm = entry.term
            switch entry.kind {
            case .normal:
                do {
                    _ = machine.apply(try StampedCommand(decoding: entry.data), index: entry.index)
                } catch {
                    throw SeedError("cannot apply the log entry at index \(entry.index): \(error); recover with the gc-sidecar version that wrote it")
                }
            case .configChange:
                if let change = try? ConfChange.decode(entry.data) { previousConf = change.resultingConf }
                machine.skip(index: entry.index)
            case .noop:
                machine.skip(index: entry.index)
            }
        }
        let lastIndex = machine.appliedIndex
        let grace = machine.graceLeases(restoredAt: restoredAt, grace: grace)

        let aside = (directory as NSString).appendingPathComponent("pre-recovery-\(restoredAt.milliseconds)")
        do {
            try FileManager.default.createDirectory(atPath: aside, withIntermediateDirectories: false)
            let fileManager = FileManager.default
            for name in try fileManager.contentsOfDirectory(atPath: directory) where name.hasPrefix("raft.sqlite") {
                try fileManager.moveItem(atPath: (directory as NSString).appendingPathComponent(name),
                                         toPath: (aside as NSString).appendingPathComponent(name))
            }
        } catch {
            throw SeedError("cannot move the old Raft log aside into \(aside): \(error.localizedDescription)")
        }
        let term = max(persisted.hardState.term, lastTerm)
        let local = ClusterMember.nodeID(forName: config.nodeID)
        do throws(SeedError) {
            try DataDirectorySeed.write(machine, term: term, voters: [local], directory: directory)
        } catch {
            throw SeedError("\(error.description); the old log is in \(aside): move its files back to retry")
        }
        var names = Dictionary(config.peers.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        names[local] = config.nodeID
        return Summary(commitIndex: persisted.hardState.commit, lastIndex: lastIndex,
                       previousVoters: previousConf.voters.map { names[$0] ?? String($0, radix: 16) }.sorted(),
                       term: term, activeLeases: machine.activeLeaseCount, pendingCleanups: machine.pendingCleanupCount,
                       deadLetteredCleanups: machine.deadLetteredCleanupCount, leasesExtended: grace.extended, leasesKept: grace.kept, movedAside: aside)
    }
}
