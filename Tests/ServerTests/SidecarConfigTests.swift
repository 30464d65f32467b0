import LeaseFSM
import Logging
@testable import Server
import Testing

@Suite("Configuration from the environment")
struct SidecarConfigTests {
    @Test("an empty environment gives SPEC defaults")
    func defaults() throws {
        let config = try SidecarConfig(environment: [:])
        #expect(config.host == "0.0.0.0")
        #expect(config.port == 50051)
        #expect(config.metricsPort == 9090)
        #expect(config.limits.defaultDurationSeconds == 300)
        #expect(config.limits.minDurationSeconds == 30)
        #expect(config.limits.maxDurationSeconds == 3600)
        #expect(config.limits.maxLeasesPerService == 10_000)
        #expect(config.cleanupIntervalSeconds == 60)
        #expect(config.limits.cleanupGraceSeconds == 30)
        #expect(config.cleanupTimeoutSeconds == 30)
        #expect(config.limits.defaultMaxRetries == 3)
        #expect(config.limits.defaultRetryDelaySeconds == 5)
        #expect(config.logLevel == .info)
        #expect(config.storageBackend == .sqlite)
        #expect(config.dataDirectory == "./gc-data/n1")
        #expect(config.snapshotThreshold == 10_000)
    }

    @Test("every variable is read")
    func everyVariable() throws {
        let config = try SidecarConfig(environment: [
            "GC_NODE_ID": "n2", "GC_SERVER_HOST": "127.0.0.1", "GC_SERVER_PORT": "6000", "GC_METRICS_PORT": "0",
            "GC_DEFAULT_LEASE_DURATION": "100", "GC_MIN_LEASE_DURATION": "10", "GC_MAX_LEASE_DURATION": "200",
            "GC_MAX_LEASES_PER_SERVICE": "5", "GC_CLEANUP_INTERVAL": "7", "GC_CLEANUP_GRACE_PERIOD": "0",
            "GC_CLEANUP_TIMEOUT": "3", "GC_CLEANUP_MAX_RETRIES": "9", "GC_CLEANUP_RETRY_DELAY": "2",
            "GC_CLEANUP_MAX_CONCURRENCY": "8", "GC_ENDED_LEASE_RETENTION": "60", "GC_STORAGE_BACKEND": "memory",
            "GC_LOG_LEVEL": "debug", "GC_DATA_DIR": "/var/lib/gc", "GC_SNAPSHOT_THRESHOLD": "500",
        ])
        #expect(config.storageBackend == .memory)
        #expect(config.dataDirectory == "/var/lib/gc")
        #expect(config.snapshotThreshold == 500)
        #expect(config.nodeID == "n2")
        #expect(config.host == "127.0.0.1")
        #expect(config.metricsHost == "127.0.0.1", "metrics host follows the server host by default")
        #expect(config.port == 6000)
        #expect(config.metricsPort == 0)
        #expect(config.limits.defaultDurationSeconds == 100)
        #expect(config.limits.minDurationSeconds == 10)
        #expect(config.limits.maxDurationSeconds == 200)
        #expect(config.limits.maxLeasesPerService == 5)
        #expect(config.cleanupIntervalSeconds == 7)
        #expect(config.limits.cleanupGraceSeconds == 0)
        #expect(config.cleanupTimeoutSeconds == 3)
        #expect(config.limits.defaultMaxRetries == 9)
        #expect(config.limits.defaultRetryDelaySeconds == 2)
        #expect(config.cleanupLimits.maxConcurrency == 8)
        #expect(config.limits.endedRetentionSeconds == 60)
        #expect(config.logLevel == .debug)
    }

