import Foundation
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaseFSM
import Logging
import PostgresNIO
import ServiceLifecycle
import UnixSignals

/// One `gc-sidecar` in PostgreSQL mode (`GC_STORAGE_BACKEND=postgres`): a
/// stateless server over the shared database, run as a `ServiceGroup`.
///
/// Every sidecar serves the whole API, reaps, claims and delivers cleanups,
/// numbers and tails events, and keeps a heartbeat row. A database that is
/// down at start is waited for with backoff (shown by `/readyz`), not a
/// crash loop; the schema is migrated on the way (under an advisory lock).
public struct PostgresSidecar: Sendable {
    public let config: SidecarConfig
    public let metrics: SidecarMetrics
    public let client: PostgresClient
    public let store: PostgresLeaseStore
    public let service: DistributedGCService
    public let connector: PostgresConnector
    public let cleanup: PostgresCleanupService
    public let heartbeat: PostgresHeartbeat
    /// `WatchLeases`: numbers new events (`PostgresEventSequencer`), feeds
    /// them into `store.events` (`PostgresEventTail`), prunes old ones.
    public let eventSequencer: PostgresEventSequencer
    public let eventTail: PostgresEventTail
    public let eventRetention: PostgresEventRetention
    public let security: NodeSecurity
    let logger: Logger

    /// Builds the sidecar; nothing connects or listens until ``run()``.
    ///
    /// - Throws: ``DatabaseURL/SetupError`` when `DATABASE_URL`'s TLS
    ///   settings cannot be used; ``TLSFileError`` or ``AuthPolicyError``
    ///   for the client port's certificates or policy.
    public init(config: SidecarConfig, logger: Logger, clock: any WallClock = SystemWallClock(),
                transport: (any CleanupTransport)? = nil) throws {
        guard let database = config.database else {
            throw StoreError(.unavailable, "DATABASE_URL: required with GC_STORAGE_BACKEND=postgres")
        }
        var logger = logger
        logger[metadataKey: "node"] = "\(config.nodeID)"
        self.config = config
        self.logger = logger
        let metrics = SidecarMetrics()
        self.metrics = metrics
        let security = try NodeSecurity(config: config.security, logger: logger)
        self.security = security
        client = PostgresClient(configuration: try database.clientConfiguration(maxConnections: config.maxDatabaseConnections),
                                backgroundLogger: logger)
        connector = PostgresConnector(database: database, migrator: PostgresMigrator(logger: logger), logger: logger)
        // Resumes older than this sidecar's history are read from gc_events,
        // so a watcher may move to any sidecar.
        let eventLog = PostgresEventLog(client: client, logger: logger)
        let events = EventHub(retentionBytes: config.eventHistoryBytes, maxWatchers: config.maxWatchers, backfill: eventLog)
        let eventTail = PostgresEventTail(client: client, log: eventLog, hub: events, logger: logger)
        self.eventTail = eventTail
        eventSequencer = PostgresEventSequencer(client: client, logger: logger, onSequenced: { _ in eventTail.poke() })
        eventRetention = PostgresEventRetention(client: client, logger: logger)
        store = PostgresLeaseStore(client: client, limits: config.limits, events: events, logger: logger)
        let egress = CleanupEgress(policy: config.cleanupEgress, onDenied: { metrics.recordEgressDenied(stage: $0) })
        service = DistributedGCService(store: store, clock: clock, metrics: metrics, nodeID: config.nodeID, logger: logger,
                                       egress: egress, authorizationRequired: security.authenticator != nil)
        cleanup = PostgresCleanupService(
            store: store, owner: config.nodeID,
            transport: transport ?? RoutingCleanupTransport(
                http: HTTPCleanupTransport(nodeName: config.nodeID, egress: egress),
                grpc: GRPCCleanupTransport(egress: egress, tlsCAFile: config.security.cleanupCAFile)),
            timeout: .seconds(Int64(config.cleanupTimeoutSeconds)), limits: config.cleanupLimits,
            reapInterval: .seconds(Int64(config.cleanupIntervalSeconds)), metrics: metrics, logger: logger,
            tuning: PostgresCleanupService.Tuning(claimDuration: config.cleanupClaimDuration))
        let claims = cleanup
        heartbeat = PostgresHeartbeat(store: store, name: config.nodeID, address: "\(config.host):\(config.port)",
                                      poolSize: config.maxDatabaseConnections, claims: { claims.claimsHeld }, logger: logger)
        let store = self.store
        metrics.onScrape { [weak metrics] in
            guard let summary = try? await store.summary(.stale) else { return }
            metrics?.observe(summary)
        }
    }

