import Foundation
import GCProto
import GRPCCore
import SwiftProtobuf

extension ReflectionIndex {
    /// The answer to one reflection request, as grpc-go gives it:
    /// `list_services` lists ``services``; the three file questions return
    /// the file and its transitive imports (the file first); an unknown
    /// name gets an `error_response` with NOT_FOUND, and a request without
    /// a question one with INVALID_ARGUMENT, so the stream can go on.
    /// Every answer echoes the request and its host.
    public func answer(_ request: Grpc_Reflection_V1_ServerReflectionRequest) -> Grpc_Reflection_V1_ServerReflectionResponse {
        var response = Grpc_Reflection_V1_ServerReflectionResponse()
        response.validHost = request.host
        response.originalRequest = request
        response.messageResponse = messageResponse(to: request.messageRequest)
        return response
    }

    private func messageResponse(
        to question: Grpc_Reflection_V1_ServerReflectionRequest.OneOf_MessageRequest?
    ) -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse {
        switch question {
        case .listServices:
            return .listServicesResponse(.with {
                $0.service = services.map { name in .with { $0.name = name } }
            })
        case .fileByFilename(let name):
            return files(serializedFileWithDependencies(name), orNotFound: "file '\(name)' not found")
        case .fileContainingSymbol(let symbol):
            return files(file(declaring: symbol).flatMap(serializedFileWithDependencies),
                         orNotFound: "symbol '\(symbol)' not found")
        case .fileContainingExtension(let request):
            return files(file(declaringExtension: request.extensionNumber, of: request.containingType).flatMap(serializedFileWithDependencies),
                         orNotFound: "extension \(request.extensionNumber) of '\(request.containingType)' not found")
        case .allExtensionNumbersOfType(let type):
            guard let numbers = extensionNumbers(of: type) else {
                return Self.error(.notFound, "message type '\(type)' not found")
            }
            return .allExtensionNumbersResponse(.with {
                $0.baseTypeName = Self.unrooted(type)
                $0.extensionNumber = numbers
            })
        case nil:
            return Self.error(.invalidArgument, "the request asks nothing (set one of message_request's fields)")
        }
    }

    private func files(_ serialized: [Data]?, orNotFound message: String) -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse {
        guard let serialized else { return Self.error(.notFound, message) }
        return .fileDescriptorResponse(.with { $0.fileDescriptorProto = serialized })
    }

    static func error(_ code: RPCError.Code, _ message: String) -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse {
        .errorResponse(.with {
            $0.errorCode = Int32(code.rawValue)
            $0.errorMessage = message
        })
    }
}
