import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
@testable import Server
import SwiftProtobuf
import Testing

/// The client port answers its hot unary calls without GRPCCore's per-call
/// layers (``DirectUnaryTransport``). These tests hold that path to what
/// GRPCCore answers for the same bytes: each case runs on a node serving
/// directly and on one serving through GRPCCore, and both must agree, on
/// the status and on the state afterwards.
@Suite("Direct unary calls answer as GRPCCore does")
struct DirectUnaryCallTests {
    typealias Method = DistributedGc_DistributedGCService.Method

    /// What a raw call got back: the status code and message, or the
    /// response bytes, and how many leases the node held afterwards.
    struct Outcome: Equatable, CustomStringConvertible {
        var code: RPCError.Code?
        var message: String
        var response: [UInt8]?
        var leasesAfter: Int

        var description: String { "\(code.map { "\($0)" } ?? "OK") \"\(message)\", \(leasesAfter) leases after" }
    }

    /// Sends `messages` (raw bytes) on CreateLease to a node serving
    /// directly or not, as one client stream.
    func createLease(sending messages: [[UInt8]], direct: Bool) async throws -> Outcome {
        var outcome = Outcome(code: nil, message: "", response: nil, leasesAfter: -1)
        try await withTestNode(directUnaryCalls: direct) { node in
            let request = StreamingClientRequest<[UInt8]> { writer in
                for message in messages { try await writer.write(message) }
            }
            do {
                let response = try await node.connection.clientStreaming(
                    request: request, descriptor: Method.CreateLease.descriptor,
                    serializer: RawBytes(), deserializer: RawBytes(), options: .defaults
                ) { try $0.message }
                outcome.response = response
            } catch let error as RPCError {
                outcome.code = error.code
                outcome.message = error.message
            }
            outcome.leasesAfter = try await node.client.listLeases(DistributedGc_ListLeasesRequest()).leases.count
        }
        return outcome
    }

    @Test("a well-formed request creates one lease on either path", arguments: [true, false])
    func wellFormed(direct: Bool) async throws {
        let outcome = try await createLease(sending: [try createRequest(object: "row").serializedBytes()], direct: direct)
        #expect(outcome.code == nil, "\(outcome)")
        let response = try DistributedGc_CreateLeaseResponse(serializedBytes: outcome.response ?? [])
        #expect(response.success && !response.leaseID.isEmpty)
        #expect(outcome.leasesAfter == 1)
    }

    @Test("bytes that are not a CreateLeaseRequest: INVALID_ARGUMENT, nothing created, the same on both paths")
    func malformedMessage() async throws {
        // Field 1 with wire type 7, which protobuf does not have.
        let garbage: [UInt8] = [0x0F, 0xFF, 0xFF, 0xFF]
        let direct = try await createLease(sending: [garbage], direct: true)
        let core = try await createLease(sending: [garbage], direct: false)
        #expect(direct.code == .invalidArgument, "\(direct)")
        #expect(direct.leasesAfter == 0)
        #expect(direct == core)
    }

    @Test("two messages on a unary call: INTERNAL, nothing created, the same on both paths")
    func twoMessages() async throws {
        let one = try createRequest(object: "row-1").serializedBytes() as [UInt8]
        let two = try createRequest(object: "row-2").serializedBytes() as [UInt8]
        let direct = try await createLease(sending: [one, two], direct: true)
        let core = try await createLease(sending: [one, two], direct: false)
        #expect(direct.code == .internalError, "\(direct)")
        #expect(direct.leasesAfter == 0)
        #expect(direct == core)
    }

    @Test("no message on a unary call: INTERNAL, nothing created, the same on both paths")
    func noMessage() async throws {
        let direct = try await createLease(sending: [], direct: true)
        let core = try await createLease(sending: [], direct: false)
        #expect(direct.code == .internalError, "\(direct)")
        #expect(direct.leasesAfter == 0)
        #expect(direct == core)
    }

    @Test("a refused request gets the service's own status and message on both paths")
    func refusedByTheService() async throws {
        var bad = createRequest(object: "row")
        bad.objectType = .UNRECOGNIZED(99)
        let bytes = try bad.serializedBytes() as [UInt8]
        let direct = try await createLease(sending: [bytes], direct: true)
        let core = try await createLease(sending: [bytes], direct: false)
        #expect(direct.code == .invalidArgument)
        #expect(direct.message.contains("object_type"), "\(direct)")
        #expect(direct == core)
    }
}

extension DirectUnaryCallTests {
    /// Calls CreateLease once without credentials and once with a token
    /// for another service, on a node with a policy, and returns the two
    /// statuses and the node's call and authorization counters.
    func refusedCalls(direct: Bool) async throws -> (codes: [RPCError.Code?], counters: [Double]) {
        var codes: [RPCError.Code?] = []
        var counters: [Double] = []
        try await withPolicyFile(oneServicePolicy) { path in try await withTestNode(configure: { $0.security.authPolicyFile = path }, directUnaryCalls: direct) { node in
            var bearer = Metadata()
            bearer.addString("Bearer token-a", forKey: "authorization")
            for metadata in [Metadata(), bearer] {
                do {
                    _ = try await node.client.createLease(createRequest(object: "row", service: "b"), metadata: metadata)
                    codes.append(nil)
                } catch let error as RPCError {
                    codes.append(error.code)
                }
            }
            let text = node.sidecar.metrics.exposition()
            let service = #"grpc_service="distributed_gc.DistributedGCService",grpc_method="CreateLease""#
            counters = try [
                #"gc_grpc_server_handled_total{\#(service),grpc_code="Unauthenticated"}"#,
                #"gc_grpc_server_handled_total{\#(service),grpc_code="PermissionDenied"}"#,
                #"gc_grpc_server_handling_seconds_count{\#(service)}"#,
                #"gc_auth_decisions_total{method="CreateLease",decision="unauthenticated"}"#,
                #"gc_auth_decisions_total{method="CreateLease",decision="allowed"}"#,
            ].map { try MetricsExpositionTests.value($0, text) }
            #expect(try await node.client.listLeases(DistributedGc_ListLeasesRequest(), metadata: bearer).leases.isEmpty)
        } }
        return (codes, counters)
    }

    @Test("with a policy, a call without credentials is UNAUTHENTICATED and one for another service PERMISSION_DENIED, counted alike on both paths")
    func refusedAndCounted() async throws {
        let direct = try await refusedCalls(direct: true)
        let core = try await refusedCalls(direct: false)
        #expect(direct.codes == [.unauthenticated, .permissionDenied])
        // One refused by the authorization, one by the service after it
        // allowed the caller; both timed.
        #expect(direct.counters == [1, 1, 2, 1, 1])
        #expect(direct.codes == core.codes && direct.counters == core.counters)
    }
}

/// Sends and receives messages as the bytes they are.
private struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
        Bytes(message)
    }

    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}
