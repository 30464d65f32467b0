import Foundation
import GRPCCore
import Logging
@testable import Server
import Testing

@Suite("Authorization policy, authentication and permissions")
struct AuthorizationPolicyTests {
    static let policyText = """
        identities:
          "orders":  { services: ["orders", "orders-batch"] }
          "ops":     { roles: ["operator"] }
          "grafana": { roles: ["reader"] }
          "spiffe://prod/ns/x/sa/files": { services: ["files"] }
        tokens:
          - { identity: "orders", sha256: "\(Authenticator.sha256Hex("s3cret-token"))" }
        """

    @Test("the issue's minimal YAML form parses; JSON works too")
    func parsesYAMLAndJSON() throws {
        let policy = try AuthPolicy.parse(Self.policyText)
        #expect(policy.identities["orders"]?.services == ["orders", "orders-batch"])
        #expect(policy.identities["ops"]?.roles == [.operator])
        #expect(policy.identities["grafana"]?.roles == [.reader])
        #expect(policy.tokenHashes.values.contains("orders"))
        let json = try AuthPolicy.parse(#"{"identities": {"a": {"services": ["a"]}}, "tokens": []}"#)
        #expect(json.identities["a"]?.services == ["a"])
    }

    @Test("typos never grant more: unknown roles, keys, bad hashes and tokens of unknown identities are errors")
    func refusesTypos() {
        #expect(throws: AuthPolicyError.self) { try AuthPolicy.parse("identities:\n  a: { roles: [admin] }\n") }
        #expect(throws: AuthPolicyError.self) { try AuthPolicy.parse("identities:\n  a: { service: [a] }\n") }
        #expect(throws: AuthPolicyError.self) { try AuthPolicy.parse("identities:\n  a: {}\ntokens:\n  - { identity: a, sha256: xyz }\n") }
        let hash = Authenticator.sha256Hex("t")
        #expect(throws: AuthPolicyError.self) { try AuthPolicy.parse("identities:\n  a: {}\ntokens:\n  - { identity: b, sha256: \(hash) }\n") }
        #expect(throws: AuthPolicyError.self) { try AuthPolicy.parse("- just a list") }
    }

    @Test("a bearer token maps to its identity; a wrong token is UNAUTHENTICATED")
    func bearerTokens() throws {
        let auth = Authenticator(policy: try AuthPolicy.parse(Self.policyText), logger: Logger(label: "test"))
        var metadata = Metadata()
        metadata.addString("Bearer s3cret-token", forKey: "authorization")
        let caller = try auth.authenticate(metadata: metadata, certificate: nil)
        #expect(caller.identity == "orders")
        #expect(caller.mayWrite("orders-batch") && !caller.mayWrite("files"))
        var wrong = Metadata()
        wrong.addString("Bearer nope", forKey: "authorization")
        let error = #expect(throws: RPCError.self) { try auth.authenticate(metadata: wrong, certificate: nil) }
        #expect(error?.code == .unauthenticated)
        let none = #expect(throws: RPCError.self) { try auth.authenticate(metadata: Metadata(), certificate: nil) }
        #expect(none?.code == .unauthenticated)
    }

    @Test("a certificate's first URI SAN, else its CN, is the identity; a certified stranger is PERMISSION_DENIED")
    func certificateIdentity() throws {
        let auth = Authenticator(policy: try AuthPolicy.parse(Self.policyText), logger: Logger(label: "test"))
        let spiffe = CertificateNames(uris: ["spiffe://prod/ns/x/sa/files", "spiffe://other"], dnsNames: [], commonName: "ignored")
        #expect(try auth.authenticate(metadata: Metadata(), certificate: spiffe).identity == "spiffe://prod/ns/x/sa/files")
        let byCN = CertificateNames(commonName: "grafana")
        let reader = try auth.authenticate(metadata: Metadata(), certificate: byCN)
        #expect(reader.readsEverything && !reader.mayWrite("orders"))
        let stranger = #expect(throws: RPCError.self) {
            try auth.authenticate(metadata: Metadata(), certificate: CertificateNames(commonName: "mallory"))
        }
        #expect(stranger?.code == .permissionDenied)
    }

