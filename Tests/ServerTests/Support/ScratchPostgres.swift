import Foundation
import Logging
import Glibc
import PostgresNIO
import Server

/// A throwaway PostgreSQL 15 server for the lease-store contract tests: one
/// per test process, started on first use, each test in its own database.
///
/// TO BE REPLACED by `TemporaryPostgres` (the TestPostgres target, helper
/// `pginfra`) once it is merged: same idea, with a script and a watchdog of
/// its own. Until then this is the minimum: `initdb -A trust` in a temporary
/// folder (as the `postgres` user when the tests run as root), `pg_ctl
/// start` on a free loopback port with its unix socket in that folder,
/// `pg_isready` polled with a deadline, and `fsync=off` (nothing here needs
/// durability: the server dies with the test process).
///
/// Removal: a watchdog shell started with the server waits for the test
/// process to exit (however it exits), then stops the server (`-m
/// immediate`) and deletes the folder.
final class ScratchPostgres: Sendable {
    /// The server's folder: `data/`, the unix socket, `postgres.log`.
    let directory: String
    let port: Int

    /// A script or server step that failed, with what it printed.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let binaries = "/usr/lib/postgresql/15/bin"

    private init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
    }

    /// The test process's server, started (once) by the first caller.
    static func shared() async throws -> ScratchPostgres {
        try await sharedServer.value
    }

    private static let sharedServer = Task { try await ScratchPostgres.start() }

    /// A fresh database `gc_<random>` on the shared server with the schema
    /// applied (`PostgresSchema.migrations`, by hand until the migrator lands).
    static func freshDatabase() async throws -> (server: ScratchPostgres, database: String) {
        let server = try await shared()
        let name = "gc_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        try await server.withConnection(database: "postgres") { connection in
            _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Self.silent)
        }
        try await server.withConnection(database: name) { connection in
            for migration in PostgresSchema.migrations {
                for sql in migration.sql {
                    try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Self.silent)
                }
            }
        }
        return (server, name)
    }

    /// A client configuration for `database` on this server (user `postgres`, trust).
    func configuration(database: String) -> PostgresClient.Configuration {
        PostgresClient.Configuration(host: "127.0.0.1", port: port, username: "postgres", password: nil,
                                     database: database, tls: .disable)
    }

    /// Runs `body` on a connection of its own to `database`, closed after.
    func withConnection<R: Sendable>(database: String, _ body: (PostgresConnection) async throws -> R) async throws -> R {
        let config = PostgresConnection.Configuration(host: "127.0.0.1", port: port, username: "postgres", password: nil,
                                                      database: database, tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: config, id: 0, logger: Self.silent)
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    static let silent = Logger(label: "scratch-postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    // MARK: Starting

    private static func start() async throws -> ScratchPostgres {
        guard FileManager.default.isExecutableFile(atPath: "\(binaries)/initdb") else {
            throw Failure(description: "PostgreSQL 15 is not installed (\(binaries)/initdb): apt-get install -y postgresql")
        }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("gc-contract-pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 {
            try FileManager.default.setAttributes([.ownerAccountName: "postgres"], ofItemAtPath: directory)
        }
        try startWatchdog(directory: directory)
        try await run(asPostgres: ["\(binaries)/initdb", "-D", "\(directory)/data", "-A", "trust", "-U", "postgres",
                                   "--no-sync", "-E", "UTF8", "--locale=C"])
        // A port that was free a moment ago may be taken by the time the
        // server binds it: try a few.
        var lastFailure: (any Error)?
        for _ in 0..<3 {
            let port = try freeLoopbackPort()
            do {
                try await run(asPostgres: [
                    "\(binaries)/pg_ctl", "-D", "\(directory)/data", "-l", "\(directory)/postgres.log", "-W",
                    "-o", "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400",
                    "start",
                ])
                try await waitUntilReady(directory: directory, port: port)
                return ScratchPostgres(directory: directory, port: port)
            } catch {
                lastFailure = error
                _ = try? await run(asPostgres: ["\(binaries)/pg_ctl", "-D", "\(directory)/data", "-m", "immediate", "stop"])
            }
        }
        throw lastFailure ?? Failure(description: "PostgreSQL did not start")
    }

    /// Polls `pg_isready` until the server accepts connections, failing
    /// after 30 s with the log's tail.
    private static func waitUntilReady(directory: String, port: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if (try? await run(["\(binaries)/pg_isready", "-q", "-h", "127.0.0.1", "-p", "\(port)"])) != nil { return }
            guard ContinuousClock.now < deadline else {
                let log = (try? String(contentsOfFile: "\(directory)/postgres.log", encoding: .utf8)) ?? ""
                throw Failure(description: "PostgreSQL on port \(port) not ready after 30 s: \(log.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// A detached shell that outlives this process: once it is gone, it
    /// stops the server and removes its folder.
    private static func startWatchdog(directory: String) throws {
        let pid = ProcessInfo.processInfo.processIdentifier
        let stop = getuid() == 0 ? "runuser -u postgres -- \(binaries)/pg_ctl" : "\(binaries)/pg_ctl"
        let script = """
            while kill -0 \(pid) 2>/dev/null; do sleep 1; done
            if [ -f '\(directory)/data/postmaster.pid' ]; then \(stop) -D '\(directory)/data' -m immediate -w stop >/dev/null 2>&1; fi
            rm -rf '\(directory)'
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = ["/bin/bash", "-c", script]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// A loopback port the kernel just handed out (bound to port 0, then closed).
    private static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else { throw Failure(description: "cannot bind a loopback port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs `arguments` as the `postgres` user when this process is root.
    @discardableResult
    private static func run(asPostgres arguments: [String]) async throws -> String {
        try await run(getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + arguments : arguments)
    }

    private static let closeInheritedThenExec = #"""
        for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null; fi; done; exec "$@"
        """#

    /// Runs a program to its end without blocking a thread of the pool;
    /// output goes through a file (a server inheriting a pipe would hold it open).
    @discardableResult
    private static func run(_ arguments: [String]) async throws -> String {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("gc-contract-pg-\(UUID().uuidString).out").path
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let process = Process()
        // Through a shell that first closes every descriptor above stderr:
        // Foundation learns that its child ended when a socket the child
        // inherited closes, and `pg_ctl start` leaves a server behind that
        // would hold that socket open for ever.
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", Self.closeInheritedThenExec, "bash"] + arguments
        // A folder the `postgres` user may enter (initdb and pg_ctl chdir back to it).
        process.currentDirectoryURL = URL(fileURLWithPath: "/tmp")
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: Failure(description: "cannot run \(arguments[0]): \(error)"))
            }
        }
        try? output.close()
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw Failure(description: "\(arguments.joined(separator: " ")) failed (exit \(status)): \(text.suffix(2000))")
        }
        return text
    }
}
