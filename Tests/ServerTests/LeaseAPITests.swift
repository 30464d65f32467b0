import GCProto
import GRPCCore
import LeaseFSM
import Server
import SwiftProtobuf
import Testing

@Suite("Lease API over gRPC")
struct LeaseAPITests {
    @Test("create then get returns every field the request set")
    func createThenGet() async throws {
        try await withTestNode { node in
            let start = node.clock.now()
            let created = try await node.client.createLease(
                createRequest(object: "row-42", type: .websocketSession, duration: 120, metadata: ["k": "v"], payload: "p"))
            #expect(created.success)
            #expect(!created.leaseID.isEmpty)
            #expect(created.expiresAt.seconds == start.milliseconds / 1000 + 120)
            #expect(created.fencingToken > 0)
            #expect(created.incarnation > 0)

            let got = try await node.client.getLease(getRequest(created.leaseID))
            #expect(got.found)
            let lease = got.lease
            #expect(lease.leaseID == created.leaseID)
            #expect(lease.objectID == "row-42")
            #expect(lease.objectType == .websocketSession)
            #expect(lease.serviceID == "svc-a")
            #expect(lease.state == .active)
            #expect(lease.metadata == ["k": "v"])
            #expect(lease.cleanupConfig.cleanupHTTPEndpoint == "http://127.0.0.1:1/cleanup")
            #expect(lease.cleanupConfig.cleanupPayload == "p")
            #expect(lease.leaseDurationSeconds == 120)
            #expect(lease.renewalCount == 0)
            #expect(lease.fencingToken == created.fencingToken)
            #expect(lease.incarnation == created.incarnation)
            #expect(lease.cleanupState == .cleanupNone)
            #expect(!lease.hasEndedAt)
        }
    }

    @Test("a create with duration 0 gets GC_DEFAULT_LEASE_DURATION")
    func defaultDuration() async throws {
        try await withTestNode(configure: { $0.limits.defaultDurationSeconds = 77 }) { node in
            let created = try await node.client.createLease(createRequest(duration: 0))
            #expect(created.expiresAt.seconds == node.clock.now().milliseconds / 1000 + 77)
        }
    }

    @Test("get of an unknown lease answers found = false")
    func getUnknown() async throws {
        try await withTestNode { node in
            let got = try await node.client.getLease(getRequest("0000000000000001-deadbeef"))
            #expect(!got.found)
        }
    }

    @Test("renew extends expiry from now and raises the fencing token")
    func renewExtends() async throws {
        try await withTestNode { node in
            let created = try await node.client.createLease(createRequest(duration: 60))
            node.clock.advance(seconds: 30)
            let renewed = try await node.client.renewLease(renewRequest(created.leaseID, extend: 100))
            #expect(renewed.success)
            #expect(renewed.newExpiresAt.seconds == node.clock.now().milliseconds / 1000 + 100)
            #expect(renewed.fencingToken > created.fencingToken)
            let lease = try await node.client.getLease(getRequest(created.leaseID)).lease
            #expect(lease.renewalCount == 1)
            #expect(lease.expiresAt == renewed.newExpiresAt)
        }
    }

    @Test("renew by another service is PERMISSION_DENIED, does not reveal the holder, and changes nothing")
    func renewByOtherService() async throws {
        try await withTestNode { node in
            let created = try await node.client.createLease(createRequest())
            let error = await rpcError { try await node.client.renewLease(renewRequest(created.leaseID, service: "svc-b")) }
            #expect(error?.code == .permissionDenied)
            // It names the caller's service, never the holder's.
            #expect(error?.message.contains("svc-b") == true)
            #expect(error?.message.contains("svc-a") == false)
            let lease = try await node.client.getLease(getRequest(created.leaseID)).lease
            #expect(lease.renewalCount == 0)
            #expect(lease.expiresAt == created.expiresAt)
        }
    }

    @Test("renew or release of an unknown lease is NOT_FOUND")
    func unknownLease() async throws {
        try await withTestNode { node in
            let id = "00000000000000ff-00000000"
            #expect(await rpcError { try await node.client.renewLease(renewRequest(id)) }?.code == .notFound)
            #expect(await rpcError { try await node.client.releaseLease(releaseRequest(id)) }?.code == .notFound)
        }
    }

