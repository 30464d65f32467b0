import ArgumentParser
import GCClient
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2

/// Runs a command's calls against the first endpoint of
/// ``ConnectionOptions/endpointList`` that can serve them, as etcdctl does:
/// an endpoint that refuses the connection, fails the TLS handshake or
/// answers `UNAVAILABLE` (down, no leader, shutting down) hands the whole
/// body to the next one. Any other answer ends the command (a write that
/// timed out may have been applied, so a timeout does not move on).
///
/// (GCClient's own fail-over retries with backoff for up to 20 s and covers
/// only the lease API; an operator wants a down node named at once, and the
/// cluster administration API too.)
enum NodeConnection {
    /// Runs `body` with a client of the lease API.
    static func with<Result: Sendable>(
        _ options: ConnectionOptions,
        _ body: @Sendable (DistributedGc_DistributedGCService.Client<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        try await withFailover(options) { client, _ in try await body(DistributedGc_DistributedGCService.Client(wrapping: client)) }
    }

    /// Like ``with(_:_:)`` for the cluster administration API.
    static func withCluster<Result: Sendable>(
        _ options: ConnectionOptions,
        _ body: @Sendable (DistributedGc_ClusterService.Client<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        try await withFailover(options) { client, _ in try await body(DistributedGc_ClusterService.Client(wrapping: client)) }
    }

    /// Runs `body` against each endpoint in order until one serves it;
    /// throws a ``CommandFailure`` (exit status 2) naming every endpoint's
    /// failure when none can, or the first endpoint's non-retriable error.
    static func withFailover<Result: Sendable>(
        _ options: ConnectionOptions,
        _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>, String) async throws -> Result
    ) async throws -> Result {
        var failures: [String] = []
        for endpoint in options.endpointList {
            do {
                return try await connect(endpoint, options) { try await body($0, endpoint) }
            } catch let error as RPCError where error.code == .unavailable {
                failures.append(CommandFailure.unreachable(error, endpoint: endpoint))
            } catch let error as RPCError {
                throw CommandFailure(error, endpoint: endpoint, timeout: options.timeout)
            }
        }
        throw CommandFailure(failures.count == 1 ? failures[0] : "no endpoint could serve the call: " + failures.joined(separator: "; "),
                             exitStatus: CommandFailure.unreachableStatus)
    }

    /// One connection to `endpoint` for the duration of `body`.
    static func connect<Result: Sendable>(
        _ endpoint: String, _ options: ConnectionOptions,
        _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        let (host, port) = try parseEndpoint(endpoint)
        let security = options.security(for: endpoint)
        let transport = try HTTP2ClientTransport.Posix(
            target: resolvableTarget(host: host, port: port), transportSecurity: security.transportSecurity(),
            config: .defaults {
                if let name = security.serverName { $0.http2.authority = name }
            })
        return try await withGRPCClient(transport: transport, interceptors: security.interceptors) { client in
            try await body(client)
        }
    }

    /// Splits "host:port"; a bare host means port 50051.
    static func parseEndpoint(_ endpoint: String) throws -> (String, Int) {
        var text = Substring(endpoint)
        for scheme in ["http://", "grpc://", "https://", "grpcs://"] where text.hasPrefix(scheme) {
            text = text.dropFirst(scheme.count)
        }
        guard let colon = text.lastIndex(of: ":") else { return (String(text), 50051) }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port), !host.isEmpty else {
            throw ValidationError("an endpoint must be host:port with a port in 1...65535, got '\(endpoint)'")
        }
        return (host, port)
    }
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
    /// Call options with the `--timeout` deadline; a node that cannot be
    /// reached fails the call at once (UNAVAILABLE) instead of waiting.
    var callOptions: CallOptions {
        var options = CallOptions.defaults
        options.timeout = .seconds(max(1, timeout))
        options.waitForReady = false
        return options
    }
}
