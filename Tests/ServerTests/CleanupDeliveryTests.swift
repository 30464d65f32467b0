import AsyncHTTPClient
import GCProto
import LeaseFSM
import Server
import SwiftProtobuf
import Testing

/// End to end: leases over gRPC, expiry on a manual clock, cleanups POSTed
/// by async-http-client to a real local HTTP server.
@Suite("Cleanup delivery over HTTP")
struct CleanupDeliveryTests {
    let transport = HTTPCleanupTransport()

    @Test("an expired lease's cleanup arrives with the documented body and headers")
    func bodyAndHeaders() async throws {
        let sink = HTTPSink()
        try await sink.run { url in
            try await withTestNode(transport: transport) { node in
                let created = try await node.client.createLease(
                    createRequest(object: "session-9", type: .websocketSession, duration: 10, metadata: ["room": "42"], httpEndpoint: url, payload: "drop-it"))
                try await node.reapAndDispatch()
                #expect(sink.received.isEmpty, "nothing is cleaned before expiry")

                node.clock.advance(seconds: 11)
                try await node.reapAndDispatch()
                let received = try #require(sink.received.first)
                #expect(sink.received.count == 1)
                #expect(received.body["lease_id"] as? String == created.leaseID)
                #expect(received.body["object_id"] as? String == "session-9")
                #expect(received.body["object_type"] as? String == "WebsocketSession")
                #expect(received.body["service_id"] as? String == "svc-a")
                #expect(received.body["metadata"] as? [String: String] == ["room": "42"])
                #expect(received.body["payload"] as? String == "drop-it")
                #expect(received.body["incarnation"] as? Int64 == Int64(created.incarnation))
                #expect(received.body["fencing_token"] as? Int64 == Int64(created.fencingToken))
                #expect(received.body["attempt"] as? Int64 == 1)
                let key = try #require(received.headers["idempotency-key"])
                #expect(received.body["idempotency_key"] as? String == key)
                #expect(received.headers["content-type"] == "application/json")

                let lease = try await node.client.getLease(getRequest(created.leaseID)).lease
                #expect(lease.state == .expired)
                #expect(lease.cleanupState == .cleanupSucceeded)
                let metrics = try await node.client.getMetrics(DistributedGc_MetricsRequest())
                #expect(metrics.totalLeasesExpired == 1)
                #expect(metrics.totalCleanupOperations == 1)
                #expect(metrics.succeededCleanups == 1)
            }
        }
    }

    @Test("a target failing twice then succeeding gets exactly three attempts with one idempotency key")
    func failTwiceThenSucceed() async throws {
        let sink = HTTPSink(script: [500, 503])
        try await sink.run { url in
            try await withTestNode(transport: transport) { node in
                let created = try await node.client.createLease(createRequest(duration: 10, httpEndpoint: url, maxRetries: 5, retryDelay: 2))
                node.clock.advance(seconds: 11)
                try await node.reapAndDispatch()
                #expect(sink.received.count == 1)
                // Backoff: the retry is not due before retry_delay_seconds.
                node.clock.advance(seconds: 1)
                try await node.reapAndDispatch()
                #expect(sink.received.count == 1, "no retry before the backoff delay")
                for _ in 0..<10 {
                    node.clock.advance(seconds: 10)
                    try await node.reapAndDispatch()
                }
                #expect(sink.received.count == 3)
                #expect(sink.received.map { $0.body["attempt"] as? Int64 } == [1, 2, 3])
                #expect(Set(sink.received.compactMap { $0.headers["idempotency-key"] }).count == 1)
                let lease = try await node.client.getLease(getRequest(created.leaseID)).lease
                #expect(lease.cleanupState == .cleanupSucceeded)
                #expect(lease.cleanupAttempts == 3)
                let metrics = try await node.client.getMetrics(DistributedGc_MetricsRequest())
                #expect(metrics.failedCleanupOperations == 2)
            }
        }
    }

