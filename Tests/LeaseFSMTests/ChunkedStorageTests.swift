import Testing
@testable import LeaseFSM

/// The chunked tables behind the lease state (``ChunkedArray``,
/// ``ShardedDictionary``) behave exactly as `Array` and `Dictionary`, value
/// semantics included: a snapshot's copy never sees later writes.
@Suite("Chunked storage of the lease state")
struct ChunkedStorageTests {
    /// A fixed, reproducible stream of numbers (SplitMix64).
    struct Numbers {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    @Test("a chunked array matches an array through appends, writes and removals across many chunks")
    func chunkedArrayMatchesArray() {
        var numbers = Numbers(state: 7)
        var chunked = ChunkedArray<Int>()
        var plain: [Int] = []
        for step in 0..<30_000 {
            if plain.isEmpty || numbers.next(4) != 0 {
                chunked.append(step)
                plain.append(step)
            } else {
                let i = numbers.next(plain.count)
                chunked[i] = -step
                plain[i] = -step
            }
        }
        #expect(chunked.count == plain.count)
        #expect(Array(chunked) == plain)
        #expect(chunked.capacity >= chunked.count)
        chunked.removeAll { $0 % 3 == 0 }
        plain.removeAll { $0 % 3 == 0 }
        #expect(Array(chunked) == plain)
        #expect(Array(ChunkedArray(plain)) == plain)
    }

    @Test("writing to a copy of a chunked array leaves the original as it was")
    func chunkedArrayCopiesOnWrite() {
        let original = ChunkedArray(0..<10_000)
        var copy = original
        copy[0] = -1
        copy[9_999] = -2
        copy.append(10_000)
        #expect(Array(original) == Array(0..<10_000))
        #expect(copy[0] == -1 && copy[9_999] == -2 && copy.count == 10_001)
        #expect(Array(copy[1..<9_999]) == Array(1..<9_999))
    }

    @Test("a sharded dictionary matches a dictionary through inserts, updates and removals")
    func shardedDictionaryMatchesDictionary() {
        var numbers = Numbers(state: 11)
        var sharded = ShardedDictionary<String, Int>()
        var plain: [String: Int] = [:]
        for step in 0..<20_000 {
            let key = "k\(numbers.next(5_000))"
            switch numbers.next(3) {
            case 0:
                #expect(sharded.removeValue(forKey: key) == plain.removeValue(forKey: key))
            case 1:
                sharded[key] = nil
                plain[key] = nil
            default:
                sharded[key] = step
                plain[key] = step
            }
            #expect(sharded.count == plain.count)
        }
        #expect(Set(sharded.keys) == Set(plain.keys))
        #expect(sharded.values.sorted() == plain.values.sorted())
        #expect(Dictionary(uniqueKeysWithValues: sharded.map { ($0.key, $0.value) }) == plain)
        for (key, value) in plain { #expect(sharded[key] == value) }
        #expect(sharded["absent"] == nil)
    }

    @Test("sharded dictionaries are equal as maps, and a copy does not see writes to the original")
    func shardedDictionaryEqualityAndCopies() {
        var a = ShardedDictionary<Int, String>()
        var b = ShardedDictionary<Int, String>()
        for i in 0..<1_000 { a[i] = "v\(i)" }
        for i in (0..<1_000).reversed() { b[i] = "v\(i)" }
        #expect(a == b)
        let snapshot = a
        a[5] = "changed"
        a[2_000] = "new"
        a.removeValue(forKey: 7)
        #expect(snapshot == b, "the copy kept the old entries")
        #expect(a != b)
        #expect(snapshot[5] == "v5" && snapshot[7] == "v7" && snapshot[2_000] == nil)
    }

    @Test("a sharded dictionary that grows past splitAt keeps every entry, and copies from either side of the split stay apart")
    func shardedDictionarySplits() {
        let size = ShardedDictionary<Int, Int>.splitAt + 100
        var table = ShardedDictionary<Int, Int>()
        var plain: [Int: Int] = [:]
        for i in 0..<(size - 200) { table[i] = i; plain[i] = i }
        let beforeSplit = table
        let plainBefore = plain
        for i in (size - 200)..<size { table[i] = -i; plain[i] = -i }
        let afterSplit = table
        table[3] = 33
        table.removeValue(forKey: 4)
        plain[3] = 33
        plain[4] = nil
        for (key, value) in plain { #expect(table[key] == value) }
        #expect(table.count == plain.count && Set(table.keys) == Set(plain.keys))
        #expect(beforeSplit.count == plainBefore.count && plainBefore.allSatisfy { beforeSplit[$0.key] == $0.value })
        #expect(afterSplit[3] == 3 && afterSplit[4] == 4 && afterSplit.count == size)
        // Shrunk and rebuilt: one shard again, same entries.
        for i in 100..<size { table.removeValue(forKey: i) }
        let rebuilt = table.rebuilt()
        #expect(rebuilt == table && rebuilt.count == 99 && rebuilt.capacity == 99)
        var grown = rebuilt
        for i in 0..<size { grown[i] = i }
        #expect(grown.count == size && rebuilt.count == 99)
    }

    @Test("an empty sharded dictionary, never written or emptied, answers as an empty dictionary")
    func emptyShardedDictionary() {
        var fresh = ShardedDictionary<String, Int>()
        #expect(fresh["x"] == nil && fresh.isEmpty && fresh.keys.isEmpty && fresh.values.isEmpty)
        #expect(fresh.removeValue(forKey: "x") == nil)
        fresh["x"] = nil
        #expect(fresh.isEmpty && Array(fresh).isEmpty)
        var emptied = ShardedDictionary<String, Int>()
        emptied["y"] = 1
        emptied["y"] = nil
        #expect(emptied == fresh && emptied.count == 0)
    }

    @Test("rebuilding a sharded dictionary after removals keeps its entries and gives capacity back")
    func shardedDictionaryRebuilds() {
        var table = ShardedDictionary<Int, Int>()
        for i in 0..<10_000 { table[i] = i }
        #expect(table.capacity >= 10_000)
        for i in 10..<10_000 { table.removeValue(forKey: i) }
        #expect(table.capacity >= 10_000, "a dictionary keeps its capacity after removals")
        let rebuilt = table.rebuilt()
        #expect(rebuilt == table)
        #expect(rebuilt.count == 10 && rebuilt.capacity < 4096)
    }
}
