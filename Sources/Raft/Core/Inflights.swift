/// The window of append messages in flight to one follower (pipelining with a bound).
///
/// Holds the last index of each unacknowledged append, oldest first. An acknowledgement of
/// index `i` frees every append that ended at or before `i`.
struct Inflights: Sendable, Hashable {
    let capacity: Int
    private(set) var lastIndexes: [UInt64] = []

    init(capacity: Int) {
        precondition(capacity > 0, "inflight capacity must be positive")
        self.capacity = capacity
    }

    var count: Int { lastIndexes.count }
    var isFull: Bool { lastIndexes.count >= capacity }

    mutating func add(_ lastIndex: UInt64) {
        precondition(!isFull, "adding to a full inflight window")
        precondition(lastIndexes.last.map { $0 < lastIndex } ?? true, "inflight indexes must increase")
        lastIndexes.append(lastIndex)
    }

    mutating func freeLE(_ index: UInt64) {
        var freed = 0
        while freed < lastIndexes.count, lastIndexes[freed] <= index { freed += 1 }
        if freed > 0 { lastIndexes.removeFirst(freed) }
    }

    mutating func freeFirstOne() {
        if !lastIndexes.isEmpty { lastIndexes.removeFirst() }
    }

    mutating func reset() {
        lastIndexes.removeAll(keepingCapacity: true)
    }
}
