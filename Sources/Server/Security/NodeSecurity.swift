import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOSSL
import X509

/// A node's TLS material and authorization policy, loaded at start (a file
/// that cannot be used stops the start with its path and problem) and
/// reloaded together on SIGHUP.
public struct NodeSecurity: Sendable {
    public let config: SecurityConfig
    public let clientCertificate: ReloadableCertificate?
    public let peerCertificate: ReloadableCertificate?
    public let metricsCertificate: ReloadableCertificate?
    /// nil: authorization is off (every caller may do everything).
    public let authenticator: Authenticator?
    /// The peer CA bundle as read at start (PEM).
    let peerCA: [UInt8]?

    public init(config: SecurityConfig, logger: Logger) throws {
        self.config = config
        clientCertificate = try config.clientTLS.map(ReloadableCertificate.init(files:))
        peerCertificate = try config.peerTLS.map(ReloadableCertificate.init(files:))
        metricsCertificate = try config.metricsTLS.map(ReloadableCertificate.init(files:))
        peerCA = config.peerTLS?.caFile.flatMap { FileManager.default.contents(atPath: $0) }.map { Array($0) }
        for case let ca? in [config.clientTLS?.caFile, config.peerTLS?.caFile, config.metricsTLS?.caFile, config.cleanupCAFile] {
            do {
                guard !(try NIOSSLCertificate.fromPEMFile(ca)).isEmpty else { throw TLSFileError(path: ca, problem: "holds no certificate") }
            } catch let error as TLSFileError {
                throw error
            } catch {
                throw TLSFileError(path: ca, problem: "is not a PEM CA bundle (\(error))")
            }
        }
        authenticator = try config.authPolicyFile.map { path throws(AuthPolicyError) in try Authenticator(policyFile: path, logger: logger) }
    }

    /// Plaintext everywhere, no authorization (the default).
    public static let insecure = NodeSecurity()

    private init() {
        config = SecurityConfig()
        clientCertificate = nil
        peerCertificate = nil
        metricsCertificate = nil
        authenticator = nil
        peerCA = nil
    }

    // MARK: Transports

    /// The client port: TLS when configured, requiring a client certificate
    /// from `GC_TLS_CLIENT_CA_FILE` when that is set.
    public var clientPortSecurity: HTTP2ServerTransport.Posix.TransportSecurity {
        guard let files = config.clientTLS, let reloader = clientCertificate else { return .plaintext }
        return Self.server(files, reloader)
    }

    /// The peer port: mutual TLS with the peer CA when configured.
    public var peerPortSecurity: HTTP2ServerTransport.Posix.TransportSecurity {
        guard let files = config.peerTLS, let reloader = peerCertificate else { return .plaintext }
        return Self.server(files, reloader)
    }

    /// The connection this node opens to a peer: this node's peer
    /// certificate, and the peer's certificate must chain to the peer CA and
    /// name the member (`authority` is set to the member's name).
    public var peerClientSecurity: HTTP2ClientTransport.Posix.TransportSecurity {
        guard config.peerTLS != nil, let ca = peerCA, let reloader = peerCertificate else { return .plaintext }
        // From memory, not the files: a connection opened later (a member
        // added) must not read a file that is being rotated.
        let pem = reloader.pemText
        var tls = HTTP2ClientTransport.Posix.TransportSecurity.TLS(
            certificateChain: [.bytes(Array(pem.certificate.utf8), format: .pem)],
            privateKey: .bytes(Array(pem.key.utf8), format: .pem),
            serverCertificateVerification: .fullVerification,
            trustRoots: .certificates([.bytes(ca, format: .pem)]))
        tls.certificateReloader = reloader
        return .tls(tls)
    }

    /// Whether peers are authenticated by certificate.
    public var peerTLSEnabled: Bool { config.peerTLS != nil }

    static func server(_ files: TLSFiles, _ reloader: ReloadableCertificate) -> HTTP2ServerTransport.Posix.TransportSecurity {
        var tls = HTTP2ServerTransport.Posix.TransportSecurity.TLS(
            certificateChain: [.file(path: files.certificateFile, format: .pem)],
            privateKey: .file(path: files.keyFile, format: .pem),
            clientCertificateVerification: files.caFile == nil ? .noVerification : .noHostnameVerification,
            trustRoots: files.caFile.map { .certificates([.file(path: $0, format: .pem)]) } ?? .systemDefault,
            requireALPN: false)
        tls.certificateReloader = reloader
        return .tls(tls)
    }

    // MARK: Reload

    /// Re-reads every certificate, key and the policy (SIGHUP). A file that
    /// fails keeps its previous version in force; each outcome is logged
    /// and counted. Returns whether everything reloaded.
    @discardableResult
    public func reload(logger: Logger, metrics: SidecarMetrics?) -> Bool {
        var ok = true
        for (what, cert) in [("client-tls", clientCertificate), ("peer-tls", peerCertificate), ("metrics-tls", metricsCertificate)] {
            guard let cert else { continue }
            do {
                try cert.reload()
                metrics?.recordSecurityReload(what: what, ok: true)
                logger.notice("certificate reloaded", metadata: [
                    "what": "\(what)", "subject": "\(cert.certificate.subject)", "not_after": "\(cert.certificate.notValidAfter)"])
            } catch {
                ok = false
                metrics?.recordSecurityReload(what: what, ok: false)
                logger.error("certificate reload failed; the previous certificate stays in use", metadata: ["what": "\(what)", "error": "\(error)"])
            }
        }
        if let authenticator {
            do {
                try authenticator.reload()
                metrics?.recordSecurityReload(what: "auth-policy", ok: true)
                logger.notice("authorization policy reloaded", metadata: ["identities": "\(authenticator.currentPolicy.identities.count)"])
            } catch {
                ok = false
                metrics?.recordSecurityReload(what: "auth-policy", ok: false)
                logger.error("authorization policy reload failed; the previous policy stays in force", metadata: ["error": "\(error)"])
            }
        }
        return ok
    }

    /// Logs what is not protected, loudly, once at start.
    public func warnAboutGaps(logger: Logger, clustered: Bool) {
        if authenticator == nil {
            logger.warning("INSECURE: authorization is off (GC_AUTH_POLICY_FILE unset): any caller that reaches the client port may create, release or force-release any lease and change the cluster's membership")
        } else if config.clientTLS == nil {
            logger.warning("INSECURE: bearer tokens travel in plaintext: set GC_TLS_CERT_FILE and GC_TLS_KEY_FILE")
        }
        if config.clientTLS == nil {
            logger.warning("INSECURE: the client port is plaintext (GC_TLS_CERT_FILE/GC_TLS_KEY_FILE unset)")
        }
        if clustered && config.peerTLS == nil {
            logger.warning("INSECURE: the peer port is plaintext and unauthenticated: whoever reaches it can act as a member (set GC_PEER_TLS_CERT_FILE, GC_PEER_TLS_KEY_FILE, GC_PEER_TLS_CA_FILE)")
        }
    }

    /// One word for `gcctl cluster status`: `mtls+auth`, `tls`, `insecure`…
    public var summary: String {
        guard authenticator != nil else { return "insecure" }
        switch config.clientTLS {
        case nil: return "auth (plaintext)"
        case let files?: return files.isMutual ? "mtls+auth" : "tls+auth"
        }
    }
}
