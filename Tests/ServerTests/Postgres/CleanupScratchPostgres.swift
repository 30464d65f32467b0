// TEMPORARY (issue 14): a minimal throwaway PostgreSQL for the postgres-mode
// cleanup tests, until the shared `TemporaryPostgres` test support lands;
// replace `withScratchPostgres` with it then, and delete this file.
import Foundation
import Logging
import PostgresNIO
import Server

/// A PostgreSQL 15 server in a temporary folder, run as the `postgres`
/// user on a loopback port, trusting local connections, with the gc schema
/// applied to its database `gc`.
struct CleanupScratchPostgres: Sendable {
    static let bin = "/usr/lib/postgresql/15/bin"
    let directory: String
    let port: Int

    /// A client configuration for the test database.
    var configuration: PostgresClient.Configuration {
        var config = PostgresClient.Configuration(
            host: "127.0.0.1", port: port, username: "postgres", password: nil, database: "gc", tls: .disable)
        config.options.maximumConnections = 20
        return config
    }

    /// Runs a PostgreSQL tool as the `postgres` user without blocking a
    /// thread; throws with its output if it fails.
    ///
    /// The tool runs with only stdin, stdout and stderr open: Foundation's
    /// `Process` on Linux learns that a child exited when a socket the child
    /// inherited closes, and a server started by `pg_ctl` would otherwise
    /// hold it (and any other descriptor of this process) for as long as it runs.
    static func run(_ arguments: [String]) async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("gc-scratch-pg-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let output = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        let closeInherited = #"for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi; done"#
        process.arguments = ["-c", "(\(closeInherited); exec /usr/sbin/runuser -u postgres -- \"$@\")", "bash"] + arguments
        process.standardOutput = output
        process.standardError = output
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
        try? output.close()
        guard status == 0 else {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw TestFailure("\(arguments.prefix(2).joined(separator: " ")) failed (exit \(status)): \(text)")
        }
    }

    static func start() async throws -> CleanupScratchPostgres {
        guard FileManager.default.isExecutableFile(atPath: "\(bin)/initdb") else {
            throw TestFailure("PostgreSQL 15 is not installed (apt-get install postgresql)")
        }
        let directory = "/tmp/gc-scratch-pg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let chown = Process()
        chown.executableURL = URL(fileURLWithPath: "/bin/chown")
        chown.arguments = ["postgres", directory]
        try chown.run()
        chown.waitUntilExit()
        try await run(["\(bin)/initdb", "-D", "\(directory)/data", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        var lastError: (any Error)?
        for _ in 0..<5 {  // another random port on the odd collision
            let port = Int.random(in: 20_000..<60_000)
            do {
                try await run([
                    "\(bin)/pg_ctl", "-D", "\(directory)/data", "-l", "\(directory)/log", "-w", "-t", "30", "-o",
                    "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", "start",
                ])
                try await run(["\(bin)/createdb", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "gc"])
                return CleanupScratchPostgres(directory: directory, port: port)
            } catch {
                lastError = error
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw lastError ?? TestFailure("could not start PostgreSQL")
    }

    func stop() async {
        try? await Self.run(["\(Self.bin)/pg_ctl", "-D", "\(directory)/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Starts a scratch PostgreSQL with the gc schema applied, runs `body` with
/// it and a running client of its pool, then stops and removes it.
func withScratchPostgres(_ body: (CleanupScratchPostgres, PostgresClient) async throws -> Void) async throws {
    let server = try await CleanupScratchPostgres.start()
    do {
        try await withScratchClient(server) { client in
            for migration in PostgresSchema.migrations {
                for statement in migration.sql {
                    try await client.query(PostgresQuery(unsafeSQL: statement), logger: quietLogger)
                }
            }
            try await body(server, client)
        }
    } catch {
        await server.stop()
        throw error
    }
    await server.stop()
}

/// Runs `body` with another running client of `server` (another sidecar's pool).
func withScratchClient<T: Sendable>(_ server: CleanupScratchPostgres, _ body: (PostgresClient) async throws -> T) async throws -> T {
    let client = PostgresClient(configuration: server.configuration, backgroundLogger: quietLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}
