import LeaseFSM

/// An `http://` or `https://` cleanup URL taken apart (as
/// ``EndpointSyntax/isHTTPURL(_:)`` accepts it).
struct CleanupURL: Hashable, Sendable {
    var isHTTPS: Bool
    var hasCredentials: Bool
    /// As written in the URL: a name, an IPv4 address or `[IPv6]`.
    var host: String
    var explicitPort: Int?
    /// Path and query (no fragment), "/" when empty.
    var pathAndQuery: String

    var port: Int { explicitPort ?? (isHTTPS ? 443 : 80) }
    var scheme: String { isHTTPS ? "https" : "http" }

    init?(_ url: String) {
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            isHTTPS = false
            rest = url.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            isHTTPS = true
            rest = url.dropFirst(8)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let tail = rest[authority.endIndex...].prefix { $0 != "#" }
        pathAndQuery = tail.isEmpty ? "/" : (tail.first == "/" ? String(tail) : "/" + String(tail))
        hasCredentials = authority.contains("@")
        let hostPort = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return nil }
            host = String(hostPort[...close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.isEmpty {
                explicitPort = nil
            } else {
                guard after.first == ":", let p = Int(after.dropFirst()), (1...65535).contains(p) else { return nil }
                explicitPort = p
            }
        } else {
            let parts = hostPort.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, !parts[0].isEmpty else { return nil }
            host = String(parts[0])
            if parts.count == 2 {
                guard let p = Int(parts[1]), (1...65535).contains(p) else { return nil }
                explicitPort = p
            } else {
                explicitPort = nil
            }
        }
    }

    /// ``pathAndQuery`` as an HTTP/1.1 request target: every byte outside
    /// what RFC 3986 allows in a path or query (non-ASCII, controls, `"`,
    /// `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`) is percent-encoded; escapes
    /// already there are kept.
    var requestTarget: String {
        let bytes = Array(pathAndQuery.utf8)
        guard bytes.contains(where: { !Self.allowedInTarget($0) }) else { return pathAndQuery }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 3)
        for byte in bytes {
            if Self.allowedInTarget(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Unreserved, sub-delims, `:`, `@`, `/`, `?` and `%`.
    private static func allowedInTarget(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "-._~!$&'()*+,;=:@/?%".utf8.contains(byte)
        }
    }

    /// `Host` header value: the host, and the port when not the default.
    var hostHeader: String { explicitPort.map { "\(host):\($0)" } ?? host }

    /// This URL with its host replaced by a checked address.
    func pinned(to address: IPAddress) -> String {
        "\(scheme)://\(address.urlHost):\(port)\(pathAndQuery)"
    }

    /// Safe to log: no credentials, no query (it may carry a token).
    var redacted: String {
        let path = pathAndQuery.prefix { $0 != "?" }
        let query = pathAndQuery.contains("?") ? "?…" : ""
        return "\(scheme)://\(hasCredentials ? "…@" : "")\(hostHeader)\(path.prefix(200))\(query)"
    }
}

/// How cleanup endpoints appear in logs, errors and throttle keys.
public enum CleanupEndpointText {
    /// `endpoint` without credentials or query (URLs) or path (gRPC
    /// targets, whose path is ignored), cut to a sane length. What cannot be
    /// parsed keeps only what follows its last `@`.
    public static func redacted(_ endpoint: String) -> String {
        if let url = CleanupURL(endpoint) { return url.redacted }
        if EndpointSyntax.isGRPCTarget(endpoint), let target = try? GRPCTargetAddress(endpoint) {
            return endpoint.contains("/") ? target.key + "/…" : target.key
        }
        guard endpoint.contains("@") || endpoint.contains("?") else { return String(endpoint.prefix(300)) }
        let lower = endpoint.lowercased()
        let scheme = lower.hasPrefix("http://") ? "http://" : lower.hasPrefix("https://") ? "https://" : ""
        let tail = (endpoint.split(separator: "@", omittingEmptySubsequences: false).last ?? "").prefix { $0 != "?" }.prefix(200)
        return (endpoint.contains("@") ? scheme + "…@" : "") + tail + (endpoint.contains("?") ? "?…" : "")
    }

    /// The origin requests to `endpoint` are throttled by: `scheme://host:port`
    /// for URLs, `grpc://host:port` for gRPC targets; anything else as is.
    public static func origin(_ endpoint: String) -> String {
        if let url = CleanupURL(endpoint) { return "\(url.scheme)://\(url.host.lowercased()):\(url.port)" }
        if EndpointSyntax.isGRPCTarget(endpoint), let target = try? GRPCTargetAddress(endpoint) {
            return "grpc://\(target.key.lowercased())"
        }
        return endpoint
    }
}
