import LeaseFSM
import Logging
import Raft

/// Log compaction: snapshots of the lease state, taken off the store's
/// isolation, and the log compacted after them.
extension RaftLeaseStore {
    /// Takes a snapshot once `snapshotThreshold` entries were applied since
    /// the last one. The state is encoded off this actor (a copy-on-write copy
    /// of the state machine), so a large snapshot does not stall writes and
    /// reads; the log is compacted when the encoding is done.
    func compactIfDue() {
        guard fault == nil, snapshotTask == nil, machine.appliedIndex >= node.snapshotIndex + snapshotThreshold else { return }
        let index = machine.appliedIndex
        let state = machine
        snapshotTask = Task.detached(priority: .utility) { [self] in
            let started = ContinuousClock.now
            do throws(LeaseStateMachine.EncodingError) {
                let data = try state.snapshot()
                await self.finishSnapshot(index: index, data: data, encoding: ContinuousClock.now - started)
            } catch {
                await self.snapshotFailed(index: index, error)
            }
        }
    }

    /// A snapshot that cannot be encoded stops the node: compacting the log
    /// to anything else would lose the state.
    func snapshotFailed(index: UInt64, _ error: LeaseStateMachine.EncodingError) {
        snapshotTask = nil
        poison(StoreError(.unavailable, "the snapshot at index \(index) could not be encoded (\(error.message))"))
    }

    func finishSnapshot(index: UInt64, data: [UInt8], encoding: Duration) {
        snapshotTask = nil
        guard fault == nil else { return }
        do {
            let started = ContinuousClock.now
            let snapshot = try node.compact(appliedIndex: index, data: data)
            try storage.compact(to: snapshot)
            // The write holds this actor (writes and reads wait meanwhile);
            // the encoding did not.
            logger.info("snapshot taken", metadata: [
                "index": "\(index)", "bytes": "\(snapshot.data.count)",
                "encode_ms": "\(encoding.nanoseconds / 1_000_000)", "write_ms": "\((ContinuousClock.now - started).nanoseconds / 1_000_000)",
            ])
        } catch let error as RaftStorageError {
            poison(StoreError(.unavailable, "the snapshot at index \(index) could not be written (\(error))"))
            return
        } catch {
            // The core refused (e.g. a newer snapshot was installed from the
            // leader meanwhile): harmless, try again after the next threshold.
            logger.debug("snapshot skipped", metadata: ["index": "\(index)", "error": "\(error)"])
        }
        compactIfDue()
    }

    /// Waits until no snapshot is being taken (tests and diagnostics).
    public func settleSnapshots() async {
        while let task = snapshotTask { await task.value }
    }

}
