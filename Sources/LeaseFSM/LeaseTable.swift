/// The retained leases by id: a dense array of leases and a small hash index
/// from id to slot.
///
/// A `[LeaseID: Lease]` keeps every lease inline in its hash table, which is
/// sized in powers of two at most three quarters full: with 100,000 leases
/// it has 262,144 slots of 160 bytes. Here the hash table holds only 4-byte
/// slot numbers, and the leases sit in an array that grows by doubling
/// (DESIGN.md, "Memory"). Freed slots are reused; when most are free the
/// table is rebuilt (``isSparse``), so memory returns after churn. Both are
/// chunked (``ChunkedArray``, ``ShardedDictionary``), so a write after the
/// table was shared with a snapshot in progress copies a chunk, not the table.
///
/// Behaves as the dictionary did: lookups by id, `keys`, `values` (in no
/// particular order: callers sort), `count`, equality as a map.
struct LeaseTable: Sendable {
    private var slotOf = ShardedDictionary<LeaseID, UInt32>()
    private var slots = ChunkedArray<Lease?>()
    private var freeSlots: [UInt32] = []

    init() {}

    var count: Int { slotOf.count }
    var isEmpty: Bool { slotOf.isEmpty }
    /// The ids of the retained leases, in no particular order.
    var keys: [LeaseID] { slotOf.keys }
    /// The retained leases, in no particular order.
    var values: [Lease] { slots.compactMap { $0 } }

    subscript(id: LeaseID) -> Lease? {
        get { slotOf[id].flatMap { slots[Int($0)] } }
        set {
            guard let newValue else {
                removeValue(forKey: id)
                return
            }
            precondition(newValue.id == id, "a lease is stored under its own id")
            precondition(slots.count < Int(UInt32.max), "more leases than slot numbers")
            // One lookup of the id: its slot if it has one, else the slot it
            // gets (the last freed one, or a new one at the end).
            let reused = freeSlots.last
            let candidate = reused ?? UInt32(slots.count)
            let existing: UInt32? = slotOf.modify(id) { slot in
                if let slot { return slot }
                slot = candidate
                return nil
            }
            if let existing {
                slots[Int(existing)] = newValue
            } else if reused != nil {
                freeSlots.removeLast()
                slots[Int(candidate)] = newValue
            } else {
                slots.append(newValue)
            }
        }
    }

    /// The slot `id` is stored in. A lease keeps its slot while it is
    /// retained, until the table is ``rebuilt()``, which renumbers them all.
    func slot(of id: LeaseID) -> UInt32? { slotOf[id] }

    /// The lease stored in `slot`, if any.
    subscript(slot slot: UInt32) -> Lease? { Int(slot) < slots.count ? slots[Int(slot)] : nil }

    /// Calls `body` with every retained lease and its slot, in slot order.
    func forEachSlot(_ body: (UInt32, Lease) throws -> Void) rethrows {
        for index in 0..<slots.count {
            if let lease = slots[index] { try body(UInt32(index), lease) }
        }
    }

    @discardableResult
    mutating func removeValue(forKey id: LeaseID) -> Lease? {
        guard let slot = slotOf.removeValue(forKey: id) else { return nil }
        let lease = slots[Int(slot)]
        slots[Int(slot)] = nil
        freeSlots.append(slot)
        return lease
    }

    /// Makes room for `capacity` leases (a snapshot restore knows how many).
    mutating func reserveCapacity(_ capacity: Int) {
        slotOf.reserveCapacity(capacity)
        slots.reserveCapacity(capacity)
    }

    /// Whether most of the table's memory holds no lease (see
    /// ``LeaseStateMachine/isSparse(capacity:count:)``).
    var isSparse: Bool {
        LeaseStateMachine.isSparse(capacity: Swift.max(slotOf.capacity, slots.capacity), count: count)
    }

    /// The same leases in storage sized for them.
    func rebuilt() -> LeaseTable {
        var table = LeaseTable()
        table.slotOf.reserveCapacity(count)
        table.slots.reserveCapacity(count)
        for case let lease? in slots { table[lease.id] = lease }
        return table
    }
}

extension LeaseTable: Equatable {
    /// Equal when they map the same ids to equal leases (slots do not matter).
    static func == (lhs: LeaseTable, rhs: LeaseTable) -> Bool {
        lhs.count == rhs.count && lhs.slotOf.keys.allSatisfy { lhs[$0] == rhs[$0] }
    }
}

extension LeaseTable: Sequence {
    /// The retained leases with their ids, in no particular order (as a
    /// dictionary's elements).
    func makeIterator() -> some IteratorProtocol<(key: LeaseID, value: Lease)> {
        slots.lazy.compactMap { $0.map { (key: $0.id, value: $0) } }.makeIterator()
    }
}
