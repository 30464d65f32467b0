#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where cleanups may be sent (`GC_CLEANUP_ALLOW`, README "Cleanup egress").
///
/// Pure: no name resolution, no I/O. A cleanup endpoint is checked twice:
/// at create time on the host as written (``check(host:)``), and at delivery
/// on every address the host resolves to (``check(address:resolvedFrom:)``),
/// so a name that later resolves somewhere denied (DNS rebinding) is still
/// refused.
///
/// **Always denied**, allowlist or not: link-local and cloud metadata
/// addresses (``deniedNetworks``), metadata host names (``deniedNames``),
/// `0.0.0.0/8` and `::`, multicast and broadcast. IPv4-mapped
/// (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) IPv6 addresses are
/// checked as the IPv4 address they carry.
///
/// **Without an allowlist** everything else is allowed, loopback and private
/// ranges included (a sidecar's natural target is its own service).
/// **With an allowlist** a host must match one of its host patterns, or every
/// address it resolves to must lie in one of its networks.
public struct EgressPolicy: Hashable, Sendable {
    /// Host patterns of the allowlist: `files.internal` (that name) or
    /// `*.svc.cluster.local` (any name below it).
    public private(set) var hostPatterns: [HostPattern] = []
    /// Networks of the allowlist (a bare address is a /32 or /128).
    public private(set) var networks: [IPNetwork] = []

    /// No allowlist: everything but the default denials.
    public init() {}

    /// An allowlist of host patterns and networks; empty means none.
    public init(hostPatterns: [HostPattern], networks: [IPNetwork]) {
        self.hostPatterns = hostPatterns
        self.networks = networks
    }

    /// Whether an allowlist is set (then only what it names is allowed).
    public var hasAllowlist: Bool { !hostPatterns.isEmpty || !networks.isEmpty }

    /// Why a host or address is refused.
    public enum Reason: String, Hashable, Sendable {
        case metadata = "link-local / cloud metadata"
        case metadataName = "cloud metadata host name"
        case unspecified = "unspecified address"
        case multicast = "multicast / broadcast"
        case notAllowed = "not in GC_CLEANUP_ALLOW"
        case badLiteral = "not a valid IP address"

        /// Whether GC_CLEANUP_ALLOW could change the answer.
        var isDefaultDenial: Bool { self != .notAllowed }
    }

    /// Networks denied whatever the allowlist says, with the reason.
    public static let deniedNetworks: [(network: IPNetwork, reason: Reason)] = {
        let table: [(String, Reason)] = [
            ("169.254.0.0/16", .metadata),      // IPv4 link-local; AWS/GCP/Azure/OCI metadata at .169.254
            ("100.100.100.200/32", .metadata),  // Alibaba Cloud metadata
            ("fe80::/10", .metadata),           // IPv6 link-local
            ("fd00:ec2::254/128", .metadata),   // AWS metadata over IPv6
            ("0.0.0.0/8", .unspecified),        // "this network"; 0.0.0.0 reaches the local host
            ("::/128", .unspecified),
            ("224.0.0.0/4", .multicast),
            ("255.255.255.255/32", .multicast), // limited broadcast
            ("ff00::/8", .multicast),
        ]
        // Every entry parses (EgressPolicyTests counts them).
        return table.compactMap { text, reason in IPNetwork(text).map { (network: $0, reason: reason) } }
    }()

    /// Host names denied whatever the allowlist says (case-insensitive, a
    /// trailing dot ignored): the cloud metadata services' names.
    public static let deniedNames: Set<String> = [
        "metadata", "metadata.google.internal", "metadata.goog", "metadata.azure.com",
        "instance-data", "instance-data.ec2.internal",
    ]

    /// Create-time check of `host` as written in an endpoint (a name, an IPv4
    /// address in any form `inet_aton` accepts, or `[IPv6]`). Nil when it may
    /// be used, pending the check of what a name resolves to at delivery.
    public func check(host: String) -> EgressDenial? {
        let name = Self.normalized(host)
        switch HostLiteral(name) {
        case .address(let address):
            return check(address: address, resolvedFrom: nil, host: host)
        case .invalid:
            return EgressDenial(host: host, address: nil, reason: .badLiteral)
        case .name:
            break
        }
        if Self.deniedNames.contains(name) {
            return EgressDenial(host: host, address: nil, reason: .metadataName)
        }
        // A name no pattern matches may still resolve into an allowed
        // network: only known at delivery.
        if hasAllowlist && networks.isEmpty && !hostPatterns.contains(where: { $0.matches(name) }) {
            return EgressDenial(host: host, address: nil, reason: .notAllowed)
        }
        return nil
    }

    /// Delivery-time check of one address `host` resolved to (or the literal
    /// address itself, when `host` is nil). Check the name with
    /// ``check(host:)`` first: this does not look at metadata names.
    public func check(address: IPAddress, resolvedFrom host: String?) -> EgressDenial? {
        check(address: address, resolvedFrom: host, host: host ?? address.description)
    }

