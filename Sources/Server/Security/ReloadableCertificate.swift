import Foundation
import NIOCertificateReloading
import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// A certificate chain and its private key, read from PEM files and read
/// again on ``reload()`` (SIGHUP), so certificates rotate without a restart.
///
/// Every new TLS handshake, on a server port or on a connection this node
/// opens, uses the pair loaded last; established connections keep theirs.
/// A reload that fails (a file missing or half-written, or a key that does
/// not match the certificate) keeps the previous pair and throws.
public final class ReloadableCertificate: CertificateReloader {
    public let files: TLSFiles
    private let current: Mutex<NIOSSLContextConfigurationOverride>
    private let leaf: Mutex<Certificate>
    /// The PEM text of the pair in use (for TLS contexts made later, so they
    /// never read a file that may be half-rotated).
    private let pem: Mutex<(certificate: String, key: String)>

    /// Loads the pair; throws ``TLSFileError`` when it cannot be used.
    public init(files: TLSFiles) throws {
        self.files = files
        let (override, leaf, pem) = try Self.load(files)
        current = Mutex(override)
        self.leaf = Mutex(leaf)
        self.pem = Mutex(pem)
    }

    public var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride {
        current.withLock { $0 }
    }

    /// The leaf certificate in use (for logs: subject, expiry).
    public var certificate: Certificate { leaf.withLock { $0 } }

    /// Reads both files again and uses them for the next handshakes.
    public func reload() throws {
        let (override, cert, text) = try Self.load(files)
        current.withLock { $0 = override }
        leaf.withLock { $0 = cert }
        pem.withLock { $0 = text }
    }

    /// The pair in use as PEM text (the initial values of a TLS context;
    /// the reloader overrides them from the first handshake on).
    var pemText: (certificate: String, key: String) { pem.withLock { $0 } }

    static func load(_ files: TLSFiles) throws -> (NIOSSLContextConfigurationOverride, Certificate, (certificate: String, key: String)) {
        let certPEM = try read(files.certificateFile, what: "certificate")
        let keyPEM = try read(files.keyFile, what: "private key")
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        let leaf: Certificate
        let x509Key: Certificate.PrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(certPEM.utf8))
            guard let first = chain.first else { throw TLSFileError(path: files.certificateFile, problem: "holds no certificate") }
            // The leaf is the first certificate of the chain (a fullchain
            // file holds intermediates after it).
            leaf = try Certificate(derEncoded: try first.toDERBytes())
        } catch let error as TLSFileError {
            throw error
        } catch {
            throw TLSFileError(path: files.certificateFile, problem: "is not a PEM certificate chain (\(error))")
        }
        do {
            key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            x509Key = try Certificate.PrivateKey(pemEncoded: keyPEM)
        } catch {
            throw TLSFileError(path: files.keyFile, problem: "is not a PEM private key (\(error))")
        }
        guard x509Key.publicKey == leaf.publicKey else {
            throw TLSFileError(path: files.keyFile, problem: "does not belong to the certificate in \(files.certificateFile) (a rotation half done?)")
        }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = chain.map { .certificate($0) }
        override.privateKey = .privateKey(key)
        return (override, leaf, (certPEM, keyPEM))
    }

    static func read(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw TLSFileError(path: path, problem: "cannot be read (\(what))")
        }
        return text
    }
}

/// A TLS file that cannot be used, with the path and what is wrong.
public struct TLSFileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var problem: String
    public var description: String { "\(path) \(problem)" }
}