    @Test("a target that always fails gets 1 + max_retries attempts, then the job is dead-lettered")
    func alwaysFailsDeadLetters() async throws {
        let sink = HTTPSink(script: Array(repeating: 500, count: 100))
        try await sink.run { url in
            try await withTestNode(transport: transport) { node in
                let created = try await node.client.createLease(createRequest(duration: 10, httpEndpoint: url, maxRetries: 3, retryDelay: 1))
                node.clock.advance(seconds: 11)
                for _ in 0..<30 {
                    try await node.reapAndDispatch()
                    node.clock.advance(seconds: 30)
                }
                #expect(sink.received.count == 4)
                let lease = try await node.client.getLease(getRequest(created.leaseID)).lease
                #expect(lease.cleanupState == .cleanupDeadLettered)
                #expect(lease.cleanupAttempts == 4)
                #expect(lease.lastCleanupError.contains("500"))
                let health = try await node.client.healthCheck(DistributedGc_HealthCheckRequest())
                #expect(health.deadLetteredCleanups == 1)
                #expect(node.sidecar.metrics.exposition().contains("gc_cleanup_dead_letters 1"))
            }
        }
    }

    @Test("a lease renewed in time is never cleaned")
    func renewedInTimeNeverCleaned() async throws {
        let sink = HTTPSink()
        try await sink.run { url in
            try await withTestNode(transport: transport) { node in
                let created = try await node.client.createLease(createRequest(duration: 10, httpEndpoint: url))
                for _ in 0..<20 {
                    node.clock.advance(seconds: 9)
                    try await node.reapAndDispatch()
                    _ = try await node.client.renewLease(renewRequest(created.leaseID))
                }
                try await node.reapAndDispatch()
                #expect(sink.received.isEmpty)
                #expect(try await node.client.getLease(getRequest(created.leaseID)).lease.state == .active)
            }
        }
    }

    @Test("an object leased by two services is cleaned only after both leases end")
    func sharedObject() async throws {
        let sink = HTTPSink()
        try await sink.run { url in
            try await withTestNode(transport: transport) { node in
                _ = try await node.client.createLease(createRequest(object: "blob-1", type: .blobStorage, service: "svc-a", duration: 10, httpEndpoint: url))
                let b = try await node.client.createLease(createRequest(object: "blob-1", type: .blobStorage, service: "svc-b", duration: 100, httpEndpoint: url))
                node.clock.advance(seconds: 11)
                try await node.reapAndDispatch()
                #expect(sink.received.isEmpty, "svc-b still holds the object")
                _ = try await node.client.releaseLease(releaseRequest(b.leaseID, service: "svc-b"))
                try await node.reapAndDispatch()
                #expect(sink.received.count == 1)
                #expect(sink.received.first?.body["object_id"] as? String == "blob-1")
            }
        }
    }

    @Test("release triggers the cleanup of an otherwise unheld object")
    func releaseTriggersCleanup() async throws {
        let sink = HTTPSink()
        try await sink.run { url in
            try await withTestNode(transport: transport) { node in
                let created = try await node.client.createLease(createRequest(object: "tmp-1", type: .temporaryFile, duration: 600, httpEndpoint: url))
                _ = try await node.client.releaseLease(releaseRequest(created.leaseID))
                try await node.reapAndDispatch()
                #expect(sink.received.count == 1)
                #expect(sink.received.first?.body["lease_id"] as? String == created.leaseID)
            }
        }
    }

    @Test("an unreachable target is retried, not dropped")
    func unreachableTargetRetried() async throws {
        try await withTestNode(configure: { $0.cleanupTimeoutSeconds = 1 }, transport: transport) { node in
            let created = try await node.client.createLease(createRequest(duration: 10, httpEndpoint: "http://127.0.0.1:9/cleanup", maxRetries: 2, retryDelay: 1))
            node.clock.advance(seconds: 11)
            try await node.reapAndDispatch()
            let lease = try await node.client.getLease(getRequest(created.leaseID)).lease
            #expect(lease.cleanupState == .cleanupPending)
            #expect(lease.cleanupAttempts == 1)
            #expect(!lease.lastCleanupError.isEmpty)
        }
    }
}
