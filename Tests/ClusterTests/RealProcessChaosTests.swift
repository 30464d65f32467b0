import ChaosCheck
import Foundation
import GCProto
import GRPCCore
import Synchronization
import Testing

/// Three real `gc-sidecar` processes under load while the leader and a
/// follower are killed (`kill -9`) and paused (`SIGSTOP`/`SIGCONT`) in turn;
/// the recorded history goes through the same checkers as the in-process
/// harness (all but the leadership-check one, which needs the nodes' insides).
@Suite(.serialized) struct RealProcessChaosTests {
    static let rounds = ProcessInfo.processInfo.environment["CHAOS_PROCESS_ROUNDS"].flatMap(Int.init) ?? 8

    @Test func killAndPauseLeaderAndFollowerUnderLoad() async throws {
        let recorder = HistoryRecorder(now: hostMilliseconds)
        let sink = CleanupSink(recorder: recorder)
        try await sink.run { url in
            let base = String(url.dropLast("cleanup".count))
            // No circuit breaker (as in the in-process harness): /flaky fails
            // every cleanup's first attempt, so a burst of expiries opens it,
            // and each half-open probe is another first attempt; the cleanups
            // would then trickle out one per cooldown and the cluster could not
            // settle in time. The breaker has its own tests (CleanupLimitsTests).
            try await withProcessCluster(environment: ["GC_LOG_LEVEL": "warning", "GC_CLEANUP_BREAKER_FAILURES": "0"]) { cluster in
                try await cluster.waitForLeader()
                let startedAt = hostMilliseconds()
                let workload = ProcessWorkload(cluster: cluster, recorder: recorder, endpoints: [base + "cleanup", base + "flaky"])
                var faults: [String] = []
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<4 { group.addTask { await workload.client(index) } }
                    for round in 0..<Self.rounds {
                        try await Task.sleep(for: .milliseconds(1500))
                        let leader = try await cluster.waitForLeader()
                        let victim = round % 2 == 0 ? leader : (leader + 1 + round / 2 % 2) % cluster.nodes.count
                        let node = cluster.nodes[victim]
                        let role = victim == leader ? "leader" : "follower"
                        if round % 4 < 2 {
                            faults.append("kill -9 \(role) \(node.name)")
                            node.kill9()
                            try await Task.sleep(for: .milliseconds(1500))
                            try node.start()
                        } else {
                            faults.append("SIGSTOP \(role) \(node.name)")
                            node.pause()
                            try await Task.sleep(for: .milliseconds(2000))
                            node.resume()
                        }
                    }
                    workload.stopped.withLock { $0 = true }
                    try await group.waitForAll()
                }
                let healedAt = hostMilliseconds()
                // Settle: every lease ends (holders stopped renewing) and every
                // cleanup finishes.
                let leader = try await cluster.waitForLeader()
                let settled = try await cluster.eventually("the cluster to settle", timeout: .seconds(45)) { () -> [DistributedGc_LeaseInfo]? in
                    let leases = try await listAll(cluster, via: leader)
                    // Not ended (ended_at unset: active, or past its expiry
                    // but not reaped yet) or a cleanup still to deliver.
                    let busy = leases.contains { !$0.hasEndedAt || $0.cleanupState == .cleanupPending }
                    return busy ? nil : leases
                }
                for lease in workload.known.withLock({ $0 }) {
                    await workload.get(lease.id, object: lease.object, linearizable: true, via: leader, client: -1)
                }
                let final = finalState(settled, deliveries: recorder.deliveries)
                // Every fault happened between the first and the heal. Leases
                // due after the heal are reaped within 10 s: the cleanup interval
                // (1 s) and a new leader's hold-off, with room for a loaded
                // machine; a reaper that stopped never reaps them at all.
                let bounds = CheckBounds(clockErrorMs: 50, graceMs: 0, expiryLatencyMs: 10_000, disturbances: [startedAt...healedAt],
                                         deliveriesCarryConfirmation: false)
                let report = HistoryChecker(bounds: bounds).check(
                    operations: recorder.operations, deliveries: recorder.deliveries, leaders: [], final: final,
                    settledAtMs: hostMilliseconds())
                let operations = recorder.operations.filter { $0.client >= 0 }
                let acknowledged = operations.filter { if case .ok = $0.outcome { true } else { false } }.count
                print("real-process chaos: \(operations.count) operations (\(acknowledged) ok), \(recorder.deliveries.count) cleanup deliveries, faults: \(faults.joined(separator: ", "))")
                #expect(acknowledged > 40, "the workload made too little progress to mean anything")
                #expect(recorder.deliveries.count > 5, "too few cleanups were delivered to mean anything")
                #expect(report.passed, "\(report.violations.prefix(10).map(\.description).joined(separator: "\n"))\n\(cluster.logs())")
            }
        }
    }
}
