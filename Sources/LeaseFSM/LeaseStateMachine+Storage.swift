import DequeModule

/// Giving memory back: Swift's hash tables and arrays keep their capacity
/// when elements are removed, so after 100,000 leases were created and
/// released the tables would stay sized for 100,000 (DESIGN.md, "Memory").
extension LeaseStateMachine {
    /// A table is rebuilt at its size when it holds less than an eighth of
    /// its capacity (and that capacity is worth giving back). It grows by
    /// doubling, so a table never oscillates between the two.
    static func isSparse(capacity: Int, count: Int) -> Bool {
        capacity > 4096 && capacity > 8 * count
    }

    /// Rebuilds the tables that are mostly empty. Cheap to call after every
    /// command: it reads a few capacities. Invisible to behaviour (no
    /// iteration order is observable: everything that is shown is sorted).
    mutating func shrinkStorageIfSparse() {
        if leases.isSparse {
            leases = leases.rebuilt()
            rebuildExpiryIndex()
        }
        if Self.isSparse(capacity: objects.capacity, count: objects.count) { objects = objects.rebuilt() }
        if Self.isSparse(capacity: jobs.capacity, count: jobs.count) { jobs = jobs.rebuilt() }
        if Self.isSparse(capacity: indexes.expiryBuckets.capacity, count: indexes.expiryBuckets.count) {
            indexes.expiryBuckets = Self.rebuilt(indexes.expiryBuckets)
        }
        if Self.isSparse(capacity: indexes.openJobByObject.capacity, count: indexes.openJobByObject.count) {
            indexes.openJobByObject = indexes.openJobByObject.rebuilt()
        }
        // orderedLeaseIDs is never sparse: its chunks are full but the last,
        // and removing forgotten ids rebuilds it (forgetRetired).
        // Deque does not tell its capacity: its largest count stands in.
        indexes.endedHighWater = max(indexes.endedHighWater, indexes.endedLeases.count)
        if Self.isSparse(capacity: indexes.endedHighWater, count: indexes.endedLeases.count) {
            indexes.endedLeases = Deque(indexes.endedLeases)
            indexes.endedHighWater = indexes.endedLeases.count
        }
        indexes.finishedHighWater = max(indexes.finishedHighWater, indexes.finishedJobs.count)
        if Self.isSparse(capacity: indexes.finishedHighWater, count: indexes.finishedJobs.count) {
            indexes.finishedJobs = Deque(indexes.finishedJobs)
            indexes.finishedHighWater = indexes.finishedJobs.count
        }
    }

    static func rebuilt<Key, Value>(_ table: [Key: Value]) -> [Key: Value] {
        var copy = [Key: Value](minimumCapacity: table.count)
        for (key, value) in table { copy[key] = value }
        return copy
    }

    /// Points every restored lease at the shared copies of its service id,
    /// metadata and cleanup spec (a decoded record has its own).
    mutating func internRestoredLeases() {
        for id in indexes.orderedLeaseIDs {
            guard var lease = leases[id], Self.needsInterning(lease) else { continue }
            intern(&lease)
            leases[id] = lease
        }
    }

    /// Points `lease` at the shared copies of its service id, metadata and
    /// cleanup spec.
    mutating func intern(_ lease: inout Lease) {
        guard Self.needsInterning(lease) else { return }
        lease.serviceID = indexes.interned.string(lease.serviceID)
        lease.metadata = indexes.interned.metadata(lease.metadata)
        lease.cleanupBox = lease.cleanupBox.map { indexes.interned.spec($0) }
    }

    /// Whether `lease` holds anything the interner would share (a service id
    /// of up to 15 bytes is stored inline).
    static func needsInterning(_ lease: Lease) -> Bool {
        lease.serviceID.utf8.count > 15 || !lease.metadata.isEmpty || lease.cleanupBox != nil
    }
}
