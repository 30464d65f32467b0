import Foundation
import Raft
import RaftSQLite
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Like ``CrashTests``, with snapshot files: the writer also stages snapshots as files and
/// records them (`compact(to:staged:)`), and is killed at arbitrary moments and right between
/// staging and recording. Every kill must leave either the old snapshot and its whole log or
/// the new snapshot and the compacted log, never neither, and no acknowledged entry lost.
@Suite struct CrashSnapshotTests {
    /// Must match `snapshotPayload(index:)` in Sources/raft-sqlite-crasher/main.swift.
    static func snapshotPayload(index: UInt64) -> [UInt8] {
        let count = 200_000 + Int(index % 1_000)
        return (0..<count).map { UInt8(truncatingIfNeeded: index &* 13 &+ UInt64($0) &* 3) }
    }

    @Test(.timeLimit(.minutes(2)))
    func killDuringSnapshotFilesLosesNeitherSnapshotNorLog() throws {
        let crasher = try #require(CrashTests.crasherURL(), "raft-sqlite-crasher not found next to the test binary; set RAFT_SQLITE_CRASHER")
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            var acked: [UInt64] = []
            // Rounds 0-3: killed from outside after some acks (snapshots are staged and recorded
            // all the time, so kills land in every step); round 4: killed itself right after
            // staging, before recording.
            let rounds = 5
            for round in 0..<rounds {
                let selfKill = round == rounds - 1
                let process = Process()
                process.executableURL = crasher
                process.arguments = [path, "snapshots"] + (selfKill ? ["kill-after-stage"] : [])
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                try? output.fileHandleForWriting.close()
                var reader = CrashTests.AckReader(fd: output.fileHandleForReading.fileDescriptor)
                let wanted = selfKill ? Int.max : 11 + 7 * round
                var seen = 0
                let deadline = ContinuousClock.now + .seconds(30)
                while seen < wanted, !reader.reachedEOF, ContinuousClock.now < deadline {
                    let acks = reader.read(timeoutMilliseconds: 100)
                    acked.append(contentsOf: acks)
                    seen += acks.count
                }
                if !selfKill { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
                let drainDeadline = ContinuousClock.now + .seconds(5)
                while !reader.reachedEOF, ContinuousClock.now < drainDeadline {
                    acked.append(contentsOf: reader.read(timeoutMilliseconds: 100))
                }
                #expect(process.terminationReason == .uncaughtSignal,
                        "round \(round): crasher exited by itself with status \(process.terminationStatus)")
                // Every round must reopen cleanly (the next round's crasher loads it too).
                let state = try openStorage(path).load()
                try Self.verify(state, highestAcked: acked.last ?? 0, round: round)
            }
            #expect(acked == acked.sorted() && Set(acked).count == acked.count, "acks must strictly increase")
            let state = try openStorage(path).load()
            #expect(!state.snapshot.isEmpty, "the writer took snapshots")
            let files = try FileManager.default.contentsOfDirectory(atPath: path + ".snapshots")
            #expect(files.count == 1, "only the recorded snapshot file remains after opening: \(files)")
            print("snapshot crash test: \(rounds) kills, highest acked \(acked.last ?? 0), snapshot at \(state.snapshot.metadata.index)")
        }
    }

    /// The snapshot (if any) has the bytes written for its index, the log continues right after
    /// it, and the log reaches at least the highest acknowledged index.
    static func verify(_ state: PersistedState, highestAcked: UInt64, round: Int) throws {
        let snapshotIndex = state.snapshot.metadata.index
        if !state.snapshot.isEmpty {
            #expect(state.snapshot.data == snapshotPayload(index: snapshotIndex), "round \(round): snapshot \(snapshotIndex) has wrong bytes")
        }
        for (offset, entry) in state.entries.enumerated() {
            #expect(entry.index == snapshotIndex + UInt64(offset) + 1, "round \(round): log does not follow the snapshot")
            #expect(entry.data == CrashTests.payload(index: entry.index), "round \(round): entry \(entry.index) has wrong data")
        }
        let lastIndex = state.entries.last?.index ?? snapshotIndex
        #expect(lastIndex >= highestAcked, "round \(round): acknowledged \(highestAcked) but the log ends at \(lastIndex)")
    }
}
