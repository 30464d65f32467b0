/// The waiting items and busy slots of a group-commit batcher
/// (``RenewalBatcher``, ``PostgresWriteBatcher``): items that arrive while
/// every slot is committing wait, and a slot that finishes takes the oldest
/// of them as its next batch. Kept inside the batcher's `Mutex`.
struct GroupCommitQueue<Item: Sendable>: Sendable {
    /// Items waiting for a batch, oldest first.
    private(set) var waiting: [Item] = []
    /// Slots committing a batch now.
    private(set) var inFlight = 0

    /// Queues `item`. When fewer than `maxInFlight` slots are busy, takes
    /// one and returns its first batch (the caller commits it, then calls
    /// ``next(maxBatch:)`` until that returns nothing); else nil: a busy
    /// slot will take the item.
    mutating func add(_ item: Item, maxInFlight: Int, maxBatch: Int) -> [Item]? {
        waiting.append(item)
        guard inFlight < maxInFlight else { return nil }
        inFlight += 1
        return take(maxBatch)
    }

    /// The next batch for a slot that finished one: the oldest `maxBatch`
    /// waiting items; empty when none wait, and then the slot is free again.
    mutating func next(maxBatch: Int) -> [Item] {
        let batch = take(maxBatch)
        if batch.isEmpty { inFlight -= 1 }
        return batch
    }

    private mutating func take(_ max: Int) -> [Item] {
        if waiting.count <= max {
            defer { waiting = [] }
            return waiting
        }
        let batch = Array(waiting.prefix(max))
        waiting.removeFirst(max)
        return batch
    }
}
