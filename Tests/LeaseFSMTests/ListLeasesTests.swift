import Testing
@testable import LeaseFSM

@Suite("List leases")
struct ListLeasesTests {
    typealias Filter = LeaseStateMachine.LeaseFilter

    /// 23 leases over two services and three types; some released, expired, cleaned.
    static func populated() throws -> (Harness, [Lease]) {
        var h = Harness()
        let types: [ObjectType] = [.databaseRow, .blobStorage, .cacheEntry]
        for i in 0..<23 {
            if i == 9 { h.skip(to: 0x10) }  // cross a hex digit boundary
            _ = try h.create(key("o\(i % 7)", types[i % 3]), service: i % 2 == 0 ? "even" : "odd",
                             duration: 30 + UInt64(i), cleanup: i % 4 == 0 ? httpCleanup() : nil)
        }
        var all = allLeases(h.fsm)
        try h.release(all[3].id, service: "odd")
        try h.release(all[4].id, service: "even")  // o4 BLOB_STORAGE, with a target, its only holder
        h.advance(seconds: 200)
        _ = try h.expire([all[5].id, all[6].id])
        all = allLeases(h.fsm)
        return (h, all)
    }

    func pages(_ fsm: LeaseStateMachine, _ filter: Filter, limit: Int) -> [[Lease]] {
        var result: [[Lease]] = []
        var after: LeaseID?
        repeat {
            let page = fsm.listLeases(filter, after: after, limit: limit)
            result.append(page.leases)
            if let next = page.next {
                #expect(next == page.leases.last?.id)
                #expect(page.leases.count == limit)
            }
            after = page.next
        } while after != nil && result.count < 100
        return result
    }

    @Test("paging returns every lease exactly once, in id order", arguments: [1, 4, 7, 23, 24, 100])
    func pagingCoversAll(limit: Int) throws {
        let (h, all) = try Self.populated()
        #expect(all.count == 23)
        #expect(all.map(\.id) == all.map(\.id).sorted())
        #expect(all.map(\.createdIndex) == all.map(\.createdIndex).sorted())
        let pages = pages(h.fsm, Filter(), limit: limit)
        #expect(pages.flatMap { $0 }.map(\.id) == all.map(\.id))
        #expect(pages.count == (23 + limit - 1) / limit)
        #expect(pages.allSatisfy { !$0.isEmpty })
    }

    @Test("the last page has no next token, also when it is exactly full")
    func lastPage() throws {
        let (h, all) = try Self.populated()
        let last = h.fsm.listLeases(Filter(), after: all[15].id, limit: 7)
        #expect(last.leases.map(\.id) == all[16...].map(\.id))
        #expect(last.next == nil)
        let notLast = h.fsm.listLeases(Filter(), after: all[15].id, limit: 6)
        #expect(notLast.next == all[21].id)
        let beyond = h.fsm.listLeases(Filter(), after: all[22].id, limit: 7)
        #expect(beyond.leases.isEmpty)
        #expect(beyond.next == nil)
    }

    @Test("paging continues after an id that is not (or no longer) stored")
    func afterUnknownID() throws {
        let (h, all) = try Self.populated()
        // An id between all[4] and all[5]: same index as all[4], larger suffix.
        let between = LeaseID(all[4].id.rawValue + "f")
        #expect(h.fsm.listLeases(Filter(), after: between, limit: 2).leases.map(\.id) == [all[5].id, all[6].id])
        #expect(h.fsm.listLeases(Filter(), after: LeaseID(""), limit: 1).leases.first?.id == all[0].id)
    }

    @Test("filters match service, type, object id, states and cleanup states, combined with AND")
    func filters() throws {
        let (h, all) = try Self.populated()
        func ids(_ f: Filter) -> [LeaseID] { allLeases(h.fsm, f).map(\.id) }
        func expected(_ p: (Lease) -> Bool) -> [LeaseID] { all.filter(p).map(\.id) }

        #expect(ids(Filter(serviceID: "odd")) == expected { $0.serviceID == "odd" })
        #expect(ids(Filter(serviceID: "nobody")) == [])
        #expect(ids(Filter(objectType: .cacheEntry)) == expected { $0.object.type == .cacheEntry })
        #expect(ids(Filter(objectID: "o3")) == expected { $0.object.id == "o3" })
        #expect(ids(Filter(states: [.released])) == [all[3].id, all[4].id])
        #expect(ids(Filter(states: [.expired])) == [all[5].id, all[6].id])
        #expect(ids(Filter(states: [.released, .expired])) == [all[3].id, all[4].id, all[5].id, all[6].id])
        #expect(ids(Filter(states: [.active])).count == 19)
        #expect(ids(Filter(states: [])) == [])
        #expect(ids(Filter(cleanupStates: [.pending])) == [all[4].id])
        #expect(ids(Filter(cleanupStates: [.none])).count == 22)
        #expect(ids(Filter(serviceID: "even", objectType: .databaseRow, states: [.active]))
                == expected { $0.serviceID == "even" && $0.object.type == .databaseRow && $0.isActive })
        #expect(!ids(Filter(serviceID: "even", objectType: .databaseRow, states: [.active])).isEmpty)
    }

    @Test("filtered paging returns next only while more matching leases exist")
    func filteredPaging() throws {
        let (h, all) = try Self.populated()
        let odd = all.filter { $0.serviceID == "odd" }
        let pages = pages(h.fsm, Filter(serviceID: "odd"), limit: 5)
        #expect(pages.flatMap { $0 }.map(\.id) == odd.map(\.id))
        #expect(pages.count == (odd.count + 4) / 5)
        // The last matching lease is not the last lease: still no next token.
        let afterLastOdd = h.fsm.listLeases(Filter(serviceID: "odd"), after: odd[odd.count - 2].id, limit: 1)
        #expect(afterLastOdd.leases.map(\.id) == [odd.last!.id])
        #expect(afterLastOdd.next == nil)
    }

    @Test("cleanup state filters follow the job through its life")
    func cleanupStateFilter() throws {
        var h = Harness()
        let job = try h.makeJob(key("x"), cleanup: httpCleanup(maxRetries: 1))
        let filter = Filter(cleanupStates: [.deadLettered])
        #expect(allLeases(h.fsm, filter).isEmpty)
        _ = try h.outcome(job.id, attempt: 1, .failed(error: "e", retryAfterMilliseconds: 0, permanent: true))
        #expect(allLeases(h.fsm, filter).map(\.id) == [job.leaseID])
        _ = try h.create(key("x"))
        #expect(allLeases(h.fsm, Filter(cleanupStates: [.superseded])).map(\.id) == [job.leaseID])
    }
}
