/// A dictionary split into ``shardCount`` smaller dictionaries by the keys'
/// hash, for the same reason as ``ChunkedArray``: a copy of the state
/// machine (the one a snapshot encodes) shares the shards, and a write to a
/// shared copy duplicates the table of shards and the one shard written
/// (about 1/4096 of the entries of a large table) instead of the whole
/// table, on the store's isolation.
///
/// Why 4,096: while a snapshot is encoded, every shard the store writes is
/// copied once. With 256 shards of a million-entry table each copy was about
/// 4,000 entries (a millisecond, mostly retaining their strings), and the
/// first hundred writes after a snapshot started each paid one per table:
/// applies of 40-180 ms. With 4,096 a copy is about 250 entries. A table of
/// at most ``splitAt`` entries stays in one shard.
///
/// Behaves as a dictionary: lookups, updates and removals by key; ``keys``,
/// ``values`` and iteration in no particular order (callers sort); equality
/// as a map.
struct ShardedDictionary<Key: Hashable, Value> {
    /// Shards of a large dictionary (a power of two).
    static var shardCount: Int { 1 << shardBits }
    private static var shardBits: Int { 12 }
    /// Entries a dictionary holds in a single shard; past this it splits into ``shardCount``.
    /// A small table (every state machine PostgreSQL mode builds per command, most tests')
    /// then costs what one dictionary does, and copying it whole is cheap anyway.
    static var splitAt: Int { 8192 }

    /// Empty until the first insert, then one dictionary, then (past ``splitAt`` entries)
    /// ``shardCount`` of them.
    private var shards: [[Key: Value]] = []
    /// The number of entries.
    private(set) var count = 0
    /// The largest ``count`` since the shards were built: dictionaries keep
    /// their capacity when entries are removed, so this is what they are
    /// sized for (summing 4,096 shards' capacities after every command would
    /// cost more than the command).
    private var highWater = 0

    init() {}

    /// The shard of `key` among `shardCount`: the top bits of its hash (a shard's dictionary
    /// buckets by the low bits of its own seeded hash).
    private static func shard(of key: Key) -> Int {
        Int(truncatingIfNeeded: UInt(bitPattern: key.hashValue) >> (UInt.bitWidth - shardBits))
    }

    /// Where `key` lives now.
    private func index(of key: Key) -> Int {
        shards.count == 1 ? 0 : Self.shard(of: key)
    }

    var isEmpty: Bool { count == 0 }

    subscript(key: Key) -> Value? {
        get { shards.isEmpty ? nil : shards[index(of: key)][key] }
        set {
            if let newValue {
                modify(key) { $0 = newValue }
            } else {
                removeValue(forKey: key)
            }
        }
    }

    /// Calls `body` with the value of `key` (nil if none) to read and change
    /// in place: one lookup, where a read and then a write look the key up
    /// (and hash it) twice each.
    mutating func modify<Result>(_ key: Key, _ body: (inout Value?) -> Result) -> Result {
        if shards.isEmpty { shards = [[:]] }
        var delta = 0
        let result = Self.modify(&shards[index(of: key)][key]) { value in
            let had = value != nil
            let result = body(&value)
            delta = (value != nil ? 1 : 0) - (had ? 1 : 0)
            return result
        }
        count += delta
        highWater = Swift.max(highWater, count)
        if count > Self.splitAt, shards.count == 1 { split() }
        return result
    }

    private static func modify<Result>(_ value: inout Value?, _ body: (inout Value?) -> Result) -> Result {
        body(&value)
    }

    /// Spreads the single shard over ``shardCount`` (once, when the table grows past ``splitAt``).
    private mutating func split() {
        var split = Array(repeating: [Key: Value](), count: Self.shardCount)
        for (key, value) in shards.first ?? [:] { split[Self.shard(of: key)][key] = value }
        shards = split
    }

    /// Removes the entry of `key`; returns its value, or nil if there was none.
    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        guard !shards.isEmpty, let removed = shards[index(of: key)].removeValue(forKey: key) else { return nil }
        count -= 1
        return removed
    }

    /// Every key, in no particular order.
    var keys: [Key] {
        var keys: [Key] = []
        keys.reserveCapacity(count)
        for shard in shards { keys.append(contentsOf: shard.keys) }
        return keys
    }

    /// Every value, in no particular order.
    var values: [Value] {
        var values: [Value] = []
        values.reserveCapacity(count)
        for shard in shards { values.append(contentsOf: shard.values) }
        return values
    }

    /// About how many entries the shards are sized for (see `highWater`).
    var capacity: Int { highWater }

    /// Makes room for `minimumCapacity` entries: in one shard if that many fit in one, else in
    /// every shard for its share (with a margin: keys do not spread exactly evenly).
    mutating func reserveCapacity(_ minimumCapacity: Int) {
        if shards.isEmpty { shards = [[:]] }
        if minimumCapacity > Self.splitAt, shards.count == 1 { split() }
        if shards.count == 1 {
            shards[0].reserveCapacity(minimumCapacity)
        } else {
            let perShard = minimumCapacity / Self.shardCount + minimumCapacity / (8 * Self.shardCount) + 1
            for index in shards.indices { shards[index].reserveCapacity(perShard) }
        }
        highWater = Swift.max(highWater, minimumCapacity)
    }

    /// The same entries in storage sized for them (gives memory back after
    /// most entries were removed): one shard again if they fit in one.
    func rebuilt() -> ShardedDictionary {
        var copy = ShardedDictionary()
        copy.reserveCapacity(count)
        if copy.shards.count == 1 {
            for shard in shards { for (key, value) in shard { copy.shards[0][key] = value } }
        } else {
            for shard in shards { for (key, value) in shard { copy.shards[Self.shard(of: key)][key] = value } }
        }
        copy.count = count
        copy.highWater = count
        return copy
    }
}

extension ShardedDictionary: Sequence {
    /// Every entry, as a dictionary's elements, in no particular order.
    func makeIterator() -> some IteratorProtocol<(key: Key, value: Value)> {
        shards.lazy.flatMap { $0 }.makeIterator()
    }

    var underestimatedCount: Int { count }
}

extension ShardedDictionary: Sendable where Key: Sendable, Value: Sendable {}

extension ShardedDictionary: Equatable where Value: Equatable {
    /// Equal when they map the same keys to equal values.
    static func == (lhs: ShardedDictionary, rhs: ShardedDictionary) -> Bool {
        lhs.count == rhs.count && lhs.allSatisfy { rhs[$0.key] == $0.value }
    }
}
