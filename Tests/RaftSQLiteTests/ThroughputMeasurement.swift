import Foundation
import Raft
import RaftSQLite
import Testing

/// Manual measurement, not a test: durable single-entry transactions vs 256-entry batches.
///
///     RAFT_SQLITE_MEASURE=1 swift test -c release --filter ThroughputMeasurement
@Suite struct ThroughputMeasurement {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["RAFT_SQLITE_MEASURE"] == "1"))
    func singleEntryVersusBatchedCommits() throws {
        let payload = [UInt8](repeating: 0xAB, count: 128)
        for synchronous in [SQLiteRaftStorageOptions.Synchronous.full, .normal] {
            try withTemporaryDirectory { directory in
                let storage = try openStorage(databasePath(in: directory), synchronous: synchronous)
                let clock = ContinuousClock()

                let singles = 3000
                var next: UInt64 = 1
                let singleTime = try clock.measure {
                    for _ in 0..<singles {
                        try storage.persist(PersistBatch(hardState: HardState(term: 1, vote: 1, commit: next),
                                                         entries: [Entry(term: 1, index: next, data: payload)]))
                        next += 1
                    }
                }

                let batches = 300
                let batchSize: UInt64 = 256
                let batchTime = try clock.measure {
                    for _ in 0..<batches {
                        let entries = (0..<batchSize).map { Entry(term: 1, index: next + $0, data: payload) }
                        try storage.persist(PersistBatch(hardState: HardState(term: 1, vote: 1, commit: next + batchSize - 1),
                                                         entries: entries))
                        next += batchSize
                    }
                }
                let singleRate = Double(singles) / seconds(singleTime)
                let batchRate = Double(batches) / seconds(batchTime)
                print("""
                    [measure] synchronous=\(synchronous) payload=128B
                      1-entry transactions:   \(singles) in \(singleTime): \(Int(singleRate)) tx/s = \(Int(singleRate)) entries/s
                      256-entry transactions: \(batches) in \(batchTime): \(Int(batchRate)) tx/s = \(Int(batchRate * Double(batchSize))) entries/s
                    """)
            }
        }
    }

    private func seconds(_ duration: Duration) -> Double {
        let (whole, attoseconds) = duration.components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
