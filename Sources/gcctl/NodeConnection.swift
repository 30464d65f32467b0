import ArgumentParser
import GCClient
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2

/// Opens a gRPC connection (TLS with --cacert/--cert) to `--endpoint` for the duration of `body`.
enum NodeConnection {
    static func with<Result: Sendable>(
        _ options: ConnectionOptions,
        _ body: @Sendable (DistributedGc_DistributedGCService.Client<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        let transport = try makeTransport(options)
        do {
            return try await withGRPCClient(transport: transport, interceptors: options.security.interceptors) { client in
                try await body(DistributedGc_DistributedGCService.Client(wrapping: client))
            }
        } catch let error as RPCError {
            throw CommandFailure(describe(error, endpoint: options.endpoint))
        }
    }

    /// Like ``with(_:_:)`` for the cluster administration API.
    static func withCluster<Result: Sendable>(
        _ options: ConnectionOptions,
        _ body: @Sendable (DistributedGc_ClusterService.Client<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        let transport = try makeTransport(options)
        do {
            return try await withGRPCClient(transport: transport, interceptors: options.security.interceptors) { client in
                try await body(DistributedGc_ClusterService.Client(wrapping: client))
            }
        } catch let error as RPCError {
            throw CommandFailure(describe(error, endpoint: options.endpoint))
        }
    }

    /// A connection to `--endpoint`, with TLS when asked for.
    static func makeTransport(_ options: ConnectionOptions) throws -> HTTP2ClientTransport.Posix {
        let (host, port) = try parseEndpoint(options.endpoint)
        return try HTTP2ClientTransport.Posix(target: resolvableTarget(host: host, port: port), transportSecurity: options.security.transportSecurity())
    }

    /// Splits "host:port"; a bare host means port 50051.
    static func parseEndpoint(_ endpoint: String) throws -> (String, Int) {
        var text = Substring(endpoint)
        for scheme in ["http://", "grpc://", "https://", "grpcs://"] where text.hasPrefix(scheme) {
            text = text.dropFirst(scheme.count)
        }
        guard let colon = text.lastIndex(of: ":") else { return (String(text), 50051) }
        let host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port), !host.isEmpty else {
            throw ValidationError("--endpoint must be host:port with a port in 1...65535, got '\(endpoint)'")
        }
        return (host, port)
    }

    static func describe(_ error: RPCError, endpoint: String) -> String {
        switch error.code {
        case .unavailable: "node at \(endpoint) is unavailable: \(error.message) (plaintext client on a TLS port? pass --cacert)"
        default: "\(error.code.statusName): \(error.message)"
        }
    }
}

/// A call that the node refused or could not answer: printed as
/// `Error: <message>` with exit status 1 (no usage text: the command line was fine).
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension RPCError.Code {
    /// The canonical gRPC status name, as in `RenewLeaseResult.error_code`.
    var statusName: String {
        switch self {
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internalError: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        default: "CODE_\(rawValue)"
        }
    }
}


extension ConnectionOptions {
    /// Call options with the `--timeout` deadline.
    var callOptions: CallOptions {
        var options = CallOptions.defaults
        options.timeout = .seconds(max(1, timeout))
        return options
    }
}
