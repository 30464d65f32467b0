import Foundation
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import TestPKI

/// Three (or more) real `gc-sidecar` processes on loopback forming one
/// cluster, with a gRPC client per node.
struct ProcessCluster: Sendable {
    let nodes: [SidecarProcess]
    /// Set when the nodes run mutual TLS (``ClusterTLS``).
    var tls: ClusterTLS?
    let leases: [DistributedGc_DistributedGCService.Client<HTTP2ClientTransport.Posix>]
    let admin: [DistributedGc_ClusterService.Client<HTTP2ClientTransport.Posix>]
    let directory: String

    /// Calls fail fast instead of queueing while a node is down.
    static let fast: CallOptions = {
        var options = CallOptions.defaults
        options.timeout = .seconds(5)
        options.waitForReady = false
        return options
    }()

    func index(of name: String) -> Int? { nodes.firstIndex { $0.name == name } }

    /// Cluster status as node `i` gathers it.
    func status(via i: Int) async throws -> DistributedGc_ClusterStatusResponse {
        try await admin[i].getClusterStatus(DistributedGc_ClusterStatusRequest(), options: Self.fast)
    }

    /// Waits until some running node reports a healthy cluster whose leader
    /// is running and answers on its own client port, naming itself leader;
    /// returns the leader's index. (A node joins Raft through its peer port
    /// before its client port listens, so another node's word is not enough.)
    @discardableResult
    func waitForLeader(timeout: Duration = .seconds(15), excluding: Set<Int> = []) async throws -> Int {
        var last = "no answer"
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for i in nodes.indices where nodes[i].isRunning && !excluding.contains(i) {
                if let status = try? await status(via: i), status.healthy, let leader = index(of: status.leaderID),
                   !excluding.contains(leader), nodes[leader].isRunning {
                    if leader == i { return leader }
                    let own = try? await self.status(via: leader)
                    if own?.leaderID == nodes[leader].name { return leader }
                }
                last = (try? await status(via: i)).map { "\($0.nodes.map { "\($0.nodeID):\($0.role)" })" } ?? last
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClusterTestFailure("no leader within \(timeout) (last: \(last))\n\(logs())")
    }

    func create(via i: Int, object: String, duration: Int64 = 300, cleanupURL: String? = nil, service: String = "svc") async throws -> DistributedGc_CreateLeaseResponse {
        var request = DistributedGc_CreateLeaseRequest()
        request.objectID = object
        request.objectType = .databaseRow
        request.serviceID = service
        request.leaseDurationSeconds = UInt64(duration)
        if let cleanupURL {
            var cleanup = DistributedGc_CleanupConfig()
            cleanup.cleanupHTTPEndpoint = cleanupURL
            request.cleanupConfig = cleanup
        }
        return try await leases[i].createLease(request, options: Self.fast)
    }

    func get(via i: Int, _ leaseID: String, stale: Bool = false) async throws -> DistributedGc_GetLeaseResponse {
        var request = DistributedGc_GetLeaseRequest()
        request.leaseID = leaseID
        if stale { request.consistency = .stale }
        return try await leases[i].getLease(request, options: Self.fast)
    }

    func renew(via i: Int, _ leaseID: String, extend: Int64, service: String = "svc") async throws -> DistributedGc_RenewLeaseResponse {
        var request = DistributedGc_RenewLeaseRequest()
        request.leaseID = leaseID
        request.serviceID = service
        request.extendDurationSeconds = UInt64(extend)
        return try await leases[i].renewLease(request, options: Self.fast)
    }

    /// Waits until every node answers on its client port (they start
    /// listening in their own time after the process starts); fails at once,
    /// with its log, if a node exits instead.
    func waitUntilServing(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        for i in nodes.indices {
            while true {
                guard nodes[i].isRunning else {
                    throw ClusterTestFailure("\(nodes[i].name) exited while starting\n\(logs())")
                }
                if (try? await leases[i].healthCheck(DistributedGc_HealthCheckRequest(), options: Self.fast)) != nil { break }
                guard ContinuousClock.now < deadline else {
                    throw ClusterTestFailure("\(nodes[i].name) did not serve on \(nodes[i].endpoint) within \(timeout)\n\(logs())")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// Retries `operation` until it succeeds or `timeout` passes.
    func eventually<T: Sendable>(_ what: String, timeout: Duration = .seconds(15), _ operation: () async throws -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        var lastError = "no result"
        while ContinuousClock.now < deadline {
            do {
                if let value = try await operation() { return value }
            } catch {
                lastError = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClusterTestFailure("\(what) did not happen within \(timeout) (last: \(lastError))\n\(logs())")
    }

    func logs() -> String {
        nodes.map { "--- \($0.name) ---\n\($0.logTail(15))" }.joined(separator: "\n")
    }
}

/// Mutual TLS on both ports of every node, with an authorization policy:
/// what ``withProcessCluster(size:environment:tls:_:)`` sets up when asked,
/// and for every cluster when `GC_TEST_CLUSTER_TLS=1` (the acceptance suite
/// then runs with TLS on both ports).
struct ClusterTLS: Sendable {
    let pki: TestPKI
    /// The identity of the test's own clients (an operator by default).
    var clientIdentity = "ops"
    /// The policy file; nil: one granting `ops` the operator role.
    var policy: String?

    static var fromEnvironment: Bool { ProcessInfo.processInfo.environment["GC_TEST_CLUSTER_TLS"] == "1" }

    /// Each node's environment: its certificate on the client and peer
    /// ports, the CA for both, and the policy.
    func environment(for node: String, directory: String) throws -> [String: String] {
        let cert = try pki.node(node)
        let policyFile = "\(directory)/policy.yaml"
        if !FileManager.default.fileExists(atPath: policyFile) {
            try (policy ?? "identities:\n  ops: { roles: [operator] }\n").write(toFile: policyFile, atomically: true, encoding: .utf8)
        }
        return [
            "GC_TLS_CERT_FILE": cert.certificateFile, "GC_TLS_KEY_FILE": cert.keyFile, "GC_TLS_CLIENT_CA_FILE": pki.caFile,
            "GC_PEER_TLS_CERT_FILE": cert.certificateFile, "GC_PEER_TLS_KEY_FILE": cert.keyFile, "GC_PEER_TLS_CA_FILE": pki.caFile,
            "GC_AUTH_POLICY_FILE": policyFile,
            "GC_METRICS_TLS_CERT_FILE": cert.certificateFile, "GC_METRICS_TLS_KEY_FILE": cert.keyFile,
        ]
    }

    /// The test clients' transport security: the `clientIdentity` certificate.
    func clientSecurity() throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        let cert = try pki.client(clientIdentity)
        return .tls(.init(
            certificateChain: [.file(path: cert.certificateFile, format: .pem)],
            privateKey: .file(path: cert.keyFile, format: .pem),
            serverCertificateVerification: .fullVerification,
            trustRoots: .certificates([.file(path: pki.caFile, format: .pem)])))
    }
}

/// Starts `size` nodes named n1…, runs `body`, and stops them all. With
/// `tls` (or `GC_TEST_CLUSTER_TLS=1`), every node runs mutual TLS on both
/// ports with an authorization policy, and the test's clients present an
/// operator's certificate. `beforeStart` runs for each node, with the
/// cluster's GC_PEERS, before any node starts (e.g. to seed its data
/// directory).
func withProcessCluster(
    size: Int = 3, environment: [String: String] = [:], tls: ClusterTLS? = nil,
    beforeStart: (SidecarProcess, _ peers: String) throws -> Void = { _, _ in },
    _ body: (ProcessCluster) async throws -> Void
) async throws {
    let directory = try makeClusterDirectory()
    let tls = try tls ?? (ClusterTLS.fromEnvironment ? ClusterTLS(pki: TestPKI(directory: "\(directory)/pki")) : nil)
    var specs: [(name: String, client: Int, raft: Int, metrics: Int)] = []
    for i in 1...size { specs.append(("n\(i)", try freePort(), try freePort(), try freePort())) }
    let peers = specs.map { "\($0.name)=127.0.0.1:\($0.raft)" }.joined(separator: ",")
    var env: [String: String] = [
        "GC_PEERS": peers, "GC_LOG_LEVEL": "info", "GC_MIN_LEASE_DURATION": "1",
        "GC_CLEANUP_GRACE_PERIOD": "0", "GC_CLEANUP_INTERVAL": "1", "GC_REQUEST_TIMEOUT_MS": "3000",
    ]
    for (k, v) in environment { env[k] = v }
    let nodes = try specs.map { spec in
        var nodeEnv = env
        if let tls { nodeEnv.merge(try tls.environment(for: spec.name, directory: directory)) { _, new in new } }
        for (k, v) in environment { nodeEnv[k] = v }
        return SidecarProcess(name: spec.name, clientPort: spec.client, raftPort: spec.raft, metricsPort: spec.metrics, directory: directory, environment: nodeEnv)
    }
    try await runProcessCluster(nodes: nodes, directory: directory, tls: tls, beforeStart: { try beforeStart($0, peers) }, body)
}

/// A fresh folder for one cluster's data and logs.
func makeClusterDirectory() throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gc-cluster-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory
}

/// Starts `nodes` (after `beforeStart` for each), connects a client to
/// each, waits until every one answers on its client port, runs `body`,
/// then kills them all and removes `directory` (kept with
/// `GC_KEEP_CLUSTER_DIR`). Shared by Raft clusters and postgres-mode sidecars.
func runProcessCluster(
    nodes: [SidecarProcess], directory: String, tls: ClusterTLS?,
    beforeStart: (SidecarProcess) throws -> Void = { _ in },
    _ body: (ProcessCluster) async throws -> Void
) async throws {
    defer {
        for node in nodes { node.kill9() }
        if ProcessInfo.processInfo.environment["GC_KEEP_CLUSTER_DIR"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
    for node in nodes { try beforeStart(node) }
    for node in nodes { try node.start() }

    var transports: [HTTP2ClientTransport.Posix] = []
    let clientSecurity = try tls?.clientSecurity() ?? .plaintext
    for node in nodes {
        transports.append(try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: node.clientPort), transportSecurity: clientSecurity,
            config: .defaults { $0.backoff = .init(initial: .milliseconds(50), max: .milliseconds(500), multiplier: 2, jitter: 0.1) }))
    }
    let clients = transports.map { GRPCClient(transport: $0) }
    var cluster = ProcessCluster(
        nodes: nodes,
        leases: clients.map { DistributedGc_DistributedGCService.Client(wrapping: $0) },
        admin: clients.map { DistributedGc_ClusterService.Client(wrapping: $0) },
        directory: directory)
    cluster.tls = tls
    try await withThrowingTaskGroup(of: Void.self) { group in
        for client in clients { group.addTask { try await client.runConnections() } }
        defer {
            for client in clients { client.beginGracefulShutdown() }
        }
        try await cluster.waitUntilServing()
        try await body(cluster)
        for client in clients { client.beginGracefulShutdown() }
        try await group.waitForAll()
    }
}
