import GCProto
import Glibc
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// A local gRPC cleanup target (`distributed_gc.CleanupHandler`, see
/// proto/cleanup.proto): records every request and answers from a script
/// (then OK).
final class CleanupHandlerSink: DistributedGc_CleanupHandler.SimpleServiceProtocol {
    enum Answer: Sendable {
        case ok
        /// Fails the call with this status and message.
        case status(RPCError.Code, String)
        /// Answers OK, but only after this long.
        case stall(Duration)
    }

    private let state: Mutex<(received: [DistributedGc_CleanupRequest], script: [Answer])>

    init(script: [Answer] = []) {
        state = Mutex((received: [], script: script))
    }

    var received: [DistributedGc_CleanupRequest] { state.withLock { $0.received } }

    func cleanup(request: DistributedGc_CleanupRequest, context: ServerContext) async throws -> DistributedGc_CleanupResponse {
        let answer: Answer = state.withLock { s in
            s.received.append(request)
            return s.script.isEmpty ? .ok : s.script.removeFirst()
        }
        switch answer {
        case .ok:
            break
        case .status(let code, let message):
            throw RPCError(code: code, message: message)
        case .stall(let duration):
            try? await Task.sleep(for: duration)
        }
        return DistributedGc_CleanupResponse()
    }

    /// Serves on 127.0.0.1:0 for the duration of `body`, passing its
    /// "host:port" target.
    func run(_ body: (String) async throws -> Void) async throws {
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext),
            services: [self])
        try await serving(server) { address in try await body("127.0.0.1:\(address.port)") }
    }

    /// Runs `body` with a "127.0.0.1:port" target where nothing listens: the
    /// port is bound (so no other test can take it) but not listening, so a
    /// connection to it is refused for as long as `body` runs.
    static func withClosedTarget<T>(_ body: (String) async throws -> T) async throws -> T {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestFailure("bind() failed") }
        return try await body("127.0.0.1:\(UInt16(bigEndian: address.sin_port))")
    }
}

/// A create request whose cleanup goes to a gRPC target.
func grpcCreateRequest(
    object: String = "obj-1", type: DistributedGc_ObjectType = .databaseRow, service: String = "svc-a",
    duration: UInt64 = 60, metadata: [String: String] = [:], endpoint: String,
    maxRetries: UInt32 = 0, retryDelay: UInt64 = 0, payload: String = ""
) -> DistributedGc_CreateLeaseRequest {
    var request = createRequest(object: object, type: type, service: service, duration: duration, metadata: metadata, httpEndpoint: nil)
    var cleanup = DistributedGc_CleanupConfig()
    cleanup.cleanupEndpoint = endpoint
    cleanup.maxRetries = maxRetries
    cleanup.retryDelaySeconds = retryDelay
    cleanup.cleanupPayload = payload
    request.cleanupConfig = cleanup
    return request
}
