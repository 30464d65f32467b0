import Foundation
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import TestPKI
import Synchronization
import Testing

/// The security acceptance cases against three real nodes running mutual TLS
/// on both ports with an authorization policy, with certificates made in the
/// test: every case is refused, and the nodes keep serving.
@Suite("Security: mTLS, authorization and the peer port (real processes)", .serialized, .timeLimit(.minutes(3)))
struct SecurityTests {
    static let policy = """
        identities:
          ops:     { roles: [operator] }
          svc-a:   { services: [a] }
          svc-b:   { services: [b] }
          reader:  { roles: [reader] }
        """

    /// A cluster with mTLS, the policy above, and the test's clients as `ops`.
    func withSecureCluster(_ body: (ProcessCluster, TestPKI) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gc-pki-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(directory: dir)
        try await withProcessCluster(tls: ClusterTLS(pki: pki, policy: Self.policy)) { cluster in
            try await body(cluster, pki)
        }
    }

    /// Runs `body` with a lease-API client of node `node` secured by `security`.
    func withClient<R: Sendable>(
        _ node: SidecarProcess, port: Int? = nil, _ security: HTTP2ClientTransport.Posix.TransportSecurity,
        _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: port ?? node.clientPort), transportSecurity: security)
        return try await withGRPCClient(transport: transport) { try await body($0) }
    }

    func tls(_ pki: TestPKI, _ cert: TestPKI.Issued?, trusting ca: String? = nil) -> HTTP2ClientTransport.Posix.TransportSecurity {
        .tls(.init(
            certificateChain: cert.map { [.file(path: $0.certificateFile, format: .pem)] } ?? [],
            privateKey: cert.map { .file(path: $0.keyFile, format: .pem) },
            serverCertificateVerification: .fullVerification,
            trustRoots: .certificates([.file(path: ca ?? pki.caFile, format: .pem)])))
    }

    /// The call is refused at the connection (UNAVAILABLE: the handshake
    /// failed), not merely slow (a deadline would be DEADLINE_EXCEEDED).
    func expectRefused(_ what: String, _ call: () async throws -> Void) async {
        do {
            try await call()
            Issue.record("\(what): was not refused")
        } catch let error as RPCError {
            #expect(error.code == .unavailable, "\(what): \(error)")
        } catch {
            Issue.record("\(what): unexpected \(error)")
        }
    }

    /// Every node still answers an authorized client.
    func expectServing(_ cluster: ProcessCluster) async throws {
        for i in cluster.nodes.indices {
            let health = try await cluster.leases[i].healthCheck(DistributedGc_HealthCheckRequest(), options: ProcessCluster.fast)
            #expect(health.healthy, "\(cluster.nodes[i].name) still serves")
        }
    }

    @Test("plaintext, certificate-less and foreign-CA clients are refused; the nodes keep serving")
    func transportRefusals() async throws {
        try await withSecureCluster { cluster, pki in
            try await cluster.waitForLeader()
            let node = cluster.nodes[0]
            var options = ProcessCluster.fast
            options.timeout = .seconds(3)
            await expectRefused("a plaintext client on the TLS port") {
                _ = try await withClient(node, .plaintext) { client in
                    try await DistributedGc_DistributedGCService.Client(wrapping: client).healthCheck(.init(), options: options)
                }
            }
            await expectRefused("a TLS client without a certificate") {
                _ = try await withClient(node, tls(pki, nil)) { client in
                    try await DistributedGc_DistributedGCService.Client(wrapping: client).healthCheck(.init(), options: options)
                }
            }
            let otherDir = pki.directory + "/other"
            let other = try TestPKI(directory: otherDir, name: "other")
            await expectRefused("a certificate from another CA") {
                _ = try await withClient(node, tls(pki, try other.client("ops"))) { client in
                    try await DistributedGc_DistributedGCService.Client(wrapping: client).healthCheck(.init(), options: options)
                }
            }
            await expectRefused("a plaintext client on the peer port") {
                _ = try await withClient(node, port: node.raftPort, .plaintext) { client in
                    try await DistributedGc_Raft_RaftPeer.Client(wrapping: client).status(.init(), options: options)
                }
            }
            try await expectServing(cluster)
        }
    }

    @Test("service a cannot release b's lease, a non-operator cannot add a member; errors name the permission, not b")
    func authorizationRefusals() async throws {
        try await withSecureCluster { cluster, pki in
            let leader = try await cluster.waitForLeader()
            let asB = try tls(pki, pki.client("svc-b"))
            let asA = try tls(pki, pki.client("svc-a"))
            let node = cluster.nodes[leader]
            let leaseOfB = try await withClient(node, asB) { client in
                var create = DistributedGc_CreateLeaseRequest()
                create.objectID = "row-b"
                create.objectType = .databaseRow
                create.serviceID = "b"
                create.leaseDurationSeconds = 300
                return try await DistributedGc_DistributedGCService.Client(wrapping: client).createLease(create, options: ProcessCluster.fast).leaseID
            }
            try await withClient(node, asA) { client in
                let api = DistributedGc_DistributedGCService.Client(wrapping: client)
                // Naming its own service: the lease is not its own.
                var release = DistributedGc_ReleaseLeaseRequest()
                release.leaseID = leaseOfB
                release.serviceID = "a"
                let own = await #expect(throws: RPCError.self) { try await api.releaseLease(release, options: ProcessCluster.fast) }
                #expect(own?.code == .permissionDenied)
                #expect(own.map { !$0.message.contains("'b'") } ?? false, "the error does not reveal the owner: \(String(describing: own))")
                // Naming b's service: not granted.
                release.serviceID = "b"
                let foreign = await #expect(throws: RPCError.self) { try await api.releaseLease(release, options: ProcessCluster.fast) }
                #expect(foreign?.code == .permissionDenied)
                #expect(foreign?.message.contains("leases.write") ?? false)
                // Reading b's lease is refused too, and listing shows none of b's.
                var get = DistributedGc_GetLeaseRequest()
                get.leaseID = leaseOfB
                let read = await #expect(throws: RPCError.self) { try await api.getLease(get, options: ProcessCluster.fast) }
                #expect(read?.code == .permissionDenied)
                let listed = try await api.listLeases(DistributedGc_ListLeasesRequest(), options: ProcessCluster.fast)
                #expect(listed.leases.isEmpty)
                // Operator-only calls.
                var force = DistributedGc_ForceReleaseLeaseRequest()
                force.leaseID = leaseOfB
                let forced = await #expect(throws: RPCError.self) { try await api.forceReleaseLease(force, options: ProcessCluster.fast) }
                #expect(forced?.code == .permissionDenied)
                var add = DistributedGc_AddMemberRequest()
                add.nodeID = "evil"
                add.raftAddress = "127.0.0.1:1"
                let added = await #expect(throws: RPCError.self) {
                    try await DistributedGc_ClusterService.Client(wrapping: client).addMember(add, options: ProcessCluster.fast)
                }
                #expect(added?.code == .permissionDenied)
                #expect(added?.message.contains("cluster.admin") ?? false)
            }
            // A bearer token of an unknown identity and no certificate: UNAUTHENTICATED is for
            // callers without credentials; here the certificate is valid but unknown to the policy.
            try await withClient(node, try tls(pki, pki.client("stranger"))) { client in
                let denied = await #expect(throws: RPCError.self) {
                    try await DistributedGc_DistributedGCService.Client(wrapping: client).healthCheck(.init(), options: ProcessCluster.fast)
                }
                #expect(denied?.code == .permissionDenied)
            }
            // The lease is untouched, and the operator still sees it.
            let got = try await cluster.get(via: leader, leaseOfB)
            #expect(got.found && got.lease.state == .active)
            let status = try await cluster.status(via: leader)
            #expect(status.nodes.count == 3, "no member was added")
            try await expectServing(cluster)
        }
    }

    /// Runs `command` with `arguments`; its exit status and output.
    static func run(_ command: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("gcctl speaks mTLS and shows the node's protection; the metrics port serves HTTPS health")
    func gcctlAndMetricsOverTLS() async throws {
        try await withSecureCluster { cluster, pki in
            try await cluster.waitForLeader()
            let gcctl = try SidecarBinary.path(of: "gcctl")
            let node = cluster.nodes[0]
            let ops = try pki.client("ops")
            let (status, output) = try Self.run(gcctl, ["cluster", "status", "--timeout", "5", "--endpoint", node.endpoint, "--cacert", pki.caFile,
                                                        "--cert", ops.certificateFile, "--key", ops.keyFile])
            #expect(status == 0, "\(output)")
            #expect(output.contains("mtls+auth"), "\(output)")
            let (plain, plainOutput) = try Self.run(gcctl, ["health", "--endpoint", node.endpoint, "--timeout", "2"])
            #expect(plain != 0, "a plaintext gcctl is refused: \(plainOutput)")
            let reader = try pki.client("svc-a")
            let (denied, deniedOutput) = try Self.run(gcctl, ["cluster", "add", "n9", "127.0.0.1:1", "--timeout", "5", "--endpoint", node.endpoint,
                                                              "--cacert", pki.caFile, "--cert", reader.certificateFile, "--key", reader.keyFile])
            #expect(denied != 0 && deniedOutput.contains("PERMISSION_DENIED"), "\(deniedOutput)")
            // Ready once this node knows the leader and has applied the log.
            _ = try await cluster.eventually("/readyz over HTTPS answers ok", timeout: .seconds(15)) {
                let (https, body) = try Self.run("/usr/bin/env", ["curl", "-sS", "--fail", "--cacert", pki.caFile,
                                                                  "https://127.0.0.1:\(node.metricsPort)/readyz"])
                return https == 0 && body.contains("ok") ? true : nil
            }
            let (http, _) = try Self.run("/usr/bin/env", ["curl", "-sS", "--max-time", "3", "http://127.0.0.1:\(node.metricsPort)/readyz"])
            #expect(http != 0, "plain HTTP is not served on the TLS metrics port")
        }
    }

    @Test("a peer whose certificate names n3 cannot claim to be n2 on the peer port")
    func peerImpersonationIsRefused() async throws {
        try await withSecureCluster { cluster, pki in
            try await cluster.waitForLeader()
            let target = cluster.nodes[0]
            let n3 = try pki.node("n3", serial: "-impostor")
            let security = tls(pki, n3)
            try await withClient(target, port: target.raftPort, security) { client in
                let peer = DistributedGc_Raft_RaftPeer.Client(wrapping: client)
                var forward = DistributedGc_Raft_ForwardRequest()
                forward.fromName = "n2"
                forward.command = Data([1, 2, 3])
                let forged = await #expect(throws: RPCError.self) { try await peer.forward(forward, options: ProcessCluster.fast) }
                #expect(forged?.code == .permissionDenied)

                var batch = DistributedGc_Raft_MessageBatch()
                batch.fromName = "n2"
                batch.fromID = 42
                var message = DistributedGc_Raft_RaftMessage()
                message.type = 1
                message.term = 1_000_000
                batch.messages = [message]
                let forgedBatch = batch
                let stream = await #expect(throws: RPCError.self) {
                    _ = try await peer.stream(request: StreamingClientRequest(of: DistributedGc_Raft_MessageBatch.self) { writer in
                        try await writer.write(forgedBatch)
                    }, options: ProcessCluster.fast)
                }
                #expect(stream?.code == .permissionDenied)

                // Its own name first (accepted), then n2's Raft id under
                // that name on the same stream: refused.
                var honest = DistributedGc_Raft_MessageBatch()
                honest.fromName = "n3"
                honest.fromID = ClusterMemberID.of("n3")
                var switched = honest
                switched.fromID = ClusterMemberID.of("n2")
                switched.messages = [message]
                let (first, second) = (honest, switched)
                let midStream = await #expect(throws: RPCError.self) {
                    _ = try await peer.stream(request: StreamingClientRequest(of: DistributedGc_Raft_MessageBatch.self) { writer in
                        try await writer.write(first)
                        try await writer.write(second)
                    }, options: ProcessCluster.fast)
                }
                #expect(midStream?.code == .permissionDenied)
                // Claiming its own name is fine for a status call.
                _ = try await peer.status(.init(), options: ProcessCluster.fast)
            }
            // The forged term did not depose anyone: the cluster still has a leader and serves.
            try await cluster.waitForLeader()
            let status = try await cluster.status(via: 0)
            #expect(status.nodes.allSatisfy { $0.term < 1_000_000 })
            try await expectServing(cluster)
        }
    }
}

