import GCProto
import GRPCCore
import LeaseFSM
import Server
import Testing

/// Bad input gets a precise status and message, and changes nothing.
@Suite("Input validation")
struct InputValidationTests {
    struct BadCreate: CustomTestStringConvertible, Sendable {
        var name: String
        var request: DistributedGc_CreateLeaseRequest
        var code: RPCError.Code
        /// A fragment the message must contain (names the field to fix).
        var mentions: String
        var testDescription: String { name }
    }

    static let badCreates: [BadCreate] = {
        var noService = createRequest()
        noService.serviceID = ""
        var badType = createRequest()
        badType.objectType = .UNRECOGNIZED(42)
        var tooManyMetadata = createRequest()
        tooManyMetadata.metadata = Dictionary(uniqueKeysWithValues: (0..<65).map { ("k\($0)", "v") })
        var bigMetadata = createRequest()
        bigMetadata.metadata = ["k": String(repeating: "x", count: 17 * 1024)]
        var grpcEndpoint = createRequest(httpEndpoint: nil)
        grpcEndpoint.cleanupConfig.cleanupEndpoint = "not a target"
        return [
            BadCreate(name: "empty object_id", request: createRequest(object: ""), code: .invalidArgument, mentions: "object_id"),
            BadCreate(name: "object_id over 256 bytes", request: createRequest(object: String(repeating: "o", count: 257)), code: .invalidArgument, mentions: "object_id"),
            BadCreate(name: "empty service_id", request: noService, code: .invalidArgument, mentions: "service_id"),
            BadCreate(name: "unknown object type", request: badType, code: .invalidArgument, mentions: "object_type"),
            BadCreate(name: "duration below minimum", request: createRequest(duration: 5), code: .invalidArgument, mentions: "lease_duration_seconds"),
            BadCreate(name: "duration above maximum", request: createRequest(duration: 3601), code: .invalidArgument, mentions: "lease_duration_seconds"),
            BadCreate(name: "65 metadata entries", request: tooManyMetadata, code: .invalidArgument, mentions: "metadata"),
            BadCreate(name: "metadata over 16 KiB", request: bigMetadata, code: .invalidArgument, mentions: "metadata"),
            BadCreate(name: "payload over 64 KiB", request: createRequest(payload: String(repeating: "p", count: 64 * 1024 + 1)), code: .invalidArgument, mentions: "cleanup_payload"),
            BadCreate(name: "http endpoint that is not a URL", request: createRequest(httpEndpoint: "ftp://x/y"), code: .invalidArgument, mentions: "cleanup_http_endpoint"),
            BadCreate(name: "grpc endpoint that is not host:port", request: grpcEndpoint, code: .invalidArgument, mentions: "cleanup_endpoint"),
            BadCreate(name: "retries over the cap", request: createRequest(maxRetries: 101), code: .invalidArgument, mentions: "max_retries"),
        ]
    }()

    @Test("a bad create is rejected with a message naming the field, and creates nothing", arguments: badCreates)
    func badCreate(_ bad: BadCreate) async throws {
        try await withTestNode(configure: { $0.limits.minDurationSeconds = 10 }) { node in
            let before = try await node.client.healthCheck(DistributedGc_HealthCheckRequest())
            let error = await rpcError { try await node.client.createLease(bad.request) }
            #expect(error?.code == bad.code, "\(String(describing: error))")
            #expect(error?.message.contains(bad.mentions) == true, "message was: \(error?.message ?? "none")")
            let health = try await node.client.healthCheck(DistributedGc_HealthCheckRequest())
            #expect(health.activeLeases == 0)
            #expect(health.appliedIndex == before.appliedIndex, "nothing was proposed")
        }
    }

    @Test("the per-service quota is RESOURCE_EXHAUSTED and other services are unaffected")
    func quota() async throws {
        try await withTestNode(configure: { $0.limits.maxLeasesPerService = 2 }) { node in
            _ = try await node.client.createLease(createRequest(object: "1"))
            let second = try await node.client.createLease(createRequest(object: "2"))
            let error = await rpcError { try await node.client.createLease(createRequest(object: "3")) }
            #expect(error?.code == .resourceExhausted)
            #expect(error?.message.contains("GC_MAX_LEASES_PER_SERVICE") == true || error?.message.contains("quota") == true)
            _ = try await node.client.createLease(createRequest(object: "3", service: "svc-b"))
            _ = try await node.client.releaseLease(releaseRequest(second.leaseID))
            _ = try await node.client.createLease(createRequest(object: "3"))
        }
    }

    @Test("renew with an extension outside the allowed durations is INVALID_ARGUMENT")
    func badExtension() async throws {
        try await withTestNode(configure: { $0.limits.minDurationSeconds = 10 }) { node in
            let created = try await node.client.createLease(createRequest())
            let error = await rpcError { try await node.client.renewLease(renewRequest(created.leaseID, extend: 99_999)) }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("extend_duration_seconds") == true, "\(error?.message ?? "")")
            let lease = try await node.client.getLease(getRequest(created.leaseID)).lease
            #expect(lease.expiresAt == created.expiresAt)
        }
    }

    @Test("empty and oversized lease ids are INVALID_ARGUMENT")
    func badLeaseIDs() async throws {
        try await withTestNode { node in
            #expect(await rpcError { try await node.client.renewLease(renewRequest("")) }?.code == .invalidArgument)
            #expect(await rpcError { try await node.client.releaseLease(releaseRequest(String(repeating: "x", count: 300))) }?.code == .invalidArgument)
            #expect(await rpcError { try await node.client.getLease(getRequest("")) }?.code == .invalidArgument)
        }
    }
}
