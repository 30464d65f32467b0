/// A dictionary split into ``shardCount`` smaller dictionaries by the keys'
/// hash, for the same reason as ``ChunkedArray``: a copy of the state
/// machine (the one a snapshot encodes) shares the shards, and a write to a
/// shared copy duplicates the table of shards and the one shard written
/// (about 1/256 of the entries) instead of the whole table, on the store's
/// isolation.
///
/// Behaves as a dictionary: lookups, updates and removals by key; ``keys``,
/// ``values`` and iteration in no particular order (callers sort); equality
/// as a map.
struct ShardedDictionary<Key: Hashable, Value> {
    /// Shards per dictionary (a power of two).
    static var shardCount: Int { 256 }

    /// Empty until the first insert (a state machine per PostgreSQL command is built and
    /// dropped often), then ``shardCount`` dictionaries.
    private var shards: [[Key: Value]] = []
    /// The number of entries.
    private(set) var count = 0
    /// The largest ``count`` since the shards were built: dictionaries keep
    /// their capacity when entries are removed, so this is what they are
    /// sized for (summing 256 shards' capacities after every command would
    /// cost more than the command).
    private var highWater = 0

    init() {}

    /// The shard of `key`: the top bits of its hash (a shard's dictionary
    /// buckets by the low bits of its own seeded hash).
    private static func shard(of key: Key) -> Int {
        Int(truncatingIfNeeded: UInt(bitPattern: key.hashValue) >> (UInt.bitWidth - 8))
    }

    var isEmpty: Bool { count == 0 }

    subscript(key: Key) -> Value? {
        get { shards.isEmpty ? nil : shards[Self.shard(of: key)][key] }
        set {
            if shards.isEmpty {
                guard newValue != nil else { return }
                shards = Array(repeating: [:], count: Self.shardCount)
            }
            let shard = Self.shard(of: key)
            if let newValue {
                if shards[shard].updateValue(newValue, forKey: key) == nil {
                    count += 1
                    highWater = Swift.max(highWater, count)
                }
            } else if shards[shard].removeValue(forKey: key) != nil {
                count -= 1
            }
        }
    }

    /// Calls `body` with the value of `key` (nil if none) to read and change
    /// in place: one lookup, where a read and then a write look the key up
    /// (and hash it) twice each.
    mutating func modify<Result>(_ key: Key, _ body: (inout Value?) -> Result) -> Result {
        if shards.isEmpty { shards = Array(repeating: [:], count: Self.shardCount) }
        var delta = 0
        let result = Self.modify(&shards[Self.shard(of: key)][key]) { value in
            let had = value != nil
            let result = body(&value)
            delta = (value != nil ? 1 : 0) - (had ? 1 : 0)
            return result
        }
        count += delta
        highWater = Swift.max(highWater, count)
        return result
    }

    private static func modify<Result>(_ value: inout Value?, _ body: (inout Value?) -> Result) -> Result {
        body(&value)
    }

    /// Removes the entry of `key`; returns its value, or nil if there was none.
    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        guard !shards.isEmpty, let removed = shards[Self.shard(of: key)].removeValue(forKey: key) else { return nil }
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

    /// Sizes every shard for its share of `minimumCapacity` entries (with a
    /// margin: keys do not spread exactly evenly).
    mutating func reserveCapacity(_ minimumCapacity: Int) {
        let perShard = minimumCapacity / Self.shardCount + minimumCapacity / (8 * Self.shardCount) + 1
        if shards.isEmpty { shards = Array(repeating: [:], count: Self.shardCount) }
        for index in shards.indices { shards[index].reserveCapacity(perShard) }
        highWater = Swift.max(highWater, minimumCapacity)
    }

    /// The same entries in shards sized for them (gives memory back after
    /// most entries were removed).
    func rebuilt() -> ShardedDictionary {
        var copy = self
        for index in copy.shards.indices {
            var shard = [Key: Value](minimumCapacity: copy.shards[index].count)
            for (key, value) in copy.shards[index] { shard[key] = value }
            copy.shards[index] = shard
        }
        copy.highWater = copy.count
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
