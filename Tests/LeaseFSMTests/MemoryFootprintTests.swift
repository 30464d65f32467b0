import Testing
@testable import LeaseFSM

/// The compact storage of leases (DESIGN.md, "Memory"): what it shares, and
/// that memory is given back after churn, without any change in behaviour.
@Suite("Memory footprint of the lease state")
struct MemoryFootprintTests {
    static var noRetention: LeaseLimits {
        var l = LeaseLimits()
        l.endedRetentionSeconds = 0
        l.maxLeasesPerService = 100_000
        return l
    }

    @Test("after 20,000 leases were created and released, the tables are rebuilt small")
    func tablesShrinkAfterChurn() throws {
        var h = Harness(limits: Self.noRetention)
        var ids: [LeaseID] = []
        for i in 0..<20_000 { ids.append(try h.create(key("o\(i)")).id) }
        #expect(h.fsm.leases.count == 20_000)
        #expect(!h.fsm.leases.isSparse)
        #expect(h.fsm.objects.capacity >= 20_000)
        for id in ids { try h.release(id) }
        h.advance(seconds: 1)
        _ = try h.create(key("last"))
        #expect(h.fsm.retainedLeaseCount == 1)
        #expect(!h.fsm.leases.isSparse)
        #expect(h.fsm.objects.capacity < 4096)
        #expect(h.fsm.indexes.orderedLeaseIDs.capacity < 4096)
        #expect(h.fsm.indexes.expiryBuckets.capacity < 4096)
    }

    @Test("after churn rebuilt the lease table (renumbering its slots), exactly the leases still active become expirable, renewed ones on their new time")
    func expiryAfterTheTableIsRebuilt() throws {
        var h = Harness(limits: Self.noRetention)
        var ids: [LeaseID] = []
        for i in 0..<20_000 { ids.append(try h.create(key("o\(i)"), duration: 60).id) }
        // Every 1,000th lease stays; releasing the rest makes the table
        // sparse, and a command applied then rebuilds it.
        let kept = stride(from: 0, to: ids.count, by: 1000).map { ids[$0] }
        let keptSet = Set(kept)
        #expect(h.fsm.leases.slot(of: kept[kept.count - 1]) == 19_000)
        for id in ids where !keptSet.contains(id) { try h.release(id) }
        h.advance(seconds: 1)
        let late = try h.create(key("late"), duration: 60)
        #expect(h.fsm.retainedLeaseCount == kept.count + 1)
        let lastSlot = try #require(h.fsm.leases.slot(of: kept[kept.count - 1]))
        #expect(lastSlot < 19_000, "the table was rebuilt, renumbering its slots")
        // One kept lease is renewed after the rebuild: it moves to its new bucket.
        h.advance(seconds: 30)
        _ = try h.renew([kept[0]], extend: 120)

        let grace = Int64(h.limits.cleanupGraceSeconds)
        #expect(h.fsm.expirableLeases(asOf: t0.plus(seconds: 59 + grace), limit: 1000).isEmpty)
        let due = h.fsm.expirableLeases(asOf: t0.plus(seconds: 62 + grace), limit: 1000)
        #expect(due.count == kept.count)
        #expect(Set(due) == Set(kept.dropFirst()).union([late.id]))
        #expect(h.fsm.expirableLeases(asOf: t0.plus(seconds: 152 + grace), limit: 1000).count == kept.count + 1)
    }

    @Test("a state that was shrunk behaves as one that never grew: same observation, snapshot and equality")
    func shrinkingIsInvisible() throws {
        var grown = Harness(limits: Self.noRetention)
        var fresh = Harness(limits: Self.noRetention)
        var ids: [LeaseID] = []
        for i in 0..<5_000 { ids.append(try grown.create(key("g\(i)")).id) }
        for id in ids { try grown.release(id) }
        // Bring the fresh machine to the same index and time.
        fresh.skip(to: grown.nextIndex)
        fresh.clock = grown.clock
        grown.advance(seconds: 1)
        fresh.advance(seconds: 1)
        let a = try grown.create(key("x"), service: "a-service-with-a-long-name", cleanup: httpCleanup())
        let b = try fresh.create(key("x"), service: "a-service-with-a-long-name", cleanup: httpCleanup(), suffix: a.id.rawValue.split(separator: "-").last.map(String.init))
        #expect(a == b)
        #expect(Observation(grown.fsm).leases == Observation(fresh.fsm).leases)
        #expect(grown.fsm.activeLeaseCount == 1)
        let restored = try LeaseStateMachine(snapshot: grown.fsm.snapshot(), limits: Self.noRetention)
        #expect(restored.lease(a.id) == a)
    }

