import LeaseFSM
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a check of a cleanup endpoint happened, for
/// `gc_cleanup_egress_denied_total{stage=…}`.
public enum EgressStage: String, Hashable, Sendable {
    /// `CreateLease`: the endpoint as written.
    case create
    /// Delivery: the addresses the host resolved to, just before connecting.
    case connect
}

/// Resolves host names for the delivery-time egress check. Tests inject one
/// that maps names to addresses without any traffic.
public protocol EgressResolver: Sendable {
    /// Every address `host` (a name, never a literal) resolves to.
    func addresses(of host: String, port: Int) async throws -> [IPAddress]
}

/// `getaddrinfo`, run on NIO's blocking-I/O thread pool (it blocks; the
/// cooperative pool must not).
public struct SystemEgressResolver: EgressResolver {
    public init() {}

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    public func addresses(of host: String, port: Int) async throws -> [IPAddress] {
        try await NIOThreadPool.singleton.runIfActive { try Self.getaddrinfo(host, port) }
    }

    static func getaddrinfo(_ host: String, _ port: Int) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc) || canImport(Musl)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = host.withCString { h in String(port).withCString { p in
            #if canImport(Glibc)
            Glibc.getaddrinfo(h, p, &hints, &list)
            #elseif canImport(Musl)
            Musl.getaddrinfo(h, p, &hints, &list)
            #else
            Darwin.getaddrinfo(h, p, &hints, &list)
            #endif
        } }
        guard rc == 0 else {
            let text = gai_strerror(rc).map { String(cString: $0) } ?? "error \(rc)"
            throw Failure(description: "cannot resolve \(host.prefix(253)): \(text)")
        }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var next = list
        while let info = next {
            if let socket = info.pointee.ai_addr {
                switch Int32(socket.pointee.sa_family) {
                case AF_INET:
                    var raw = socket.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    if let a = IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) }) { addresses.append(a) }
                case AF_INET6:
                    var raw = socket.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    if let a = IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) }) { addresses.append(a) }
                default:
                    break
                }
            }
            next = info.pointee.ai_next
        }
        var seen = Set<IPAddress>()
        return addresses.filter { seen.insert($0).inserted }
    }
}

/// The cleanup egress guard: ``EgressPolicy`` applied at create time and,
/// on resolved addresses, at delivery (README "Cleanup egress").
public struct CleanupEgress: Sendable {
    /// Longest cleanup endpoint accepted at create time, in bytes.
    public static let maxEndpointBytes = 2048
    /// How long a checked resolution is reused.
    static let resolutionTTL = Duration.seconds(5)

    public let policy: EgressPolicy
    let resolver: any EgressResolver
    let onDenied: @Sendable (EgressStage) -> Void
    private let cache = ResolutionCache()

    /// - Parameter onDenied: called once per refusal (metrics).
    public init(policy: EgressPolicy = EgressPolicy(), resolver: any EgressResolver = SystemEgressResolver(),
                onDenied: @escaping @Sendable (EgressStage) -> Void = { _ in }) {
        self.policy = policy
        self.resolver = resolver
        self.onDenied = onDenied
    }

    // MARK: Create time

    /// The problem with a create's cleanup endpoints, as an
    /// `INVALID_ARGUMENT` message naming the field, or nil. Endpoints whose
    /// syntax is wrong are left to ``LeaseLimits/validate(_:)``, which says so.
    ///
    /// The length and credential checks live here, not in LeaseFSM's
    /// replicated validation: tightening that would make entries already in
    /// a log apply differently after an upgrade.
    public func problem(with spec: CleanupSpec?) -> String? {
        guard let spec else { return nil }
        let endpoints = [("cleanup_config.cleanup_http_endpoint", spec.httpEndpoint, true),
                         ("cleanup_config.cleanup_endpoint", spec.grpcEndpoint, false)]
        for (field, endpoint, isHTTP) in endpoints where !endpoint.isEmpty {
            if endpoint.utf8.count > Self.maxEndpointBytes {
                return "\(field): is \(endpoint.utf8.count) bytes; at most \(Self.maxEndpointBytes) bytes are allowed"
            }
            let host: String
            if isHTTP {
                guard let url = CleanupURL(endpoint) else { continue }
                if url.hasCredentials {
                    onDenied(.create)
                    return "\(field): credentials in the URL (user:password@) are not accepted: they would be stored, replicated and listed with the lease; remove them and authenticate cleanups another way (README \"Cleanup egress\")"
                }
                host = url.host
            } else {
                guard let target = try? GRPCTargetAddress(endpoint) else { continue }
                host = target.isIPv6 ? "[\(target.host)]" : target.host
            }
            if let denial = policy.check(host: host) {
                onDenied(.create)
                return "\(field): \(denial)"
            }
        }
        return nil
    }

