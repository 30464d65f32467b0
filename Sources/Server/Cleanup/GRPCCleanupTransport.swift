import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaseFSM
import Synchronization

/// Delivers cleanups to gRPC targets: `distributed_gc.CleanupHandler/Cleanup`
/// (proto/cleanup.proto) on the target's `host:port`: plaintext HTTP/2, or
/// TLS for `grpcs://host:port` and for every target when a CA bundle is
/// configured (`GC_CLEANUP_TLS_CA_FILE`; the server's certificate must then
/// chain to it and name the target's host).
///
/// One client (one connection, reconnecting with backoff) is kept per
/// `host:port`, connected to the address the egress check approved (the
/// host is resolved and checked before each call; a client whose address
/// is no longer among the answers is replaced), with the target's own
/// `host:port` as `:authority`. The pool is bounded (``maxClients``: past it
/// the least recently used idle client is closed; when every pooled client
/// is busy a one-off client is used and closed after its call), and clients
/// unused for ``idleTimeout`` are closed when the next cleanup goes out
/// (lazily: a node sending nothing keeps at most ``maxClients`` open).
///
/// How answers are read is documented in proto/cleanup.proto: OK,
/// `ALREADY_EXISTS` and `NOT_FOUND` succeed; transient statuses and no
/// answer are retried; anything else is permanent and dead-letters with the
/// target's message. A denied address is permanent too.
public final class GRPCCleanupTransport: CleanupTransport {
    typealias Client = GRPCClient<HTTP2ClientTransport.Posix>

    private struct Connection {
        var client: Client
        /// The checked addresses it may connect to, in order.
        var addresses: [IPAddress]
        var lastUsed: ContinuousClock.Instant
        var inUse = 0
    }

    private struct Pool {
        var connections: [String: Connection] = [:]
        var closed = false
    }

    /// Default bound of the client pool (targets with an open client).
    public static let defaultMaxClients = 64
    /// Default time after which an unused client is closed.
    public static let defaultIdleTimeout = Duration.seconds(300)

    public let maxClients: Int
    public let idleTimeout: Duration
    /// CA bundle for TLS targets; when set, every target is called over TLS.
    public let tlsCAFile: String?
    let egress: CleanupEgress
    private let now: @Sendable () -> ContinuousClock.Instant
    private let pool = Mutex(Pool())

    /// - Parameter now: the clock idle times are measured on (tests inject one).
    public init(egress: CleanupEgress = CleanupEgress(), maxClients: Int = GRPCCleanupTransport.defaultMaxClients,
                idleTimeout: Duration = GRPCCleanupTransport.defaultIdleTimeout, tlsCAFile: String? = nil,
                now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.egress = egress
        self.tlsCAFile = tlsCAFile
        self.maxClients = max(1, maxClients)
        self.idleTimeout = idleTimeout
        self.now = now
    }

    /// Statuses that mean "try again later".
    static let retriable: Set<RPCError.Code> = [
        .unavailable, .deadlineExceeded, .resourceExhausted, .aborted, .internalError, .unknown, .cancelled,
    ]

