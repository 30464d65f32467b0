import Raft

/// The checksums stored next to each row, and the encoding of membership sets.
///
/// Integers are fed to the CRC as little-endian bytes, so a checksum does not depend on how
/// SQLite stores the columns.
enum RecordChecksum {
    /// CRC-32 over `index | term | kind | data` (8 + 8 + 1 bytes, then the data).
    static func entry(index: UInt64, term: UInt64, kind: UInt8, data: [UInt8]) -> UInt32 {
        var crc = CRC32()
        crc.update(littleEndian: index)
        crc.update(littleEndian: term)
        crc.update(byte: kind)
        crc.update(data)
        return crc.value
    }

    /// CRC-32 over `term | vote | commit`.
    static func hardState(_ state: HardState) -> UInt32 {
        var crc = CRC32()
        crc.update(littleEndian: state.term)
        crc.update(littleEndian: state.vote)
        crc.update(littleEndian: state.commit)
        return crc.value
    }

    /// CRC-32 over `index | term | len(voters) | voters | len(learners) | learners | data`,
    /// where the membership blobs are the encoded forms stored in the row.
    static func snapshot(index: UInt64, term: UInt64, voters: [UInt8], learners: [UInt8], data: [UInt8]) -> UInt32 {
        var crc = CRC32()
        crc.update(littleEndian: index)
        crc.update(littleEndian: term)
        crc.update(littleEndian: UInt64(voters.count))
        crc.update(voters)
        crc.update(littleEndian: UInt64(learners.count))
        crc.update(learners)
        crc.update(data)
        return crc.value
    }
}

/// Encodes a set of node ids as sorted 8-byte little-endian integers (deterministic, so the
/// checksum of a snapshot row is too).
enum NodeSetCoding {
    static func encode(_ nodes: Set<NodeID>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(nodes.count * 8)
        for node in nodes.sorted() {
            withUnsafeBytes(of: node.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    /// Decodes ``encode(_:)``'s output; `nil` if the length is not a multiple of 8.
    static func decode(_ bytes: [UInt8]) -> Set<NodeID>? {
        guard bytes.count % 8 == 0 else { return nil }
        var nodes = Set<NodeID>()
        var offset = 0
        while offset < bytes.count {
            var value: UInt64 = 0
            for shift in 0..<8 {
                value |= UInt64(bytes[offset + shift]) << (8 * UInt64(shift))
            }
            nodes.insert(value)
            offset += 8
        }
        return nodes
    }
}
