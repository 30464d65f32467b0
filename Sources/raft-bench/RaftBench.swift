import Foundation
import Raft
import RaftSQLite

/// `raft-bench`: commits/s and commit latency of a three-node Raft cluster
/// running in this process, with SQLite (fsync'd) or in-memory storage, at
/// several numbers of concurrent proposers.
///
/// A proposer is closed-loop: it proposes one entry, waits until the leader
/// has applied it, then proposes the next, so "N proposers" keeps N entries
/// in flight. The three nodes are driven by one thread in rounds (persist each
/// node's `Ready`, deliver the messages, apply), so the fsyncs of different
/// nodes are serialized: a deployment with one process per node overlaps
/// them and does better at low concurrency. Group commit is what the numbers
/// show: every `Ready` is one transaction and one fsync, however many entries
/// it holds.
///
///     swift run -c release raft-bench [--seconds 5] [--proposers 1,16,256] [--storage sqlite,memory] [--payload 128]
@main
struct RaftBench {
    static func main() throws {
        let options = try Options(CommandLine.arguments.dropFirst())
        print("raft-bench: 3 voters in one process, \(options.payload)-byte entries, \(options.seconds) s per run")
        print("storage  proposers  commits  commits/s  p50 ms  p99 ms  fsyncs/commit")
        for storage in options.storages {
            for proposers in options.proposers {
                let result = try run(storage: storage, proposers: proposers, options: options)
                print(result.row)
            }
        }
    }

    static func run(storage kind: StorageKind, proposers: Int, options: Options) throws -> RunResult {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("raft-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        var cluster = try BenchCluster(storage: kind, directory: directory)
        try cluster.electLeader(1)
        let payload = [UInt8](repeating: 0xAB, count: options.payload)
        var inFlight: [UInt64: ContinuousClock.Instant] = [:]
        var latencies: [Duration] = []
        latencies.reserveCapacity(1 << 16)
        let clock = ContinuousClock()
        let start = clock.now
        let end = start.advanced(by: .seconds(options.seconds))
        var lastTick = start
        let persistsBefore = cluster.persistCount
        while clock.now < end {
            while inFlight.count < proposers {
                let position = try cluster.propose(payload)
                inFlight[position.index] = clock.now
            }
            let applied = try cluster.round()
            let now = clock.now
            for index in applied {
                if let started = inFlight.removeValue(forKey: index) { latencies.append(now - started) }
            }
            if now - lastTick >= .milliseconds(10) {
                cluster.tick()
                lastTick = now
            }
        }
        let elapsed = clock.now - start
        return RunResult(
            storage: kind, proposers: proposers, commits: latencies.count, elapsed: elapsed,
            latencies: latencies, persists: cluster.persistCount - persistsBefore)
    }
}

enum StorageKind: String {
    case sqlite
    case memory
}

struct RunResult {
    var storage: StorageKind
    var proposers: Int
    var commits: Int
    var elapsed: Duration
    var latencies: [Duration]
    var persists: Int

    var row: String {
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> String {
            guard !sorted.isEmpty else { return "-" }
            let value = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
            return String(format: "%.2f", Double(value.components.attoseconds) / 1e15 + Double(value.components.seconds) * 1000)
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = Double(commits) / seconds
        let fsyncs = commits == 0 ? 0 : Double(persists) / Double(commits)
        return "\(storage.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0))  \(String(proposers).leftPad(9))  \(String(commits).leftPad(7))  \(String(format: "%9.0f", rate))  \(percentile(0.50).leftPad(6))  \(percentile(0.99).leftPad(6))  \(String(format: "%13.2f", fsyncs))"
    }
}

extension String {
    func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

struct Options {
    var seconds = 5
    var proposers = [1, 16, 256]
    var storages: [StorageKind] = [.sqlite, .memory]
    var payload = 128

    init(_ arguments: ArraySlice<String>) throws {
        var iterator = arguments.makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { throw BenchError("\(flag) needs a value") }
            switch flag {
            case "--seconds":
                guard let n = Int(value), n > 0 else { throw BenchError("--seconds must be a positive integer") }
                seconds = n
            case "--proposers":
                proposers = try value.split(separator: ",").map {
                    guard let n = Int($0), n > 0 else { throw BenchError("--proposers must be positive integers, e.g. 1,16,256") }
                    return n
                }
            case "--storage":
                storages = try value.split(separator: ",").map {
                    guard let kind = StorageKind(rawValue: String($0)) else { throw BenchError("--storage takes sqlite and/or memory") }
                    return kind
                }
            case "--payload":
                guard let n = Int(value), n >= 0 else { throw BenchError("--payload must be a byte count") }
                payload = n
            default:
                throw BenchError("unknown option \(flag); options: --seconds N --proposers 1,16,256 --storage sqlite,memory --payload BYTES")
            }
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
