import AsyncHTTPClient
import Foundation
import GCProto
import GRPCCore
import LeaseFSM
import NIOCore
import NIOHTTP1
import RaftSQLite
import Synchronization
@testable import Server
import Testing

@Suite("/metrics follows Prometheus conventions")
struct MetricsExpositionTests {
    @Test("a scrape of a serving node has HELP for every family, build_info, process_*, storage timings, and gRPC calls by status code")
    func scrapeOverHTTP() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gc-metrics-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await withTestNode(configure: {
            $0.storageBackend = .sqlite
            $0.dataDirectory = directory
        }) { node in
            let a = try await node.client.createLease(createRequest(object: "a"))
            let b = try await node.client.createLease(createRequest(object: "b"))
            _ = try await node.client.renewLease(renewRequest(a.leaseID))
            _ = try await node.client.releaseLease(releaseRequest(b.leaseID))
            var bad = createRequest(object: "bad")
            bad.objectType = .UNRECOGNIZED(99)
            let refused = await #expect(throws: RPCError.self) { _ = try await node.client.createLease(bad) }
            #expect(refused?.code == .invalidArgument)

            let text = try await scrape(node.sidecar.metrics)

            let families = Self.lines(text, prefix: "# TYPE ").compactMap { $0.split(separator: " ").first.map(String.init) }
            let helped = Set(Self.lines(text, prefix: "# HELP ").compactMap { line -> String? in
                let parts = line.split(separator: " ", maxSplits: 1)
                return parts.count == 2 && !parts[1].trimmingCharacters(in: .whitespaces).isEmpty ? String(parts[0]) : nil
            })
            #expect(families.count > 40, "\(families)")
            #expect(families.filter { !helped.contains($0) } == [], "families without a # HELP line")

            #expect(text.contains(#"gc_build_info{version="\#(SidecarVersion.current)",commit=""#), "\(text)")
            #expect(try Self.value(#"gc_build_info{version="\#(SidecarVersion.current)",commit="\#(BuildInfo.current.commit)"}"#, text) == 1)

            #expect(try Self.value("process_cpu_seconds_total", text) > 0)
            #expect(try Self.value("process_resident_memory_bytes", text) > 1_000_000)
            #expect(try Self.value("process_open_fds", text) >= 3)
            let started = try Self.value("process_start_time_seconds", text)
            let now = Date().timeIntervalSince1970
            #expect(started > now - 86_400 && started <= now + 1, "started \(started), now \(now)")

            let service = #"grpc_service="distributed_gc.DistributedGCService""#
            #expect(try Self.value(#"gc_grpc_server_handled_total{\#(service),grpc_method="CreateLease",grpc_code="OK"}"#, text) == 2)
            #expect(try Self.value(#"gc_grpc_server_handled_total{\#(service),grpc_method="CreateLease",grpc_code="InvalidArgument"}"#, text) == 1)
            #expect(try Self.value(#"gc_grpc_server_handling_seconds_count{\#(service),grpc_method="CreateLease"}"#, text) == 3)

            #expect(try Self.value("gc_leases_created_total", text) == 2)
            #expect(try Self.value("gc_leases_renewed_total", text) == 1)
            #expect(try Self.value("gc_leases_released_total", text) == 1)
            #expect(try Self.value("gc_cluster_leases_created_total", text) == 2)
            #expect(try Self.value("gc_cluster_leases_active", text) == 1)
            #expect(try Self.value("gc_active_leases", text) == 1)

            #expect(try Self.value("gc_raft_storage_fsync_duration_seconds_count", text) >= 4)
            #expect(try Self.value("gc_raft_storage_db_size_bytes", text) > 0)
            #expect(try Self.value("gc_raft_storage_failed", text) == 0)

            // The counters move with later calls.
            _ = try await node.client.createLease(createRequest(object: "c"))
            let later = try await scrape(node.sidecar.metrics)
            #expect(try Self.value(#"gc_grpc_server_handled_total{\#(service),grpc_method="CreateLease",grpc_code="OK"}"#, later) == 3)
        }
    }

    @Test("node-local counters count what this node served; gc_cluster_* count what the cluster applied")
    func nodeLocalAndClusterCountersDiffer() async throws {
        try await withTestNode { node in
            _ = try await node.client.createLease(createRequest(object: "served"))
            // A write that did not come through this node's API (as a write
            // proposed by another node reaches a follower's state machine).
            _ = try await node.sidecar.store.propose(RaftLeaseStoreTests.create("elsewhere"), origin: nil)
            let text = node.sidecar.metrics.exposition()
            #expect(try Self.value("gc_leases_created_total", text) == 1)
            #expect(try Self.value("gc_cluster_leases_created_total", text) == 2)
            #expect(try Self.value("gc_cluster_leases_active", text) == 2)
        }
    }

    @Test("gc_cluster_expiry_lag_seconds is how long the most overdue lease has waited for the reaper, 0 once reaped")
    func expiryLag() async throws {
        try await withTestNode { node in
            _ = try await node.client.createLease(createRequest(object: "a", duration: 10))
            let fresh = await node.sidecar.metrics.scrape()
            #expect(try Self.value("gc_cluster_expiry_lag_seconds", fresh) == 0)
            node.clock.advance(seconds: 25)
            let overdue = await node.sidecar.metrics.scrape()
            #expect(try Self.value("gc_cluster_expiry_lag_seconds", overdue) == 15)
            try await node.reapAndDispatch()
            let reaped = await node.sidecar.metrics.scrape()
            #expect(try Self.value("gc_cluster_expiry_lag_seconds", reaped) == 0)
            #expect(try Self.value("gc_leases_expired_total", node.sidecar.metrics.exposition()) == 1)
        }
    }

    @Test("a failed Raft log write latches gc_raft_storage_failed and counts in gc_raft_storage_write_failures_total")
    func storageFailure() throws {
        let metrics = SidecarMetrics()
        metrics.storageObserver.committed(.milliseconds(3), .milliseconds(4))
        #expect(try Self.value("gc_raft_storage_fsync_duration_seconds_count", metrics.exposition()) == 1)
        metrics.storageObserver.failed()
        let text = metrics.exposition()
        #expect(try Self.value("gc_raft_storage_failed", text) == 1)
        #expect(try Self.value("gc_raft_storage_write_failures_total", text) == 1)
    }

    @Test("/proc/self/stat is parsed past a command name holding spaces and parentheses")
    func parsesProcStat() throws {
        let line = "4242 (gc sidecar (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 12 0 123456 987654321 2048 18446744073709551615"
        let stat = try #require(ProcessMetrics.parseStat(line))
        #expect(stat == ProcessMetrics.Stat(userTicks: 250, systemTicks: 75, startTicks: 123_456, virtualBytes: 987_654_321, residentPages: 2048))
        #expect(ProcessMetrics.parseStat("garbage") == nil)
    }

    @Test("the build commit is taken only when it looks like one")
    func buildCommit() {
        #expect(BuildInfo.commit(from: "a1b2c3d") == "a1b2c3d")
        #expect(BuildInfo.commit(from: "a1b2c3d-dirty") == "a1b2c3d-dirty")
        #expect(BuildInfo.commit(from: nil) == "unknown")
        #expect(BuildInfo.commit(from: "") == "unknown")
        #expect(BuildInfo.commit(from: #"x"} 1"#) == "unknown")
    }

    @Test("counting one gRPC call costs microseconds at most (two lookups, no new series)")
    func interceptorCostPerCall() {
        let metrics = SidecarMetrics()
        let method = MethodDescriptor(fullyQualifiedService: "distributed_gc.DistributedGCService", method: "RenewLease")
        let calls = 200_000
        let start = ContinuousClock.now
        for i in 0..<calls {
            metrics.grpc.series(for: method).finish(code: i % 50 == 0 ? 5 : 0, since: start)
        }
        let perCall = (ContinuousClock.now - start) / calls
        print("gRPC metrics cost per call: \(perCall)")
        // Generous bound (shared, loaded CI machines): a regression to
        // per-call registration or string building costs far more.
        #expect(perCall < .microseconds(20))
        #expect(metrics.exposition().contains(#"grpc_method="RenewLease",grpc_code="NotFound"} 4000"#))
    }

    // MARK: Helpers

    func scrape(_ metrics: SidecarMetrics) async throws -> String {
        let port = Mutex<Int?>(nil)
        let server = try MetricsHTTPServer(host: "127.0.0.1", port: 0, metrics: metrics, logger: quietLogger) { bound in
            port.withLock { $0 = bound }
        }
        return try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask { try await server.run(); return nil }
            defer { group.cancelAll() }
            let deadline = ContinuousClock.now + .seconds(10)
            while port.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            let bound = try #require(port.withLock { $0 })
            let response = try await HTTPClient.shared.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(bound)/metrics"), timeout: .seconds(10))
            #expect(response.status.code == 200)
            #expect(response.headers.first(name: "content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
            return String(buffer: try await response.body.collect(upTo: 4 << 20))
        }
    }

    static func lines(_ text: String, prefix: String) -> [String] {
        text.split(separator: "\n").filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// The value of the one sample named exactly `series` (name and labels).
    static func value(_ series: String, _ text: String) throws -> Double {
        let values = lines(text, prefix: series + " ").compactMap { Double($0) }
        guard values.count == 1, let value = values.first else {
            throw TestFailure("\(values.count) samples of \(series) in:\n\(text)")
        }
        return value
    }
}
