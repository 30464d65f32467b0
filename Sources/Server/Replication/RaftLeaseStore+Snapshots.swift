import LeaseFSM
import Raft

/// Log compaction: snapshots of the lease state. ``SnapshotScheduler`` runs
/// the encoding and the file write off this actor; only the short
/// record-and-compact runs here.
extension RaftLeaseStore {
    /// Takes a snapshot once the threshold of entries was applied since the
    /// last one.
    func compactIfDue() {
        guard fault == nil else { return }
        snapshots.startIfDue(machine: machine, snapshotIndex: node.snapshotIndex, stager: storage.snapshotStager) { [self] outcome in
            await self.finishSnapshot(outcome)
        }
    }

    private func finishSnapshot(_ outcome: SnapshotScheduler.Outcome) {
        guard fault == nil else { return snapshots.abandon(outcome, stager: storage.snapshotStager) }
        switch snapshots.finish(outcome, node: &node, storage: storage, logger: logger) {
        case .poison(let message): poison(StoreError(.unavailable, message))
        case .checkAgain: compactIfDue()
        }
    }

    /// Waits until no snapshot is being taken (tests and diagnostics).
    public func settleSnapshots() async {
        while let task = snapshots.inFlight { await task.value }
    }
}