    @Test("leases of one service share one copy of its id, metadata and cleanup spec; equality is by value")
    func internedValuesAreShared() throws {
        var h = Harness(limits: Self.noRetention)
        let service = "payments-service-in-production"
        let cleanup = httpCleanup("objects/cleanup-endpoint")
        let meta = ["team": "payments", "env": "production"]
        let one = try h.create(key("a"), service: service, cleanup: cleanup, metadata: meta)
        let two = try h.create(key("b"), service: service, cleanup: cleanup, metadata: meta)
        #expect(one.cleanupBox === two.cleanupBox)
        #expect(one.serviceID.utf8.withContiguousStorageIfAvailable { $0.baseAddress }
            == two.serviceID.utf8.withContiguousStorageIfAvailable { $0.baseAddress })
        #expect(one.cleanup == cleanup.resolved(with: h.limits) && two.metadata == meta)
        // A snapshot decodes its own copies; restoring shares them again.
        let restored = try LeaseStateMachine(snapshot: h.fsm.snapshot(), limits: Self.noRetention)
        #expect(restored == h.fsm)
        let (r1, r2) = (try #require(restored.lease(one.id)), try #require(restored.lease(two.id)))
        #expect(r1.cleanupBox === r2.cleanupBox)
        #expect(r1 == one && r2 == two)
    }

    @Test("a lease's optional fields read back as written, nil included")
    func compactLeaseRoundTrips() throws {
        var h = Harness(limits: Self.noRetention)
        var lease = try h.create(key("a"), cleanup: httpCleanup())
        #expect(lease.endedAt == nil && lease.cleanupJobID == nil)
        lease.endedAt = WallTime(milliseconds: 0)
        lease.cleanupJobID = 0
        #expect(lease.endedAt == WallTime(milliseconds: 0) && lease.cleanupJobID == 0)
        var other = lease
        other.endedAt = nil
        #expect(other != lease && other.endedAt == nil)
        other.endedAt = WallTime(milliseconds: 0)
        #expect(other == lease)
        lease.object = key("b", .cacheEntry)
        #expect(lease.object == key("b", .cacheEntry))
        lease.cleanup = nil
        #expect(lease.cleanup == nil && lease.cleanupBox == nil)
    }

    @Test("LeaseIDSet holds one id inline and behaves as a set")
    func leaseIDSet() {
        var set = LeaseIDSet()
        let (a, b, c) = (LeaseID("a"), LeaseID("b"), LeaseID("c"))
        #expect(set.isEmpty && set.count == 0)
        #expect(set.insert(a) && !set.insert(a))
        #expect(set.count == 1 && set.contains(a) && !set.contains(b))
        #expect(set.insert(b) && set.insert(c) && set.count == 3)
        #expect(set.sorted() == [a, b, c])
        #expect(set.remove(b) == b && set.remove(b) == nil)
        #expect(set.remove(c) == c)
        #expect(set == LeaseIDSet([a]))
        #expect(set.remove(a) == a && set.isEmpty && set == LeaseIDSet())
    }

    @Test("the interner starts over when full and never changes a value")
    func internerIsBounded() {
        var interner = Interner()
        for i in 0..<(Interner.maxEntries + 10) {
            let s = "a-long-service-identifier-\(i)"
            #expect(interner.string(s) == s)
        }
        #expect(interner.string("short") == "short")
        #expect(interner.metadata([:]) == [:])
    }
}