    @Test("renew after expiry is FAILED_PRECONDITION even before the reaper ran")
    func renewAfterExpiry() async throws {
        try await withTestNode { node in
            let created = try await node.client.createLease(createRequest(duration: 10))
            node.clock.advance(seconds: 11)
            let error = await rpcError { try await node.client.renewLease(renewRequest(created.leaseID)) }
            #expect(error?.code == .failedPrecondition)
            #expect(error?.message.contains("expired") == true)
        }
    }

    @Test("release ends the lease; a second release is FAILED_PRECONDITION")
    func releaseTwice() async throws {
        try await withTestNode { node in
            let created = try await node.client.createLease(createRequest())
            let released = try await node.client.releaseLease(releaseRequest(created.leaseID))
            #expect(released.success)
            let lease = try await node.client.getLease(getRequest(created.leaseID)).lease
            #expect(lease.state == .released)
            #expect(lease.hasEndedAt)
            let again = await rpcError { try await node.client.releaseLease(releaseRequest(created.leaseID)) }
            #expect(again?.code == .failedPrecondition)
            let other = try await node.client.createLease(createRequest(object: "o2"))
            #expect(await rpcError { try await node.client.releaseLease(releaseRequest(other.leaseID, service: "svc-b")) }?.code == .permissionDenied)
        }
    }

    @Test("RenewLeases renews many and reports each failure by lease")
    func batchRenew() async throws {
        try await withTestNode { node in
            let a = try await node.client.createLease(createRequest(object: "a"))
            let b = try await node.client.createLease(createRequest(object: "b"))
            let foreign = try await node.client.createLease(createRequest(object: "c", service: "svc-b"))
            var request = DistributedGc_RenewLeasesRequest()
            request.serviceID = "svc-a"
            request.leaseIds = [a.leaseID, "0000000000000fff-00000000", b.leaseID, foreign.leaseID]
            request.extendDurationSeconds = 90
            let response = try await node.client.renewLeases(request)
            #expect(response.results.map(\.leaseID) == request.leaseIds)
            #expect(response.results.map(\.success) == [true, false, true, false])
            #expect(response.results[1].errorCode == "NOT_FOUND")
            #expect(response.results[3].errorCode == "PERMISSION_DENIED")
            #expect(response.results[0].newExpiresAt.seconds == node.clock.now().milliseconds / 1000 + 90)
        }
    }

    @Test("paging with limit and page_token returns every lease exactly once")
    func pagingExactlyOnce() async throws {
        try await withTestNode { node in
            var ids: Set<String> = []
            for i in 0..<53 {
                ids.insert(try await node.client.createLease(createRequest(object: "obj-\(i)", service: i % 2 == 0 ? "even" : "odd")).leaseID)
            }
            var request = DistributedGc_ListLeasesRequest()
            request.limit = 7
            let (leases, pages) = try await node.client.listAll(request)
            #expect(leases.count == 53)
            #expect(Set(leases.map(\.leaseID)) == ids)
            #expect(pages == 8)

            request.serviceID = "even"
            let even = try await node.client.listAll(request).leases
            #expect(even.count == 27)
            #expect(even.allSatisfy { $0.serviceID == "even" })
        }
    }

    @Test("paging stays exactly-once while leases are created between pages")
    func pagingUnderWrites() async throws {
        try await withTestNode { node in
            var before: Set<String> = []
            for i in 0..<20 { before.insert(try await node.client.createLease(createRequest(object: "o\(i)")).leaseID) }
            var request = DistributedGc_ListLeasesRequest()
            request.limit = 6
            var seen: [String] = []
            var extra = 0
            while true {
                let page = try await node.client.listLeases(request)
                seen += page.leases.map(\.leaseID)
                _ = try await node.client.createLease(createRequest(object: "late-\(extra)"))
                extra += 1
                if page.nextPageToken.isEmpty { break }
                request.pageToken = page.nextPageToken
            }
            #expect(Set(seen).count == seen.count, "no lease twice")
            #expect(before.isSubset(of: Set(seen)), "every lease that existed before listing began is listed")
        }
    }

