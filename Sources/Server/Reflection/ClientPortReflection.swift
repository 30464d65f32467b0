import Foundation
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// Server reflection for the client port: `grpcurl -plaintext HOST:50051
/// list` and `describe` work without our `.proto` files.
public enum ClientPortReflection {
    /// `services` followed by the reflection services (v1 and v1alpha),
    /// which list exactly the services registered here, themselves
    /// included, and describe them from the embedded descriptors
    /// (``GCProto/ClientPortDescriptors``).
    public static func adding(to services: [any RegistrableRPCService]) -> [any RegistrableRPCService] {
        let index = makeIndex(services: serviceNames(services) + reflectionServiceNames)
        return services + [ServerReflectionService(index: index), ServerReflectionV1AlphaService(index: index)]
    }

    /// The names the reflection services themselves register.
    static let reflectionServiceNames = [
        Grpc_Reflection_V1_ServerReflection.descriptor.fullyQualifiedService,
        Grpc_Reflection_V1alpha_ServerReflection.descriptor.fullyQualifiedService,
    ]

    /// The fully-qualified names of the services `services` register, each
    /// once, as a server's router sees them.
    static func serviceNames(_ services: [any RegistrableRPCService]) -> [String] {
        var router = RPCRouter<HTTP2ServerTransport.Posix>()
        for service in services { service.registerMethods(with: &router) }
        var seen: Set<String> = []
        return router.methods.map(\.service.fullyQualifiedService).filter { seen.insert($0).inserted }
    }

    /// An index of the embedded client-port descriptors offering `services`,
    /// or why the descriptors cannot be read.
    static func makeIndex(services: [String]) -> Result<ReflectionIndex, any Error> {
        Result {
            guard let data = Data(base64Encoded: ClientPortDescriptors.fileDescriptorSetBase64, options: .ignoreUnknownCharacters) else {
                throw RPCError(code: .internalError, message: "ClientPortDescriptors is not base64")
            }
            let set = try Google_Protobuf_FileDescriptorSet(serializedBytes: data)
            return try ReflectionIndex(files: set.file, services: services)
        }
    }
}
