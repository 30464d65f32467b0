// Test support for the crash test: appends batches to a SQLiteRaftStorage forever and, after
// each `persist` returns, writes the batch's last index as one line to stdout (unbuffered).
// The test SIGKILLs this process at an arbitrary moment and checks that every acknowledged
// index survived with the expected data.
//
// Usage: raft-sqlite-crasher <database-path>
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

func fail(_ message: String, code: Int32) -> Never {
    _ = writeAll("raft-sqlite-crasher: \(message)\n", to: 2)
    exit(code)
}

let arguments = CommandLine.arguments
guard arguments.count == 2 else {
    fail("usage: raft-sqlite-crasher <database-path>", code: 2)
}

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
    }
} catch {
    fail("\(error)", code: 3)
}
