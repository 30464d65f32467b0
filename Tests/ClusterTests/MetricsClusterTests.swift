import Foundation
import GCProto
import GRPCCore
import Testing

/// `/metrics` of three real `gc-sidecar` processes: what each node served
/// sums to the cluster's work, while the replicated totals agree everywhere.
@Suite("Metrics of three real gc-sidecar processes", .serialized, .timeLimit(.minutes(3)))
struct MetricsClusterTests {
    @Test("node-local lease counters sum to the cluster's work over the nodes; gc_cluster_* totals are equal on every node; each scrape is well described")
    func nodeLocalCountersSumAndClusterTotalsAgree() async throws {
        try await withProcessCluster(environment: ["GC_BUILD_COMMIT": "abc1234"]) { cluster in
            let leader = try await cluster.waitForLeader()
            // Through every node: followers forward to the leader.
            for i in 0..<6 {
                _ = try await cluster.create(via: (leader + i) % 3, object: "row-\(i)")
            }
            var scrapes: [String] = []
            for i in 0..<3 {
                scrapes.append(try await cluster.eventually("node \(cluster.nodes[i].name) applied all 6 creates") {
                    let text = try Self.scrape(cluster.nodes[i].metricsPort)
                    return Self.value("gc_cluster_leases_created_total", text) == 6 ? text : nil
                })
            }
            let served = scrapes.map { Self.value("gc_leases_created_total", $0) ?? -1 }
            #expect(served.reduce(0, +) == 6, "created per node: \(served)")
            #expect(served.allSatisfy { $0 == 2 }, "each node served two: \(served)")
            for (i, text) in scrapes.enumerated() {
                let name = cluster.nodes[i].name
                #expect(Self.value("gc_cluster_leases_active", text) == 6, "\(name)")
                let ok = #"gc_grpc_server_handled_total{grpc_service="distributed_gc.DistributedGCService",grpc_method="CreateLease",grpc_code="OK"}"#
                #expect(Self.value(ok, text) == 2, "\(name)")
                #expect(text.split(separator: "\n").contains { $0.hasPrefix("gc_build_info{version=") && $0.hasSuffix(#",commit="abc1234"} 1.0"#) },
                        "\(name) names its build")
                #expect((Self.value("gc_raft_storage_fsync_duration_seconds_count", text) ?? 0) > 0, "\(name) fsyncs its log")
                #expect((Self.value("gc_raft_storage_db_size_bytes", text) ?? 0) > 0, "\(name)")
                #expect((Self.value("process_resident_memory_bytes", text) ?? 0) > 0, "\(name)")
                #expect((Self.value("process_open_fds", text) ?? 0) > 0, "\(name)")
                let types = Self.families(text, "# TYPE ")
                let helps = Self.families(text, "# HELP ")
                #expect(!types.isEmpty && types.subtracting(helps).isEmpty, "\(name): no HELP for \(types.subtracting(helps).sorted())")
            }
        }
    }

    /// `GET /metrics` with curl (the suite's HTTP client, as SecurityTests).
    static func scrape(_ port: Int) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["curl", "-sS", "--fail", "--max-time", "5", "http://127.0.0.1:\(port)/metrics"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return process.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
    }

    /// The one sample named exactly `series`, or nil.
    static func value(_ series: String, _ text: String?) -> Double? {
        guard let text else { return nil }
        let values = text.split(separator: "\n").filter { $0.hasPrefix(series + " ") }.compactMap { Double($0.dropFirst(series.count + 1)) }
        return values.count == 1 ? values[0] : nil
    }

    static func families(_ text: String, _ prefix: String) -> Set<String> {
        Set(text.split(separator: "\n").filter { $0.hasPrefix(prefix) }.compactMap { $0.dropFirst(prefix.count).split(separator: " ").first.map(String.init) })
    }
}
