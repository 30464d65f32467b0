import PostgresNIO
@testable import Server
import Testing

@Suite("GC_STORAGE_BACKEND=postgres configuration")
struct PostgresConfigTests {
    @Test("the SPEC's example works as written: postgres backend, the database, a pool of 10")
    func specExample() throws {
        let config = try SidecarConfig(environment: [
            "GC_STORAGE_BACKEND": "postgres",
            "DATABASE_URL": "postgresql://user:pass@host:5432/distributed_gc",
            "GC_MAX_DB_CONNECTIONS": "10",
        ])
        #expect(config.storageBackend == .postgres)
        #expect(!config.storageBackend.usesRaft)
        #expect(config.database?.host == "host")
        #expect(config.database?.database == "distributed_gc")
        #expect(config.maxDatabaseConnections == 10)
    }

    @Test("GC_MAX_DB_CONNECTIONS defaults to 10 and is the pool size; 0 and 1001 are refused")
    func poolSize() throws {
        let url = "postgresql://gc@db/gc"
        #expect(try SidecarConfig(environment: ["GC_STORAGE_BACKEND": "postgres", "DATABASE_URL": url]).maxDatabaseConnections == 10)
        let config = try SidecarConfig(environment: ["GC_STORAGE_BACKEND": "postgres", "DATABASE_URL": url, "GC_MAX_DB_CONNECTIONS": "64"])
        #expect(try config.database?.clientConfiguration(maxConnections: config.maxDatabaseConnections).options.maximumConnections == 64)
        for bad in ["0", "1001", "ten"] {
            #expect {
                _ = try SidecarConfig(environment: ["GC_STORAGE_BACKEND": "postgres", "DATABASE_URL": url, "GC_MAX_DB_CONNECTIONS": bad])
            } throws: { ($0 as? SidecarConfig.Error)?.variable == "GC_MAX_DB_CONNECTIONS" }
        }
    }

    @Test("postgres without DATABASE_URL is refused, naming DATABASE_URL and an example")
    func missingURL() {
        #expect {
            _ = try SidecarConfig(environment: ["GC_STORAGE_BACKEND": "postgres"])
        } throws: { error in
            guard let error = error as? SidecarConfig.Error else { return false }
            return error.variable == "DATABASE_URL" && error.description.contains("required with GC_STORAGE_BACKEND=postgres")
                && error.description.contains("postgresql://")
        }
    }

    @Test("GC_PEERS is refused in postgres mode, and so is GC_CLUSTER_STATE=existing")
    func raftSettingsRefused() {
        let base = ["GC_STORAGE_BACKEND": "postgres", "DATABASE_URL": "postgresql://gc@db/gc"]
        #expect {
            _ = try SidecarConfig(environment: base.merging(["GC_PEERS": "n1=10.0.0.1:50052,n2=10.0.0.2:50052"]) { $1 })
        } throws: { error in
            guard let error = error as? SidecarConfig.Error else { return false }
            return error.variable == "GC_PEERS" && error.description.contains("not used with GC_STORAGE_BACKEND=postgres")
        }
        #expect {
            _ = try SidecarConfig(environment: base.merging(["GC_CLUSTER_STATE": "existing"]) { $1 })
        } throws: { ($0 as? SidecarConfig.Error)?.variable == "GC_CLUSTER_STATE" }
        // GC_PEERS stays fine for the Raft backends.
        #expect(throws: Never.self) {
            _ = try SidecarConfig(environment: ["GC_NODE_ID": "n1", "GC_PEERS": "n1=10.0.0.1:50052,n2=10.0.0.2:50052"])
        }
    }

    @Test("a bad DATABASE_URL from a flag or file names where it was set, never the password")
    func badURLFromFlag() {
        #expect {
            _ = try SidecarConfig.load(arguments: ["--storage-backend", "postgres", "--database-url", "postgresql://gc:hunter2@db/gc?sslmode=bogus"],
                                       environment: [:])
        } throws: { error in
            guard let error = error as? SidecarConfig.Error else { return false }
            return error.variable == "DATABASE_URL" && error.description.contains("--database-url")
                && error.description.contains("sslmode 'bogus'") && !error.description.contains("hunter2")
        }
    }

    @Test("the effective configuration shows the backend and pool size, the URL without its password")
    func effective() throws {
        let loaded = try SidecarConfig.load(arguments: [], environment: [
            "GC_STORAGE_BACKEND": "postgres", "DATABASE_URL": "postgresql://gc:hunter2@db:5432/gc", "GC_MAX_DB_CONNECTIONS": "12",
        ])
        let rendered = loaded.effective.rendered()
        #expect(rendered.contains("GC_STORAGE_BACKEND=postgres"))
        #expect(rendered.contains("GC_MAX_DB_CONNECTIONS=12"))
        #expect(rendered.contains("DATABASE_URL=postgresql://gc:<redacted>@db:5432/gc"))
        #expect(!rendered.contains("hunter2"))
    }

    @Test("a sqlite or memory node ignores DATABASE_URL (an environment file may carry it)")
    func ignoredOutsidePostgres() throws {
        let config = try SidecarConfig(environment: ["GC_STORAGE_BACKEND": "memory", "DATABASE_URL": "not a url"])
        #expect(config.database == nil)
    }
}
