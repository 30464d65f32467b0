import Foundation
import TestPostgres
@testable import Server
import Testing

/// `gc-sidecar migrate` with the real binary against a real PostgreSQL.
@Suite("gc-sidecar migrate")
struct MigrateCommandTests {
    @Test("migrate applies the schema once and prints the status; --status only prints; the password never shows")
    func migrateEndToEnd() async throws {
        let url = try await SharedPostgres.get().createDatabase()
        let withPassword = url.replacingOccurrences(of: "postgresql://gc@", with: "postgresql://gc:hunter2@")
        let environment = ["DATABASE_URL": withPassword]
        let database = try DatabaseURL(parsing: url)

        let before = try await SidecarBinary.run(["migrate", "--status"], environment: environment)
        #expect(before.status == 0, "\(before.stderr)")
        #expect(before.stdout.contains("schema version  0 (this gc-sidecar knows \(PostgresSchema.currentVersion))"))
        #expect(before.stdout.contains("pending         1"))
        #expect(!before.stdout.contains("applied now"))
        #expect(try await queryTexts(database, "SELECT coalesce(to_regclass('gc_schema_migrations')::text, 'absent')") == ["absent"])

        let first = try await SidecarBinary.run(["migrate"], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("schema version  \(PostgresSchema.currentVersion)"))
        #expect(first.stdout.contains("applied now     1"))
        #expect(first.stdout.contains("pending         none"))
        #expect(first.stdout.contains("  1  ") && first.stdout.contains(PostgresSchema.migrations[0].description))

        let second = try await SidecarBinary.run(["migrate"], environment: environment)
        #expect(second.status == 0)
        #expect(second.stdout.contains("applied now     none"))

        let status = try await SidecarBinary.run(["migrate", "--status"], environment: environment)
        #expect(status.status == 0)
        #expect(status.stdout.contains("pending         none"))
        for result in [before, first, second, status] {
            #expect(!(result.stdout + result.stderr).contains("hunter2"))
        }
        #expect(first.stdout.contains("postgresql://gc:<redacted>@127.0.0.1:"))
    }

    @Test("settings may come as flags, as for serve")
    func flags() async throws {
        let url = try await SharedPostgres.get().createDatabase()
        let result = try await SidecarBinary.run(["migrate", "--database-url", url, "--max-db-connections", "3"], environment: [:])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("pending         none"))
    }

    @Test("an unreachable database: exit 1 and one line naming the database")
    func unreachable() async throws {
        let result = try await SidecarBinary.run(["migrate"], environment: [
            "DATABASE_URL": "postgresql://gc:hunter2@127.0.0.1:1/distributed_gc?sslmode=disable",
        ])
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("gc-sidecar migrate: cannot connect to 127.0.0.1:1"))
        #expect(result.stderr.contains("postgresql://gc:<redacted>@127.0.0.1:1/distributed_gc"))
        #expect(!result.stderr.contains("hunter2"))
    }

    @Test("a schema newer than the binary: exit 1 with the upgrade message, for migrate and --status")
    func newerSchema() async throws {
        let url = try await SharedPostgres.get().createDatabase()
        #expect(try await SidecarBinary.run(["migrate"], environment: ["DATABASE_URL": url]).status == 0)
        _ = try await queryTexts(try DatabaseURL(parsing: url),
                                 "INSERT INTO gc_schema_migrations (version, description) VALUES (999, 'future') RETURNING 'ok'")
        for arguments in [["migrate"], ["migrate", "--status"]] {
            let result = try await SidecarBinary.run(arguments, environment: ["DATABASE_URL": url])
            #expect(result.status == 1)
            #expect(result.stderr.contains("gc-sidecar migrate: schema version 999 is newer than this gc-sidecar knows (\(PostgresSchema.currentVersion)): upgrade gc-sidecar"))
        }
    }

    @Test("an invalid configuration exits 2: no DATABASE_URL, another backend, GC_PEERS")
    func invalidConfiguration() async throws {
        let missing = try await SidecarBinary.run(["migrate"], environment: [:])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("DATABASE_URL"))
        let sqlite = try await SidecarBinary.run(["migrate"], environment: ["GC_STORAGE_BACKEND": "sqlite", "DATABASE_URL": "postgresql://gc@db/gc"])
        #expect(sqlite.status == 2)
        #expect(sqlite.stderr.contains("migrate is for GC_STORAGE_BACKEND=postgres"))
        let peers = try await SidecarBinary.run(["migrate"], environment: [
            "DATABASE_URL": "postgresql://gc@db/gc", "GC_PEERS": "n1=127.0.0.1:7001",
        ])
        #expect(peers.status == 2)
        #expect(peers.stderr.contains("GC_PEERS"))
    }

    @Test("GC_PEERS in postgres mode: the node refuses the configuration (exit 2) with a clear error")
    func peersRefusedByTheBinary() async throws {
        let result = try await SidecarBinary.run(["config", "show"], environment: [
            "GC_STORAGE_BACKEND": "postgres", "DATABASE_URL": "postgresql://gc@db/gc",
            "GC_PEERS": "n1=127.0.0.1:7001,n2=127.0.0.1:7002",
        ])
        #expect(result.status == 2)
        #expect(result.stderr.contains("GC_PEERS: is not used with GC_STORAGE_BACKEND=postgres"))
    }
}
