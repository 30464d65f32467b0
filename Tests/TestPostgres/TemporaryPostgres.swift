import Foundation

/// A throwaway PostgreSQL 15 server for tests: its own data folder in the
/// temporary directory, a free loopback port, trust authentication, fsync
/// on, a role `gc` (may create databases) owning the database
/// `distributed_gc`. Made with `scripts/lib/postgres.sh` (Debian's
/// `postgresql` package; `scripts/lib/ensure-deps.sh` installs it).
///
/// ```swift
/// let postgres = try await TemporaryPostgres.start()
/// defer { postgres.remove() }
/// let url = try await postgres.createDatabase()   // a fresh, empty database
/// ```
///
/// ``remove()`` (also run by `deinit`) stops the server and deletes its
/// folder; should the test process die first, the script's watchdog does.
/// Every wait polls `pg_isready` with a deadline; nothing sleeps for luck.
public final class TemporaryPostgres: Sendable {
    /// The server's folder (data, unix socket, log).
    public let directory: String
    /// Its loopback port.
    public let port: Int
    /// `postgresql://gc@127.0.0.1:PORT/distributed_gc`.
    public let url: String

    /// A script step that failed: what ran and what it printed.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private init(directory: String, port: Int, url: String) {
        self.directory = directory
        self.port = port
        self.url = url
    }

    deinit {
        remove()
    }

    /// Starts a new server (a second or two) and returns once it accepts connections.
    ///
    /// - Throws: ``Failure`` when PostgreSQL 15 is missing or does not start
    ///   (its log's tail is in the message).
    public static func start() async throws -> TemporaryPostgres {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("gc-postgres-\(UUID().uuidString.prefix(8))").path
        let output = try await script(["start", directory, "--owner-pid", "\(ProcessInfo.processInfo.processIdentifier)"])
        let url = output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let portText = url.split(separator: ":").last?.split(separator: "/").first, let port = Int(portText) else {
            throw Failure(description: "scripts/lib/postgres.sh start printed no URL: \(output)")
        }
        return TemporaryPostgres(directory: directory, port: port, url: url)
    }

    /// The test process's shared server: started by the first caller (every
    /// later one waits for that start and gets the same server), never
    /// removed by a test, gone when the process exits (the script's
    /// watchdog). For tests that only need databases of their own
    /// (``createDatabase(_:)``); a test that stops, restarts or reconfigures
    /// its server must ``start()`` one for itself. A start that failed fails
    /// every caller the same way.
    ///
    /// It runs with `synchronous_commit = off`: a commit returns before its
    /// WAL reaches the disk (fsync stays on, so a crash could lose the last
    /// moments' commits but never corrupts). Nothing crashes this server and
    /// nothing outlives the process; what clients see of commits is
    /// unchanged, and the many small transactions of tests running in
    /// parallel no longer queue for WAL flushes.
    public static func shared() async throws -> TemporaryPostgres {
        try await sharedServer.value
    }

    private static let sharedServer = Task {
        let server = try await TemporaryPostgres.start()
        try await server.psql("ALTER SYSTEM SET synchronous_commit = off")
        try await server.psql("SELECT pg_reload_conf()")
        return server
    }

    /// `url` for another database on this server.
    public func url(database: String, user: String = "gc") -> String {
        "postgresql://\(user)@127.0.0.1:\(port)/\(database)"
    }

    /// Creates an empty database owned by `gc` and returns its URL: one per
    /// test keeps tests on a shared server apart.
    public func createDatabase(_ name: String = "gc_test_\(UUID().uuidString.prefix(8).lowercased())") async throws -> String {
        _ = try await psql("CREATE DATABASE \(name) OWNER gc")
        return url(database: name)
    }

    /// Runs SQL as the superuser (over the unix socket) in `database`;
    /// returns the rows unaligned, one per line, fields separated by `|`.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") async throws -> String {
        try await Self.script(["psql", directory, "-d", database, "-A", "-t", "-c", sql])
    }

    /// `pg_ctl restart -m immediate`: the server is killed without a
    /// checkpoint (connections drop, as in a crash) and started again on the
    /// same port; returns once it accepts connections after recovery.
    public func restartImmediately() async throws {
        _ = try await Self.script(["restart", directory])
    }

    /// Stops the server at once (`-m immediate`), keeping its data and port.
    public func stop() async throws {
        _ = try await Self.script(["stop", directory])
    }

    /// Starts a stopped server again on the same port.
    public func startAgain() async throws {
        _ = try await Self.script(["start", directory])
    }

    /// Turns TLS on (a reload, no restart): the server presents
    /// `certificateFile` (PEM chain) with `keyFile`; clients may still connect
    /// without TLS. Returns once new connections see `ssl = on`.
    public func enableTLS(certificateFile: String, keyFile: String) async throws {
        let certificate = "\(directory)/server.crt"
        let key = "\(directory)/server.key"
        let files = FileManager.default
        for (from, to) in [(certificateFile, certificate), (keyFile, key)] {
            try? files.removeItem(atPath: to)
            try files.copyItem(atPath: from, toPath: to)
            if getuid() == 0 {
                try files.setAttributes([.ownerAccountName: "postgres"], ofItemAtPath: to)
            }
        }
        try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
        try await psql("ALTER SYSTEM SET ssl_cert_file = '\(certificate)'")
        try await psql("ALTER SYSTEM SET ssl_key_file = '\(key)'")
        try await psql("ALTER SYSTEM SET ssl = on")
        try await psql("SELECT pg_reload_conf()")
        let deadline = ContinuousClock.now + .seconds(30)
        while try await psql("SHOW ssl").trimmingCharacters(in: .whitespacesAndNewlines) != "on" {
            guard ContinuousClock.now < deadline else {
                throw Failure(description: "ssl is still off 30 s after pg_reload_conf(); see \(directory)/postgres.log")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Stops the server and removes its folder (idempotent; waits for it).
    public func remove() {
        guard FileManager.default.fileExists(atPath: directory) else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Self.scriptPath, "destroy", directory]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return }
        process.waitUntilExit()
    }

    /// `scripts/lib/postgres.sh` of this checkout.
    public static let scriptPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/lib/postgres.sh").path

    /// Runs the script without blocking a thread of the concurrency pool;
    /// output goes through files (a server inheriting a pipe could hold it open).
    private static func script(_ arguments: [String]) async throws -> String {
        let outputs = FileManager.default.temporaryDirectory.appendingPathComponent("gc-postgres-out-\(UUID().uuidString)")
        let stdoutPath = outputs.path + ".out"
        let stderrPath = outputs.path + ".err"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: stdoutPath)
            try? FileManager.default.removeItem(atPath: stderrPath)
        }
        let stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        let stderr = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [scriptPath] + arguments
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: Failure(description: "cannot run \(scriptPath): \(error)"))
            }
        }
        try? stdout.close()
        try? stderr.close()
        let out = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let err = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            throw Failure(description: "scripts/lib/postgres.sh \(arguments.prefix(2).joined(separator: " ")) failed (exit \(status)): \(err)\(out)")
        }
        return out
    }
}
