import Foundation
@testable import Server
import TestPKI
import Testing

@Suite("Certificates and keys from files, reloaded")
struct ReloadableCertificateTests {
    func withPKI(_ body: (TestPKI) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gc-reload-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body(try TestPKI(directory: dir))
    }

    @Test("a full chain file (leaf, then its CA) loads, and the leaf is the first certificate")
    func fullChainLoads() throws {
        try withPKI { pki in
            let node = try pki.node("n1")
            let chain = pki.directory + "/fullchain.pem"
            let text = try String(contentsOfFile: node.certificateFile, encoding: .utf8) + String(contentsOfFile: pki.caFile, encoding: .utf8)
            try text.write(toFile: chain, atomically: true, encoding: .utf8)
            let cert = try ReloadableCertificate(files: TLSFiles(certificateFile: chain, keyFile: node.keyFile))
            #expect(CertificateNames(cert.certificate).dnsNames.contains("n1"))
            #expect(cert.pemText.certificate.components(separatedBy: "BEGIN CERTIFICATE").count == 3, "both certificates are served")
        }
    }

    @Test("a reload picks up new files; a key that does not match keeps the previous pair")
    func reloadKeepsAMatchingPair() throws {
        try withPKI { pki in
            let first = try pki.node("n1")
            let cert = try ReloadableCertificate(files: TLSFiles(certificateFile: first.certificateFile, keyFile: first.keyFile))
            let before = cert.certificate
            _ = try pki.node("n1")   // new key and certificate in the same files
            try cert.reload()
            #expect(cert.certificate != before)
            let reloaded = cert.certificate
            // Half a rotation: another key beside this certificate.
            let other = try pki.node("n2")
            try FileManager.default.removeItem(atPath: first.keyFile)
            try FileManager.default.copyItem(atPath: other.keyFile, toPath: first.keyFile)
            let error = #expect(throws: TLSFileError.self) { try cert.reload() }
            #expect(error?.problem.contains("does not belong") == true)
            #expect(cert.certificate == reloaded, "the previous pair stays in use")
        }
    }
}
