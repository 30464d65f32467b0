// TEMPORARY (issue 14): a minimal throwaway PostgreSQL for the event tests,
// until the shared `TemporaryPostgres` test support lands; replace every use
// of `withThrowawayPostgres` with it then, and delete this file.
import Foundation
import Logging
import PostgresNIO
import Server

/// A PostgreSQL 15 server in a temporary folder, run as the `postgres`
/// user on a loopback port, trusting every local connection.
struct ThrowawayPostgres {
    static let bin = "/usr/lib/postgresql/15/bin"
    let directory: String
    let port: Int
    let database = "gc"

    /// A client configuration for the test database.
    var configuration: PostgresClient.Configuration {
        var config = PostgresClient.Configuration(
            host: "127.0.0.1", port: port, username: "postgres", password: nil, database: database, tls: .disable)
        config.options.maximumConnections = 40
        return config
    }

    /// Runs `arguments` as the `postgres` user; throws with its output if
    /// it fails. Output goes to a file, not a pipe (the server that
    /// `pg_ctl start` leaves running would hold a pipe open for ever), and
    /// the exit is awaited, not waited for on a thread of the pool.
    static func run(_ arguments: [String], in directory: String) async throws {
        let outputPath = "\(directory)/command.out"
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        defer { try? output.close() }
        let process = Process()
        // Through a shell that first closes every descriptor above 2:
        // Foundation learns that a child exited when a socket it hands the
        // child closes, and the server `pg_ctl start` leaves running would
        // otherwise inherit that socket and keep it open.
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [
            "-c", #"for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; exec "$@""#,
            "bash", "/usr/sbin/runuser", "-u", "postgres", "--",
        ] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        guard status == 0 else {
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            throw TestFailure("\(arguments.joined(separator: " ")) failed: \(text)")
        }
    }

    static func start() async throws -> ThrowawayPostgres {
        guard FileManager.default.isExecutableFile(atPath: "\(bin)/initdb") else {
            throw TestFailure("PostgreSQL 15 is not installed (apt-get install postgresql)")
        }
        let directory = "/tmp/gc-pg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.ownerAccountName: "postgres"], ofItemAtPath: directory)
        do {
            try await run(["\(bin)/initdb", "-D", "\(directory)/data", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"], in: directory)
            var started: ThrowawayPostgres?
            // A random high port; another on the odd collision.
            for attempt in 1...5 where started == nil {
                let port = Int.random(in: 20_000..<60_000)
                do {
                    try await run([
                        "\(bin)/pg_ctl", "-D", "\(directory)/data", "-l", "\(directory)/log", "-w", "-t", "30", "-o",
                        "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start",
                    ], in: directory)
                    started = ThrowawayPostgres(directory: directory, port: port)
                } catch where attempt < 5 {
                    continue
                }
            }
            guard let server = started else { throw TestFailure("could not start PostgreSQL") }
            do {
                try await run(["\(bin)/createdb", "-h", "127.0.0.1", "-p", "\(server.port)", "-U", "postgres", server.database], in: directory)
            } catch {
                await server.stop()
                throw error
            }
            return server
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    func stop() async {
        try? await Self.run(["\(Self.bin)/pg_ctl", "-D", "\(directory)/data", "-m", "immediate", "-w", "stop"], in: directory)
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Starts a throwaway PostgreSQL with the gc schema applied, runs `body`
/// with it and a client of its pool (running), then stops and removes it.
func withThrowawayPostgres(
    _ body: (ThrowawayPostgres, PostgresClient) async throws -> Void
) async throws {
    let server = try await ThrowawayPostgres.start()
    let client = PostgresClient(configuration: server.configuration, backgroundLogger: quietLogger)
    do {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
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

/// Runs `body` with another client of `server` (another sidecar's pool).
func withPostgresClient<T: Sendable>(
    _ server: ThrowawayPostgres, _ body: (PostgresClient) async throws -> T
) async throws -> T {
    let client = PostgresClient(configuration: server.configuration, backgroundLogger: quietLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}