    private func check(address: IPAddress, resolvedFrom name: String?, host: String) -> EgressDenial? {
        let resolved: IPAddress? = name == nil ? nil : address
        let effective = address.embeddedIPv4 ?? address
        for (network, reason) in Self.deniedNetworks where network.contains(effective) || network.contains(address) {
            return EgressDenial(host: host, address: resolved, reason: reason)
        }
        guard hasAllowlist else { return nil }
        if let name, HostLiteral(name).isName, hostPatterns.contains(where: { $0.matches(Self.normalized(name)) }) {
            return nil
        }
        if networks.contains(where: { $0.contains(effective) || $0.contains(address) }) { return nil }
        return EgressDenial(host: host, address: resolved, reason: .notAllowed)
    }

    static func normalized(_ host: String) -> String {
        var h = host.lowercased()
        if h.hasSuffix(".") { h.removeLast() }
        return h
    }

    /// A `GC_CLEANUP_ALLOW` entry that cannot be used.
    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        public var entry: String
        public var message: String
        public var description: String { "'\(entry.prefix(80))' \(message)" }
    }

    /// Parses `GC_CLEANUP_ALLOW`: comma-separated host patterns
    /// (`files.internal`, `*.svc.cluster.local`), networks (`10.0.0.0/8`,
    /// `fd00::/8`) and addresses (`127.0.0.1`, `::1`). Blank means no
    /// allowlist.
    public init(allowlist text: String) throws(ParseError) {
        for raw in text.split(separator: ",") {
            let entry = raw.trimmingWhitespaceSubstring()
            if entry.isEmpty { continue }
            if entry.contains("/") || IPAddress(entry) != nil || entry.hasPrefix("[") {
                var bare = entry
                if entry.hasPrefix("[") {
                    // [v6] or [v6]/n
                    let parts = entry.dropFirst().split(separator: "]", maxSplits: 1, omittingEmptySubsequences: false)
                    bare = parts.count == 2 && !parts[0].contains("[") ? String(parts[0] + parts[1]) : ""
                }
                guard let network = IPNetwork(bare) else {
                    throw ParseError(entry: entry, message: "is not a network: expected an address or address/prefix (e.g. 10.0.0.0/8, fd00::/8, 127.0.0.1)")
                }
                guard network.address == network.address.masked(to: network.prefixLength) else {
                    throw ParseError(entry: entry, message: "has bits set beyond its /\(network.prefixLength) prefix; did you mean \(IPNetwork(address: network.address, prefixLength: network.prefixLength))?")
                }
                if let denied = Self.deniedNetworks.first(where: { $0.network.contains(network) }) {
                    throw ParseError(entry: entry, message: "lies within \(denied.network) (\(denied.reason.rawValue)), which is always denied and cannot be allowed")
                }
                networks.append(network)
            } else {
                guard let pattern = HostPattern(entry) else {
                    throw ParseError(entry: entry, message: "is not a host pattern: expected a name (files.internal) or *. and a name (*.svc.cluster.local), of letters, digits, '-', '_' and '.'")
                }
                if let name = pattern.exactName, Self.deniedNames.contains(name) {
                    throw ParseError(entry: entry, message: "is a cloud metadata name, which is always denied and cannot be allowed")
                }
                hostPatterns.append(pattern)
            }
        }
    }
}

/// A refused cleanup endpoint: the host, the address it resolved to (at
/// delivery) and why. Its description is the message clients and dead
/// letters show.
public struct EgressDenial: Error, Hashable, Sendable, CustomStringConvertible {
    public var host: String
    /// The resolved address that was refused; nil when the host itself was.
    public var address: IPAddress?
    public var reason: EgressPolicy.Reason

    public var description: String {
        let what = address.map { "resolves to \($0), which is denied" } ?? "is denied"
        let fix = reason.isDefaultDenial
            ? "\(reason.rawValue), never allowed); see GC_CLEANUP_ALLOW"
            : "\(reason.rawValue)); add the host or its network to GC_CLEANUP_ALLOW, or use an allowed host"
        return "cleanup endpoint host \(host.prefix(253)) \(what) (\(fix)"
    }
}

/// What an endpoint's host is: an IP address, a name, or a bracketed literal
/// that is not an IPv6 address.
enum HostLiteral {
    case address(IPAddress)
    case name
    case invalid

    init(_ host: String) {
        if host.hasPrefix("[") {
            guard host.hasSuffix("]") else { self = .invalid; return }
            // A zone (`%eth0`, `%25eth0` in URLs) does not change the address.
            let inner = host.dropFirst().dropLast().prefix { $0 != "%" }
            if let v6 = IPAddress(inner), !v6.isIPv4 { self = .address(v6) } else { self = .invalid }
            return
        }
        if let address = IPAddress(host) ?? IPAddress(legacyIPv4: host) {
            self = .address(address)
        } else {
            self = .name
        }
    }