/// Certificate rotation: new certificates under the same paths, SIGHUP, and
/// every node serves the new one to new connections while a load runs.
@Suite("Security: certificate rotation (real processes)", .serialized, .timeLimit(.minutes(3)))
struct CertificateRotationTests {
    /// The SHA-256 fingerprint of the certificate served at `port`.
    static func servedFingerprint(port: Int, name: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "openssl s_client -connect 127.0.0.1:\(port) -servername \(name) </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func fileFingerprint(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "x509", "-in", path, "-noout", "-fingerprint", "-sha256"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        process.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("SIGHUP rotates every node's certificate with no failed request in a concurrent load")
    func rotateUnderLoad() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gc-pki-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(directory: dir)
        let tls = ClusterTLS(pki: pki)
        try await withProcessCluster(tls: tls) { cluster in
            try await cluster.waitForLeader()
            let before = try cluster.nodes.map { try Self.servedFingerprint(port: $0.clientPort, name: $0.name) }
            #expect(before.allSatisfy { $0.contains("Fingerprint") }, "openssl read the served certificates: \(before)")
            let clientSecurity = try tls.clientSecurity()
            let load = LoadRecord()
            let stop = load.stop, failures = load.failures, done = load.done
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Load on the established connections, through every node.
                group.addTask {
                    var i = 0
                    while !stop.withLock({ $0 }) {
                        do {
                            let created = try await cluster.create(via: i % 3, object: "rot-\(i)")
                            _ = try await cluster.get(via: (i + 1) % 3, created.leaseID)
                            done.withLock { $0 += 1 }
                        } catch {
                            failures.withLock { $0.append("established \(i): \(error)") }
                        }
                        i += 1
                    }
                }
                // New connections (new handshakes) throughout.
                group.addTask {
                    var i = 0
                    while !stop.withLock({ $0 }) {
                        let node = cluster.nodes[i % 3]
                        do {
                            let transport = try HTTP2ClientTransport.Posix(
                                target: .ipv4(address: "127.0.0.1", port: node.clientPort), transportSecurity: clientSecurity)
                            _ = try await withGRPCClient(transport: transport) { client in
                                try await DistributedGc_DistributedGCService.Client(wrapping: client).healthCheck(.init(), options: ProcessCluster.fast)
                            }
                            done.withLock { $0 += 1 }
                        } catch {
                            failures.withLock { $0.append("new connection to \(node.name): \(error)") }
                        }
                        i += 1
                    }
                }
                // Let the load run, rotate, and let it run on.
                try await cluster.eventually("load running", timeout: .seconds(20)) { done.withLock { $0 } >= 20 ? true : nil }
                for node in cluster.nodes { _ = try pki.node(node.name) }   // new key and certificate, same files
                for node in cluster.nodes { node.hangUp() }
                for (i, node) in cluster.nodes.enumerated() {
                    let expected = try Self.fileFingerprint("\(pki.directory)/\(pki.name)-\(node.name).pem")
                    #expect(expected != before[i])
                    _ = try await cluster.eventually("\(node.name) serves its new certificate", timeout: .seconds(15)) {
                        try Self.servedFingerprint(port: node.clientPort, name: node.name) == expected ? true : nil
                    }
                }
                let after = done.withLock { $0 }
                try await cluster.eventually("load continues after the rotation", timeout: .seconds(20)) {
                    done.withLock { $0 } >= after + 20 ? true : nil
                }
                stop.withLock { $0 = true }
                try await group.waitForAll()
            }
            #expect(failures.withLock { $0 }.isEmpty, "failed requests during rotation: \(failures.withLock { $0.prefix(5) })")
            try await cluster.waitForLeader()
        }
    }
}

/// What the rotation test's load loops share.
final class LoadRecord: Sendable {
    let stop = Box(false)
    let failures = Box<[String]>([])
    let done = Box(0)

    final class Box<Value: Sendable>: Sendable {
        private let value: Mutex<Value>
        init(_ value: Value) { self.value = Mutex(value) }
        func withLock<R>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
    }
}

/// Raft ids as the nodes derive them from member names (64-bit FNV-1a,
/// never 0), for forging peer batches.
enum ClusterMemberID {
    static func of(_ name: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash == 0 ? 1 : hash
    }
}
