/// The active leases of one object: a set of lease ids that holds a single
/// id inline, with no allocation, because almost every object has exactly
/// one lease. Two or more ids live in a `Set`.
struct LeaseIDSet: Hashable, Sendable, Sequence {
    /// `.many` only ever holds two or more ids, so equal sets have equal storage.
    private enum Storage: Hashable, Sendable {
        case one(LeaseID)
        case many(Set<LeaseID>)
    }

    private var storage: Storage?

    init() {}

    init(_ ids: some Sequence<LeaseID>) {
        for id in ids { insert(id) }
    }

    var count: Int {
        switch storage {
        case nil: 0
        case .one: 1
        case .many(let ids): ids.count
        }
    }

    var isEmpty: Bool { storage == nil }

    func contains(_ id: LeaseID) -> Bool {
        switch storage {
        case nil: false
        case .one(let only): only == id
        case .many(let ids): ids.contains(id)
        }
    }

    /// Adds `id`; false when it was there already.
    @discardableResult
    mutating func insert(_ id: LeaseID) -> Bool {
        switch storage {
        case nil:
            storage = .one(id)
            return true
        case .one(let only):
            guard only != id else { return false }
            storage = .many([only, id])
            return true
        case .many(var ids):
            storage = nil  // keeps `ids` uniquely referenced while it changes
            let inserted = ids.insert(id).inserted
            storage = .many(ids)
            return inserted
        }
    }

    /// Removes `id`; returns it, or nil when it was not there.
    @discardableResult
    mutating func remove(_ id: LeaseID) -> LeaseID? {
        switch storage {
        case nil:
            return nil
        case .one(let only):
            guard only == id else { return nil }
            storage = nil
            return only
        case .many(var ids):
            storage = nil
            let removed = ids.remove(id)
            storage = ids.count == 1 ? ids.first.map(Storage.one) : .many(ids)
            return removed
        }
    }

    /// The smallest id in the set (the oldest lease: ids sort in creation order).
    var smallest: LeaseID? {
        switch storage {
        case nil: nil
        case .one(let only): only
        case .many(let ids): ids.min()
        }
    }

    func makeIterator() -> Array<LeaseID>.Iterator {
        switch storage {
        case nil: [].makeIterator()
        case .one(let only): [only].makeIterator()
        case .many(let ids): Array(ids).makeIterator()
        }
    }
}
