import Foundation
import Raft
import RaftSQLite
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// SIGKILLs a writer process (`raft-sqlite-crasher`) at arbitrary moments and checks that every
/// index it acknowledged (printed after `persist` returned) is still there, intact.
@Suite struct CrashTests {
    /// Must match `payload(index:)` in Sources/raft-sqlite-crasher/main.swift.
    static func payload(index: UInt64) -> [UInt8] {
        let count = 8 + Int(index % 120)
        return (0..<count).map { UInt8(truncatingIfNeeded: index &* 31 &+ UInt64($0) &* 7) }
    }

    /// The crasher binary: `$RAFT_SQLITE_CRASHER`, or next to the test bundle in the build
    /// directory (`swift test` builds all targets).
    static func crasherURL() -> URL? {
        let fileManager = FileManager.default
        if let override = ProcessInfo.processInfo.environment["RAFT_SQLITE_CRASHER"] {
            return URL(fileURLWithPath: override)
        }
        let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        var directory = executable.resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = directory.appendingPathComponent("raft-sqlite-crasher")
            if fileManager.isExecutableFile(atPath: candidate.path) {
                return candidate
            }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    /// Reads newline-terminated decimal numbers from a pipe with `poll(2)` and a timeout, so
    /// the test never blocks unboundedly.
    struct AckReader {
        let fd: Int32
        var pending: [UInt8] = []
        var reachedEOF = false

        /// Waits up to `timeoutMilliseconds` for data and returns the complete lines read.
        mutating func read(timeoutMilliseconds: Int32) -> [UInt64] {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, timeoutMilliseconds)
            guard ready > 0 else { return [] }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count <= 0 {
                if count == 0 || errno != EINTR { reachedEOF = true }
                return []
            }
            pending.append(contentsOf: buffer[0..<count])
            var acks: [UInt64] = []
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if let value = UInt64(line) { acks.append(value) }
            }
            return acks
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func killMidWriteLosesNoAcknowledgedEntry() throws {
        let crasher = try #require(Self.crasherURL(), "raft-sqlite-crasher not found next to the test binary; set RAFT_SQLITE_CRASHER")
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            var acked: [UInt64] = []
            let rounds = 4
            for round in 0..<rounds {
                let process = Process()
                process.executableURL = crasher
                process.arguments = [path]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                try? output.fileHandleForWriting.close()
                var reader = AckReader(fd: output.fileHandleForReading.fileDescriptor)

                // Kill after a round-dependent number of acknowledged batches, right after seeing
                // the last one: the writer is then almost certainly inside a transaction.
                let wanted = 25 + 17 * round
                var seen = 0
                let deadline = ContinuousClock.now + .seconds(30)
                while seen < wanted, !reader.reachedEOF, ContinuousClock.now < deadline {
                    let acks = reader.read(timeoutMilliseconds: 100)
                    acked.append(contentsOf: acks)
                    seen += acks.count
                }
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                // Acks written before the kill are still in the pipe: they count too.
                let drainDeadline = ContinuousClock.now + .seconds(5)
                while !reader.reachedEOF, ContinuousClock.now < drainDeadline {
                    acked.append(contentsOf: reader.read(timeoutMilliseconds: 100))
                }
                #expect(seen >= wanted, "round \(round): only \(seen) acks before the deadline")
                #expect(process.terminationReason == .uncaughtSignal,
                        "round \(round): crasher exited by itself with status \(process.terminationStatus)")
            }

            #expect(acked == acked.sorted() && Set(acked).count == acked.count, "acks must strictly increase")
            let highest = try #require(acked.last)
            let state = try openStorage(path).load() // verifies every checksum and contiguity
            let lastIndex = state.entries.last?.index ?? 0
            #expect(lastIndex >= highest, "acknowledged \(highest) but the log ends at \(lastIndex)")
            #expect(state.hardState.commit >= highest)
            #expect(state.snapshot.isEmpty)
            for (offset, entry) in state.entries.enumerated() {
                #expect(entry.index == UInt64(offset) + 1)
                #expect(entry.term == 1)
                #expect(entry.data == Self.payload(index: entry.index), "entry \(entry.index) has wrong data")
            }
            print("crash test: \(rounds) kills, \(acked.count) acked batches, highest acked index \(highest), log ends at \(lastIndex)")
        }
    }
}
