import RaftSQLite
import Testing

@Suite struct CRC32Tests {
    @Test func knownVectors() {
        #expect(CRC32.checksum([]) == 0)
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
    }

    @Test func incrementalEqualsOneShot() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var crc = CRC32()
        crc.update(Array(bytes[0..<123]))
        crc.update(Array(bytes[123...]))
        #expect(crc.value == CRC32.checksum(bytes))
    }

    /// The eight-bytes-a-step loop against the definition (one bit at a time), for every
    /// length up to 70 at every start offset up to 8 (unaligned loads, and the byte tail).
    @Test func slicedLoopMatchesBitwiseDefinition() {
        func bitwise(_ bytes: ArraySlice<UInt8>) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            return crc ^ 0xFFFF_FFFF
        }
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<80).map { _ -> UInt8 in
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: seed >> 33)
        }
        for offset in 0...8 {
            for length in 0...70 {
                let slice = bytes[offset..<(offset + length)]
                var crc = CRC32()
                slice.withUnsafeBytes { crc.update($0) }
                #expect(crc.value == bitwise(slice), "offset \(offset), length \(length)")
            }
        }
    }

    @Test func littleEndianIntegers() {
        var crc = CRC32()
        crc.update(littleEndian: UInt64(0x0807_0605_0403_0201))
        #expect(crc.value == CRC32.checksum([1, 2, 3, 4, 5, 6, 7, 8]))
    }
}