    @Test("list filters by state, type and object id; default limit is 100, at most 1000")
    func listFilters() async throws {
        try await withTestNode { node in
            let a = try await node.client.createLease(createRequest(object: "x", type: .cacheEntry))
            _ = try await node.client.createLease(createRequest(object: "y", type: .blobStorage))
            _ = try await node.client.releaseLease(releaseRequest(a.leaseID))

            var request = DistributedGc_ListLeasesRequest()
            request.states = [.released]
            #expect(try await node.client.listLeases(request).leases.map(\.leaseID) == [a.leaseID])
            request = DistributedGc_ListLeasesRequest()
            request.state = .released
            #expect(try await node.client.listLeases(request).leases.map(\.leaseID) == [a.leaseID])
            request = DistributedGc_ListLeasesRequest()
            request.objectType = .blobStorage
            #expect(try await node.client.listLeases(request).leases.map(\.objectID) == ["y"])
            request = DistributedGc_ListLeasesRequest()
            request.objectID = "x"
            #expect(try await node.client.listLeases(request).leases.count == 1)

            for i in 0..<120 { _ = try await node.client.createLease(createRequest(object: "bulk-\(i)")) }
            let firstPage = try await node.client.listLeases(DistributedGc_ListLeasesRequest())
            #expect(firstPage.leases.count == 100)
            #expect(!firstPage.nextPageToken.isEmpty)
        }
    }

    @Test("a malformed page token is INVALID_ARGUMENT")
    func badPageToken() async throws {
        try await withTestNode { node in
            var request = DistributedGc_ListLeasesRequest()
            request.pageToken = "%%%not-a-token"
            let error = await rpcError { try await node.client.listLeases(request) }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("page_token") == true)
        }
    }

    @Test("health and metrics report the same counts as the lease table")
    func healthAndMetrics() async throws {
        try await withTestNode(configure: { $0.nodeID = "node-x" }) { node in
            let a = try await node.client.createLease(createRequest(object: "a", type: .cacheEntry))
            _ = try await node.client.createLease(createRequest(object: "b", service: "svc-b"))
            _ = try await node.client.renewLease(renewRequest(a.leaseID))
            let health = try await node.client.healthCheck(DistributedGc_HealthCheckRequest())
            #expect(health.healthy)
            #expect(health.nodeID == "node-x")
            #expect(health.activeLeases == 2)
            #expect(!health.version.isEmpty)
            #expect(health.appliedIndex == a.fencingToken + 2, "two more commands after the first create")
            let metrics = try await node.client.getMetrics(DistributedGc_MetricsRequest())
            #expect(metrics.totalLeasesCreated == 2)
            #expect(metrics.totalLeasesRenewed == 1)
            #expect(metrics.activeLeases == 2)
            #expect(metrics.leasesByService == ["svc-a": 1, "svc-b": 1])
            #expect(metrics.leasesByType == ["CACHE_ENTRY": 1, "DATABASE_ROW": 1])
            let text = node.sidecar.metrics.exposition()
            #expect(text.contains("gc_leases_created_total 2"))
            #expect(text.contains("gc_active_leases 2"))
            // The single node took office when it started: Raft's gauges say so.
            #expect(text.contains("gc_raft_is_leader 1"))
            #expect(text.contains("gc_raft_term 1"))
        }
    }

    @Test("WatchLeases streams events in log order from after_index")
    func watchFromIndex() async throws {
        try await withTestNode { node in
            let a = try await node.client.createLease(createRequest(object: "a"))
            _ = try await node.client.renewLease(renewRequest(a.leaseID))
            _ = try await node.client.releaseLease(releaseRequest(a.leaseID))
            var request = DistributedGc_WatchLeasesRequest()
            request.afterIndex = a.fencingToken  // the create's log index: start with the renewal
            let kinds = try await node.client.watchLeases(request) { response in
                var kinds: [DistributedGc_LeaseEvent.Kind] = []
                for try await event in response.messages {
                    #expect(event.leaseID == a.leaseID)
                    kinds.append(event.kind)
                    if kinds.count == 2 { break }
                }
                return kinds
            }
            #expect(kinds == [.renewed, .released])
        }
    }

    @Test("a watch ends with UNAVAILABLE and a resume index when the node shuts down")
    func watchEndsOnShutdown() async throws {
        try await withTestNode { node in
            let first = try await node.client.createLease(createRequest(object: "a"))
            let second = try await node.client.createLease(createRequest(object: "b"))
            var request = DistributedGc_WatchLeasesRequest()
            request.afterIndex = first.fencingToken  // replays the second create, then waits
            let outcome = await rpcError {
                try await node.client.watchLeases(request) { response in
                    var seen = 0
                    for try await event in response.messages {
                        #expect(event.kind == .created)
                        #expect(event.leaseID == second.leaseID)
                        seen += 1
                        node.sidecar.store.events.close()
                    }
                    return seen
                }
            }
            #expect(outcome?.code == .unavailable)
            #expect(outcome?.message.contains("after_index = \(second.fencingToken)") == true, "\(outcome?.message ?? "")")
        }
    }
}