    public func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        guard case .grpc(let endpoint) = target else {
            return .failed(reason: "not a gRPC target", permanent: true)
        }
        let shown = CleanupEndpointText.redacted(endpoint)
        let address: GRPCTargetAddress
        do {
            address = try GRPCTargetAddress(endpoint)
        } catch {
            return .failed(reason: "\(error)", permanent: true)
        }
        let start = ContinuousClock.now
        let checked: [IPAddress]
        switch await egress.resolve(host: address.isIPv6 ? "[\(address.host)]" : address.host, port: address.port, within: timeout) {
        case .allowed(let addresses): checked = addresses
        case .denied(let denial): return .failed(reason: "\(denial)", permanent: true)
        case .unresolved(let why): return .failed(reason: "cannot open a connection to \(shown): \(why)", permanent: false)
        }
        if address.tls == true, tlsCAFile == nil, IPAddress(address.host) != nil {
            // TLS has no server name for an address: only a CA of our own
            // would make the certificate mean anything.
            return .failed(reason: "\(shown): TLS to an IP address needs GC_CLEANUP_TLS_CA_FILE (a certificate for an address cannot be checked against the system's roots); use a host name", permanent: true)
        }
        let lease: (client: Client, pooled: Bool)
        do {
            lease = try checkOut(address, addresses: checked)
        } catch {
            return .failed(reason: "cannot open a connection to \(shown): \(error)", permanent: false)
        }
        defer { checkIn(poolKey(address), lease) }
        var options = CallOptions.defaults
        // One deadline for the attempt, resolution included.
        options.timeout = max(.milliseconds(1), timeout - (ContinuousClock.now - start))
        // A target that is down fails the attempt now (and is retried with
        // backoff) instead of holding a dispatch slot until the deadline.
        options.waitForReady = false
        do {
            _ = try await DistributedGc_CleanupHandler.Client(wrapping: lease.client).cleanup(Self.message(request), options: options)
            return .succeeded
        } catch let error as RPCError {
            switch error.code {
            case .alreadyExists, .notFound:
                return .succeeded
            case let code where Self.retriable.contains(code):
                return .failed(reason: "gRPC \(code) from \(shown): \(error.message.prefix(300))", permanent: false)
            default:
                return .failed(reason: "gRPC \(error.code) from \(shown): \(error.message.prefix(300))", permanent: true)
            }
        } catch {
            return .failed(reason: "gRPC call to \(shown) failed: \(error)", permanent: false)
        }
    }

    /// Closes every connection (graceful shutdown, after the last delivery).
    public func shutdown() {
        let open = pool.withLock { pool in
            pool.closed = true
            defer { pool.connections.removeAll() }
            return Array(pool.connections.values)
        }
        for connection in open {
            connection.client.beginGracefulShutdown()
        }
    }

    /// The pool's key of a target: its `host:port`, marked when called over TLS.
    func poolKey(_ target: GRPCTargetAddress) -> String {
        (target.tls == true || tlsCAFile != nil) ? "tls:" + target.key : target.key
    }

    /// The `host:port` of each target with a pooled client.
    public var pooledTargets: Set<String> {
        pool.withLock { Set($0.connections.keys) }
    }

    struct Closed: Error, CustomStringConvertible {
        var description: String { "the cleanup transport is shut down" }
    }

    /// A client for `key` connected to one of `addresses` (all checked):
    /// the pooled one, a new pooled one, or a one-off one when the pool is
    /// full of busy clients. Hand it back with ``checkIn(_:_:)``.
    private func checkOut(_ target: GRPCTargetAddress, addresses: [IPAddress]) throws -> (client: Client, pooled: Bool) {
        let key = poolKey(target)
        let tls = target.tls == true || tlsCAFile != nil
        let caFile = tlsCAFile
        let now = self.now()
        var retired: [Client] = []
        defer { for client in retired { client.beginGracefulShutdown() } }
        return try pool.withLock { pool in
            guard !pool.closed else { throw Closed() }
            for (name, c) in pool.connections where c.inUse == 0 && now - c.lastUsed >= idleTimeout {
                pool.connections[name] = nil
                retired.append(c.client)
            }
            if var existing = pool.connections[key] {
                if Set(existing.addresses).isSuperset(of: addresses) {
                    existing.inUse += 1
                    existing.lastUsed = now
                    pool.connections[key] = existing
                    return (existing.client, true)
                }
                // The name now resolves elsewhere: calls in flight finish
                // on the old client; new ones go to the new address.
                pool.connections[key] = nil
                retired.append(existing.client)
            }
            guard !addresses.isEmpty else { throw Closed() }
            let client = try Self.makeClient(addresses, port: target.port, authority: target.key, tls: tls, caFile: caFile,
                                             hostIsAddress: IPAddress(target.host) != nil)
            if pool.connections.count >= maxClients {
                let idle = pool.connections.filter { $0.value.inUse == 0 }
                guard let oldest = idle.min(by: { $0.value.lastUsed < $1.value.lastUsed }) else {
                    return (client, false)
                }
                pool.connections[oldest.key] = nil
                retired.append(oldest.value.client)
            }
            pool.connections[key] = Connection(client: client, addresses: addresses, lastUsed: now, inUse: 1)
            return (client, true)
        }
    }

    private func checkIn(_ key: String, _ lease: (client: Client, pooled: Bool)) {
        guard lease.pooled else {
            lease.client.beginGracefulShutdown()
            return
        }
        let now = self.now()
        pool.withLock { pool in
            guard var c = pool.connections[key], c.client === lease.client else { return }
            c.inUse = max(0, c.inUse - 1)
            c.lastUsed = now
            pool.connections[key] = c
        }
    }

    /// A client connecting to `addresses` (tried in order, as a resolver's
    /// answers would be), naming `authority` (the target's own `host:port`)
    /// in `:authority`; its connections run in a task until the client is
    /// shut down.
    ///
    /// With `tls`, the server's certificate must chain to `caFile` (else the
    /// system's roots) and name the target's host; a target given as an IP
    /// address sends no server name (TLS has none for addresses) and is
    /// checked against the CA only.
    private static func makeClient(_ addresses: [IPAddress], port: Int, authority: String, tls: Bool, caFile: String?,
                                   hostIsAddress: Bool) throws -> Client {
        var registry = NameResolverRegistry()
        registry.registerFactory(CheckedAddresses.Factory())
        let transport = try HTTP2ClientTransport.Posix(
            target: CheckedAddresses(addresses: addresses, port: port),
            transportSecurity: tls ? .tls(.init(
                certificateChain: [], privateKey: nil,
                serverCertificateVerification: hostIsAddress ? .noHostnameVerification : .fullVerification,
                trustRoots: caFile.map { .certificates([.file(path: $0, format: .pem)]) } ?? .systemDefault)) : .plaintext,
            config: .defaults {
                $0.backoff = .init(initial: .milliseconds(100), max: .seconds(5), multiplier: 2, jitter: 0.2)
                if !(tls && hostIsAddress) { $0.http2.authority = authority }
            },
            resolverRegistry: registry)
        let client = GRPCClient(transport: transport)
        Task<Void, Never> { _ = try? await client.runConnections() }
        return client
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

    /// `grpcs://`: true; otherwise nil (TLS only when `GC_CLEANUP_TLS_CA_FILE` is set).
    var tls: Bool?

    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    init(_ endpoint: String) throws {
        let lower = endpoint.prefix(8).lowercased()
        tls = lower.hasPrefix("grpcs://") ? true : nil
        let hostPort = EndpointSyntax.withoutGRPCScheme(endpoint).prefix { $0 != "/" }
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let rest = hostPort[hostPort.index(after: close)...]
            guard rest.first == ":", let port = Int(rest.dropFirst()), (1...65535).contains(port) else {
                throw Invalid(description: "'\(CleanupEndpointText.redacted(endpoint))' is not [ipv6]:port")
            }
            self.port = port
            isIPv6 = true
            return
        }
        let parts = hostPort.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
            throw Invalid(description: "'\(CleanupEndpointText.redacted(endpoint))' is not host:port")
        }
        host = String(parts[0])
        self.port = port
        isIPv6 = false
    }

    var key: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Addresses the egress check approved, as a gRPC target: the client
/// connects to them in order and never resolves a name itself,
/// so a changed DNS answer cannot route around the check.
struct CheckedAddresses: ResolvableTarget, Sendable {
    var addresses: [IPAddress]
    var port: Int

    struct Factory: NameResolverFactory {
        func resolver(for target: CheckedAddresses) -> NameResolver {
            // One endpoint with every address: its connection tries them in
            // order until one connects.
            let addresses: [GRPCNIOTransportCore.SocketAddress] = target.addresses.map { address in
                address.isIPv4
                    ? .ipv4(host: address.description, port: target.port)
                    : .ipv6(host: address.description, port: target.port)
            }
            let result = NameResolutionResult(endpoints: [Endpoint(addresses: addresses)], serviceConfig: nil)
            return NameResolver(names: RPCAsyncSequence(wrapping: Repeating(element: result)), updateMode: .pull)
        }
    }

    /// The same answer every time the client asks again.
    struct Repeating: AsyncSequence, Sendable {
        typealias Failure = any Error
        let element: NameResolutionResult

        struct AsyncIterator: AsyncIteratorProtocol {
            let element: NameResolutionResult
            mutating func next() async throws -> NameResolutionResult? { element }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(element: element) }
    }
}
