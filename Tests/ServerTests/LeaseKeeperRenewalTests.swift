import GCClient
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaseFSM
import Server
import SwiftProtobuf
import Synchronization
import Testing

/// `LeaseKeeper` renews each kept lease by exactly the TTL it was kept with:
/// checked both in the renewals it sends (`KeepAlive` requests, or
/// `RenewLeases` calls against a server without it; recorded by a server
/// interceptor in front of a real in-process node) and in the expiry the node
/// then holds (exact, since the node runs on a manual clock).
@Suite("LeaseKeeper renewal duration", .timeLimit(.minutes(1)))
struct LeaseKeeperRenewalTests {
    @Test("each kept lease is renewed by exactly its own TTL, so its expiry becomes renewal time plus that TTL")
    func renewsByEachLeasesOwnTTL() async throws {
        let recorder = RenewLeasesRecorder()
        try await renewsByOwnTTL(interceptors: [recorder], recorder: recorder)
        #expect(recorder.keepAliveStreams > 0, "the keeper renewed over KeepAlive")
    }

    @Test("against a server without KeepAlive (UNIMPLEMENTED) the keeper renews with RenewLeases, by each lease's TTL")
    func fallsBackToRenewLeases() async throws {
        let recorder = RenewLeasesRecorder()
        try await renewsByOwnTTL(interceptors: [WithoutKeepAlive(), recorder], recorder: recorder)
        #expect(recorder.keepAliveStreams == 0)
    }

    func renewsByOwnTTL(interceptors: [any ServerInterceptor], recorder: RenewLeasesRecorder) async throws {
        // Two TTLs (multiples of 3, so TTL/3 is whole): a keeper that used one
        // TTL for all, the server's default or any fixed value fails. Both
        // leases are created for 60 s, neither TTL, so a renewal left to the
        // lease's own duration (extend_duration_seconds = 0) fails too.
        let shortTTL: UInt64 = 6, longTTL: UInt64 = 15, createdFor: UInt64 = 60
        try await withTestNode { node in
            try await serving(node.sidecar, interceptors: interceptors) { endpoint in
                try await GCClient.with(endpoints: [endpoint]) { client in
                    let keeper = LeaseKeeper(client: client) { _ in }
                    let sent = ContinuousClock.now
                    let short = try await client.createLease(
                        objectID: "short", objectType: .blobStorage, serviceID: "svc-a", duration: .seconds(createdFor))
                    let long = try await client.createLease(
                        objectID: "long", objectType: .blobStorage, serviceID: "svc-a", duration: .seconds(createdFor))
                    let ttls = [short.leaseID: shortTTL, long.leaseID: longTTL]
                    await keeper.keep(leaseID: short.leaseID, serviceID: "svc-a", ttl: .seconds(shortTTL), confirmedAt: sent)
                    await keeper.keep(leaseID: long.leaseID, serviceID: "svc-a", ttl: .seconds(longTTL), confirmedAt: sent)

                    // The node's time moves on before any renewal (the first is
                    // due TTL/3 = 2 s of real time from now) and then stands
                    // still, so every renewal is applied at `renewedAt`.
                    node.clock.advance(seconds: 4)
                    let renewedAt = node.clock.now()

                    let keeping = Task { await keeper.run() }
                    defer { keeping.cancel() }
                    // Until the node has applied a renewal of each lease: the
                    // long one's is due 5 s after `sent`.
                    let deadline = ContinuousClock.now + .seconds(15)
                    var leases: [String: DistributedGc_LeaseInfo] = [:]
                    while true {
                        for id in ttls.keys { leases[id] = try await client.getLease(id) }
                        let renewed = ttls.keys.allSatisfy { (leases[$0]?.renewalCount ?? 0) > 0 }
                        if renewed || ContinuousClock.now >= deadline { break }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    keeping.cancel()
                    await keeping.value

                    // What the keeper asked for.
                    let requests = recorder.requests
                    #expect(Set(requests.flatMap(\.leaseIds)) == Set(ttls.keys), "both leases were renewed by the keeper")
                    for request in requests {
                        #expect(request.serviceID == "svc-a")
                        for id in request.leaseIds {
                            #expect(request.extendDurationSeconds == ttls[id],
                                    "lease \(id), kept with a TTL of \(ttls[id] ?? 0) s, was renewed by \(request.extendDurationSeconds) s")
                        }
                    }

                    // What the node made of it: expiry = renewal time + TTL.
                    for (id, ttl) in ttls {
                        let lease = try #require(leases[id], "lease \(id) is gone")
                        try #require(lease.renewalCount > 0, "lease \(id) was not renewed within 15 s")
                        #expect(lease.state == .active)
                        #expect(lease.expiresAt.seconds == renewedAt.milliseconds / 1000 + Int64(ttl),
                                "lease \(id) kept with a TTL of \(ttl) s")
                    }
                }
            }
        }
    }
}

