/// Everything a node restores on restart.
public struct PersistedState: Sendable, Equatable {
    public var hardState: HardState
    /// Latest snapshot, or an empty one (index 0) if none was ever taken.
    public var snapshot: Snapshot
    /// Entries after `snapshot.metadata.index`, contiguous and in index order.
    public var entries: [Entry]

    public init(hardState: HardState = HardState(), snapshot: Snapshot = Snapshot(), entries: [Entry] = []) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
    }
}

/// One ready-set's worth of durable writes. A storage writes it atomically (one transaction,
/// one fsync: group commit) or throws and writes nothing.
public struct PersistBatch: Sendable, Equatable {
    /// New hard state, if it changed.
    public var hardState: HardState?
    /// A snapshot received from the leader to install. Applied before `entries`: the log up to
    /// and including `snapshot.metadata.index` is discarded.
    public var snapshot: Snapshot?
    /// Entries to append. If the first entry's index is at or below the stored last index, the
    /// stored suffix from that index on is replaced (conflicting entries are truncated).
    public var entries: [Entry]
    /// Whether the batch must be durable when ``RaftStorage/persist(_:)`` returns. False only
    /// for a batch whose sole change is the commit index (see ``Ready/mustSync``): a storage
    /// may then write it without a flush, as long as it stays atomic and ordered before every
    /// later batch (a crash may lose it, never tear it or keep a later batch without it).
    public var mustSync: Bool

    public init(hardState: HardState? = nil, snapshot: Snapshot? = nil, entries: [Entry] = [], mustSync: Bool = true) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
        self.mustSync = mustSync
    }

    public var isEmpty: Bool { hardState == nil && snapshot == nil && entries.isEmpty }
}

/// Errors a storage reports. After any of them the node must stop acknowledging: the write may
/// or may not have reached the disk.
public enum RaftStorageError: Error, Sendable, Equatable {
    /// A write, commit or fsync failed.
    case writeFailed(String)
    /// Stored data failed its checksum or is not contiguous (torn or corrupted tail).
    case corrupted(String)
    /// The storage was closed or poisoned by an earlier failure.
    case unavailable(String)
}

/// Durable home of one node's log, hard state and snapshot.
///
/// The Raft core never calls a storage; its driver does: it loads once at start, then hands every
/// ready-set's `PersistBatch` to `persist` *before* sending the messages of that ready-set.
/// Implementations are used by one driver at a time and need not be thread-safe.
public protocol RaftStorage: AnyObject {
    /// Reads back everything persisted so far. Throws ``RaftStorageError/corrupted(_:)`` if a
    /// checksum fails or the log is not contiguous; never returns a silently truncated log.
    func load() throws(RaftStorageError) -> PersistedState

    /// Writes `batch` atomically and, when ``PersistBatch/mustSync`` is set, durably (group
    /// commit). On error nothing of `batch` may be assumed written, and the storage refuses
    /// further writes.
    func persist(_ batch: PersistBatch) throws(RaftStorageError)

    /// Saves a snapshot the local application took at `snapshot.metadata.index` and discards the
    /// log entries up to and including that index (log compaction, Raft §7).
    func compact(to snapshot: Snapshot) throws(RaftStorageError)

    /// Something that writes a snapshot's bytes durably *off* the driver's isolation (a file,
    /// fsynced), or `nil` if this storage keeps snapshots only inside ``compact(to:)``.
    ///
    /// The driver stages the bytes first (slow: may take seconds for a large state, and needs
    /// no access to the storage itself), then calls ``compact(to:staged:)`` on its isolation,
    /// which only records the staged snapshot and discards the log (a short transaction).
    var snapshotStager: (any SnapshotStager)? { get }

    /// Like ``compact(to:)`` for a snapshot whose bytes `staged` already holds durably: records
    /// it and discards the log up to its index in one short write. A crash before this returns
    /// leaves the previous snapshot and the whole log; after it, the new snapshot and the
    /// compacted log.
    func compact(to snapshot: Snapshot, staged: StagedSnapshot) throws(RaftStorageError)

    /// Reads the recorded snapshot's bytes back from durable storage, or `nil` if this storage
    /// keeps no snapshot it can read back that way (used at start-up; after a compaction the
    /// driver reads the staged snapshot with ``SnapshotStager/reader(for:)``). A driver hands it to
    /// ``RaftNode/releaseSnapshotData(readBackWith:)`` so the core need not keep the bytes.
    /// The reader runs on the driver's isolation and returns nil on any failure.
    var recordedSnapshotReader: (@Sendable () -> [UInt8]?)? { get }
}

extension RaftStorage {
    /// No reader: the core keeps the latest snapshot's bytes in memory.
    public var recordedSnapshotReader: (@Sendable () -> [UInt8]?)? { nil }
}

extension RaftStorage {
    /// Default: no staging; snapshots are written by ``compact(to:)``.
    public var snapshotStager: (any SnapshotStager)? { nil }

    /// Default: ignores `staged` and writes the snapshot with ``compact(to:)``.
    public func compact(to snapshot: Snapshot, staged: StagedSnapshot) throws(RaftStorageError) {
        try compact(to: snapshot)
    }
}

/// Writes snapshot bytes durably without the storage's driver (see
/// ``RaftStorage/snapshotStager``). Safe to call from any task, concurrently with the driver's
/// use of the storage.
public protocol SnapshotStager: Sendable {
    /// Writes `data`, the snapshot at log index `index`, durably (written, fsynced, renamed into
    /// place) and returns its token for ``RaftStorage/compact(to:staged:)``. Until it is
    /// recorded there the staged bytes are not part of the persisted state: a restart ignores
    /// and removes them.
    func stage(index: UInt64, data: [UInt8]) throws(RaftStorageError) -> StagedSnapshot

    /// Removes a staged snapshot that will not be recorded (e.g. the core refused to compact).
    func discard(_ staged: StagedSnapshot)

    /// Reads `staged`'s bytes back, verified; nil on any failure (for
    /// ``RaftNode/releaseSnapshotData(readBackWith:)``).
    func reader(for staged: StagedSnapshot) -> @Sendable () -> [UInt8]?
}

/// A durably written, not yet recorded snapshot (see ``SnapshotStager``).
public struct StagedSnapshot: Sendable, Hashable {
    /// The log index the snapshot covers.
    public var index: UInt64
    /// The name the stager gave the bytes (e.g. a file name in the data directory).
    public var name: String
    /// Byte count of the snapshot data.
    public var size: UInt64
    /// CRC-32 of the snapshot data.
    public var checksum: UInt32

    public init(index: UInt64, name: String, size: UInt64, checksum: UInt32) {
        self.index = index
        self.name = name
        self.size = size
        self.checksum = checksum
    }
}
