import LeaseFSM
import Server
import Testing

/// `GC_MAX_LEASES_PER_SERVICE` and `GC_MAX_LEASES`: the same refusals, with
/// the same counts in their messages, and ended leases give quota back.
@Suite("Lease store contract: quotas")
struct QuotaContractTests {
    @Test("a service at its quota is refused (resource exhausted) until one of its leases ends", arguments: Backend.allCases)
    func serviceQuota(_ backend: Backend) async throws {
        let limits = LeaseLimits.contract {
            $0.maxLeasesPerService = 3
            $0.cleanupGraceSeconds = 0
        }
        try await backend.run(limits: limits) { b in
            let short = try await b.create("o1", service: "svc-a", duration: 5)
            let kept = try await b.create("o2", service: "svc-a", duration: 600)
            try await b.create("o3", service: "svc-a", duration: 600)
            let full = LeaseError.serviceLeaseLimit(serviceID: "svc-a", held: 3, limit: 3)
            #expect(full == LeaseError(.resourceExhausted, "service 'svc-a' already holds 3 active leases, the limit (GC_MAX_LEASES_PER_SERVICE) is 3: release or let some expire first", field: "service_id"))
            #expect(await leaseError { try await b.create("o4", service: "svc-a") } == full)
            #expect(await leaseError { try await b.create("o1", service: "svc-a") } == full, "joining a held object counts too")
            // Another service is not held back.
            try await b.create("o4", service: "svc-b")
            var summary = try await b.summary()
            #expect(summary.activeByService == ["svc-a": 3, "svc-b": 1])
            #expect(summary.activeLeases == 4)
            #expect(summary.stats.created == 4, "refused creates are not counted")

            // A release gives one back...
            try await b.release(kept.id, service: "svc-a")
            let replacement = try await b.create("o5", service: "svc-a", duration: 600)
            #expect(await leaseError { try await b.create("o6", service: "svc-a") } == full)
            // ...and so does an expiry.
            b.advance(seconds: 6)
            #expect(try await b.reap() == [short.id])
            try await b.create("o6", service: "svc-a", duration: 600)
            #expect(await leaseError { try await b.create("o7", service: "svc-a") } == full)
            summary = try await b.summary()
            #expect(summary.activeByService == ["svc-a": 3, "svc-b": 1])
            #expect(try await b.detail(replacement.id)?.lease.state == .active)
        }
    }

    @Test("the cluster at GC_MAX_LEASES refuses every service until a lease ends", arguments: Backend.allCases)
    func globalQuota(_ backend: Backend) async throws {
        try await backend.run(limits: .contract { $0.maxLeases = 4 }) { b in
            let first = try await b.create("o1", service: "svc-a")
            try await b.create("o2", service: "svc-a")
            try await b.create("o3", service: "svc-b")
            try await b.create("o4", service: "svc-b")
            let full = LeaseError.clusterLeaseLimit(held: 4, limit: 4)
            #expect(full == LeaseError(.resourceExhausted, "the cluster holds 4 active leases, the limit (GC_MAX_LEASES) is 4: release or let some expire first"))
            #expect(await leaseError { try await b.create("o5", service: "svc-c") } == full)
            #expect(await leaseError { try await b.create("o1", service: "svc-c") } == full)
            try await b.release(first.id, service: "svc-a")
            try await b.create("o5", service: "svc-c")
            #expect(await leaseError { try await b.create("o6", service: "svc-a") } == full)
            let summary = try await b.summary()
            #expect(summary.activeLeases == 4)
            #expect(summary.activeByService == ["svc-a": 1, "svc-b": 2, "svc-c": 1])
        }
    }

    /// Raft checks `GC_MAX_LEASES` before the service's quota, so when both
    /// are reached the refusal names the cluster's limit.
    @Test("with both quotas reached, the refusal names the cluster's limit", arguments: Backend.allCases)
    func bothQuotasReached(_ backend: Backend) async throws {
        try await backend.run(limits: .contract { $0.maxLeases = 2; $0.maxLeasesPerService = 2 }) { b in
            try await b.create("o1", service: "svc-a")
            try await b.create("o2", service: "svc-a")
            let refusal = await leaseError { try await b.create("o3", service: "svc-a") }
            #expect(refusal == .clusterLeaseLimit(held: 2, limit: 2))
        }
    }

    @Test("a refused create leaves the object as it was: its pending cleanup is not superseded", arguments: Backend.allCases)
    func refusedCreateChangesNothing(_ backend: Backend) async throws {
        try await backend.run(limits: .contract { $0.maxLeasesPerService = 1 }) { b in
            let old = try await b.create("o1", service: "svc-a", cleanup: cleanupSpec())
            let jobID = try #require(try await b.release(old.id, service: "svc-a").cleanupJobID)
            try await b.create("o2", service: "svc-a")
            // svc-a is at its quota: leasing o1 again is refused, and o1's
            // cleanup of the old incarnation stays pending.
            #expect(await leaseError { try await b.create("o1", service: "svc-a") }
                    == .serviceLeaseLimit(serviceID: "svc-a", held: 1, limit: 1))
            #expect(try await b.job(jobID)?.state == .pending)
            #expect(try await b.dueJobs().map(\.id) == [jobID])
            #expect(try await b.listAll().count == 2)
            // Another service may lease it: that supersedes the cleanup.
            let next = try await b.create("o1", service: "svc-b")
            #expect(next.incarnation > old.incarnation)
            #expect(try await b.job(jobID)?.state == .superseded)
        }
    }
}