/// Records every `RenewLeases` request a server receives, and every renewal
/// of a `KeepAlive` stream (as a `RenewLeases` request of its one lease),
/// then serves them as usual.
final class RenewLeasesRecorder: ServerInterceptor {
    private let recorded = Mutex<[DistributedGc_RenewLeasesRequest]>([])
    private let streams = Mutex(0)

    var requests: [DistributedGc_RenewLeasesRequest] { recorded.withLock { $0 } }
    /// `KeepAlive` calls seen.
    var keepAliveStreams: Int { streams.withLock { $0 } }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let renewLeases = DistributedGc_DistributedGCService.Method.RenewLeases.descriptor
        let keepAlive = DistributedGc_DistributedGCService.Method.KeepAlive.descriptor
        if context.descriptor.fullyQualifiedMethod == keepAlive.fullyQualifiedMethod {
            streams.withLock { $0 += 1 }
            let messages = request.messages.map { [self] message in
                if let renewal = message as? DistributedGc_KeepAliveRequest {
                    var renew = DistributedGc_RenewLeasesRequest()
                    renew.leaseIds = [renewal.leaseID]
                    renew.serviceID = renewal.serviceID
                    renew.extendDurationSeconds = renewal.extendDurationSeconds
                    recorded.withLock { $0.append(renew) }
                }
                return message
            }
            return try await next(StreamingServerRequest(metadata: request.metadata, messages: RPCAsyncSequence(wrapping: messages)), context)
        }
        guard context.descriptor.fullyQualifiedMethod == renewLeases.fullyQualifiedMethod else {
            return try await next(request, context)
        }
        // Unary: read its one message, note it, and pass the same message on.
        let single = try await ServerRequest(stream: request)
        if let renew = single.message as? DistributedGc_RenewLeasesRequest {
            recorded.withLock { $0.append(renew) }
        }
        return try await next(StreamingServerRequest(single: single), context)
    }
}

/// Answers `KeepAlive` with UNIMPLEMENTED, as a server from before it did.
struct WithoutKeepAlive: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard context.descriptor.fullyQualifiedMethod == DistributedGc_DistributedGCService.Method.KeepAlive.descriptor.fullyQualifiedMethod else {
            return try await next(request, context)
        }
        return StreamingServerResponse(error: RPCError(code: .unimplemented, message: "KeepAlive is not offered here"))
    }
}

/// Serves `sidecar`'s client API a second time, on another ephemeral port of
/// 127.0.0.1 and through `interceptors`, for the duration of `body`, which
/// gets its `host:port`.
func serving(
    _ sidecar: Sidecar, interceptors: [any ServerInterceptor], _ body: (String) async throws -> Void
) async throws {
    let server = GRPCServer(
        transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext),
        services: [sidecar.service],
        interceptors: interceptors)
    try await serving(server) { address in try await body("\(address.host):\(address.port)") }
}