    // MARK: Delivery

    /// What the delivery-time check found.
    public enum Resolution: Hashable, Sendable {
        /// Every address the host resolved to is allowed; connect to these.
        case allowed([IPAddress])
        /// Refused: permanent, the job dead-letters with this reason.
        case denied(EgressDenial)
        /// The name did not resolve: a failed attempt to retry.
        case unresolved(String)
    }

    /// Resolves `host` (a name, an IPv4 address or `[IPv6]`) and checks every
    /// address; a single denied address refuses the whole endpoint. A name
    /// not resolved within `limit` is `unresolved` (the lookup itself cannot
    /// be interrupted; it finishes in the background).
    public func resolve(host: String, port: Int, within limit: Duration = .seconds(30)) async -> Resolution {
        if let denial = policy.check(host: host) {
            onDenied(.connect)
            return .denied(denial)
        }
        let name = EgressPolicy.normalized(host)
        if case .address(let address) = HostLiteral(name) { return .allowed([address]) }
        var addresses: [IPAddress]
        if let cached = cache.lookup(name, port: port) {
            addresses = cached
        } else {
            switch await lookUp(name, port: port, within: limit) {
            case .success(let found): addresses = found
            case .failure(let error): return .unresolved(error.description)
            }
            guard !addresses.isEmpty else { return .unresolved("\(name.prefix(253)) resolved to no address") }
            cache.store(name, port: port, addresses, ttl: Self.resolutionTTL)
        }
        for address in addresses {
            if let denial = policy.check(address: address, resolvedFrom: host) {
                onDenied(.connect)
                return .denied(denial)
            }
        }
        return .allowed(addresses)
    }

    struct LookupFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// The resolver's answer, or a failure once `limit` has passed: the
    /// attempt's deadline covers resolution too.
    private func lookUp(_ name: String, port: Int, within limit: Duration) async -> Result<[IPAddress], LookupFailure> {
        let resolver = self.resolver
        // Whoever comes first answers; the other finds it claimed.
        let once = Once()
        return await withCheckedContinuation { continuation in
            let timer = Task {
                try? await Task.sleep(for: limit)
                if once.claim() {
                    continuation.resume(returning: .failure(LookupFailure(description: "\(name.prefix(253)) did not resolve within \(limit)")))
                }
            }
            Task {
                let result: Result<[IPAddress], LookupFailure>
                do {
                    result = .success(try await resolver.addresses(of: name, port: port))
                } catch {
                    result = .failure(LookupFailure(description: "\(error)"))
                }
                if once.claim() {
                    timer.cancel()
                    continuation.resume(returning: result)
                }
            }
        }
    }
}

/// True for the first caller of ``claim()`` only.
final class Once: Sendable {
    private let claimed = Mutex(false)

    func claim() -> Bool {
        claimed.withLock { done in
            defer { done = true }
            return !done
        }
    }
}

/// Recent resolutions, so a busy endpoint is not one `getaddrinfo` per
/// cleanup. Holds what the resolver said; the policy is applied on every use.
final class ResolutionCache: Sendable {
    private struct Entry {
        var addresses: [IPAddress]
        var expires: ContinuousClock.Instant
    }

    static let maxEntries = 1024
    private let entries = Mutex<[String: Entry]>([:])

    func lookup(_ name: String, port: Int) -> [IPAddress]? {
        let now = ContinuousClock.now
        return entries.withLock { all in
            guard let e = all["\(name):\(port)"], e.expires > now else { return nil }
            return e.addresses
        }
    }

    func store(_ name: String, port: Int, _ addresses: [IPAddress], ttl: Duration) {
        let expires = ContinuousClock.now + ttl
        entries.withLock { all in
            if all.count >= Self.maxEntries { all.removeAll(keepingCapacity: true) }
            all["\(name):\(port)"] = Entry(addresses: addresses, expires: expires)
        }
    }
}
