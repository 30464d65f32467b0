/// Where and how to clean an object once its last lease ends.
public struct CleanupSpec: Hashable, Sendable {
    /// An HTTP(S) URL that receives a JSON POST; empty when unset.
    public var httpEndpoint: String
    /// A gRPC target, `host:port` or `host:port/anything`; empty when unset.
    public var grpcEndpoint: String
    /// Opaque data passed back to the cleanup target.
    public var payload: String
    /// Retries after the first attempt before the job is dead-lettered.
    public var maxRetries: UInt32
    /// Base of the exponential backoff between attempts.
    public var retryDelaySeconds: UInt64

    public init(httpEndpoint: String = "", grpcEndpoint: String = "", payload: String = "",
                maxRetries: UInt32 = 0, retryDelaySeconds: UInt64 = 0) {
        self.httpEndpoint = httpEndpoint
        self.grpcEndpoint = grpcEndpoint
        self.payload = payload
        self.maxRetries = maxRetries
        self.retryDelaySeconds = retryDelaySeconds
    }

    /// Where the cleanup is sent. HTTP wins when a client set both.
    public enum Target: Hashable, Sendable {
        case http(String)
        case grpc(String)
    }

    /// The target, or nil when no endpoint is set (then nothing is cleaned).
    public var target: Target? {
        if !httpEndpoint.isEmpty { return .http(httpEndpoint) }
        if !grpcEndpoint.isEmpty { return .grpc(grpcEndpoint) }
        return nil
    }

    /// The endpoint cleanups go to (HTTP URL or gRPC target), "" when none.
    public var endpoint: String {
        switch target {
        case .http(let url): url
        case .grpc(let target): target
        case nil: ""
        }
    }

    /// This spec with 0 retries/delay replaced by the limits' defaults.
    func resolved(with limits: LeaseLimits) -> CleanupSpec {
        var copy = self
        if copy.maxRetries == 0 { copy.maxRetries = limits.defaultMaxRetries }
        if copy.retryDelaySeconds == 0 { copy.retryDelaySeconds = limits.defaultRetryDelaySeconds }
        return copy
    }
}

/// Checks of endpoint syntax. No name resolution, no I/O.
public enum EndpointSyntax {
    /// True for `http://host[:port][/path]` and `https://…` with a non-empty host.
    public static func isHTTPURL(_ s: String) -> Bool {
        let lower = s.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            rest = s.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            rest = s.dropFirst(8)
        } else {
            return false
        }
        guard !s.contains(where: { $0.isWhitespace || $0.isNewline }) else { return false }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostPort = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        guard !hostPort.isEmpty else { return false }
        if hostPort.hasPrefix("[") {
            // IPv6 literal: [::1] or [::1]:8080
            guard let close = hostPort.firstIndex(of: "]") else { return false }
            let after = hostPort[hostPort.index(after: close)...]
            return after.isEmpty || (after.first == ":" && isPort(after.dropFirst()))
        }
        let parts = hostPort.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, isHostName(parts[0]) else { return false }
        return parts.count == 1 || isPort(parts[1])
    }

    /// True for `host:port` and `host:port/anything` (the gRPC target form of
    /// docs/original-product.md), optionally after `grpc://` (plaintext) or `grpcs://` (TLS).
    public static func isGRPCTarget(_ s: String) -> Bool {
        guard !s.contains(where: { $0.isWhitespace || $0.isNewline }) else { return false }
        let hostPort = withoutGRPCScheme(s).prefix { $0 != "/" }
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return false }
            let after = hostPort[hostPort.index(after: close)...]
            return after.first == ":" && isPort(after.dropFirst())
        }
        let parts = hostPort.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 2 && isHostName(parts[0]) && isPort(parts[1])
    }

    /// `s` without a leading `grpc://` or `grpcs://` (any case).
    public static func withoutGRPCScheme(_ s: String) -> Substring {
        let lower = s.prefix(8).lowercased()
        if lower.hasPrefix("grpcs://") { return s.dropFirst(8) }
        if lower.hasPrefix("grpc://") { return s.dropFirst(7) }
        return Substring(s)
    }

    /// Whether a gRPC target asks for TLS (`grpcs://`).
    public static func isTLSGRPCTarget(_ s: String) -> Bool { s.prefix(8).lowercased() == "grpcs://" }

    static func isPort(_ s: Substring) -> Bool {
        guard !s.isEmpty, s.count <= 5, s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(s) else {
            return false
        }
        return (1...65535).contains(n)
    }

    static func isHostName(_ s: Substring) -> Bool {
        !s.isEmpty && s.count <= 253
            && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") }
    }
}
