import Foundation
import Logging
import PostgresNIO
@testable import Server
import TestPKI
import TestPostgres
import Testing

/// sslmode against a real server with TLS on (a throwaway CA's certificate
/// for localhost and 127.0.0.1).
@Suite("DATABASE_URL sslmode against a TLS server")
struct PostgresTLSTests {
    /// Whether the session runs over TLS, by the server's account.
    static func sessionUsesTLS(_ url: String) async throws -> Bool {
        let database = try DatabaseURL(parsing: url)
        return try await queryTexts(database, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == ["true"]
    }

    @Test("disable: plaintext; prefer and require: TLS; verify-ca and verify-full: TLS checked against sslrootcert; a foreign CA is refused")
    func sslModes() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gc-pg-tls-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let pki = try TestPKI(directory: folder)
        let foreign = try TestPKI(directory: folder + "/foreign", name: "foreign")
        let server = try pki.node("localhost")
        let postgres = try await TemporaryPostgres.start()
        defer { postgres.remove() }
        try await postgres.enableTLS(certificateFile: server.certificateFile, keyFile: server.keyFile)

        let base = postgres.url
        #expect(try await !Self.sessionUsesTLS(base + "?sslmode=disable"))
        #expect(try await Self.sessionUsesTLS(base + "?sslmode=prefer"))
        #expect(try await Self.sessionUsesTLS(base + "?sslmode=require"))
        #expect(try await Self.sessionUsesTLS(base + "?sslmode=verify-ca&sslrootcert=\(pki.caFile)"))
        #expect(try await Self.sessionUsesTLS(base + "?sslmode=verify-full&sslrootcert=\(pki.caFile)"))
        let byName = base.replacingOccurrences(of: "127.0.0.1", with: "localhost")
        #expect(try await Self.sessionUsesTLS(byName + "?sslmode=verify-full&sslrootcert=\(pki.caFile)"))

        for mode in ["verify-ca", "verify-full", "require"] {
            do {
                _ = try await Self.sessionUsesTLS(base + "?sslmode=\(mode)&sslrootcert=\(foreign.caFile)")
                Issue.record("sslmode=\(mode) with a foreign CA connected")
            } catch {
                let text = PostgresFailure.describe(error)
                #expect(text.contains("TLS") || text.lowercased().contains("certificate"), "\(mode): \(text)")
            }
        }
    }

    @Test("require against a server without TLS fails, saying the server does not offer it; prefer falls back to plaintext")
    func requireWithoutServerTLS() async throws {
        let url = try await SharedPostgres.get().url
        #expect(try await !Self.sessionUsesTLS(url + "?sslmode=prefer"))
        do {
            _ = try await Self.sessionUsesTLS(url + "?sslmode=require")
            Issue.record("sslmode=require connected to a server without TLS")
        } catch {
            #expect(PostgresFailure.describe(error).contains("does not offer TLS"), "\(PostgresFailure.describe(error))")
        }
    }

    @Test("the pool (PostgresClient) made from the URL connects over TLS with verify-full")
    func clientOverTLS() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gc-pg-tls-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let pki = try TestPKI(directory: folder)
        let server = try pki.node("localhost")
        let postgres = try await TemporaryPostgres.start()
        defer { postgres.remove() }
        try await postgres.enableTLS(certificateFile: server.certificateFile, keyFile: server.keyFile)
        let database = try DatabaseURL(parsing: postgres.url.replacingOccurrences(of: "127.0.0.1", with: "localhost")
            + "?sslmode=verify-full&sslrootcert=\(pki.caFile)")
        let client = PostgresClient(configuration: try database.clientConfiguration(maxConnections: 2))
        let ssl = try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            let rows = try await client.query("SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            var values: [String] = []
            for try await value in rows.decode(String.self) { values.append(value) }
            return values.first
        }
        #expect(ssl == "true")
    }
}
