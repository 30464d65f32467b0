import Foundation
import LeaseFSM
import Raft
import RaftSQLite
import Server
import Testing

/// Not a test of behaviour: measures how long a node with many leases takes
/// to restart (open SQLite, restore the snapshot, re-apply the log after it)
/// until it answers a linearizable read. Runs only with
/// `GC_MEASURE_RESTART=<lease count>`, e.g.
/// `GC_MEASURE_RESTART=100000 swift test --filter RestartMeasurement`.
@Suite("Restart measurement")
struct RestartMeasurement {
    @Test("restart time with many leases (manual)")
    func restartTime() async throws {
        guard let text = ProcessInfo.processInfo.environment["GC_MEASURE_RESTART"], let count = Int(text), count > 0 else { return }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("restart-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/raft.sqlite"
        let clock = ManualWallClock()
        let fill = ContinuousClock.now
        do {
            let store = try RaftLeaseStore(storage: try SQLiteRaftStorage(path: path), limits: LeaseLimits(), clock: clock, logger: quietLogger)
            for batch in stride(from: 0, to: count, by: 500) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in batch..<min(count, batch + 500) {
                        group.addTask {
                            _ = try await store.propose(.create(.init(
                                leaseIDSuffix: String(i, radix: 16), object: ObjectKey(type: .databaseRow, id: "row-\(i)"),
                                serviceID: "svc-\(i % 100)", durationSeconds: 3600, metadata: ["owner": "job-\(i)"],
                                cleanup: CleanupSpec(httpEndpoint: "http://cleanup:8080/x", grpcEndpoint: "", payload: "", maxRetries: 3, retryDelaySeconds: 5))))
                        }
                    }
                    try await group.waitForAll()
                }
            }
            await store.settleSnapshots()
            await store.withStorage { ($0 as? SQLiteRaftStorage)?.close() }
        }
        let filled = ContinuousClock.now - fill
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let start = ContinuousClock.now
        let store = try RaftLeaseStore(storage: try SQLiteRaftStorage(path: path), limits: LeaseLimits(), clock: clock, logger: quietLogger)
        let active = try await store.read(.linearizable) { $0.activeLeaseCount }
        let restart = ContinuousClock.now - start
        print("restart measurement: \(active) leases; filled in \(filled); database \(bytes / 1_000_000) MB; restart to first linearizable read: \(restart)")
        #expect(active == count)
    }
}
