/// One piece of a snapshot sent with ``MessageType/snapshot``. Chunks are sent in order with a fixed
/// size; the follower reassembles them and installs the snapshot when the last one arrives.
public struct SnapshotChunk: Sendable, Hashable {
    /// Metadata of the whole snapshot (same in every chunk).
    public var metadata: SnapshotMetadata
    /// Byte offset of `data` within the snapshot.
    public var offset: UInt64
    /// Size of the whole snapshot in bytes.
    public var totalSize: UInt64
    /// This chunk's bytes.
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, offset: UInt64, totalSize: UInt64, data: [UInt8]) {
        self.metadata = metadata
        self.offset = offset
        self.totalSize = totalSize
        self.data = data
    }

    /// True for the chunk that completes the snapshot.
    public var isLast: Bool {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(data.count))
        return !overflow && end == totalSize
    }
}