    @Test("operator-only methods need the operator role; unclassified methods are closed")
    func methodPermissions() {
        let service = Caller(identity: "orders", grant: .init(services: ["orders"]))
        let reader = Caller(identity: "grafana", grant: .init(roles: [.reader]))
        let op = Caller(identity: "ops", grant: .init(roles: [.operator]))
        let gc = "distributed_gc.DistributedGCService"
        for method in ["ForceReleaseLease", "RetryDeadLetters"] {
            let p = Permission.required(service: gc, method: method)
            #expect(!p.isHeld(by: service) && !p.isHeld(by: reader) && p.isHeld(by: op), "\(method)")
        }
        for method in ["AddMember", "RemoveMember", "TransferLeadership"] {
            let p = Permission.required(service: "distributed_gc.ClusterService", method: method)
            #expect(p == .clusterAdmin && !p.isHeld(by: reader) && p.isHeld(by: op))
        }
        #expect(Permission.required(service: "distributed_gc.ClusterService", method: "GetClusterStatus").isHeld(by: reader))
        #expect(!Permission.required(service: "distributed_gc.ClusterService", method: "GetClusterStatus").isHeld(by: service))
        #expect(Permission.required(service: "some.New", method: "Thing") == .clusterAdmin)
        #expect(Permission.required(service: gc, method: "CreateLease").isHeld(by: service))
        // A renewal stream is a lease write (checked per renewal's service
        // in the service), not left to the operator-only default.
        #expect(Permission.required(service: gc, method: "KeepAlive") == .leasesWrite)
        #expect(Permission.required(service: gc, method: "KeepAlive").isHeld(by: service))
    }

    @Test("peer TLS must be configured whole; a lone key or certificate is refused")
    func halfConfiguredTLS() {
        #expect(throws: SidecarConfig.Error.self) {
            try SidecarConfig(environment: ["GC_PEER_TLS_CERT_FILE": "/a", "GC_PEER_TLS_KEY_FILE": "/b"])
        }
        #expect(throws: SidecarConfig.Error.self) { try SidecarConfig(environment: ["GC_TLS_CERT_FILE": "/a"]) }
        #expect(throws: SidecarConfig.Error.self) { try SidecarConfig(environment: ["GC_TLS_CLIENT_CA_FILE": "/a"]) }
        let whole = try? SidecarConfig(environment: ["GC_PEER_TLS_CERT_FILE": "/a", "GC_PEER_TLS_KEY_FILE": "/b", "GC_PEER_TLS_CA_FILE": "/c"])
        #expect(whole?.security.peerTLS?.isMutual == true)
    }

    @Test("a node whose TLS files cannot be used does not start, naming the file")
    func unusableFilesStopTheStart() {
        var config = SecurityConfig()
        config.clientTLS = TLSFiles(certificateFile: "/nonexistent/cert.pem", keyFile: "/nonexistent/key.pem")
        let error = #expect(throws: TLSFileError.self) { try NodeSecurity(config: config, logger: Logger(label: "test")) }
        #expect(error?.path == "/nonexistent/cert.pem")
    }
}

@Suite("Authorization policy reload")
struct AuthorizationPolicyReloadTests {
    @Test("reload applies an edited policy; a broken edit keeps the previous policy in force")
    func reloadKeepsLastGoodPolicy() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "identities:\n  a: { services: [a] }\n".write(toFile: path, atomically: true, encoding: .utf8)
        let auth = try Authenticator(policyFile: path, logger: Logger(label: "test"))
        let caller = { try auth.authenticate(metadata: Metadata(), certificate: CertificateNames(commonName: "a")) }
        #expect(try !caller().mayWrite("b"))
        try "identities:\n  a: { services: [a, b] }\n".write(toFile: path, atomically: true, encoding: .utf8)
        try auth.reload()
        #expect(try caller().mayWrite("b"))
        try "identities:\n  a: { roles: [root] }\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: AuthPolicyError.self) { try auth.reload() }
        #expect(try caller().mayWrite("b"), "the last good policy stays")
        #expect(try !caller().isOperator)
    }
}
