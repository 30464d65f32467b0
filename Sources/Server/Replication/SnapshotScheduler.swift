import LeaseFSM
import Logging
import Raft
import Synchronization

/// When the lease store takes a snapshot, and the slow part of taking it.
///
/// The store calls it at two points: ``startIfDue(machine:snapshotIndex:stager:finished:)``
/// after each apply batch, and ``finish(_:node:storage:logger:)`` with what the background
/// work produced. Everything slow happens in that background work, on a thread of its own at
/// a lower priority (``BackgroundThread``), off the store's isolation and off the cooperative
/// pool: encoding the state (a copy-on-write copy of the state machine, released there as
/// soon as it is encoded) and, when the storage can stage files
/// (``RaftStorage/snapshotStager``), writing the encoded bytes to a file (write, fsync,
/// rename, fsync the directory). On the store's isolation there remain
/// only ``RaftNode/compact(appliedIndex:data:)`` (in memory) and recording the staged file
/// with ``RaftStorage/compact(to:staged:)`` (one short transaction that also discards the
/// log it covers), so no write waits for a snapshot write.
///
/// At most one snapshot is in flight; the next one is considered when it finished.
///
/// **When.** A snapshot is due once ``threshold`` entries were applied since the last one,
/// and, for a large state, once one entry per ``leasesPerEntry`` leases and jobs it holds
/// was: a snapshot costs time in proportion to the state, so with a fixed threshold a node
/// holding a million leases would be encoding one nearly all the time (a 230 MB file every
/// 10,000 entries). Scaled this way, snapshot work stays in proportion to the writes, and
/// the log a restart replays after the snapshot stays a small fraction of the state
/// (62,500 entries at a million leases).
struct SnapshotScheduler {
    /// Applied entries between snapshots, at least (`GC_SNAPSHOT_THRESHOLD`).
    let threshold: UInt64
    /// With more than ``threshold`` × this many leases and jobs held, a snapshot waits for
    /// one applied entry per this many of them.
    static let leasesPerEntry: UInt64 = 16
    /// The background work in flight, if any.
    private(set) var inFlight: Task<Void, Never>?

    /// What the background work produced, handed back to ``finish(_:node:storage:logger:)``.
    enum Outcome: Sendable {
        /// The state at `index` encoded as `size` bytes: in `staged` if the stager wrote them
        /// durably (then `data` is empty: the bytes were freed off the store's isolation),
        /// else in `data`.
        case encoded(index: UInt64, data: [UInt8], size: Int, staged: StagedSnapshot?, encoding: Duration, staging: Duration)
        /// Encoding or staging failed: the node must stop (compacting to anything else would
        /// lose state; a disk that cannot take the file cannot be trusted with the log).
        case failed(index: UInt64, message: String)
    }

    /// What the store must do after ``finish(_:node:storage:logger:)``.
    enum Action: Equatable {
        /// Nothing more; call ``startIfDue(machine:snapshotIndex:stager:finished:)`` again
        /// (a new threshold may have passed meanwhile).
        case checkAgain
        /// Stop the node with this message (the storage refused or the snapshot failed).
        case poison(String)
    }

    init(threshold: UInt64) {
        self.threshold = max(1, threshold)
    }

    /// Applied entries between snapshots of a state holding `stateSize` leases and jobs.
    func interval(stateSize: Int) -> UInt64 {
        max(threshold, UInt64(max(0, stateSize)) / Self.leasesPerEntry)
    }

    /// Whether a snapshot should start now.
    func isDue(appliedIndex: UInt64, snapshotIndex: UInt64, stateSize: Int) -> Bool {
        inFlight == nil && appliedIndex >= snapshotIndex &+ interval(stateSize: stateSize)
    }

    /// Starts a snapshot of `machine` if ``interval(stateSize:)`` entries were applied since
    /// the one at `snapshotIndex` and none is in flight. `finished` is called (from the background task)
    /// with the outcome; the store passes it to ``finish(_:node:storage:logger:)`` on its
    /// isolation.
    mutating func startIfDue(
        machine: LeaseStateMachine, snapshotIndex: UInt64, stager: (any SnapshotStager)?,
        finished: @escaping @Sendable (Outcome) async -> Void
    ) {
        guard isDue(appliedIndex: machine.appliedIndex, snapshotIndex: snapshotIndex,
                    stateSize: machine.retainedLeaseCount + machine.retainedJobCount) else { return }
        let index = machine.appliedIndex
        // The copy goes to the background in a handoff that the encoder empties, so it is
        // released there, when encoding ends, not wherever the task happens to end.
        let copy = StateHandoff(machine)
        inFlight = Task.detached(priority: .utility) {
            // Off the cooperative pool, at a lower priority (see ``BackgroundThread``).
            let outcome = await BackgroundThread.run {
                Self.produce(copy, index: index, stager: stager)
            }
            await finished(outcome)
        }
    }

