import LeaseFSM
import Logging

/// Everything a `gc-sidecar` process is configured with.
///
/// Read from the environment by ``init(environment:)``, or from flags, the
/// environment and a config file by ``load(arguments:environment:configFile:)``;
/// every setting, its type and its default are listed in ``SettingKey/all``.
public struct SidecarConfig: Hashable, Sendable {
    /// This node's name in logs and health answers (`GC_NODE_ID`, default `n1`).
    public var nodeID = "n1"
    /// gRPC listen host (`GC_SERVER_HOST`, default `0.0.0.0`).
    public var host = "0.0.0.0"
    /// gRPC listen port (`GC_SERVER_PORT`, default 50051; 0 picks a free port).
    public var port = 50051
    /// Prometheus `/metrics` port (`GC_METRICS_PORT`, default 9090; 0 picks a free port).
    public var metricsPort = 9090
    /// Host the metrics endpoint listens on (`GC_METRICS_HOST`, default = `GC_SERVER_HOST`).
    public var metricsHost = "0.0.0.0"
    /// Rules the lease state machine enforces (durations, quotas, retries, grace, retention).
    public var limits = LeaseLimits.defaults
    /// How often the reaper looks for expired leases (`GC_CLEANUP_INTERVAL`, default 60 s).
    public var cleanupIntervalSeconds: UInt64 = 60
    /// Timeout of one cleanup request (`GC_CLEANUP_TIMEOUT`, default 30 s).
    public var cleanupTimeoutSeconds: UInt64 = 30
    /// How long a cleanup claim holds in PostgreSQL mode
    /// (`GC_CLEANUP_CLAIM_SECONDS`, 2 to 86,400, more than
    /// ``cleanupTimeoutSeconds``); nil: ``PostgresCleanupService/defaultClaimDuration(timeout:)``
    /// (twice the cleanup timeout plus ten seconds). A sidecar that paused
    /// longer than this has its jobs taken over and its late outcomes refused.
    public var cleanupClaimSeconds: UInt64?
    /// Cleanup admission: `GC_CLEANUP_MAX_CONCURRENCY` (all endpoints, default
    /// 256), `GC_CLEANUP_ENDPOINT_CONCURRENCY` (per endpoint, default 64),
    /// `GC_CLEANUP_ENDPOINT_RATE` (requests/s per endpoint, default 1,000; 0 =
    /// no limit), `GC_CLEANUP_BREAKER_FAILURES` (consecutive failures that open
    /// an endpoint's breaker, default 5; 0 = off) and
    /// `GC_CLEANUP_BREAKER_COOLDOWN_MS` (default 10,000).
    public var cleanupLimits = CleanupLimits()
    /// Where cleanups may be sent (`GC_CLEANUP_ALLOW`, default: no
    /// allowlist). Comma-separated host patterns (`files.internal`,
    /// `*.svc.cluster.local`) and networks (`10.0.0.0/8`, `fd00::/8`,
    /// `127.0.0.1/32`); when set, a cleanup endpoint's host must match a
    /// pattern or resolve only into the networks. Link-local and cloud
    /// metadata addresses and names, `0.0.0.0/8`, multicast and broadcast
    /// are denied with or without it (``EgressPolicy``).
    public var cleanupEgress = EgressPolicy()
    /// Leases named in one expire decision (`GC_REAP_BATCH_SIZE`, default 500).
    public var reapBatchSize: UInt64 = 500
    /// Pause between two expire decisions of one reaper pass
    /// (`GC_REAP_BATCH_PAUSE_MS`, default 20).
    public var reapBatchPauseMilliseconds: UInt64 = 20
    /// Where the lease state lives (`GC_STORAGE_BACKEND`): `sqlite` (default,
    /// the Raft log, durable, in `GC_DATA_DIR`), `memory` (development and
    /// tests: a restart forgets everything) or `postgres` (no Raft: any
    /// number of stateless sidecars over the database at ``database``).
    public var storageBackend = StorageBackend.sqlite
    /// The database of the `postgres` backend (`DATABASE_URL`); set exactly
    /// when ``storageBackend`` is `postgres`.
    public var database: DatabaseURL?
    /// The most connections this sidecar's pool opens to ``database``
    /// (`GC_MAX_DB_CONNECTIONS`, 1 to 1000, default 10).
    public var maxDatabaseConnections = 10
    /// Directory of this node's SQLite database (`GC_DATA_DIR`, default `./gc-data/<GC_NODE_ID>`).
    public var dataDirectory = "./gc-data/n1"
    /// Applied log entries between snapshots of the lease state (`GC_SNAPSHOT_THRESHOLD`, default 10,000).
    public var snapshotThreshold: UInt64 = 10_000
    /// Least severe level logged (`GC_LOG_LEVEL`, else `LOG_LEVEL`, else `RUST_LOG`; default info).
    public var logLevel = Logger.Level.info
    /// How log lines are written (`GC_LOG_FORMAT`: `text`, the default, or `json`).
    public var logFormat = LogFormat.text
    /// Every voter of the cluster, this node included (`GC_PEERS`,
    /// `name=host:port,...` of each node's Raft port). Empty: a single-node
    /// cluster.
    public var peers: [ClusterMember] = []
    /// Host the peer (Raft) port listens on (`GC_RAFT_HOST`, default = `GC_SERVER_HOST`).
    public var raftHost = "0.0.0.0"
    /// Peer (Raft) port (`GC_RAFT_PORT`, default 50052; 0 picks a free port).
    public var raftPort = 50052
    /// Leader heartbeat interval and Raft tick (`GC_RAFT_HEARTBEAT_INTERVAL_MS`, default 50).
    public var heartbeatIntervalMilliseconds: UInt64 = 50
    /// Minimum election timeout (`GC_RAFT_ELECTION_TIMEOUT_MS`, default 500;
    /// each follower draws its timeout from [t, 2t)).
    public var electionTimeoutMilliseconds: UInt64 = 500
    /// `new` (default): the node bootstraps with GC_PEERS as the voters.
    /// `existing`: the node joins a running cluster and learns the membership
    /// from the leader after `gcctl cluster add` (`GC_CLUSTER_STATE`).
    public var joinsExistingCluster = false
    /// How long a write or linearizable read may wait for a leader
    /// (forwarding, elections) before failing with UNAVAILABLE
    /// (`GC_REQUEST_TIMEOUT_MS`, default 5000).
    public var requestTimeoutMilliseconds: UInt64 = 5000
    /// TLS on the client, peer and metrics ports, and caller authorization
    /// (`GC_TLS_*`, `GC_PEER_TLS_*`, `GC_METRICS_TLS_*`,
    /// `GC_CLEANUP_TLS_CA_FILE`, `GC_AUTH_POLICY_FILE`; all off by default).
    public var security = SecurityConfig()
    /// `WatchLeases` streams one node serves at once (`GC_MAX_WATCHERS`, default 1,000).
    public var maxWatchers = 1_000
    /// Bytes of lease events a node keeps so that watchers can resume
    /// (`GC_EVENT_HISTORY_BYTES`, default 4 MiB; at most 100,000 events
    /// either way). A resume from before the oldest kept event is refused
    /// with the oldest index still available.
    public var eventHistoryBytes = EventHub.defaultRetentionBytes

