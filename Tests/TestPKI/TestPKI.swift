import Foundation

/// Test support shared by ServerTests and ClusterTests.
///
/// A throwaway certificate authority made with `openssl` in a temporary
/// folder: node certificates (DNS SANs naming the member, plus localhost and
/// 127.0.0.1) and client certificates (a URI SAN identity), all ECDSA P-256.
public struct TestPKI: Sendable {
    public let directory: String
    public let name: String

    public var caFile: String { "\(directory)/\(name)-ca.pem" }
    public var caKeyFile: String { "\(directory)/\(name)-ca.key" }

    /// A new CA called `name` in `directory`.
    public init(directory: String, name: String = "test") throws {
        self.directory = directory
        self.name = name
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Self.openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", caKeyFile])
        try Self.openssl(["req", "-x509", "-new", "-key", caKeyFile, "-sha256", "-days", "2", "-subj", "/CN=\(name) CA",
                          "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                          "-out", caFile])
    }

    public struct Issued: Sendable {
        public let certificateFile: String
        public let keyFile: String
    }

    /// A certificate for node `member` (usable as server and client).
    public func node(_ member: String, serial: String = "") throws -> Issued {
        try issue("\(member)\(serial)", commonName: member, sans: "DNS:\(member),DNS:localhost,IP:127.0.0.1",
                  usage: "serverAuth,clientAuth")
    }

    /// A client certificate whose identity (first URI SAN) is `identity`.
    public func client(_ identity: String, uri: String? = nil) throws -> Issued {
        let file = identity.map { $0.isLetter || $0.isNumber ? $0 : "_" }
        return try issue("client-\(String(file))", commonName: identity, sans: uri.map { "URI:\($0)" }, usage: "clientAuth")
    }

    private func issue(_ file: String, commonName: String, sans: String?, usage: String) throws -> Issued {
        let key = "\(directory)/\(name)-\(file).key"
        let csr = "\(directory)/\(name)-\(file).csr"
        let cert = "\(directory)/\(name)-\(file).pem"
        let ext = "\(directory)/\(name)-\(file).ext"
        var extensions = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=\(usage)\n"
        if let sans { extensions += "subjectAltName=\(sans)\n" }
        try extensions.write(toFile: ext, atomically: true, encoding: .utf8)
        try Self.openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key])
        // PKCS#8, the form every TLS stack reads.
        try Self.openssl(["pkcs8", "-topk8", "-nocrypt", "-in", key, "-out", key + ".p8"])
        try FileManager.default.removeItem(atPath: key)
        try FileManager.default.moveItem(atPath: key + ".p8", toPath: key)
        try Self.openssl(["req", "-new", "-key", key, "-subj", "/CN=\(commonName)", "-out", csr])
        try Self.openssl(["x509", "-req", "-in", csr, "-CA", caFile, "-CAkey", caKeyFile, "-CAcreateserial",
                          "-days", "2", "-sha256", "-extfile", ext, "-out", cert])
        return Issued(certificateFile: cert, keyFile: key)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw Failure(description: "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(text)")
        }
    }
}
