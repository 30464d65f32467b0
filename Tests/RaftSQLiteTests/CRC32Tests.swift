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

    @Test func littleEndianIntegers() {
        var crc = CRC32()
        crc.update(littleEndian: UInt64(0x0807_0605_0403_0201))
        #expect(crc.value == CRC32.checksum([1, 2, 3, 4, 5, 6, 7, 8]))
    }
}