    /// The cleanup claim in effect in PostgreSQL mode: ``cleanupClaimSeconds``,
    /// else twice the cleanup timeout plus ten seconds.
    public var cleanupClaimDuration: Duration {
        cleanupClaimSeconds.map { .seconds(Int64($0)) }
            ?? PostgresCleanupService.defaultClaimDuration(timeout: .seconds(Int64(cleanupTimeoutSeconds)))
    }

    /// Whether this node is one of several (GC_PEERS names other nodes).
    public var isClustered: Bool { peers.contains { $0.name != nodeID } }

    /// Raft ticks in one election timeout.
    public var electionTicks: Int { max(2, Int(electionTimeoutMilliseconds / max(1, heartbeatIntervalMilliseconds))) }

    public enum StorageBackend: String, Hashable, Sendable {
        case sqlite
        case memory
        /// No Raft: the state is in PostgreSQL (`DATABASE_URL`).
        case postgres

        /// Whether this backend runs Raft (and so has peers, a log, snapshots).
        public var usesRaft: Bool { self != .postgres }
    }

    public init() {}

    public static let defaults = SidecarConfig()

    /// A configuration value that cannot be used: names the variable, the
    /// value and what is allowed, in one line.
    public struct Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        public var variable: String
        public var message: String
        /// Where the value came from when not from the environment
        /// ("set by --server-port", "set by 'server-port' in FILE").
        public var origin: String? = nil
        public var description: String {
            let from = origin.map { " (\($0))" } ?? ""
            return "invalid configuration: \(variable)\(from): \(message)"
        }
    }

    /// Reads the configuration from environment variables (or, through
    /// ``ResolvedSettings``, from flags and a config file mapped to their
    /// variable names).
    ///
    /// ``SettingKey/all`` lists every variable with its type, default and
    /// meaning; the README's table is generated from it.
    ///
    /// - Throws: ``Error`` for the first variable with an unusable value.
    public init(environment env: [String: String]) throws(Error) {
        let r = EnvironmentReader(env)
        nodeID = try r.string("GC_NODE_ID", default: nodeID)
        host = try r.host("GC_SERVER_HOST", default: host)
        port = try r.port("GC_SERVER_PORT", default: port)
        metricsHost = try r.host("GC_METRICS_HOST", default: host)
        metricsPort = try r.port("GC_METRICS_PORT", default: metricsPort)
        limits.defaultDurationSeconds = try r.seconds("GC_DEFAULT_LEASE_DURATION", default: limits.defaultDurationSeconds)
        limits.minDurationSeconds = try r.seconds("GC_MIN_LEASE_DURATION", default: limits.minDurationSeconds)
        limits.maxDurationSeconds = try r.seconds("GC_MAX_LEASE_DURATION", default: limits.maxDurationSeconds)
        limits.maxLeasesPerService = Int(try r.count("GC_MAX_LEASES_PER_SERVICE", default: UInt64(limits.maxLeasesPerService), range: 1...10_000_000))
        limits.maxLeases = Int(try r.count("GC_MAX_LEASES", default: UInt64(limits.maxLeases), range: 1...100_000_000))
        maxWatchers = Int(try r.count("GC_MAX_WATCHERS", default: UInt64(maxWatchers), range: 1...1_000_000))
        eventHistoryBytes = Int(try r.count("GC_EVENT_HISTORY_BYTES", default: UInt64(eventHistoryBytes), range: 0...(16 << 30)))
        cleanupIntervalSeconds = try r.seconds("GC_CLEANUP_INTERVAL", default: cleanupIntervalSeconds)
        limits.cleanupGraceSeconds = try r.count("GC_CLEANUP_GRACE_PERIOD", default: limits.cleanupGraceSeconds, range: 0...86_400)
        cleanupTimeoutSeconds = try r.seconds("GC_CLEANUP_TIMEOUT", default: cleanupTimeoutSeconds)
        let claim = try r.count("GC_CLEANUP_CLAIM_SECONDS", default: 0, range: 2...86_400, unit: " seconds")
        if claim != 0 {
            guard claim > cleanupTimeoutSeconds else {
                throw Error(variable: "GC_CLEANUP_CLAIM_SECONDS", message: "\(claim) must be more than GC_CLEANUP_TIMEOUT (\(cleanupTimeoutSeconds)): a claim shorter than one request lets another sidecar deliver the same job while the first still waits for its answer")
            }
            cleanupClaimSeconds = claim
        }
        limits.defaultMaxRetries = UInt32(try r.count("GC_CLEANUP_MAX_RETRIES", default: UInt64(limits.defaultMaxRetries), range: 0...UInt64(LeaseLimits.maxRetriesCap)))
        limits.defaultRetryDelaySeconds = try r.seconds("GC_CLEANUP_RETRY_DELAY", default: limits.defaultRetryDelaySeconds)
        cleanupLimits.maxConcurrency = Int(try r.count("GC_CLEANUP_MAX_CONCURRENCY", default: UInt64(cleanupLimits.maxConcurrency), range: 1...10_000))
        cleanupLimits.endpointConcurrency = Int(try r.count("GC_CLEANUP_ENDPOINT_CONCURRENCY", default: UInt64(cleanupLimits.endpointConcurrency), range: 1...10_000))
        cleanupLimits.endpointRatePerSecond = Double(try r.count("GC_CLEANUP_ENDPOINT_RATE", default: UInt64(cleanupLimits.endpointRatePerSecond), range: 0...1_000_000))
        cleanupLimits.breakerFailures = Int(try r.count("GC_CLEANUP_BREAKER_FAILURES", default: UInt64(cleanupLimits.breakerFailures), range: 0...1_000_000))
        cleanupLimits.breakerCooldownMilliseconds = Int64(try r.count("GC_CLEANUP_BREAKER_COOLDOWN_MS", default: UInt64(cleanupLimits.breakerCooldownMilliseconds), range: 10...86_400_000))
        cleanupEgress = try r.egressPolicy("GC_CLEANUP_ALLOW")
        reapBatchSize = try r.count("GC_REAP_BATCH_SIZE", default: reapBatchSize, range: 1...UInt64(LeaseLimits.maxExpireBatch))
        reapBatchPauseMilliseconds = try r.count("GC_REAP_BATCH_PAUSE_MS", default: reapBatchPauseMilliseconds, range: 0...60_000)
        limits.endedRetentionSeconds = try r.count("GC_ENDED_LEASE_RETENTION", default: limits.endedRetentionSeconds, range: 0...(30 * 86_400))
        storageBackend = try r.storageBackend()
        if storageBackend == .postgres {
            database = try r.postgresDatabase()
        }
        dataDirectory = try r.path("GC_DATA_DIR", default: "./gc-data/\(nodeID)")
        snapshotThreshold = try r.count("GC_SNAPSHOT_THRESHOLD", default: snapshotThreshold, range: 100...10_000_000)
        raftHost = try r.host("GC_RAFT_HOST", default: host)
        raftPort = try r.port("GC_RAFT_PORT", default: raftPort)
        heartbeatIntervalMilliseconds = try r.count("GC_RAFT_HEARTBEAT_INTERVAL_MS", default: heartbeatIntervalMilliseconds, range: 10...10_000)
        electionTimeoutMilliseconds = try r.count("GC_RAFT_ELECTION_TIMEOUT_MS", default: electionTimeoutMilliseconds, range: 20...600_000)
        guard electionTimeoutMilliseconds >= 2 * heartbeatIntervalMilliseconds else {
            throw Error(variable: "GC_RAFT_ELECTION_TIMEOUT_MS", message: "\(electionTimeoutMilliseconds) must be at least twice GC_RAFT_HEARTBEAT_INTERVAL_MS (\(heartbeatIntervalMilliseconds)); ten times is usual")
        }
        requestTimeoutMilliseconds = try r.count("GC_REQUEST_TIMEOUT_MS", default: requestTimeoutMilliseconds, range: 100...600_000)
        joinsExistingCluster = try r.clusterState()
        peers = try r.peers(nodeID: nodeID)
        if let mine = peers.first(where: { $0.name == nodeID }) {
            // GC_PEERS says where the others reach this node; listen there.
            if env["GC_RAFT_PORT"]?.trimmingWhitespace().isEmpty ?? true {
                raftPort = mine.port
            } else if raftPort != mine.port {
                throw Error(variable: "GC_RAFT_PORT", message: "\(raftPort) differs from this node's port in GC_PEERS (\(mine)); the others would not reach it")
            }
        }
        security = try r.security()
        maxDatabaseConnections = Int(try r.count("GC_MAX_DB_CONNECTIONS", default: UInt64(maxDatabaseConnections), range: 1...1000))
        logLevel = try LogLevelParser.level(from: env)
        logFormat = try r.logFormat()

        if limits.minDurationSeconds > limits.maxDurationSeconds {
            throw Error(variable: "GC_MIN_LEASE_DURATION", message: "\(limits.minDurationSeconds) is greater than GC_MAX_LEASE_DURATION (\(limits.maxDurationSeconds))")
        }
        if !(limits.minDurationSeconds...limits.maxDurationSeconds).contains(limits.defaultDurationSeconds) {
            throw Error(variable: "GC_DEFAULT_LEASE_DURATION", message: "\(limits.defaultDurationSeconds) must lie within [GC_MIN_LEASE_DURATION, GC_MAX_LEASE_DURATION] = [\(limits.minDurationSeconds), \(limits.maxDurationSeconds)]")
        }
    }
}

