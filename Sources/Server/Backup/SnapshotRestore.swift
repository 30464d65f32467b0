import Foundation
import LeaseFSM
import Raft
import RaftSQLite

/// `gc-sidecar restore FILE`: seeds a new node's data directory from a `gcctl snapshot save`
/// file, as `etcdutl snapshot restore` does.
///
/// Run it on ONE node of the new cluster, with the new cluster's voters in GC_PEERS (the old
/// membership is not kept). Start that node as usual and the other voters with empty data
/// directories and `GC_CLUSTER_STATE=existing`: they know no membership, so they never campaign
/// on their own; they vote for the restored node (its log is ahead of their empty ones), and it
/// sends them its snapshot. One node seeds, so every replica holds the very same state: a restore
/// on each node would stamp each copy with its own restore time (the lease grace below) and the
/// replicas would differ.
///
/// Leases keep their deadlines, with at least a grace after the restore
/// (``LeaseStateMachine/graceLeases(restoredAt:grace:)``); pending and dead-lettered cleanups are
/// kept as they were.
public enum SnapshotRestore {
    /// What a restore wrote.
    public struct Summary: Sendable {
        public var index: UInt64
        public var checksum: String
        public var activeLeases: Int
        public var retainedLeases: Int
        public var pendingCleanups: Int
        public var deadLetteredCleanups: Int
        /// Active leases given the restore grace, and those that kept their deadline.
        public var leasesExtended: Int
        public var leasesKept: Int
        public var voters: [String]
        public var dataDirectory: String
    }

    /// How long after a restore or recovery every active lease lives at least (see
    /// ``LeaseStateMachine/graceLeases(restoredAt:grace:)``): time for holders cut off by the
    /// outage to reconnect and renew.
    public static let defaultLeaseGrace: Duration = .seconds(60)

    /// The Raft term a restored cluster's snapshot carries: the file holds no term, and a new
    /// cluster's first election moves past it.
    static let restoredTerm: UInt64 = 1

    /// Verifies `file` (format and checksum), refuses a non-empty data directory, applies the
    /// lease-time rule at `clock`'s now, and writes the snapshot as the node's initial state with
    /// the voters `config` names (GC_PEERS, or the node alone).
    public static func restore(file: String, config: SidecarConfig, grace: Duration = SnapshotRestore.defaultLeaseGrace, clock: any WallClock = SystemWallClock()) throws(SeedError) -> Summary {
        try DataDirectorySeed.checkTarget(config)
        let backup: SnapshotBackupFile
        do {
            backup = try SnapshotBackupFile.read(from: file)
        } catch {
            throw SeedError(SnapshotBackupFile.describe(error))
        }
        var machine: LeaseStateMachine
        do {
            machine = try LeaseStateMachine(snapshot: backup.data, limits: config.limits)
        } catch {
            throw SeedError("\(file) passes its checksum but does not decode as a lease state: \(error)")
        }
        guard machine.appliedIndex == backup.index else {
            throw SeedError("\(file) says index \(backup.index) but its state was applied to index \(machine.appliedIndex)")
        }
        let grace = machine.graceLeases(restoredAt: clock.now(), grace: grace)
        let voters = DataDirectorySeed.voters(config)
        try DataDirectorySeed.write(machine, term: restoredTerm, voters: Set(voters.map(\.id)), directory: config.dataDirectory)
        return Summary(index: backup.index, checksum: backup.checksumText, activeLeases: machine.activeLeaseCount,
                       retainedLeases: machine.retainedLeaseCount, pendingCleanups: machine.pendingCleanupCount,
                       deadLetteredCleanups: machine.deadLetteredCleanupCount, leasesExtended: grace.extended, leasesKept: grace.kept,
                       voters: voters.map(\.name), dataDirectory: config.dataDirectory)
    }
}
