import GRPCCore
import GRPCNIOTransportHTTP2
import X509

/// The names a verified peer certificate carries, as the authorization
/// rules read them.
public struct CertificateNames: Hashable, Sendable {
    /// URI subject alternative names, in certificate order (e.g. SPIFFE ids).
    public var uris: [String] = []
    /// DNS subject alternative names, in certificate order.
    public var dnsNames: [String] = []
    /// The subject's (last) common name.
    public var commonName: String?

    public init(uris: [String] = [], dnsNames: [String] = [], commonName: String? = nil) {
        self.uris = uris
        self.dnsNames = dnsNames
        self.commonName = commonName
    }

    /// Reads the names of `certificate`; a malformed SAN extension counts as none.
    public init(_ certificate: Certificate) {
        if let sans = try? certificate.extensions.subjectAlternativeNames {
            for name in sans {
                switch name {
                case .uniformResourceIdentifier(let uri): uris.append(uri)
                case .dnsName(let dns): dnsNames.append(dns)
                default: break
                }
            }
        }
        for rdn in certificate.subject.reversed() {
            if let cn = rdn.first(where: { $0.type == .RDNAttributeType.commonName }) {
                commonName = String(cn.value)
                break
            }
        }
    }

    /// A client's identity: its first URI SAN, else its common name.
    public var callerIdentity: String? { uris.first ?? commonName }

    /// Whether the certificate names cluster member `name`: a DNS SAN or the
    /// common name equals it exactly.
    public func names(member name: String) -> Bool {
        dnsNames.contains(name) || commonName == name
    }

    /// The verified client certificate of the connection `context` belongs
    /// to (nil on plaintext, or when the client presented none).
    public static func ofPeer(_ context: ServerContext) -> CertificateNames? {
        var specific = context.transportSpecific
        if let wrapped = specific as? AuthenticatedContext { specific = wrapped.transport }
        guard let posix = specific as? HTTP2ServerTransport.Posix.Context, let cert = posix.peerCertificate else { return nil }
        return CertificateNames(cert)
    }
}
