import GCProto
import GRPCCore
import SwiftProtobuf

/// gRPC server reflection, `grpc.reflection.v1.ServerReflection`: answers
/// each request of the stream, in order, from ``ReflectionIndex``. An
/// unanswerable question gets an `error_response` and the stream goes on.
public struct ServerReflectionService: Grpc_Reflection_V1_ServerReflection.SimpleServiceProtocol {
    /// What it answers from; `.failure` when the descriptors could not be
    /// read, and then every request gets an INTERNAL `error_response`.
    let index: Result<ReflectionIndex, any Error>

    public init(index: Result<ReflectionIndex, any Error>) {
        self.index = index
    }

    public func serverReflectionInfo(
        request: RPCAsyncSequence<Grpc_Reflection_V1_ServerReflectionRequest, any Error>,
        response: RPCWriter<Grpc_Reflection_V1_ServerReflectionResponse>,
        context: ServerContext
    ) async throws {
        for try await question in request {
            try await response.write(Self.answer(question, from: index))
        }
    }

    static func answer(_ request: Grpc_Reflection_V1_ServerReflectionRequest,
                       from index: Result<ReflectionIndex, any Error>) -> Grpc_Reflection_V1_ServerReflectionResponse {
        switch index {
        case .success(let index):
            return index.answer(request)
        case .failure(let error):
            var response = Grpc_Reflection_V1_ServerReflectionResponse()
            response.validHost = request.host
            response.originalRequest = request
            response.messageResponse = ReflectionIndex.error(.internalError, "the server's descriptors cannot be read: \(error)")
            return response
        }
    }
}

/// The same service under its older name, `grpc.reflection.v1alpha`, which
/// many clients still use. v1alpha's messages are field for field the same
/// on the wire as v1's, so each request is re-read as v1, answered by
/// ``ServerReflectionService``, and the answer re-read as v1alpha.
public struct ServerReflectionV1AlphaService: Grpc_Reflection_V1alpha_ServerReflection.SimpleServiceProtocol {
    let index: Result<ReflectionIndex, any Error>

    public init(index: Result<ReflectionIndex, any Error>) {
        self.index = index
    }

    public func serverReflectionInfo(
        request: RPCAsyncSequence<Grpc_Reflection_V1alpha_ServerReflectionRequest, any Error>,
        response: RPCWriter<Grpc_Reflection_V1alpha_ServerReflectionResponse>,
        context: ServerContext
    ) async throws {
        for try await question in request {
            let v1 = try Grpc_Reflection_V1_ServerReflectionRequest(serializedBytes: question.serializedBytes() as [UInt8])
            let answer = ServerReflectionService.answer(v1, from: index)
            try await response.write(Grpc_Reflection_V1alpha_ServerReflectionResponse(serializedBytes: answer.serializedBytes() as [UInt8]))
        }
    }
}
