import Foundation
import GCProto
import GRPCCore
import LeaseFSM
import Server
import Testing

/// Cleanups delivered to a real local `distributed_gc.CleanupHandler` over
/// gRPC: how each answer is read (proto/cleanup.proto), and end to end
/// through a node.
@Suite("Cleanup delivery over gRPC")
struct GRPCCleanupTransportTests {
    /// Deadline for calls that should be answered: generous, since the
    /// whole suite (chaos profile included) shares two cores in CI.
    static let answerTimeout = Duration.seconds(15)

    /// A cleanup request with every field set to a distinct value.
    /// (`CleanupRequest` has only `init(job:)`; its Codable form is public.)
    static func sampleRequest() throws -> CleanupRequest {
        let json = #"""
            {
              "lease_id": "00000000000000a1-cafe01", "object_id": "session-9", "object_type": "WebsocketSession",
              "service_id": "svc-a", "metadata": {"room": "42", "tier": "gold"}, "payload": "drop-it",
              "incarnation": 7, "fencing_token": 161, "idempotency_key": "00000000000000a1-cafe01-job3", "attempt": 2
            }
            """#
        return try JSONDecoder().decode(CleanupRequest.self, from: Data(json.utf8))
    }

    /// The reason and permanence of a failed attempt; nil for a success.
    static func failure(_ result: CleanupAttemptResult) -> (reason: String, permanent: Bool)? {
        if case .failed(let reason, let permanent) = result { return (reason, permanent) }
        return nil
    }

    // MARK: The transport against a scripted handler

    @Test("an OK answer is a success, and the handler received every field of the request")
    func okCarriesEveryField() async throws {
        let handler = CleanupHandlerSink()
        let transport = GRPCCleanupTransport()
        let request = try Self.sampleRequest()
        try await handler.run { target in
            defer { transport.shutdown() }
            let result = await transport.deliver(request, to: .grpc(target), timeout: Self.answerTimeout)
            #expect(result == .succeeded)
            #expect(handler.received.count == 1)
            let received = try #require(handler.received.first)
            #expect(received.leaseID == request.leaseID)
            #expect(received.objectID == request.objectID)
            #expect(received.objectType == request.objectType)
            #expect(received.serviceID == request.serviceID)
            #expect(received.metadata == request.metadata)
            #expect(received.payload == request.payload)
            #expect(received.incarnation == request.incarnation)
            #expect(received.fencingToken == request.fencingToken)
            #expect(received.idempotencyKey == request.idempotencyKey)
            #expect(received.attempt == request.attempt)
            // The sample's values, so the comparison above is not between defaults.
            #expect(received.metadata == ["room": "42", "tier": "gold"])
            #expect(received.incarnation == 7 && received.fencingToken == 161 && received.attempt == 2)
        }
    }

    @Test("UNAVAILABLE and the other transient statuses are failures to retry",
          arguments: [RPCError.Code.unavailable, .deadlineExceeded, .resourceExhausted, .aborted, .internalError, .unknown])
    func transientStatuses(_ code: RPCError.Code) async throws {
        let handler = CleanupHandlerSink(script: [.status(code, "try later")])
        let transport = GRPCCleanupTransport()
        let request = try Self.sampleRequest()
        try await handler.run { target in
            defer { transport.shutdown() }
            let result = await transport.deliver(request, to: .grpc(target), timeout: Self.answerTimeout)
            let failed = try #require(Self.failure(result), "\(code) must not count as cleaned")
            #expect(!failed.permanent, "\(code) is retried: \(failed.reason)")
            #expect(handler.received.count == 1)
        }
    }

    @Test("INVALID_ARGUMENT is a permanent failure carrying the handler's message")
    func invalidArgumentIsPermanent() async throws {
        let handler = CleanupHandlerSink(script: [.status(.invalidArgument, "bad object")])
        let transport = GRPCCleanupTransport()
        let request = try Self.sampleRequest()
        try await handler.run { target in
            defer { transport.shutdown() }
            let result = await transport.deliver(request, to: .grpc(target), timeout: Self.answerTimeout)
            let failed = try #require(Self.failure(result))
            #expect(failed.permanent)
            #expect(failed.reason.contains("bad object"), "\(failed.reason)")
        }
    }

    @Test("the other non-transient statuses are permanent failures too",
          arguments: [RPCError.Code.permissionDenied, .unimplemented, .failedPrecondition, .outOfRange])
    func permanentStatuses(_ code: RPCError.Code) async throws {
        let handler = CleanupHandlerSink(script: [.status(code, "never going to work")])
        let transport = GRPCCleanupTransport()
        let request = try Self.sampleRequest()
        try await handler.run { target in
            defer { transport.shutdown() }
            let result = await transport.deliver(request, to: .grpc(target), timeout: Self.answerTimeout)
            let failed = try #require(Self.failure(result))
            #expect(failed.permanent, "\(code) dead-letters at once")
            #expect(failed.reason.contains("never going to work"))
        }
    }

    @Test("NOT_FOUND and ALREADY_EXISTS count as cleaned", arguments: [RPCError.Code.notFound, .alreadyExists])
    func goneCountsAsCleaned(_ code: RPCError.Code) async throws {
        let handler = CleanupHandlerSink(script: [.status(code, "no such object")])
        let transport = GRPCCleanupTransport()
        let request = try Self.sampleRequest()
        try await handler.run { target in
            defer { transport.shutdown() }
            let result = await transport.deliver(request, to: .grpc(target), timeout: Self.answerTimeout)
            #expect(result == .succeeded)
            #expect(handler.received.count == 1)
        }
    }

    @Test("a handler slower than the timeout is a failure to retry, reported within the timeout")
    func slowHandlerTimesOut() async throws {
        let handler = CleanupHandlerSink(script: [.stall(.seconds(20))])
        let transport = GRPCCleanupTransport()
        let request = try Self.sampleRequest()
        try await handler.run { target in
            defer { transport.shutdown() }
            let start = ContinuousClock.now
            let result = await transport.deliver(request, to: .grpc(target), timeout: .milliseconds(300))
            let elapsed = ContinuousClock.now - start
            let failed = try #require(Self.failure(result))
            #expect(!failed.permanent)
            // Far below the handler's 20 s: the attempt ended at its deadline
            // (with slack for a loaded machine).
            #expect(elapsed < .seconds(8), "the attempt took \(elapsed)")
        }
    }

    @Test("a target where nothing listens is a failure to retry, within the timeout")
    func nothingListening() async throws {
        try await CleanupHandlerSink.withClosedTarget { target in
            let transport = GRPCCleanupTransport()
            defer { transport.shutdown() }
            let request = try Self.sampleRequest()
            let start = ContinuousClock.now
            let result = await transport.deliver(request, to: .grpc(target), timeout: Self.answerTimeout)
            let elapsed = ContinuousClock.now - start
            let failed = try #require(Self.failure(result), "nothing listens on \(target)")
            #expect(!failed.permanent)
            #expect(elapsed < Self.answerTimeout + .seconds(3), "the attempt took \(elapsed)")
        }
    }

    @Test("a host:port/anything target is delivered to host:port (the path is ignored)")
    func pathIsIgnored() async throws {
        let handler = CleanupHandlerSink()
        let transport = GRPCCleanupTransport()
        let request = try Self.sampleRequest()
        try await handler.run { target in
            defer { transport.shutdown() }
            let result = await transport.deliver(request, to: .grpc(target + "/cleanup/v1"), timeout: Self.answerTimeout)
            #expect(result == .succeeded)
            #expect(handler.received.count == 1)
        }
    }

    @Test("an HTTP target is refused as permanent (it belongs to the HTTP transport)")
    func httpTargetRefused() async throws {
        let transport = GRPCCleanupTransport()
        defer { transport.shutdown() }
        let request = try Self.sampleRequest()
        let result = await transport.deliver(request, to: .http("http://127.0.0.1:1/cleanup"), timeout: .seconds(1))
        #expect(Self.failure(result)?.permanent == true)
    }

    // MARK: End to end through a node

    @Test("a released lease with a gRPC cleanup_endpoint is cleaned through the handler")
    func endToEndSuccess() async throws {
        let handler = CleanupHandlerSink()
        let transport = GRPCCleanupTransport()
        try await handler.run { target in
            defer { transport.shutdown() }
            try await withTestNode(transport: transport) { node in
                let created = try await node.client.createLease(
                    grpcCreateRequest(object: "session-9", type: .websocketSession, metadata: ["room": "42"], endpoint: target, payload: "drop-it"))
                _ = try await node.client.releaseLease(releaseRequest(created.leaseID))
                try await node.reapAndDispatch()

                #expect(handler.received.count == 1)
                let received = try #require(handler.received.first)
                #expect(received.leaseID == created.leaseID)
                #expect(received.objectID == "session-9")
                #expect(received.objectType == "WebsocketSession")
                #expect(received.serviceID == "svc-a")
                #expect(received.metadata == ["room": "42"])
                #expect(received.payload == "drop-it")
                #expect(received.incarnation == created.incarnation)
                #expect(received.attempt == 1)
                #expect(!received.idempotencyKey.isEmpty)

                let lease = try await node.client.getLease(getRequest(created.leaseID)).lease
                #expect(lease.cleanupConfig.cleanupEndpoint == target)
                #expect(lease.cleanupState == .cleanupSucceeded)
                #expect(lease.cleanupAttempts == 1)
            }
        }
    }

    @Test("a handler answering UNAVAILABLE once is retried, and the cleanup succeeds on attempt 2")
    func endToEndRetryAfterUnavailable() async throws {
        let handler = CleanupHandlerSink(script: [.status(.unavailable, "restarting")])
        let transport = GRPCCleanupTransport()
        try await handler.run { target in
            defer { transport.shutdown() }
            try await withTestNode(transport: transport) { node in
                let created = try await node.client.createLease(grpcCreateRequest(endpoint: target, maxRetries: 3, retryDelay: 1))
                _ = try await node.client.releaseLease(releaseRequest(created.leaseID))
                try await node.reapAndDispatch()
                var lease = try await node.client.getLease(getRequest(created.leaseID)).lease
                #expect(lease.cleanupState == .cleanupPending)
                #expect(lease.cleanupAttempts == 1)
                #expect(lease.lastCleanupError.contains("restarting"))

                for _ in 0..<10 {
                    if handler.received.count >= 2 { break }
                    node.clock.advance(seconds: 10)
                    try await node.reapAndDispatch()
                }
                lease = try await node.client.getLease(getRequest(created.leaseID)).lease
                #expect(lease.cleanupState == .cleanupSucceeded)
                #expect(lease.cleanupAttempts == 2)
                #expect(handler.received.map(\.attempt) == [1, 2])
                #expect(Set(handler.received.map(\.idempotencyKey)).count == 1)
            }
        }
    }

    @Test("a handler answering PERMISSION_DENIED dead-letters the cleanup at once, with its message")
    func endToEndPermissionDenied() async throws {
        let handler = CleanupHandlerSink(script: [.status(.permissionDenied, "svc-a may not delete obj-1")])
        let transport = GRPCCleanupTransport()
        try await handler.run { target in
            defer { transport.shutdown() }
            try await withTestNode(transport: transport) { node in
                let created = try await node.client.createLease(grpcCreateRequest(endpoint: target, maxRetries: 5, retryDelay: 1))
                _ = try await node.client.releaseLease(releaseRequest(created.leaseID))
                try await node.reapAndDispatch()
                let lease = try await node.client.getLease(getRequest(created.leaseID)).lease
                #expect(lease.cleanupState == .cleanupDeadLettered)
                #expect(lease.cleanupAttempts == 1, "no retry of a permanent failure")
                #expect(lease.lastCleanupError.contains("svc-a may not delete obj-1"), "\(lease.lastCleanupError)")

                node.clock.advance(seconds: 60)
                try await node.reapAndDispatch()
                #expect(handler.received.count == 1)
            }
        }
    }
}