    /// `/healthz`: the process works (a database outage is not cured by a
    /// restart). `/readyz`: the database answers with a current schema.
    var health: NodeHealth {
        let connector = self.connector, store = self.store
        return NodeHealth(problem: { nil }, notReady: {
            let state = connector.state
            guard state.isReady else { return "database \(state)" }
            return store.healthProblem.map { "database: \($0)" }
        })
    }

    /// The client port: the lease API, `gcctl cluster status` (sidecars and
    /// database), health and reflection.
    public func makeGRPCServer() -> ClientPortServer {
        let heartbeat = self.heartbeat, connector = self.connector, config = self.config
        let cluster = PostgresClusterService(
            nodeName: config.nodeID, securitySummary: security.summary,
            sidecars: {
                try await heartbeat.liveSidecars().map { sidecar in
                    var s = DistributedGc_SidecarStatus()
                    s.name = sidecar.name
                    s.address = sidecar.address
                    s.version = sidecar.version
                    s.startedAtMillis = sidecar.startedAt
                    s.lastSeenMillis = sidecar.lastSeen
                    s.claims = UInt32(clamping: sidecar.claims)
                    return s
                }
            },
            database: {
                var status = DistributedGc_DatabaseStatus()
                status.url = config.database.map { "\($0)" } ?? ""
                status.poolSize = UInt32(clamping: config.maxDatabaseConnections)
                if case .ready(let schema) = connector.state { status.schemaVersion = UInt32(clamping: schema.currentVersion) }
                do {
                    let db = try await heartbeat.databaseStatus()
                    status.reachable = true
                    status.serverVersion = db.serverVersion
                    status.sizeBytes = UInt64(clamping: db.sizeBytes)
                } catch {
                    status.reachable = false
                    status.error = "\(error)"
                }
                return status
            })
        return .clientPort(
            transport: .http2NIOPosix(
                address: .ipv4(host: config.host, port: config.port),
                transportSecurity: security.clientPortSecurity,
                config: .defaults { $0.http2.maxConcurrentStreams = Sidecar.maxConcurrentStreamsPerConnection }),
            leases: service, services: [cluster, GRPCHealthService(health: health)],
            metrics: metrics, authenticator: security.authenticator)
    }

    /// Runs until SIGTERM/SIGINT: the pool, the wait for the database, the
    /// API, reaping and cleanup, events, heartbeat, metrics.
    public func run() async throws {
        let grpc = makeGRPCServer()
        let logger = self.logger, config = self.config
        security.warnAboutGaps(logger: logger, clustered: false)
        let started = StartupGate()
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: try MetricsHTTPServer(host: config.metricsHost, port: config.metricsPort, metrics: metrics, logger: logger,
                                              tls: security.metricsCertificate, clientCA: config.security.metricsTLS?.caFile,
                                              health: health) { port in
                let scheme = config.security.metricsTLS == nil ? "http" : "https"
                logger.info("metrics listening", metadata: ["address": "\(scheme)://\(config.metricsHost):\(port)/metrics"])
            }),
            .init(service: PostgresClientService(client: client)),
            .init(service: SecurityReloadService(security: security, metrics: metrics, logger: logger)),
            .init(service: HeapTrimmer()),
            .init(service: DatabaseStartup(connector: connector, store: store, gate: started, logger: logger)),
            .init(service: AfterStartup(gate: started, service: heartbeat)),
            .init(service: AfterStartup(gate: started, service: cleanup)),
            // Before the gRPC server, so they stop after it (the drain's events are still numbered).
            .init(service: AfterStartup(gate: started, service: eventSequencer)),
            .init(service: AfterStartup(gate: started, service: eventTail)),
            .init(service: AfterStartup(gate: started, service: eventRetention)),
            .init(service: GRPCServerService(server: grpc, events: store.events)),
            .init(service: ListeningAnnouncer(address: { try await grpc.listeningAddress }, host: config.host, what: "gRPC", logger: logger)),
        ]
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Runs the connection pool for the ServiceGroup.
struct PostgresClientService: Service {
    let client: PostgresClient

    func run() async throws {
        await cancelWhenGracefulShutdown { await client.run() }
    }
}

/// Waits for the database (and migrates it), then opens ``StartupGate``.
struct DatabaseStartup: Service {
    let connector: PostgresConnector
    let store: PostgresLeaseStore
    let gate: StartupGate
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            _ = try await connector.connect()
            try await store.prepareForService()
            gate.open()
        }
        try? await gracefulShutdown()
    }
}

/// Runs `service` once the database is ready (nothing to reap or beat before).
struct AfterStartup<Wrapped: Service>: Service {
    let gate: StartupGate
    let service: Wrapped

    func run() async throws {
        guard await gate.wait() else { return }
        try await service.run()
    }
}