/// Parses typed values out of the environment, naming the variable on failure.
struct EnvironmentReader {
    let env: [String: String]

    init(_ env: [String: String]) {
        self.env = env
    }

    private func raw(_ key: String) -> String? {
        guard let v = env[key]?.trimmingWhitespace(), !v.isEmpty else { return nil }
        return v
    }

    func string(_ key: String, default d: String) throws(SidecarConfig.Error) -> String {
        guard let v = raw(key) else { return d }
        guard ClusterMember.isValidName(v) else {
            throw .init(variable: key, message: "'\(v.prefix(40))' is not allowed: use up to 128 letters, digits, '-', '_' or '.'")
        }
        return v
    }

    func host(_ key: String, default d: String) throws(SidecarConfig.Error) -> String {
        guard let v = raw(key) else { return d }
        guard v.utf8.count <= 253, v.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-.:_".contains($0)) }) else {
            throw .init(variable: key, message: "'\(v.prefix(40))' is not a host name or IP address (e.g. 0.0.0.0 or 127.0.0.1)")
        }
        return v
    }

    func port(_ key: String, default d: Int) throws(SidecarConfig.Error) -> Int {
        guard let v = raw(key) else { return d }
        guard let n = Int(v), (0...65535).contains(n) else {
            throw .init(variable: key, message: "'\(v.prefix(40))' is not a port: expected an integer in 0...65535 (0 picks a free port)")
        }
        return n
    }

    func seconds(_ key: String, default d: UInt64) throws(SidecarConfig.Error) -> UInt64 {
        try count(key, default: d, range: 1...(365 * 86_400), unit: " seconds")
    }

    func count(_ key: String, default d: UInt64, range: ClosedRange<UInt64>, unit: String = "") throws(SidecarConfig.Error) -> UInt64 {
        guard let v = raw(key) else { return d }
        guard let n = UInt64(v), range.contains(n) else {
            throw .init(variable: key, message: "'\(v.prefix(40))' is invalid: expected a whole number in \(range.lowerBound)...\(range.upperBound)\(unit)")
        }
        return n
    }

    func egressPolicy(_ key: String) throws(SidecarConfig.Error) -> EgressPolicy {
        guard let v = raw(key) else { return EgressPolicy() }
        do {
            return try EgressPolicy(allowlist: v)
        } catch {
            throw .init(variable: key, message: "\(error); expected comma-separated host patterns and networks, e.g. localhost,*.svc.cluster.local,10.0.0.0/8")
        }
    }

    func storageBackend() throws(SidecarConfig.Error) -> SidecarConfig.StorageBackend {
        guard let v = raw("GC_STORAGE_BACKEND") else { return .sqlite }
        switch v.lowercased() {
        case "sqlite":
            return .sqlite
        case "memory":
            return .memory
        case "postgres", "postgresql":
            return .postgres
        default:
            throw .init(variable: "GC_STORAGE_BACKEND", message: "'\(v.prefix(40))' is unknown: allowed values are 'sqlite', 'memory' and 'postgres'")
        }
    }

    /// `DATABASE_URL` in postgres mode, where it is required, and the Raft
    /// settings that have no meaning there refused (a sidecar over a
    /// database has no peers: it must not look like a cluster member).
    func postgresDatabase() throws(SidecarConfig.Error) -> DatabaseURL {
        if raw("GC_PEERS") != nil {
            throw .init(variable: "GC_PEERS", message: "is not used with GC_STORAGE_BACKEND=postgres: sidecars over one database share it and need no peers; unset GC_PEERS (or use GC_STORAGE_BACKEND=sqlite for a Raft cluster)")
        }
        if let state = raw("GC_CLUSTER_STATE"), state.lowercased() != "new" {
            throw .init(variable: "GC_CLUSTER_STATE", message: "'\(state.prefix(40))' is not used with GC_STORAGE_BACKEND=postgres: a sidecar over a database joins nothing; unset GC_CLUSTER_STATE")
        }
        guard let url = raw("DATABASE_URL") else {
            throw .init(variable: "DATABASE_URL", message: "is required with GC_STORAGE_BACKEND=postgres: set it to the database, e.g. \(DatabaseURL.example)")
        }
        return try DatabaseURL(parsing: url)
    }

    func logFormat() throws(SidecarConfig.Error) -> LogFormat {
        guard let v = raw("GC_LOG_FORMAT") else { return .text }
        guard let format = LogFormat(rawValue: v.lowercased()) else {
            throw .init(variable: "GC_LOG_FORMAT", message: "'\(v.prefix(40))' is unknown: allowed values are 'text' and 'json'")
        }
        return format
    }

    func clusterState() throws(SidecarConfig.Error) -> Bool {
        guard let v = raw("GC_CLUSTER_STATE") else { return false }
        switch v.lowercased() {
        case "new": return false
        case "existing": return true
        default: throw .init(variable: "GC_CLUSTER_STATE", message: "'\(v.prefix(40))' is unknown: allowed values are 'new' and 'existing'")
        }
    }

    /// `GC_PEERS`: `name=host:port` items separated by commas; names unique,
    /// and this node (`GC_NODE_ID`) among them.
    func peers(nodeID: String) throws(SidecarConfig.Error) -> [ClusterMember] {
        guard let v = raw("GC_PEERS") else { return [] }
        var members: [ClusterMember] = []
        for item in v.split(separator: ",", omittingEmptySubsequences: true) {
            let text = item.trimmingWhitespaceSubstring()
            guard let member = ClusterMember(parsing: text), ClusterMember.isValidName(member.name) else {
                throw .init(variable: "GC_PEERS", message: "'\(text.prefix(60))' is not name=host:port (e.g. n1=10.0.0.1:50052)")
            }
            guard !members.contains(where: { $0.name == member.name }) else {
                throw .init(variable: "GC_PEERS", message: "node '\(member.name)' is listed twice")
            }
            guard !members.contains(where: { $0.id == member.id }) else {
                throw .init(variable: "GC_PEERS", message: "node names '\(member.name)' and another hash to the same Raft id; rename one")
            }
            members.append(member)
        }
        guard members.contains(where: { $0.name == nodeID }) else {
            throw .init(variable: "GC_PEERS", message: "does not list this node (GC_NODE_ID=\(nodeID)); list every voter, this one included")
        }
        return members
    }

    func path(_ key: String, default d: String) throws(SidecarConfig.Error) -> String {
        guard let v = raw(key) else { return d }
        guard v.utf8.count <= 4096, !v.contains("\0") else {
            throw .init(variable: key, message: "not a usable directory path")
        }
        return v
    }
}

extension Substring {
    func trimmingWhitespaceSubstring() -> String { String(self).trimmingWhitespace() }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
