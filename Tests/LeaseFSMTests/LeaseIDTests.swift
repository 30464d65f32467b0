import Testing
@testable import LeaseFSM

/// `LeaseID` holds ids in the assigned form as integers and any other id as
/// text; these pin down that an id behaves exactly as its string would.
@Suite("Lease ids")
struct LeaseIDTests {
    /// Ids in both forms, and strings one character away from the compact form.
    static func sampleStrings(count: Int, seed: UInt64) -> [String] {
        var numbers = ChunkedStorageTests.Numbers(state: seed)
        let hex = Array("0123456789abcdef")
        func digits(_ n: Int) -> String { String((0..<n).map { _ in hex[numbers.next(16)] }) }
        var out: [String] = []
        for i in 0..<count {
            switch i % 6 {
            case 0, 1: out.append(digits(16) + "-" + digits(8))                    // assigned form
            case 2: out.append(digits(16) + "-" + digits(numbers.next(9)))    // other suffix lengths
            case 3: out.append(digits(16) + "-" + digits(7) + "G")                // not lowercase hex
            case 4: out.append("lease-\(numbers.next(1000))")                      // arbitrary text
            default: out.append(String(digits(16).prefix(15)) + "-" + digits(8) + "x") // wrong lengths
            }
        }
        // Shared prefixes, so ordering is decided late in the string.
        out += ["0000000000000001-00000000", "0000000000000001-0000000", "0000000000000001-000000000",
                "0000000000000001-ffffffff", "0000000000000001-fffffff", "0000000000000001-", "0000000000000001"]
        return out
    }

    @Test("an id's string round-trips, from a string, from UTF-8 bytes, and when assigned from an index and suffix")
    func roundTrip() {
        for string in Self.sampleStrings(count: 600, seed: 1) {
            #expect(LeaseID(string).rawValue == string)
            #expect(LeaseID(string).description == string)
            let fromBytes = string.utf8.withContiguousStorageIfAvailable { LeaseID(utf8: UnsafeRawBufferPointer($0)) }
            #expect(fromBytes == LeaseID(string))
            LeaseID(string).withUTF8 { #expect(String(decoding: $0, as: UTF8.self) == string) }
        }
        #expect(LeaseID(index: 0x1f3, suffix: "0000beef") == LeaseID("00000000000001f3-0000beef"))
        #expect(LeaseID(index: 0x1f3, suffix: "BEEF0000").rawValue == "00000000000001f3-BEEF0000")
        #expect(LeaseID(index: .max, suffix: "ffffffff").rawValue == "ffffffffffffffff-ffffffff")
    }

    @Test("ids are equal, hash and sort exactly as their strings do, whichever form each is held in")
    func behavesAsItsString() {
        let strings = Self.sampleStrings(count: 600, seed: 2)
        let ids = strings.map(LeaseID.init)
        #expect(ids.sorted().map(\.rawValue) == strings.sorted())
        for (a, sa) in zip(ids, strings).prefix(120) {
            for (b, sb) in zip(ids, strings) {
                #expect((a == b) == (sa == sb))
                #expect((a < b) == (sa < sb), "\(sa) < \(sb)")
                if a == b { #expect(a.hashValue == b.hashValue) }
            }
        }
        #expect(Set(ids).count == Set(strings).count)
    }

    @Test("a lease id takes less room inline than a string (and an assigned one no heap storage)")
    func compactLayout() {
        #expect(MemoryLayout<LeaseID>.size < MemoryLayout<String>.size)
        #expect(MemoryLayout<LeaseID?>.size <= MemoryLayout<String>.size)
        #expect(MemoryLayout<LeaseIDSet>.size <= 16)
    }
}
