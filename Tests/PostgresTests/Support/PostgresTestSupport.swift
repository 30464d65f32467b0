import Foundation
import Logging
import PostgresNIO
@testable import Server
import Synchronization
import TestPostgres
import Testing

/// The test process's shared server (``TemporaryPostgres/shared()``, the
/// one ServerTests' PostgreSQL tests use too) for the suites that only need
/// databases (each test makes its own with `createDatabase()`); the tests
/// that stop or restart a server start their own.
enum SharedPostgres {
    static func get() async throws -> TemporaryPostgres {
        try await TemporaryPostgres.shared()
    }

    /// A fresh, empty database on the shared server, parsed.
    static func freshDatabase() async throws -> DatabaseURL {
        try DatabaseURL(parsing: try await get().createDatabase() + "?sslmode=disable")
    }
}

/// A test that outlived its deadline.
struct DeadlineExceeded: Error, CustomStringConvertible {
    var what: String
    var description: String { "\(what) did not finish in time" }
}

/// Runs `body`, failing with ``DeadlineExceeded`` (and cancelling it) after `seconds`.
func withDeadline<T: Sendable>(_ seconds: Int, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw DeadlineExceeded(what: what)
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw DeadlineExceeded(what: what) }
        return first
    }
}

/// Polls `condition` every 20 ms until it holds, failing after `seconds`.
func waitUntil(_ seconds: Int, _ what: String, _ condition: @Sendable () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw DeadlineExceeded(what: what) }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// Runs one query on a fresh connection and returns the first column of
/// every row as text.
func queryTexts(_ database: DatabaseURL, _ sql: String) async throws -> [String] {
    let logger = Logger(label: "test")
    return try await database.withConnection(logger: logger) { connection in
        var values: [String] = []
        for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(String.self) {
            values.append(value)
        }
        return values
    }
}

/// Keeps every log record, for tests of what is logged (and how often).
final class CapturedLogs: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let records = Mutex<[Record]>([])

    var all: [Record] { records.withLock { $0 } }

    func logger(_ label: String = "test") -> Logger {
        Logger(label: label) { _ in Handler(sink: self) }
    }

    fileprivate func append(_ record: Record) {
        records.withLock { $0.append(record) }
    }

    struct Handler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
            sink.append(Record(level: event.level, message: "\(event.message)",
                               metadata: merged.mapValues { "\($0)" }))
        }
    }
}

/// The real `gc-sidecar` binary (built beside the tests, or in `GC_TEST_BIN_DIR`).
enum SidecarBinary {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path() throws -> String {
        if let dir = ProcessInfo.processInfo.environment["GC_TEST_BIN_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir).appendingPathComponent("gc-sidecar").path
        }
        var candidates: [String] = []
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("gc-sidecar").path)
            dir.deleteLastPathComponent()
        }
        candidates.append(root.appendingPathComponent(".build/debug/gc-sidecar").path)
        return try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
                            "gc-sidecar not built (looked in \(candidates)); run swift build --product gc-sidecar")
    }

    /// Runs gc-sidecar with `arguments` and only `environment` (plus PATH),
    /// without blocking a thread of the concurrency pool; fails after 60 s.
    static func run(_ arguments: [String], environment: [String: String]) async throws -> Result {
        let binary = try path()
        return try await withDeadline(60, "gc-sidecar \(arguments.joined(separator: " "))") {
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("gc-sidecar-run-\(UUID().uuidString)").path
            _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
            _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
            defer {
                try? FileManager.default.removeItem(atPath: base + ".out")
                try? FileManager.default.removeItem(atPath: base + ".err")
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
            process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { a, _ in a }
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
            process.standardInput = FileHandle.nullDevice
            let status: Int32 = try await withCheckedThrowingContinuation { continuation in
                process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
                do {
                    try process.run()
                } catch {
                    process.terminationHandler = nil
                    continuation.resume(throwing: error)
                }
            }
            return Result(status: status,
                          stdout: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
                          stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
        }
    }
}
