import Testing
@testable import LeaseFSM

/// `ObjectKey` holds short ASCII ids inline and any other id as text; these
/// pin down that a key behaves exactly as its `(type, id)` pair would.
@Suite("Object keys")
struct ObjectKeyTests {
    /// Ids on both sides of the inline limit, non-ASCII ids, and ids that are
    /// canonically equal to an ASCII one (U+037E is ";", U+212A is "K",
    /// "e" + U+0301 is "é"), so that equality crosses the two forms.
    static let sampleIDs: [String] = {
        var ids = ["", "a", "a;", "a\u{37E}", "K", "\u{212A}", "K;", "\u{212A}\u{37E}", "é", "e\u{301}",
                   "row-1", "row-10", "row-2", "Row-1", "row-1 ", "\u{0}", "\u{7F}", "~", "ß", "日本"]
        for length in [14, 15, 16, 20, 29, 30, 31, 32, 64] {
            ids.append(String(repeating: "x", count: length))
            ids.append(String(repeating: "x", count: length - 1) + "y")
            ids.append(String(repeating: "x", count: length - 1) + "\u{37E}")
            ids.append(String(repeating: "x", count: length - 1) + ";")
        }
        var numbers = ChunkedStorageTests.Numbers(state: 7)
        let alphabet = Array("abc-/:;K09")
        for _ in 0..<80 {
            ids.append(String((0..<numbers.next(34)).map { _ in alphabet[numbers.next(alphabet.count)] }))
        }
        return ids
    }()

    static let types: [ObjectType] = [.unknown, .databaseRow, .custom]

    static var sampleKeys: [(key: ObjectKey, type: ObjectType, id: String)] {
        types.flatMap { type in sampleIDs.map { (ObjectKey(type: type, id: $0), type, $0) } }
    }

    @Test("type and id round-trip, from a string and from UTF-8 bytes")
    func roundTrip() {
        for (key, type, id) in Self.sampleKeys {
            #expect(key.type == type)
            #expect(key.id == id)
            #expect(key.description == "\(type.wireName)/\(id)")
            var copy = id
            let fromBytes = copy.withUTF8 { ObjectKey(type: type, utf8: $0) }
            #expect(fromBytes == key)
            #expect(fromBytes.id == id)
            key.withUTF8 { #expect(Array($0) == Array(id.utf8)) }
        }
    }

    @Test("keys are equal, hash and sort exactly as their (type, id) pairs do, whichever form each is held in")
    func behavesAsItsPair() {
        let samples = Self.sampleKeys
        for a in samples {
            for b in samples {
                #expect((a.key == b.key) == (a.type == b.type && a.id == b.id), "\(a.id) == \(b.id)")
                #expect((a.key < b.key) == ((a.type, a.id) < (b.type, b.id)), "\(a.id) < \(b.id)")
                if a.key == b.key { #expect(a.key.hashValue == b.key.hashValue, "\(a.id) hashes as \(b.id)") }
            }
        }
        #expect(ObjectKey(type: .databaseRow, id: "a;") == ObjectKey(type: .databaseRow, id: "a\u{37E}"))
        struct Pair: Hashable { var type: ObjectType; var id: String }
        #expect(Set(samples.map(\.key)).count == Set(samples.map { Pair(type: $0.type, id: $0.id) }).count)
    }

    @Test("changing the type or the id gives the key of the new pair")
    func mutation() {
        var key = ObjectKey(type: .databaseRow, id: "short")
        key.type = .cacheEntry
        #expect(key == ObjectKey(type: .cacheEntry, id: "short"))
        key.id = String(repeating: "long", count: 10)
        #expect(key == ObjectKey(type: .cacheEntry, id: String(repeating: "long", count: 10)))
        #expect(key.heapBytes > 0)
        key.id = "é"
        #expect(key.type == .cacheEntry && key.id == "é")
    }

    @Test("a key is 32 bytes, and an id of up to 30 ASCII bytes costs no heap")
    func compactLayout() {
        #expect(MemoryLayout<ObjectKey>.size == 32)
        #expect(ObjectKey(type: .custom, id: String(repeating: "z", count: ObjectKey.inlineCapacity)).heapBytes == 0)
        #expect(ObjectKey(type: .custom, id: String(repeating: "z", count: ObjectKey.inlineCapacity + 1)).heapBytes > 0)
        #expect(ObjectKey(type: .custom, id: "é").heapBytes > 0)
    }
}
