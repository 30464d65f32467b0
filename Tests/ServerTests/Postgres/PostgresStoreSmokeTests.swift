import Foundation
import LeaseFSM
import Logging
import PostgresNIO
import Server
import Testing

/// Scratch checks of the PostgreSQL store against GC_TEST_DATABASE_URL (lead's dev loop).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["GC_TEST_DATABASE_URL"] != nil))
struct PostgresStoreSmokeTests {
    @Test func createRenewReleaseExpireAndCleanup() async throws {
        let logger = Logger(label: "smoke")
        let config = PostgresClient.Configuration(host: "127.0.0.1", port: 55432, username: "postgres", password: nil, database: "gcdev", tls: .disable)
        let client = PostgresClient(configuration: config)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            try await client.query("DROP SCHEMA public CASCADE")
            try await client.query("CREATE SCHEMA public")
            for m in PostgresSchema.migrations { for sql in m.sql { try await client.query(PostgresQuery(unsafeSQL: sql)) } }
            var limits = LeaseLimits()
            limits.maxLeasesPerService = 3
            let store = PostgresLeaseStore(client: client, limits: limits, events: EventHub(retentionBytes: 1 << 20, maxWatchers: 10), logger: logger)
            let spec = CleanupSpec(httpEndpoint: "http://127.0.0.1:9/cleanup")
            guard case .created(let a) = try await store.propose(.create(.init(leaseIDSuffix: "aa", object: ObjectKey(type: .databaseRow, id: "r1"), serviceID: "svc", durationSeconds: 60, cleanup: spec)), origin: nil) else { Issue.record("no create"); return }
            guard case .created(let b) = try await store.propose(.create(.init(leaseIDSuffix: "bb", object: ObjectKey(type: .databaseRow, id: "r1"), serviceID: "svc", durationSeconds: 60)), origin: nil) else { Issue.record("no create"); return }
            #expect(a.incarnation == b.incarnation)
            _ = try await store.propose(.create(.init(leaseIDSuffix: "cc", object: ObjectKey(type: .databaseRow, id: "r2"), serviceID: "svc", durationSeconds: 60)), origin: nil)
            await #expect(throws: LeaseError.self) {
                _ = try await store.propose(.create(.init(leaseIDSuffix: "dd", object: ObjectKey(type: .databaseRow, id: "r3"), serviceID: "svc", durationSeconds: 60)), origin: nil)
            }
            let s = try await store.summary(.linearizable)
            #expect(s.activeLeases == 3)
            #expect(s.activeByService["svc"] == 3)
            guard case .renewed(let r) = try await store.propose(.renew(.init(leaseIDs: [a.id], serviceID: "svc")), origin: nil) else { Issue.record("renew"); return }
            #expect(try r[0].result.get().fencingToken > a.fencingToken)
            _ = try await store.propose(.release(.init(leaseID: a.id, serviceID: "svc")), origin: nil)
            #expect(try await store.summary(.linearizable).activeLeases == 2)
            store.advanceClockForTesting(by: 200_000)
            let expired = try await store.expireDue(limit: 100)
            #expect(Set(expired) == [b.id, try #require(try await store.listLeases(.init(objectID: "r2"), after: nil, limit: 10, .linearizable).leases.first).lease.id])
            let claimed = try await store.claimDueJobs(limit: 10, owner: "me", claimFor: .seconds(30))
            #expect(claimed.jobs.count == 1)
            #expect(claimed.jobs.first?.leaseID == a.id)  // the lease that named the target
            let again = try await store.claimDueJobs(limit: 10, owner: "other", claimFor: .seconds(30))
            #expect(again.jobs.isEmpty)
            let stale = try await store.recordOutcomes([(.init(jobID: claimed.jobs[0].id, attempt: 1, result: .succeeded), UUID())])
            #expect(stale.refused == 1)
            let ok = try await store.recordOutcomes([(.init(jobID: claimed.jobs[0].id, attempt: 1, result: .succeeded), claimed.token)])
            #expect(ok.recorded == [claimed.jobs[0].id])
            let detail = try #require(try await store.leaseDetail(b.id, .linearizable))
            #expect(detail.cleanupState == .succeeded)
            let s2 = try await store.summary(.linearizable)
            #expect(s2.stats.created == 3 && s2.stats.expired == 2 && s2.stats.released == 1 && s2.stats.cleanupSucceeded == 1)
            #expect(s2.activeLeases == 0)
            group.cancelAll()
        }
    }
}
