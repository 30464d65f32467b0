// Test support for the crash test: appends batches to a SQLiteRaftStorage forever and, after
// each `persist` returns, writes the batch's last index as one line to stdout (unbuffered).
// The test SIGKILLs this process at an arbitrary moment and checks that every acknowledged
// index survived with the expected data.
//
// Usage: raft-sqlite-crasher <database-path> [snapshots [kill-after-stage]]
//   snapshots: every 4th batch also takes a snapshot the way the lease store does: stage the
//     bytes (`snapshotPayload(index:)`) as a file, then record it and compact the log
//     (`compact(to:staged:)`); prints `S <index>` once it is recorded.
//   kill-after-stage: SIGKILLs itself right after the third snapshot is staged, before it is
//     recorded (the window where the file exists but no row names it).
// Exit codes: 2 usage, 3 storage error.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Raft
import RaftSQLite

/// Deterministic payload of entry `index`; `CrashTests.payload(index:)` must match it.
func payload(index: UInt64) -> [UInt8] {
    let count = 8 + Int(index % 120)
    return (0..<count).map { UInt8(truncatingIfNeeded: index &* 31 &+ UInt64($0) &* 7) }
}

/// Writes all of `text` to a file descriptor, retrying on short writes and EINTR.
func writeAll(_ text: String, to fd: Int32) -> Bool {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return write(fd, base + offset, buffer.count - offset)
        }
        if written < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += written
    }
    return true
}

/// Deterministic snapshot bytes at `index`; `CrashTests.snapshotPayload(index:)` must match it.
func snapshotPayload(index: UInt64) -> [UInt8] {
    let count = 200_000 + Int(index % 1_000)
    return (0..<count).map { UInt8(truncatingIfNeeded: index &* 13 &+ UInt64($0) &* 3) }
}

func fail(_ message: String, code: Int32) -> Never {
    _ = writeAll("raft-sqlite-crasher: \(message)\n", to: 2)
    exit(code)
}

let arguments = CommandLine.arguments
guard arguments.count >= 2, arguments.count <= 4,
      arguments.count < 3 || arguments[2] == "snapshots",
      arguments.count < 4 || arguments[3] == "kill-after-stage" else {
    fail("usage: raft-sqlite-crasher <database-path> [snapshots [kill-after-stage]]", code: 2)
}
let takesSnapshots = arguments.count >= 3
let killAfterStage = arguments.count == 4

do {
    let storage = try SQLiteRaftStorage(path: arguments[1])
    let state = try storage.load()
    var next = (state.entries.last?.index ?? state.snapshot.metadata.index) + 1
    let batchSizes = [1, 3, 17, 64, 2, 1, 9]
    var round = 0
    while true {
        let size = batchSizes[round % batchSizes.count]
        round += 1
        let entries = (0..<UInt64(size)).map { offset in
            Entry(term: 1, index: next + offset, kind: .normal, data: payload(index: next + offset))
        }
        let last = next + UInt64(size) - 1
        try storage.persist(PersistBatch(hardState: HardState(term: 1, vote: 1, commit: last), entries: entries))
        guard writeAll("\(last)\n", to: 1) else {
            fail("stdout write failed", code: 3)
        }
        next = last + 1
        if takesSnapshots, round % 4 == 0, let stager = storage.snapshotStager {
            let snapshot = Snapshot(metadata: SnapshotMetadata(index: last, term: 1, conf: ConfState(voters: [1])),
                                    data: snapshotPayload(index: last))
            let staged = try stager.stage(index: last, data: snapshot.data)
            if killAfterStage, round / 4 == 3 { kill(getpid(), SIGKILL) }
            try storage.compact(to: snapshot, staged: staged)
            guard writeAll("S \(last)\n", to: 1) else {
                fail("stdout write failed", code: 3)
            }
        }
    }
} catch {
    fail("\(error)", code: 3)
}
