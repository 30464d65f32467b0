import Foundation
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
@testable import Server
import SwiftProtobuf
import Testing

/// Server reflection: the index's lookups and answers, and both protocol
/// versions over the real client port.
@Suite("Server reflection")
struct ServerReflectionTests {
    /// What the client port registers, reflection included.
    static let clientPortServices = [
        "distributed_gc.BackupService",
        "distributed_gc.ClusterService",
        "distributed_gc.DistributedGCService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]

    static func clientPortIndex() throws -> ReflectionIndex {
        try ClientPortReflection.makeIndex(services: clientPortServices).get()
    }

    // MARK: The index of the embedded descriptors

    @Test("the embedded descriptors declare every client-port service, and not the peer port's")
    func embeddedDescriptorsCoverTheClientPort() throws {
        let index = try Self.clientPortIndex()
        #expect(index.undeclaredServices.isEmpty)
        #expect(index.file(declaring: "distributed_gc.DistributedGCService") == "gc_service.proto")
        #expect(index.file(declaring: "distributed_gc.ClusterService") == "cluster.proto")
        #expect(index.file(declaring: "grpc.health.v1.Health") == "health.proto")
        #expect(index.file(declaring: "grpc.reflection.v1.ServerReflection") == "grpc/reflection/v1/reflection.proto")
        #expect(index.file(declaring: "grpc.reflection.v1alpha.ServerReflection") == "grpc/reflection/v1alpha/reflection.proto")
        #expect(index.file(declaring: "distributed_gc.raft.RaftPeer") == nil, "the peer protocol is not served on the client port")
        #expect(index.file(declaring: "distributed_gc.CleanupService") == nil, "the cleanup targets' service is not served")
    }

    @Test("symbols resolve by their fully-qualified names: methods, messages, nested enums, enum values, fields, oneofs")
    func symbolLookup() throws {
        let index = try Self.clientPortIndex()
        let found: [String: String] = [
            "distributed_gc.DistributedGCService.CreateLease": "gc_service.proto",
            ".distributed_gc.DistributedGCService.KeepAlive": "gc_service.proto",
            "distributed_gc.CreateLeaseRequest": "gc_service.proto",
            "distributed_gc.CreateLeaseRequest.object_id": "gc_service.proto",
            "distributed_gc.ObjectType": "gc_service.proto",
            // Enum values are scoped beside their enum, as protobuf scopes them.
            "distributed_gc.DATABASE_ROW": "gc_service.proto",
            "grpc.health.v1.HealthCheckResponse.ServingStatus": "health.proto",
            "grpc.health.v1.HealthCheckResponse.SERVING": "health.proto",
            "grpc.reflection.v1.ServerReflectionRequest.message_request": "grpc/reflection/v1/reflection.proto",
            "google.protobuf.Timestamp": "google/protobuf/timestamp.proto",
        ]
        for (symbol, file) in found {
            #expect(index.file(declaring: symbol) == file, "\(symbol)")
        }
        for unknown in ["distributed_gc.NoSuchThing", "distributed_gc.ObjectType.DATABASE_ROW", "distributed_gc", "", "CreateLease"] {
            #expect(index.file(declaring: unknown) == nil, "\(unknown)")
        }
    }

    @Test("a file comes with its imports, the file first")
    func fileWithImports() throws {
        let index = try Self.clientPortIndex()
        #expect(index.fileWithDependencies("gc_service.proto") == ["gc_service.proto", "google/protobuf/timestamp.proto"])
        #expect(index.fileWithDependencies("health.proto") == ["health.proto"])
        #expect(index.fileWithDependencies("raft.proto") == nil)
        let serialized = try #require(index.serializedFileWithDependencies("gc_service.proto"))
        let first = try Google_Protobuf_FileDescriptorProto(serializedBytes: serialized[0])
        #expect(first.name == "gc_service.proto")
        #expect(first.service.first?.method.contains { $0.name == "CreateLease" } == true)
    }

    /// a.proto imports b.proto and c.proto; b.proto imports c.proto and
    /// d.proto (not indexed); c.proto extends a.Base with number 100.
    static func diamond() throws -> ReflectionIndex {
        func file(_ name: String, package: String, imports: [String]) -> Google_Protobuf_FileDescriptorProto {
            .with {
                $0.name = name
                $0.package = package
                $0.dependency = imports
                $0.messageType = [.with { $0.name = "M"; $0.nestedType = [.with { $0.name = "Inner" }] }]
            }
        }
        var a = file("a.proto", package: "a", imports: ["b.proto", "c.proto"])
        a.messageType.append(.with { $0.name = "Base"; $0.extensionRange = [.with { $0.start = 100; $0.end = 200 }] })
        a.service = [.with { $0.name = "S"; $0.method = [.with { $0.name = "Call" }] }]
        let b = file("b.proto", package: "b", imports: ["c.proto", "d.proto"])
        var c = file("c.proto", package: "c", imports: [])
        c.extension = [.with { $0.name = "tag"; $0.number = 100; $0.extendee = ".a.Base" }]
        return try ReflectionIndex(files: [c, b, a], services: ["a.S", "a.Missing"])
    }

    @Test("transitive imports come once each, unindexed ones left out; extensions are found by extendee and number")
    func transitiveImportsAndExtensions() throws {
        let index = try Self.diamond()
        #expect(index.fileWithDependencies("a.proto") == ["a.proto", "b.proto", "c.proto"])
        #expect(index.fileWithDependencies("b.proto") == ["b.proto", "c.proto"])
        #expect(index.file(declaring: "a.M.Inner") == "a.proto")
        #expect(index.file(declaring: "a.S.Call") == "a.proto")
        #expect(index.file(declaring: "c.tag") == "c.proto")
        #expect(index.file(declaringExtension: 100, of: "a.Base") == "c.proto")
        #expect(index.file(declaringExtension: 101, of: "a.Base") == nil)
        #expect(index.extensionNumbers(of: ".a.Base") == [100])
        #expect(index.extensionNumbers(of: "a.M.Inner") == [])
        #expect(index.extensionNumbers(of: "a.S") == nil, "a service is not a message type")
        #expect(index.extensionNumbers(of: "a.Nothing") == nil)
        #expect(index.services == ["a.Missing", "a.S"])
        #expect(index.undeclaredServices == ["a.Missing"])
    }

    @Test("answers: unknown names get NOT_FOUND, an empty request INVALID_ARGUMENT; each echoes its request and host")
    func answers() throws {
        let index = try Self.clientPortIndex()
        func ask(_ question: Grpc_Reflection_V1_ServerReflectionRequest.OneOf_MessageRequest?) -> Grpc_Reflection_V1_ServerReflectionResponse {
            index.answer(.with { $0.host = "node-1"; $0.messageRequest = question })
        }
        let listed = ask(.listServices(""))
        #expect(listed.listServicesResponse.service.map(\.name) == Self.clientPortServices)
        #expect(listed.validHost == "node-1" && listed.originalRequest.listServices == "")

        let method = ask(.fileContainingSymbol("distributed_gc.DistributedGCService.CreateLease"))
        #expect(method.fileDescriptorResponse.fileDescriptorProto.count == 2)
        #expect(method.originalRequest.fileContainingSymbol == "distributed_gc.DistributedGCService.CreateLease")
        #expect(ask(.fileByFilename("cluster.proto")).fileDescriptorResponse.fileDescriptorProto.count == 1)

        let numbers = ask(.allExtensionNumbersOfType("distributed_gc.CreateLeaseRequest"))
        #expect(numbers.allExtensionNumbersResponse.baseTypeName == "distributed_gc.CreateLeaseRequest")
        #expect(numbers.allExtensionNumbersResponse.extensionNumber.isEmpty)

        let notFound: [Grpc_Reflection_V1_ServerReflectionRequest.OneOf_MessageRequest] = [
            .fileByFilename("raft.proto"),
            .fileContainingSymbol("distributed_gc.raft.RaftPeer"),
            .fileContainingExtension(.with { $0.containingType = "distributed_gc.CreateLeaseRequest"; $0.extensionNumber = 100 }),
            .allExtensionNumbersOfType("distributed_gc.NoSuchMessage"),
        ]
        for question in notFound {
            let answer = ask(question)
            #expect(answer.errorResponse.errorCode == Int32(RPCError.Code.notFound.rawValue), "\(question)")
            #expect(!answer.errorResponse.errorMessage.isEmpty)
        }
        #expect(ask(nil).errorResponse.errorCode == Int32(RPCError.Code.invalidArgument.rawValue))
    }

    @Test("unreadable descriptors answer every request with INTERNAL instead of failing the node")
    func unreadableDescriptors() {
        let answer = ServerReflectionService.answer(
            .with { $0.listServices = "" }, from: .failure(RPCError(code: .internalError, message: "broken")))
        #expect(answer.errorResponse.errorCode == Int32(RPCError.Code.internalError.rawValue))
        #expect(answer.originalRequest.listServices == "")
    }

    @Test("the services are read from what is registered")
    func serviceNamesFromRegistration() {
        let broken: Result<ReflectionIndex, any Error> = .failure(RPCError(code: .internalError, message: "unused"))
        let names = ClientPortReflection.serviceNames([
            ServerReflectionV1AlphaService(index: broken), ServerReflectionService(index: broken),
            ServerReflectionService(index: broken),
        ])
        #expect(names.sorted() == ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"])
    }

    // MARK: Over the client port

    /// Asks `questions` on one v1 stream and returns the answers.
    static func askV1(_ connection: GRPCClient<HTTP2ClientTransport.Posix>, _ questions: [Grpc_Reflection_V1_ServerReflectionRequest],
                      metadata: Metadata = [:]) async throws -> [Grpc_Reflection_V1_ServerReflectionResponse] {
        try await Grpc_Reflection_V1_ServerReflection.Client(wrapping: connection).serverReflectionInfo(
            metadata: metadata,
            requestProducer: { try await $0.write(contentsOf: questions) },
            onResponse: { response in
                var answers: [Grpc_Reflection_V1_ServerReflectionResponse] = []
                for try await answer in response.messages { answers.append(answer) }
                return answers
            })
    }

    static let questions: [Grpc_Reflection_V1_ServerReflectionRequest] = [
        .with { $0.listServices = "*" },
        .with { $0.fileContainingSymbol = "distributed_gc.NoSuchThing" },
        .with { $0.fileContainingSymbol = "distributed_gc.DistributedGCService.WatchLeases" },
    ]

    /// Checks the answers to ``questions``.
    static func expectAnswers(_ answers: [Grpc_Reflection_V1_ServerReflectionResponse]) throws {
        try #require(answers.count == 3)
        #expect(answers[0].listServicesResponse.service.map(\.name) == clientPortServices)
        #expect(answers[1].errorResponse.errorCode == Int32(RPCError.Code.notFound.rawValue))
        let files = try answers[2].fileDescriptorResponse.fileDescriptorProto.map {
            try Google_Protobuf_FileDescriptorProto(serializedBytes: $0).name
        }
        #expect(files == ["gc_service.proto", "google/protobuf/timestamp.proto"], "after an error the stream goes on")
    }

    @Test("v1 over the client port: lists exactly the registered services, and an unknown name does not end the stream")
    func v1OverTheClientPort() async throws {
        try await withTestNode { node in
            let answers = try await Self.askV1(node.connection, Self.questions)
            try Self.expectAnswers(answers)
            // Every listed service can be described.
            let described = try await Self.askV1(node.connection, Self.clientPortServices.map { name in .with { $0.fileContainingSymbol = name } })
            #expect(described.allSatisfy { !$0.fileDescriptorResponse.fileDescriptorProto.isEmpty })
        }
    }

    @Test("v1alpha over the client port gives the same answers")
    func v1alphaOverTheClientPort() async throws {
        try await withTestNode { node in
            let client = Grpc_Reflection_V1alpha_ServerReflection.Client(wrapping: node.connection)
            let questions = try Self.questions.map { try Grpc_Reflection_V1alpha_ServerReflectionRequest(serializedBytes: $0.serializedBytes() as [UInt8]) }
            let answers = try await client.serverReflectionInfo(
                requestProducer: { try await $0.write(contentsOf: questions) },
                onResponse: { response in
                    var answers: [Grpc_Reflection_V1alpha_ServerReflectionResponse] = []
                    for try await answer in response.messages { answers.append(answer) }
                    return answers
                })
            try Self.expectAnswers(answers.map { try Grpc_Reflection_V1_ServerReflectionResponse(serializedBytes: $0.serializedBytes() as [UInt8]) })
        }
    }

    @Test("with authorization on, any authenticated caller may reflect; no credentials is UNAUTHENTICATED")
    func reflectionNeedsAuthenticationOnly() async throws {
        // An identity with one service and no role.
        try await withPolicyFile(oneServicePolicy) { path in try await withTestNode(configure: { $0.security.authPolicyFile = path }) { node in
            try Self.expectAnswers(try await Self.askV1(node.connection, Self.questions, metadata: AuthorizedServiceTests.bearer("token-a")))
            let refused = await #expect(throws: RPCError.self) {
                try await Self.askV1(node.connection, Self.questions)
            }
            #expect(refused?.code == .unauthenticated)
        } }
        let serviceOnly = Caller(identity: "a", grant: .init(services: ["a"]))
        for service in ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"] {
            let permission = Permission.required(service: service, method: "ServerReflectionInfo")
            #expect(permission == .reflection && permission.isHeld(by: serviceOnly))
        }
    }
}
