import LeaseFSM
import Raft

/// What `gcctl snapshot save` takes: the lease state at a committed index.
public struct BackupState: Sendable {
    /// The applied state, a copy-on-write copy (encoding it does not hold up the store).
    public var machine: LeaseStateMachine
    /// This node's Raft term when the state was read.
    public var term: UInt64
    /// The leader this node confirmed (nil when it knows none, which a successful read rules out).
    public var leaderName: String?
}

extension RaftLeaseStore {
    /// The lease state after a ReadIndex round: it holds every write acknowledged before this
    /// call, on the leader or any follower (a follower asks the leader for its commit index and
    /// waits until it applied that far). Its ``LeaseStateMachine/appliedIndex`` is committed,
    /// since only committed entries are ever applied.
    ///
    /// - Throws: ``StoreError`` when no leader confirms within the request timeout.
    public func backupState() async throws -> BackupState {
        let machine = try await read(.linearizable) { $0 }
        return BackupState(machine: machine, term: node.term, leaderName: leaderName)
    }
}
