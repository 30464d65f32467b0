/// A snapshot being received chunk by chunk. Chunks may arrive out of order or twice (the
/// transport is not assumed to be ordered); the snapshot is complete once the received chunks
/// cover every byte.
struct SnapshotReceiver: Sendable, Hashable {
    var term: UInt64
    var from: NodeID
    var metadata: SnapshotMetadata
    var totalSize: UInt64
    /// Received chunks by offset.
    var chunks: [UInt64: [UInt8]] = [:]

    init(term: UInt64, from: NodeID, chunk: SnapshotChunk) {
        self.term = term
        self.from = from
        self.metadata = chunk.metadata
        self.totalSize = chunk.totalSize
    }

    func belongs(_ chunk: SnapshotChunk, term: UInt64, from: NodeID) -> Bool {
        self.term == term && self.from == from && metadata == chunk.metadata && totalSize == chunk.totalSize
    }

    mutating func add(_ chunk: SnapshotChunk) {
        guard chunk.offset + UInt64(chunk.data.count) <= totalSize else { return }
        chunks[chunk.offset] = chunk.data
    }

    /// The whole snapshot, if every byte has arrived.
    func assembled() -> [UInt8]? {
        var data: [UInt8] = []
        data.reserveCapacity(Int(totalSize))
        while UInt64(data.count) < totalSize {
            guard let next = chunks[UInt64(data.count)], !next.isEmpty else { return nil }
            data.append(contentsOf: next)
        }
        return data
    }
}
