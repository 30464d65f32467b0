/// A snapshot being received chunk by chunk. Chunks may arrive out of order or twice (the
/// transport is not assumed to be ordered); the snapshot is complete once the received chunks
/// cover every byte.
///
/// Everything here comes from the network: the declared size is never trusted for an allocation
/// (admission bounds it by ``RaftConfig/maxSnapshotBytes``, and memory is only reserved for bytes
/// actually received), and the chunks held never add up to more than the declared size.
struct SnapshotReceiver: Sendable, Hashable {
    var term: UInt64
    var from: NodeID
    var metadata: SnapshotMetadata
    var totalSize: UInt64
    /// Received chunks by offset.
    var chunks: [UInt64: [UInt8]] = [:]
    /// Bytes held in `chunks`; never above `totalSize`.
    private(set) var receivedBytes: UInt64 = 0

    init(term: UInt64, from: NodeID, chunk: SnapshotChunk) {
        self.term = term
        self.from = from
        self.metadata = chunk.metadata
        self.totalSize = chunk.totalSize
    }

    func belongs(_ chunk: SnapshotChunk, term: UInt64, from: NodeID) -> Bool {
        self.term == term && self.from == from && metadata == chunk.metadata && totalSize == chunk.totalSize
    }

    /// True if `chunk` lies inside the snapshot and, replacing a chunk at the same offset, keeps
    /// the bytes held within the snapshot's size (overlapping chunks at other offsets would not).
    func fits(_ chunk: SnapshotChunk) -> Bool {
        let count = UInt64(chunk.data.count)
        guard chunk.offset <= totalSize, count <= totalSize - chunk.offset else { return false }
        let replaced = UInt64(chunks[chunk.offset]?.count ?? 0)
        return receivedBytes - replaced <= totalSize - count
    }

    /// Stores `chunk`; returns false (storing nothing) if it does not ``fits(_:)``.
    @discardableResult
    mutating func add(_ chunk: SnapshotChunk) -> Bool {
        guard fits(chunk) else { return false }
        let replaced = UInt64(chunks[chunk.offset]?.count ?? 0)
        receivedBytes = receivedBytes - replaced + UInt64(chunk.data.count)
        chunks[chunk.offset] = chunk.data
        return true
    }

    /// The whole snapshot, if every byte has arrived.
    func assembled() -> [UInt8]? {
        // Chunks at distinct offsets that together hold `totalSize` bytes either tile the
        // snapshot exactly or leave a gap; only then is the walk below worth doing.
        guard receivedBytes == totalSize else { return nil }
        var data: [UInt8] = []
        data.reserveCapacity(Int(receivedBytes)) // bytes this process already holds
        while UInt64(data.count) < totalSize {
            guard let next = chunks[UInt64(data.count)], !next.isEmpty else { return nil }
            data.append(contentsOf: next)
        }
        return data
    }
}