    var isName: Bool {
        if case .name = self { return true }
        return false
    }
}

/// An IPv4 or IPv6 address.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    public let bytes: [UInt8]

    public var isIPv4: Bool { bytes.count == 4 }

    /// Raw bytes: 4 for IPv4, 16 for IPv6; nil for any other count.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses dotted-quad IPv4 or textual IPv6 (no brackets, no zone).
    public init?(_ text: some StringProtocol) {
        let string = String(text)
        guard !string.isEmpty, string.utf8.count < 64 else { return nil }
        var v4 = in_addr()
        var v6 = in6_addr()
        if string.withCString({ inet_pton(AF_INET, $0, &v4) }) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if string.withCString({ inet_pton(AF_INET6, $0, &v6) }) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    /// IPv4 in the forms resolvers also accept as numbers (`inet_aton`):
    /// `2852039166`, `0xa9fea9fe`, `169.254.43518`, `0251.0376.0251.0376`.
    /// Such a "name" is an address in disguise and is checked as one.
    init?(legacyIPv4 text: String) {
        guard !text.isEmpty, text.utf8.count < 64,
              text.allSatisfy({ $0.isASCII && ($0.isHexDigit || $0 == "." || $0 == "x" || $0 == "X") }) else { return nil }
        var v4 = in_addr()
        guard text.withCString({ inet_aton($0, &v4) }) != 0 else { return nil }
        bytes = withUnsafeBytes(of: &v4) { Array($0) }
    }

    /// The IPv4 address inside an IPv4-mapped (`::ffff:0:0/96`) or NAT64
    /// well-known-prefix (`64:ff9b::/96`) IPv6 address.
    public var embeddedIPv4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
        let nat64: [UInt8] = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]
        let prefix = Array(bytes[0..<12])
        guard prefix == mapped || prefix == nat64 else { return nil }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    /// This address with all but the first `prefixLength` bits cleared.
    func masked(to prefixLength: Int) -> IPAddress {
        var out = bytes
        for i in out.indices {
            let bitsHere = max(0, min(8, prefixLength - i * 8))
            out[i] &= bitsHere == 0 ? 0 : ~UInt8(0) << (8 - bitsHere)
        }
        return IPAddress(bytes: out) ?? self
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = isIPv4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return bytes.map { String($0) }.joined(separator: ".") }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The address as a URL host: IPv6 in brackets.
    public var urlHost: String { isIPv4 ? description : "[\(description)]" }
}

/// An IPv4 or IPv6 network (CIDR).
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init(address: IPAddress, prefixLength: Int) {
        let bits = address.bytes.count * 8
        self.prefixLength = max(0, min(bits, prefixLength))
        self.address = address.masked(to: self.prefixLength)
    }

    /// Parses `address/prefix` or a bare address (all bits). The address is
    /// kept as written (``EgressPolicy`` refuses host bits past the prefix).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(parts[0]) else { return nil }
        let bits = address.bytes.count * 8
        var prefix = bits
        if parts.count == 2 {
            guard parts[1].count <= 3, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
                  let n = Int(parts[1]), (0...bits).contains(n) else { return nil }
            prefix = n
        }
        self.address = address
        self.prefixLength = prefix
    }

    /// Whether `other` is in this network (same family only).
    public func contains(_ other: IPAddress) -> Bool {
        other.bytes.count == address.bytes.count && other.masked(to: prefixLength) == address.masked(to: prefixLength)
    }

    /// Whether every address of `other` is in this network.
    public func contains(_ other: IPNetwork) -> Bool {
        other.prefixLength >= prefixLength && contains(other.address)
    }

    public var description: String { "\(address.masked(to: prefixLength))/\(prefixLength)" }
}

/// A host name pattern: an exact name, or `*.` and a suffix matching any
/// name below it (not the suffix itself). Case-insensitive.
public struct HostPattern: Hashable, Sendable, CustomStringConvertible {
    /// The lowercased name, without `*.`.
    public let suffix: String
    public let isWildcard: Bool

    public init?(_ text: some StringProtocol) {
        var s = EgressPolicy.normalized(String(text))
        let wildcard = s.hasPrefix("*.")
        if wildcard { s.removeFirst(2) }
        let labels = s.split(separator: ".", omittingEmptySubsequences: false)
        guard !s.isEmpty, s.utf8.count <= 253,
              labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") } })
        else { return nil }
        suffix = s
        isWildcard = wildcard
    }

    /// The name this pattern matches when it is not a wildcard.
    var exactName: String? { isWildcard ? nil : suffix }

    /// Whether `name` (lowercased, no trailing dot) matches.
    public func matches(_ name: String) -> Bool {
        isWildcard ? name.hasSuffix("." + suffix) : name == suffix
    }

    public var description: String { isWildcard ? "*." + suffix : suffix }
}
