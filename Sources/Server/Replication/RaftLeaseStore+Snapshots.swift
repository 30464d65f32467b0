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

    /// Records a finished snapshot and compacts the log, or, while a persist
    /// is in flight, leaves that to ``persistReturned(_:_:)``: one writer at
    /// a time, and a record never overtakes a `Ready` taken before it.
    func finishSnapshot(_ outcome: SnapshotScheduler.Outcome) {
        guard fault == nil else { return snapshots.abandon(outcome, stager: storage.snapshotStager) }
        if persistInFlight {
            snapshotAwaitingRecord = outcome
            return
        }
        switch snapshots.finish(outcome, node: &node, storage: storage, logger: logger) {
        case .poison(let message): poison(StoreError(.unavailable, message))
        case .checkAgain: compactIfDue()
        }
    }

    /// Waits until no snapshot is being taken (tests and diagnostics).
    public func settleSnapshots() async {
        while let task = snapshots.inFlight {
            if snapshotAwaitingRecord != nil {
                // Encoded; its record waits for the persist in flight.
                await withCheckedContinuation { persistWaiters.append($0) }
            } else {
                await task.value
            }
        }
    }
}
