import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaseFSM
import Synchronization

/// Delivers cleanups to gRPC targets: `distributed_gc.CleanupHandler/Cleanup`
/// (proto/cleanup.proto) on the target's `host:port`, plaintext HTTP/2.
///
/// One client (one connection, reconnecting with backoff) is kept per
/// `host:port` for the life of the process; targets are services, so they
/// are few. How answers are read is documented in proto/cleanup.proto:
/// OK, `ALREADY_EXISTS` and `NOT_FOUND` succeed; transient statuses and no
/// answer are retried; anything else is permanent and dead-letters with the
/// target's message.
public final class GRPCCleanupTransport: CleanupTransport {
    private struct Connection {
        var client: GRPCClient<HTTP2ClientTransport.Posix>
        var task: Task<Void, Never>
    }

    private let connections = Mutex<[String: Connection]>([:])
    private let closed = Mutex(false)

    public init() {}

    /// Statuses that mean "try again later".
    static let retriable: Set<RPCError.Code> = [
        .unavailable, .deadlineExceeded, .resourceExhausted, .aborted, .internalError, .unknown, .cancelled,
    ]

    public func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        guard case .grpc(let endpoint) = target else {
            return .failed(reason: "not a gRPC target", permanent: true)
        }
        let client: GRPCClient<HTTP2ClientTransport.Posix>
        do {
            client = try self.client(for: endpoint)
        } catch {
            return .failed(reason: "cannot open a connection to \(endpoint): \(error)", permanent: false)
        }
        var options = CallOptions.defaults
        options.timeout = timeout
        // A target that is down fails the attempt now (and is retried with
        // backoff) instead of holding a dispatch slot until the deadline.
        options.waitForReady = false
        do {
            _ = try await DistributedGc_CleanupHandler.Client(wrapping: client).cleanup(Self.message(request), options: options)
            return .succeeded
        } catch let error as RPCError {
            switch error.code {
            case .alreadyExists, .notFound:
                return .succeeded
            case let code where Self.retriable.contains(code):
                return .failed(reason: "gRPC \(code) from \(endpoint): \(error.message.prefix(300))", permanent: false)
            default:
                return .failed(reason: "gRPC \(error.code) from \(endpoint): \(error.message.prefix(300))", permanent: true)
            }
        } catch {
            return .failed(reason: "gRPC call to \(endpoint) failed: \(error)", permanent: false)
        }
    }

    /// Closes every connection (graceful shutdown, after the last delivery).
    public func shutdown() {
        let open = connections.withLock { all in
            defer { all.removeAll() }
            return Array(all.values)
        }
        closed.withLock { $0 = true }
        for connection in open {
            connection.client.beginGracefulShutdown()
        }
    }

    private func client(for endpoint: String) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
        let address = try GRPCTargetAddress(endpoint)
        if let existing = connections.withLock({ $0[address.key]?.client }) { return existing }
        let transport = try HTTP2ClientTransport.Posix(
            target: address.resolvable,
            transportSecurity: .plaintext,
            config: .defaults { $0.backoff = .init(initial: .milliseconds(100), max: .seconds(5), multiplier: 2, jitter: 0.2) })
        let client = GRPCClient(transport: transport)
        let (chosen, started) = connections.withLock { all -> (GRPCClient<HTTP2ClientTransport.Posix>, Bool) in
            if let existing = all[address.key] { return (existing.client, false) }
            // Runs until shutdown(); the client's connections live in it.
            let task = Task<Void, Never> { _ = try? await client.runConnections() }
            all[address.key] = Connection(client: client, task: task)
            return (client, true)
        }
        if !started { client.beginGracefulShutdown() }
        if closed.withLock({ $0 }) { chosen.beginGracefulShutdown() }
        return chosen
    }

    static func message(_ r: CleanupRequest) -> DistributedGc_CleanupRequest {
        var m = DistributedGc_CleanupRequest()
        m.leaseID = r.leaseID
        m.objectID = r.objectID
        m.objectType = r.objectType
        m.serviceID = r.serviceID
        m.metadata = r.metadata
        m.payload = r.payload
        m.incarnation = r.incarnation
        m.fencingToken = r.fencingToken
        m.idempotencyKey = r.idempotencyKey
        m.attempt = r.attempt
        return m
    }
}

/// A gRPC cleanup target, "host:port" or "host:port/anything" (the path is
/// ignored), as ``EndpointSyntax/isGRPCTarget(_:)`` accepts it.
struct GRPCTargetAddress: Hashable, Sendable {
    var host: String
    var port: Int
    var isIPv6: Bool

    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    init(_ endpoint: String) throws {
        let hostPort = endpoint.prefix { $0 != "/" }
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let rest = hostPort[hostPort.index(after: close)...]
            guard rest.first == ":", let port = Int(rest.dropFirst()), (1...65535).contains(port) else {
                throw Invalid(description: "'\(endpoint)' is not [ipv6]:port")
            }
            self.port = port
            isIPv6 = true
            return
        }
        let parts = hostPort.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
            throw Invalid(description: "'\(endpoint)' is not host:port")
        }
        host = String(parts[0])
        self.port = port
        isIPv6 = false
    }

    var key: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    var resolvable: any ResolvableTarget {
        if isIPv6 {
            let target: ResolvableTargets.IPv6 = .ipv6(host: host, port: port)
            return target
        }
        let target: ResolvableTargets.DNS = .dns(host: host, port: port)
        return target
    }
}
