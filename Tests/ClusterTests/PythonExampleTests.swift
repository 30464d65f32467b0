import Foundation
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import TestPKI
import XCTest

/// Runs the Python example client (`examples/python/run.sh`) against one real
/// `gc-sidecar` process, so the example in the docs keeps working against the
/// server as it is. The script checks every answer itself and exits non-zero
/// on the first surprise. Needs `python3` and, on its first run, network
/// access for `pip install` (the virtualenv is kept in `.build-python/`).
final class PythonExampleTests: XCTestCase {
    /// The repository root: this file is `<root>/Tests/ClusterTests/PythonExampleTests.swift`.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testPythonExampleRunsCreateRenewReleaseWatchAgainstARealNode() async throws {
        try await runExample(environment: [:], security: .plaintext, arguments: [])
    }

    /// The same example over mutual TLS, as an identity the node's policy
    /// grants the example's service: the README's `--cacert/--cert/--key`.
    func testPythonExampleOverMutualTLSWithAuthorization() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("gc-python-pki-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try TestPKI(directory: directory)
        let node = try pki.node("n1")
        let client = try pki.client("python")
        let policy = "\(directory)/policy.yaml"
        try "identities:\n  python: { services: [python-example] }\n".write(toFile: policy, atomically: true, encoding: .utf8)
        try await runExample(
            environment: ["GC_TLS_CERT_FILE": node.certificateFile, "GC_TLS_KEY_FILE": node.keyFile,
                          "GC_TLS_CLIENT_CA_FILE": pki.caFile, "GC_AUTH_POLICY_FILE": policy],
            security: .tls(.init(
                certificateChain: [.file(path: client.certificateFile, format: .pem)],
                privateKey: .file(path: client.keyFile, format: .pem),
                serverCertificateVerification: .fullVerification,
                trustRoots: .certificates([.file(path: pki.caFile, format: .pem)]))),
            arguments: ["--cacert", pki.caFile, "--cert", client.certificateFile, "--key", client.keyFile])
    }

    /// Starts one node with `environment`, waits until it serves (through a
    /// client secured by `security`) and runs the example with `arguments`.
    private func runExample(environment: [String: String], security: HTTP2ClientTransport.Posix.TransportSecurity,
                            arguments: [String]) async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("gc-python-example-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ports = [try freePort(), try freePort(), try freePort()]
        // A single node: no GC_PEERS, it elects itself at start.
        let node = SidecarProcess(
            name: "n1", clientPort: ports[0], raftPort: ports[1], metricsPort: ports[2],
            directory: directory, environment: ["GC_LOG_LEVEL": "info"].merging(environment) { _, new in new })
        defer {
            node.stop()
            if ProcessInfo.processInfo.environment["GC_KEEP_CLUSTER_DIR"] == nil {
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
        try node.start()
        try await Self.waitUntilServing(node, security: security, timeout: .seconds(30))

        let script = Self.repositoryRoot.appendingPathComponent("examples/python/run.sh").path
        let outputPath = "\(directory)/python-example.out"
        let status = try await Self.run(
            "bash", [script, "--endpoint", node.endpoint] + arguments, outputPath: outputPath, timeout: .seconds(300))
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "(no output)"
        let report = "--- examples/python/run.sh output ---\n\(output)\n--- \(node.name) log (tail) ---\n\(node.logTail())"

        guard let status else {
            return XCTFail("examples/python/run.sh did not finish within 300 s (terminated)\n\(report)")
        }
        XCTAssertEqual(status, 0, "examples/python/run.sh failed with exit status \(status)\n\(report)")
        XCTAssertTrue(output.contains("OK: lease"), "the example did not print its success summary\n\(report)")
    }

    /// Polls HealthCheck until the node answers healthy with a non-zero
    /// applied index (it has elected itself and applied its first entry).
    static func waitUntilServing(_ node: SidecarProcess, security: HTTP2ClientTransport.Posix.TransportSecurity,
                                         timeout: Duration) async throws {
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: node.clientPort), transportSecurity: security)
        let client = GRPCClient(transport: transport)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.runConnections() }
            defer { client.beginGracefulShutdown() }
            let service = DistributedGc_DistributedGCService.Client(wrapping: client)
            let deadline = ContinuousClock.now + timeout
            var last = "no answer"
            polling: while true {
                guard node.isRunning else {
                    throw ClusterTestFailure("\(node.name) exited before serving\n\(node.logTail())")
                }
                do {
                    let health = try await service.healthCheck(DistributedGc_HealthCheckRequest(), options: ProcessCluster.fast)
                    if health.healthy && health.appliedIndex > 0 { break polling }
                    last = "healthy=\(health.healthy) applied_index=\(health.appliedIndex)"
                } catch {
                    last = "\(error)"
                }
                guard ContinuousClock.now < deadline else {
                    throw ClusterTestFailure("\(node.name) did not answer HealthCheck within \(timeout) (last: \(last))\n\(node.logTail())")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            client.beginGracefulShutdown()
            try await group.waitForAll()
        }
    }

    /// Runs `command` (looked up on PATH) with stdout and stderr going to
    /// `outputPath`; returns its exit status, or nil when it was still running
    /// at the deadline (it is then terminated).
    static func run(_ command: String, _ arguments: [String], outputPath: String, timeout: Duration) async throws -> Int32? {
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [command] + arguments
        process.standardInput = FileHandle.nullDevice
        // A file, not a pipe: a pipe nobody reads would fill up and block the script.
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                process.terminate()
                process.waitUntilExit()
                return nil
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return process.terminationStatus
    }
}