    @Test("a bad value names the variable and what is allowed", arguments: [
        ("GC_SERVER_PORT", "70000", "0...65535"),
        ("GC_SERVER_PORT", "abc", "0...65535"),
        ("GC_CLEANUP_INTERVAL", "0", "1..."),
        ("GC_CLEANUP_INTERVAL", "-5", "whole number"),
        ("GC_MAX_LEASES_PER_SERVICE", "many", "whole number"),
        ("GC_CLEANUP_MAX_RETRIES", "101", "0...100"),
        ("GC_STORAGE_BACKEND", "redis", "'sqlite', 'memory' and 'postgres'"),
        ("GC_SNAPSHOT_THRESHOLD", "5", "100..."),
        ("GC_LOG_LEVEL", "loud", "trace"),
        ("GC_SERVER_HOST", "bad host!", "host"),
        ("GC_CLEANUP_ALLOW", "localhost,10.0.0.0/33", "'10.0.0.0/33' is not a network"),
        ("GC_CLEANUP_ALLOW", "10.0.0.1/8", "did you mean 10.0.0.0/8"),
        ("GC_CLEANUP_ALLOW", "169.254.0.0/16", "always denied"),
        ("GC_CLEANUP_ALLOW", "files internal", "is not a host pattern"),
    ])
    func badValue(variable: String, value: String, allowed: String) {
        #expect {
            _ = try SidecarConfig(environment: [variable: value])
        } throws: { error in
            guard let error = error as? SidecarConfig.Error else { return false }
            return error.variable == variable && error.description.contains(allowed) && !error.description.contains("\n")
        }
    }

    @Test("GC_CLEANUP_CLAIM_SECONDS: twice the cleanup timeout plus ten seconds unless set; must outlast one request")
    func cleanupClaim() throws {
        #expect(try SidecarConfig(environment: [:]).cleanupClaimDuration == .seconds(70))
        #expect(try SidecarConfig(environment: ["GC_CLEANUP_TIMEOUT": "5"]).cleanupClaimDuration == .seconds(20))
        let set = try SidecarConfig(environment: ["GC_CLEANUP_TIMEOUT": "2", "GC_CLEANUP_CLAIM_SECONDS": "3"])
        #expect(set.cleanupClaimSeconds == 3 && set.cleanupClaimDuration == .seconds(3))
        for (timeout, claim, message) in [("30", "30", "more than GC_CLEANUP_TIMEOUT (30)"), ("1", "1", "2...86400")] {
            let error = #expect(throws: SidecarConfig.Error.self) {
                _ = try SidecarConfig(environment: ["GC_CLEANUP_TIMEOUT": timeout, "GC_CLEANUP_CLAIM_SECONDS": claim])
            }
            #expect(error?.variable == "GC_CLEANUP_CLAIM_SECONDS")
            #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
        }
    }

    @Test("min above max, and a default outside them, are refused")
    func inconsistentDurations() {
        #expect(throws: SidecarConfig.Error.self) {
            _ = try SidecarConfig(environment: ["GC_MIN_LEASE_DURATION": "100", "GC_MAX_LEASE_DURATION": "50"])
        }
        #expect(throws: SidecarConfig.Error.self) {
            _ = try SidecarConfig(environment: ["GC_DEFAULT_LEASE_DURATION": "5000"])
        }
    }

    @Test("log level: GC_LOG_LEVEL wins over LOG_LEVEL over RUST_LOG, which may use module syntax")
    func logLevelPrecedence() throws {
        #expect(try LogLevelParser.level(from: ["GC_LOG_LEVEL": "warn", "LOG_LEVEL": "debug"]) == .warning)
        #expect(try LogLevelParser.level(from: ["LOG_LEVEL": "debug", "RUST_LOG": "error"]) == .debug)
        #expect(try LogLevelParser.level(from: ["RUST_LOG": "info,distributed_gc_sidecar=trace"]) == .trace)
        #expect(try LogLevelParser.level(from: ["RUST_LOG": "error"]) == .error)
        #expect(try LogLevelParser.level(from: [:]) == .info)
    }

    @Test("GC_PEERS names every voter; this node's entry sets its peer port")
    func peers() throws {
        let config = try SidecarConfig(environment: [
            "GC_NODE_ID": "n2", "GC_PEERS": " n1=10.0.0.1:50052, n2=10.0.0.2:7000 ,n3=gc-3.peers.svc:50052",
        ])
        #expect(config.peers.map(\.name) == ["n1", "n2", "n3"])
        #expect(config.peers[2].host == "gc-3.peers.svc")
        #expect(config.raftPort == 7000, "listens where GC_PEERS says the others reach it")
        #expect(config.isClustered)
        #expect(Set(config.peers.map(\.id)).count == 3)
        #expect(config.peers[0].id == ClusterMember.nodeID(forName: "n1"), "ids derive from names alone")
        #expect(try SidecarConfig(environment: [:]).peers.isEmpty)
        #expect(try !SidecarConfig(environment: ["GC_PEERS": "n1=127.0.0.1:50052"]).isClustered, "alone in GC_PEERS is a single node")
    }

    @Test("bad cluster settings are refused naming the variable", arguments: [
        (["GC_PEERS": "n2=10.0.0.2:50052"], "GC_PEERS"),  // this node (n1) missing
        (["GC_PEERS": "n1=10.0.0.1:50052,n1=10.0.0.2:50052"], "GC_PEERS"),
        (["GC_PEERS": "n1=10.0.0.1"], "GC_PEERS"),
        (["GC_PEERS": "n1=10.0.0.1:0"], "GC_PEERS"),
        (["GC_PEERS": "n 1=10.0.0.1:50052"], "GC_PEERS"),
        (["GC_PEERS": "n1=10.0.0.1:50052", "GC_RAFT_PORT": "6000"], "GC_RAFT_PORT"),
        (["GC_RAFT_HEARTBEAT_INTERVAL_MS": "100", "GC_RAFT_ELECTION_TIMEOUT_MS": "150"], "GC_RAFT_ELECTION_TIMEOUT_MS"),
        (["GC_RAFT_HEARTBEAT_INTERVAL_MS": "5"], "GC_RAFT_HEARTBEAT_INTERVAL_MS"),
        (["GC_CLUSTER_STATE": "joining"], "GC_CLUSTER_STATE"),
        (["GC_REQUEST_TIMEOUT_MS": "10"], "GC_REQUEST_TIMEOUT_MS"),
    ])
    func badClusterSettings(environment: [String: String], variable: String) {
        #expect {
            _ = try SidecarConfig(environment: environment)
        } throws: { error in
            (error as? SidecarConfig.Error)?.variable == variable
        }
    }

    @Test("timing and cluster state are read")
    func timing() throws {
        let config = try SidecarConfig(environment: [
            "GC_RAFT_HEARTBEAT_INTERVAL_MS": "100", "GC_RAFT_ELECTION_TIMEOUT_MS": "1000",
            "GC_CLUSTER_STATE": "existing", "GC_REQUEST_TIMEOUT_MS": "2500", "GC_SERVER_HOST": "10.1.1.1",
        ])
        #expect(config.electionTicks == 10)
        #expect(config.joinsExistingCluster)
        #expect(config.requestTimeoutMilliseconds == 2500)
        #expect(config.raftHost == "10.1.1.1", "the peer port listens on GC_SERVER_HOST by default")
        #expect(config.raftPort == 50052)
    }

    @Test("GC_CLEANUP_ALLOW: host patterns and networks; unset means no allowlist")
    func cleanupAllow() throws {
        #expect(try !SidecarConfig(environment: [:]).cleanupEgress.hasAllowlist)
        let config = try SidecarConfig(environment: ["GC_CLEANUP_ALLOW": "files.internal, *.svc.cluster.local,10.0.0.0/8,fd00::/8,127.0.0.1/32"])
        let policy = config.cleanupEgress
        #expect(policy.hostPatterns.map(\.description) == ["files.internal", "*.svc.cluster.local"])
        #expect(policy.networks.map(\.description) == ["10.0.0.0/8", "fd00::/8", "127.0.0.1/32"])
        #expect(policy.check(host: "127.0.0.1") == nil)
        #expect(policy.check(host: "192.168.1.1")?.reason == .notAllowed)
    }
}
