/// The PEM files of one TLS endpoint: this node's certificate chain and key,
/// and the CA that callers' certificates must chain to (mutual TLS).
public struct TLSFiles: Hashable, Sendable {
    /// This node's certificate chain (PEM, leaf first).
    public var certificateFile: String
    /// The private key of the leaf certificate (PEM).
    public var keyFile: String
    /// The CA bundle (PEM) the other side's certificate must chain to; nil:
    /// the other side is not asked for a certificate (server) or is checked
    /// against the system's roots (client).
    public var caFile: String?

    public init(certificateFile: String, keyFile: String, caFile: String? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.caFile = caFile
    }

    /// Whether the other side must present a certificate from `caFile`.
    public var isMutual: Bool { caFile != nil }
}

/// What a node needs to run with TLS and caller authorization (all off by
/// default). Read from the environment by ``SidecarConfig/init(environment:)``.
public struct SecurityConfig: Hashable, Sendable {
    /// Client port (`GC_TLS_CERT_FILE`, `GC_TLS_KEY_FILE`, and
    /// `GC_TLS_CLIENT_CA_FILE` to require client certificates).
    public var clientTLS: TLSFiles?
    /// Peer port, always mutual (`GC_PEER_TLS_CERT_FILE`,
    /// `GC_PEER_TLS_KEY_FILE`, `GC_PEER_TLS_CA_FILE`): a peer must present a
    /// certificate from the CA naming the member it claims to be, and this
    /// node checks that the peers it dials are who `GC_PEERS` says.
    public var peerTLS: TLSFiles?
    /// Metrics and status HTTP port (`GC_METRICS_TLS_CERT_FILE`,
    /// `GC_METRICS_TLS_KEY_FILE`, `GC_METRICS_TLS_CLIENT_CA_FILE`).
    public var metricsTLS: TLSFiles?
    /// Extra CA bundle for outgoing gRPC cleanups (`GC_CLEANUP_TLS_CA_FILE`);
    /// when set, every gRPC cleanup target is called over TLS.
    public var cleanupCAFile: String?
    /// The authorization policy (`GC_AUTH_POLICY_FILE`, YAML or JSON). nil:
    /// every caller may do everything (insecure; logged loudly at start).
    public var authPolicyFile: String?

    public init() {}
}

extension EnvironmentReader {
    /// Reads ``SecurityConfig``; a half-configured endpoint is an error that
    /// names what is missing.
    func security() throws(SidecarConfig.Error) -> SecurityConfig {
        var s = SecurityConfig()
        s.clientTLS = try tlsFiles(cert: "GC_TLS_CERT_FILE", key: "GC_TLS_KEY_FILE", ca: "GC_TLS_CLIENT_CA_FILE", caRequired: false)
        s.peerTLS = try tlsFiles(cert: "GC_PEER_TLS_CERT_FILE", key: "GC_PEER_TLS_KEY_FILE", ca: "GC_PEER_TLS_CA_FILE", caRequired: true)
        s.metricsTLS = try tlsFiles(cert: "GC_METRICS_TLS_CERT_FILE", key: "GC_METRICS_TLS_KEY_FILE", ca: "GC_METRICS_TLS_CLIENT_CA_FILE", caRequired: false)
        s.cleanupCAFile = try optionalPath("GC_CLEANUP_TLS_CA_FILE")
        s.authPolicyFile = try optionalPath("GC_AUTH_POLICY_FILE")
        return s
    }

    private func tlsFiles(cert: String, key: String, ca: String, caRequired: Bool) throws(SidecarConfig.Error) -> TLSFiles? {
        let (c, k, a) = (try optionalPath(cert), try optionalPath(key), try optionalPath(ca))
        if c == nil && k == nil && a == nil { return nil }
        if caRequired, c == nil || k == nil || a == nil {
            let missing = [(cert, c), (key, k), (ca, a)].filter { $0.1 == nil }.map(\.0).joined(separator: ", ")
            throw .init(variable: missing, message: "peer TLS is half-configured: set all of \(cert), \(key) and \(ca) (peer TLS is always mutual), or none")
        }
        guard let c, let k else {
            throw .init(variable: c == nil ? cert : key, message: "TLS needs both \(cert) and \(key) (PEM files); set both, or neither for plaintext")
        }
        return TLSFiles(certificateFile: c, keyFile: k, caFile: a)
    }

    func optionalPath(_ key: String) throws(SidecarConfig.Error) -> String? {
        guard let v = env[key]?.trimmingWhitespace(), !v.isEmpty else { return nil }
        guard v.utf8.count <= 4096, !v.contains("\0") else {
            throw .init(variable: key, message: "not a usable file path")
        }
        return v
    }
}