    /// The background part: encode, then stage.
    static func produce(_ copy: StateHandoff, index: UInt64, stager: (any SnapshotStager)?) -> Outcome {
        let clock = ContinuousClock()
        let started = clock.now
        var data: [UInt8]
        guard let state = copy.take() else {
            // Never: each handoff is made for one snapshot. Failing (the node stops) is the
            // only safe answer; an empty state would be compacted to and lose every lease.
            return .failed(index: index, message: "the state for the snapshot at index \(index) was already taken")
        }
        do throws(LeaseStateMachine.EncodingError) {
            // The last use of `state`: its tables are released here, on this thread.
            data = try state.snapshot()
        } catch {
            return .failed(index: index, message: "the snapshot at index \(index) could not be encoded (\(error.message))")
        }
        let encoded = clock.now
        var staged: StagedSnapshot?
        if let stager {
            do {
                staged = try stager.stage(index: index, data: data)
            } catch {
                return .failed(index: index, message: "the snapshot at index \(index) could not be written (\(error))")
            }
        }
        // Staged: the file holds the bytes, and they are freed here, not on the store.
        let size = data.count
        let stagedAt = clock.now
        if staged != nil { data = [] }
        return .encoded(index: index, data: data, size: size, staged: staged,
                        encoding: encoded - started, staging: stagedAt - encoded)
    }

    /// Records a finished snapshot, on the store's isolation: compacts the in-memory log and
    /// records the snapshot in storage (the staged file, or the bytes if there is none).
    mutating func finish(
        _ outcome: Outcome, node: inout RaftNode, storage: StorageHandle, logger: Logger
    ) -> Action {
        inFlight = nil
        switch outcome {
        case .failed(_, let message):
            return .poison(message)
        case .encoded(let index, let data, let size, let staged, let encoding, let staging):
            // A staged snapshot comes without its bytes: only the stager can read them back.
            if staged != nil && storage.snapshotStager == nil {
                return .poison("the snapshot at index \(index) was staged by a storage that cannot read it back")
            }
            let clock = ContinuousClock()
            let started = clock.now
            let snapshot: Snapshot
            do {
                snapshot = try node.compact(appliedIndex: index, data: data)
                // A staged snapshot's bytes stay in its file: the core reads them back if a
                // follower needs them, instead of holding a copy of the state.
                if let staged, let stager = storage.snapshotStager {
                    node.releaseSnapshotData(readBackWith: stager.reader(for: staged))
                }
            } catch {
                // The core refused (e.g. a newer snapshot was installed from the leader
                // meanwhile): harmless, try again after the next threshold.
                if let staged { storage.snapshotStager?.discard(staged) }
                logger.debug("snapshot skipped", metadata: ["index": "\(index)", "error": "\(error)"])
                return .checkAgain
            }
            let compacted = clock.now
            do {
                try storage.compact(to: snapshot, staged: staged)
            } catch {
                return .poison("the snapshot at index \(index) could not be written (\(error))")
            }
            let recorded = clock.now
            // Only the record (and, without a stager, the bytes) was written on the store's
            // isolation; encoding and the file were not.
            logger.info("snapshot taken", metadata: [
                "index": "\(index)", "bytes": "\(size)", "file": "\(staged?.name ?? "none")",
                "encode_ms": "\(Self.milliseconds(encoding))", "file_ms": "\(Self.milliseconds(staging))",
                "write_ms": "\(Self.milliseconds(clock.now - started))",
                // write_ms split: the in-memory log, then the storage's record.
                "log_ms": "\(Self.milliseconds(compacted - started))", "record_ms": "\(Self.milliseconds(recorded - compacted))",
            ])
            return .checkAgain
        }
    }

    /// Drops a finished snapshot without recording it (the store stopped meanwhile); its
    /// staged file, if any, is removed.
    mutating func abandon(_ outcome: Outcome, stager: (any SnapshotStager)?) {
        inFlight = nil
        if case .encoded(_, _, _, let staged?, _, _) = outcome { stager?.discard(staged) }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

/// The copy of the state a snapshot encodes, handed to the background once and taken out by
/// the encoder: when encoding ends nothing else holds it, so the tables it alone still
/// references (every shard and chunk the store wrote to meanwhile) are freed right there, on
/// the snapshot's thread.
final class StateHandoff: Sendable {
    private let state: Mutex<LeaseStateMachine?>

    init(_ state: LeaseStateMachine) {
        self.state = Mutex(state)
    }

    /// The state, once; nil if it was taken already.
    func take() -> LeaseStateMachine? {
        state.withLock { held in
            defer { held = nil }
            return held
        }
    }
}
