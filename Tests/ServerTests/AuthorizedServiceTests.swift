import Foundation
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
@testable import Server
import SwiftProtobuf
import Testing

/// The client API behind the authorization interceptor, in process, with
/// bearer tokens (no TLS needed for these promises).
@Suite("Authorized client API (in process)")
struct AuthorizedServiceTests {
    static func bearer(_ token: String) -> Metadata {
        var metadata = Metadata()
        metadata.addString("Bearer " + token, forKey: "authorization")
        return metadata
    }

    /// A node whose policy gives token "token-a" service a and "token-b" service b.
    func withAuthorizedNode(_ body: (TestNode) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try """
            identities:
              a: { services: [a] }
              b: { services: [b] }
            tokens:
              - { identity: a, sha256: \(Authenticator.sha256Hex("token-a")) }
              - { identity: b, sha256: \(Authenticator.sha256Hex("token-b")) }
            """.write(toFile: path, atomically: true, encoding: .utf8)
        try await withTestNode(configure: { $0.security.authPolicyFile = path }, body)
    }

    @Test("two identities sending the same client id and sequence get separate sessions: b's write is applied, not a's replayed")
    func sessionsAreNamespacedByIdentity() async throws {
        try await withAuthorizedNode { node in
            var origin = DistributedGc_RequestOrigin()
            origin.clientID = "shared-client-id"
            origin.sequence = 1
            origin.firstUnacknowledged = 1
            var asA = createRequest(object: "row-a", service: "a")
            asA.origin = origin
            var asB = createRequest(object: "row-b", service: "b")
            asB.origin = origin
            let first = try await node.client.createLease(asA, metadata: Self.bearer("token-a"))
            let second = try await node.client.createLease(asB, metadata: Self.bearer("token-b"))
            #expect(second.leaseID != first.leaseID, "b's create was applied on its own")
            let got = try await node.client.getLease(getRequest(second.leaseID), metadata: Self.bearer("token-b"))
            #expect(got.found && got.lease.objectID == "row-b" && got.lease.serviceID == "b")
            // The same identity retrying the same origin still gets its first answer.
            let retried = try await node.client.createLease(asA, metadata: Self.bearer("token-a"))
            #expect(retried.leaseID == first.leaseID)
        }
    }

    @Test("KeepAlive needs leases.write per renewal: another service's renewal gets PERMISSION_DENIED and the stream goes on")
    func keepAliveChecksEachRenewal() async throws {
        try await withAuthorizedNode { node in
            let leaseOfA = try await node.client.createLease(createRequest(object: "row-a", service: "a"), metadata: Self.bearer("token-a"))
            let leaseOfB = try await node.client.createLease(createRequest(object: "row-b", service: "b"), metadata: Self.bearer("token-b"))
            let answers = try await node.client.keepAlive([
                keepAliveRequest(1, leaseOfA.leaseID, service: "a"),
                keepAliveRequest(2, leaseOfB.leaseID, service: "b"),
                keepAliveRequest(3, leaseOfA.leaseID, service: "a"),
            ], metadata: Self.bearer("token-a"))
            #expect(answers[1]?.isRenewed == true)
            #expect(answers[2]?.errorCode == .permissionDenied)
            if case .error(let error) = answers[2]?.result {
                #expect(error.message.contains("leases.write") && error.message.contains("'a'"), "\(error.message)")
            }
            #expect(answers[3]?.isRenewed == true, "the stream went on after the refusal")
            let b = try await node.client.getLease(getRequest(leaseOfB.leaseID), metadata: Self.bearer("token-b"))
            #expect(b.lease.renewalCount == 0, "b's lease was not renewed by a")
            let anonymous = await #expect(throws: RPCError.self) {
                try await node.client.keepAlive([keepAliveRequest(1, leaseOfA.leaseID, service: "a")])
            }
            #expect(anonymous?.code == .unauthenticated)
        }
    }

    @Test("no credentials is UNAUTHENTICATED; another service's writes, reads and lists are refused or hidden")
    func perServiceRules() async throws {
        try await withAuthorizedNode { node in
            let leaseOfB = try await node.client.createLease(createRequest(object: "row-b", service: "b"), metadata: Self.bearer("token-b"))
            let anonymous = await #expect(throws: RPCError.self) { try await node.client.createLease(createRequest(service: "a")) }
            #expect(anonymous?.code == .unauthenticated)
            let write = await #expect(throws: RPCError.self) {
                try await node.client.createLease(createRequest(service: "b"), metadata: Self.bearer("token-a"))
            }
            #expect(write?.code == .permissionDenied && write?.message.contains("leases.write") == true)
            let read = await #expect(throws: RPCError.self) {
                try await node.client.getLease(getRequest(leaseOfB.leaseID), metadata: Self.bearer("token-a"))
            }
            #expect(read?.code == .permissionDenied && read?.message.contains("'b'") == false)
            let listed = try await node.client.listLeases(DistributedGc_ListLeasesRequest(), metadata: Self.bearer("token-a"))
            #expect(listed.leases.isEmpty, "a sees none of b's leases")
            let metrics = try await node.client.getMetrics(DistributedGc_MetricsRequest(), metadata: Self.bearer("token-a"))
            #expect(metrics.leasesByService["b"] == nil, "per-service counts of b are hidden from a")
        }
    }
}

@Suite("ListLeases reply budget and gRPC health")
struct ListBudgetAndHealthTests {
    @Test("a page stays under the byte budget with large metadata, and paging still returns every lease once")
    func pagesStayUnderTheByteBudget() async throws {
        try await withTestNode { node in
            let big = String(repeating: "x", count: 15_000)
            var created: Set<String> = []
            for i in 0..<200 {
                created.insert(try await node.client.createLease(createRequest(object: "big-\(i)", metadata: ["blob": big])).leaseID)
            }
            var request = DistributedGc_ListLeasesRequest()
            request.limit = 1000
            let first = try await node.client.listLeases(request)
            let bytes = try first.serializedBytes() as [UInt8]
            #expect(bytes.count <= DistributedGCService.maxPageBytes + 64 * 1024, "\(bytes.count) bytes")
            #expect(first.leases.count < 200 && !first.nextPageToken.isEmpty, "the budget cut the page")
            let all = try await node.client.listAll(request)
            #expect(all.leases.count == 200 && Set(all.leases.map(\.leaseID)) == created)
        }
    }

    @Test("grpc.health.v1: liveness and readiness SERVING on a working node; an unknown service is NOT_FOUND")
    func grpcHealth() async throws {
        try await withTestNode { node in
            _ = try await node.client.createLease(createRequest())   // the node leads and has applied
            do {
                let health = Grpc_Health_V1_Health.Client(wrapping: node.connection)
                for service in ["", "distributed_gc.DistributedGCService", "liveness"] {
                    var request = Grpc_Health_V1_HealthCheckRequest()
                    request.service = service
                    #expect(try await health.check(request).status == .serving, "\(service)")
                }
                var unknown = Grpc_Health_V1_HealthCheckRequest()
                unknown.service = "no.such.Service"
                let error = await #expect(throws: RPCError.self) { try await health.check(unknown) }
                #expect(error?.code == .notFound)
            }
        }
    }
}
