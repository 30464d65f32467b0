import Foundation
import GCProto
import GRPCCore

/// Starts `size` real `gc-sidecar` processes named n1… in PostgreSQL mode
/// (`GC_STORAGE_BACKEND=postgres`) over the database at `databaseURL`, runs
/// `body` once every one of them is ready, and stops them all.
///
/// No Raft and no `GC_PEERS`: every sidecar serves the whole API, reaps and
/// delivers cleanups, so there is no leader to wait for;
/// ``ProcessCluster/waitUntilReady(timeout:)`` takes the place of
/// `waitForLeader`. The sidecars are a ``ProcessCluster`` (same process
/// handling, clients and ``ProcessWorkload``); their Raft ports are handed
/// out but never opened. Plaintext: `GC_TEST_CLUSTER_TLS` does not apply.
func withPostgresSidecars(
    size: Int = 3, databaseURL: String, environment: [String: String] = [:],
    _ body: (ProcessCluster) async throws -> Void
) async throws {
    let directory = try makeClusterDirectory()
    var env: [String: String] = [
        "GC_STORAGE_BACKEND": "postgres", "DATABASE_URL": databaseURL, "GC_LOG_LEVEL": "info",
        "GC_MIN_LEASE_DURATION": "1", "GC_CLEANUP_GRACE_PERIOD": "0", "GC_CLEANUP_INTERVAL": "1",
    ]
    for (k, v) in environment { env[k] = v }
    var nodes: [SidecarProcess] = []
    for i in 1...size {
        nodes.append(SidecarProcess(name: "n\(i)", clientPort: try freePort(), raftPort: try freePort(), metricsPort: try freePort(),
                                    directory: directory, environment: env))
    }
    try await runProcessCluster(nodes: nodes, directory: directory, tls: nil) { cluster in
        try await cluster.waitUntilReady()
        try await body(cluster)
    }
}

extension ProcessCluster {
    /// Waits until every running node but `excluding` answers `HealthCheck`
    /// on its client port and `/readyz` on its metrics port (in PostgreSQL
    /// mode: the database answers with a current schema). Fails with the
    /// logs if one does not within `timeout`, or exits.
    func waitUntilReady(timeout: Duration = .seconds(30), excluding: Set<Int> = []) async throws {
        let deadline = ContinuousClock.now + timeout
        for i in nodes.indices where !excluding.contains(i) {
            var last = "no answer"
            while true {
                guard nodes[i].isRunning else {
                    throw ClusterTestFailure("\(nodes[i].name) is not running\n\(logs())")
                }
                if (try? await leases[i].healthCheck(DistributedGc_HealthCheckRequest(), options: Self.fast)) != nil {
                    let ready = await httpGet("/readyz", node: i)
                    if ready.ok { break }
                    last = ready.body
                }
                guard ContinuousClock.now < deadline else {
                    throw ClusterTestFailure("\(nodes[i].name) was not ready within \(timeout) (last /readyz: \(last))\n\(logs())")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// `GET path` on node `i`'s metrics port (plaintext, curl with a 5 s
    /// limit): whether it answered 2xx, and its body (or curl's complaint).
    func httpGet(_ path: String, node i: Int) async -> (ok: Bool, body: String) {
        await curl("http://127.0.0.1:\(nodes[i].metricsPort)\(path)")
    }

    /// The sample named exactly `series` (no labels) on node `i`'s
    /// `/metrics`; nil when the node does not answer or has no such sample.
    func metric(_ series: String, node i: Int) async -> Double? {
        let scrape = await httpGet("/metrics", node: i)
        guard scrape.ok else { return nil }
        return MetricsClusterTests.value(series, scrape.body)
    }
}

/// Runs curl without blocking a thread of the concurrency pool; the body
/// goes through a file (a scrape can be larger than a pipe's buffer).
private func curl(_ url: String) async -> (ok: Bool, body: String) {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("gc-curl-\(UUID().uuidString)").path
    guard FileManager.default.createFile(atPath: output, contents: nil),
          let handle = FileHandle(forWritingAtPath: output) else { return (false, "cannot create \(output)") }
    defer { try? FileManager.default.removeItem(atPath: output) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["curl", "-sS", "--max-time", "5", "--fail-with-body", url]
    process.standardOutput = handle
    process.standardError = handle
    process.standardInput = FileHandle.nullDevice
    let status: Int32 = await withCheckedContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(returning: -1)
        }
    }
    try? handle.close()
    let body = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    return (status == 0, body)
}
