import LeaseFSM
import Server
import Testing

/// `listLeases` paging and filters, `deadLetters`, `jobs` and `summary`
/// over one mixed state.
@Suite("Lease store contract: listing and summary")
struct ListingContractTests {
    /// Seven leases of three services on four types; l2, l3 and l6 released
    /// (l3's cleanup pending, l6's dead-lettered, l2 had none).
    struct World {
        var ids: [LeaseID]
        var deadJob: CleanupJob
        var pendingJobID: JobID
        subscript(_ n: Int) -> LeaseID { ids[n - 1] }
    }

    static let endpoint1 = "http://127.0.0.1:9/one"
    static let endpoint2 = "http://127.0.0.1:9/two"

    static func build(_ b: any LeaseStoreBackend) async throws -> World {
        var ids: [LeaseID] = []
        ids.append(try await b.create("o1", type: .databaseRow, service: "svc-a", cleanup: cleanupSpec(endpoint1)).id)
        ids.append(try await b.create("o2", type: .blobStorage, service: "svc-b").id)
        ids.append(try await b.create("o3", type: .databaseRow, service: "svc-a", cleanup: cleanupSpec(endpoint2)).id)
        ids.append(try await b.create("o1", type: .cacheEntry, service: "svc-a").id)
        ids.append(try await b.create("o1", type: .databaseRow, service: "svc-b").id)
        ids.append(try await b.create("o6", type: .databaseRow, service: "svc-a", cleanup: cleanupSpec(endpoint1)).id)
        ids.append(try await b.create("o7", type: .custom, service: "svc-c").id)
        try await b.release(ids[1], service: "svc-b")
        let pending = try #require(try await b.release(ids[2], service: "svc-a").cleanupJobID)
        let deadID = try #require(try await b.release(ids[5], service: "svc-a").cleanupJobID)
        let due = try await b.dueJobs()
        #expect(Set(due.map(\.id)) == [pending, deadID])
        let dead = try #require(due.first { $0.id == deadID })
        #expect(try await b.fail(dead, attempt: 1, permanent: true) == [deadID])
        return World(ids: ids, deadJob: try #require(try await b.job(deadID)), pendingJobID: pending)
    }

    @Test("leases list in creation order, page by page, with the id to continue after", arguments: Backend.allCases)
    func paging(_ backend: Backend) async throws {
        try await backend.run { b in
            let w = try await Self.build(b)
            #expect(w.ids == w.ids.sorted(), "ids sort in creation order")
            var page = try await b.store.listLeases(.init(), after: nil, limit: 3, .linearizable)
            #expect(page.leases.map(\.lease.id) == [w[1], w[2], w[3]] && page.next == w[3])
            page = try await b.store.listLeases(.init(), after: page.next, limit: 3, .linearizable)
            #expect(page.leases.map(\.lease.id) == [w[4], w[5], w[6]] && page.next == w[6])
            page = try await b.store.listLeases(.init(), after: page.next, limit: 3, .linearizable)
            #expect(page.leases.map(\.lease.id) == [w[7]] && page.next == nil)
            // Exactly a page left: no next.
            page = try await b.store.listLeases(.init(), after: w[4], limit: 3, .linearizable)
            #expect(page.leases.map(\.lease.id) == [w[5], w[6], w[7]] && page.next == nil)
            page = try await b.store.listLeases(.init(), after: nil, limit: 7, .linearizable)
            #expect(page.leases.count == 7 && page.next == nil)
            page = try await b.store.listLeases(.init(), after: w[7], limit: 3, .linearizable)
            #expect(page.leases.isEmpty && page.next == nil)
            // A cursor need not be a lease that exists.
            page = try await b.store.listLeases(.init(), after: LeaseID(w[3].rawValue + "z"), limit: 2, .linearizable)
            #expect(page.leases.map(\.lease.id) == [w[4], w[5]] && page.next == w[5])
            // Filtered pages continue after the last match.
            page = try await b.store.listLeases(.init(serviceID: "svc-a"), after: nil, limit: 2, .linearizable)
            #expect(page.leases.map(\.lease.id) == [w[1], w[3]] && page.next == w[3])
            page = try await b.store.listLeases(.init(serviceID: "svc-a"), after: page.next, limit: 2, .linearizable)
            #expect(page.leases.map(\.lease.id) == [w[4], w[6]] && page.next == nil)
            // Every listed lease is shown as leaseDetails shows it.
            let all = try await b.store.listLeases(.init(), after: nil, limit: 100, .linearizable).leases
            let details = try await b.store.leaseDetails(w.ids, .linearizable)
            #expect(all == w.ids.compactMap { details[$0] })
        }
    }

    @Test("list filters: service, services, type, object, states, cleanup states, endpoint", arguments: Backend.allCases)
    func filters(_ backend: Backend) async throws {
        try await backend.run { b in
            let w = try await Self.build(b)
            typealias Filter = LeaseStateMachine.LeaseFilter
            #expect(try await b.listAll(Filter(serviceID: "svc-a")) == [w[1], w[3], w[4], w[6]])
            #expect(try await b.listAll(Filter(serviceID: "nobody")).isEmpty)
            var services = Filter()
            services.serviceIDs = ["svc-b", "svc-c"]
            #expect(try await b.listAll(services) == [w[2], w[5], w[7]])
            #expect(try await b.listAll(Filter(objectType: .databaseRow)) == [w[1], w[3], w[5], w[6]])
            #expect(try await b.listAll(Filter(objectID: "o1")) == [w[1], w[4], w[5]])
            #expect(try await b.listAll(Filter(objectType: .databaseRow, objectID: "o1")) == [w[1], w[5]])
            #expect(try await b.listAll(Filter(states: [.released])) == [w[2], w[3], w[6]])
            #expect(try await b.listAll(Filter(states: [.active])) == [w[1], w[4], w[5], w[7]])
            #expect(try await b.listAll(Filter(states: [.expired])).isEmpty)
            #expect(try await b.listAll(Filter(cleanupStates: [.pending])) == [w[3]])
            #expect(try await b.listAll(Filter(cleanupStates: [.deadLettered])) == [w[6]])
            #expect(try await b.listAll(Filter(cleanupStates: [.pending, .deadLettered])) == [w[3], w[6]])
            #expect(try await b.listAll(Filter(cleanupStates: [LeaseCleanupState.none])) == [w[1], w[2], w[4], w[5], w[7]])
            #expect(try await b.listAll(Filter(cleanupEndpoint: Self.endpoint1)) == [w[1], w[6]])
            #expect(try await b.listAll(Filter(serviceID: "svc-a", states: [.released], cleanupStates: [.deadLettered])) == [w[6]])
            // Small pages of a sparse filter still find every match.
            #expect(try await b.listAll(Filter(cleanupStates: [.pending, .deadLettered]), pageSize: 1) == [w[3], w[6]])
        }
    }

    @Test("dead letters, jobs by id and the summary count the same state", arguments: Backend.allCases)
    func deadLettersJobsAndSummary(_ backend: Backend) async throws {
        try await backend.run { b in
            let w = try await Self.build(b)
            let letters = try await b.store.deadLetters(endpoint: nil, limit: 10, .linearizable)
            #expect(letters.jobs == [w.deadJob] && letters.total == 1)
            #expect(try await b.store.deadLetters(endpoint: Self.endpoint1, limit: 10, .linearizable).total == 1)
            #expect(try await b.store.deadLetters(endpoint: Self.endpoint2, limit: 10, .linearizable).total == 0)
            // Jobs come back in the order asked, unknown ids left out.
            let jobs = try await b.store.jobs([w.deadJob.id, 424_242, w.pendingJobID], .linearizable)
            #expect(jobs.map(\.id) == [w.deadJob.id, w.pendingJobID])
            #expect(jobs.map(\.state) == [.deadLettered, .pending])

            let summary = try await b.summary()
            #expect(summary.activeLeases == 4)
            #expect(summary.activeByService == ["svc-a": 2, "svc-b": 1, "svc-c": 1])
            #expect(summary.activeByType == [.databaseRow: 2, .cacheEntry: 1, .custom: 1])
            #expect(summary.pendingCleanups == 1)
            #expect(summary.deadLetteredCleanups == 1)
            var stats = LeaseStats()
            stats.created = 7
            stats.released = 3
            stats.cleanupAttempts = 1
            stats.cleanupFailures = 1
            stats.deadLettered = 1
            #expect(summary.stats == stats)
            #expect(summary.appliedIndex > 0)
        }
    }

    @Test("summary running totals count renewals, expiries and successes", arguments: Backend.allCases)
    func summaryTotals(_ backend: Backend) async throws {
        try await backend.run(limits: .contract { $0.cleanupGraceSeconds = 0 }) { b in
            #expect(try await b.summary().stats == LeaseStats(), "an empty store")
            let a = try await b.create("o1", duration: 5, cleanup: cleanupSpec())
            let c = try await b.create("o2", type: .temporaryFile, duration: 600)
            try await b.renew(c.id)
            try await b.renew(c.id)
            b.advance(seconds: 6)
            #expect(try await b.reap() == [a.id])
            let job = try #require(try await b.dueJobs().first)
            #expect(try await b.succeed(job, attempt: 1) == [job.id])
            let summary = try await b.summary()
            var stats = LeaseStats()
            stats.created = 2
            stats.renewed = 2
            stats.expired = 1
            stats.cleanupAttempts = 1
            stats.cleanupSucceeded = 1
            #expect(summary.stats == stats)
            #expect(summary.activeLeases == 1)
            #expect(summary.activeByType == [.temporaryFile: 1])
            #expect(summary.activeByService == ["svc": 1])
            #expect(summary.pendingCleanups == 0 && summary.deadLetteredCleanups == 0)
        }
    }

    @Test("paging through more leases than one query batch finds each match once, in order", arguments: Backend.allCases)
    func pagingBeyondOneBatch(_ backend: Backend) async throws {
        try await backend.run { b in
            var ids: [LeaseID] = []
            var pending: [LeaseID] = []
            for i in 0..<150 {
                let lease = try await b.create("o\(i)", service: i % 3 == 0 ? "svc-x" : "svc-y", cleanup: cleanupSpec())
                ids.append(lease.id)
                if i % 10 == 7 {
                    try await b.release(lease.id, service: lease.serviceID)
                    pending.append(lease.id)
                }
            }
            #expect(try await b.listAll(pageSize: 100) == ids)
            #expect(try await b.listAll(pageSize: 7) == ids)
            #expect(try await b.listAll(.init(cleanupStates: [.pending]), pageSize: 4) == pending)
            #expect(try await b.listAll(.init(serviceID: "svc-x"), pageSize: 9) == ids.enumerated().filter { $0.offset % 3 == 0 }.map(\.element))
            let first = try await b.store.listLeases(.init(cleanupStates: [.pending]), after: nil, limit: 14, .linearizable)
            #expect(first.leases.map(\.lease.id) == Array(pending.prefix(14)) && first.next == pending[13])
            let rest = try await b.store.listLeases(.init(cleanupStates: [.pending]), after: first.next, limit: 14, .linearizable)
            #expect(rest.leases.map(\.lease.id) == [pending[14]] && rest.next == nil)
        }
    }
}
