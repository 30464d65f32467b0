import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaseFSM
import Logging
import Raft
import RaftSQLite
import ServiceLifecycle
import UnixSignals

/// One `gc-sidecar` node: the lease store, the gRPC API, the reaper and
/// cleanup dispatcher, and the metrics endpoint, run as a `ServiceGroup`.
///
/// ```swift
/// let sidecar = Sidecar(config: try SidecarConfig(environment: env), logger: logger)
/// try await sidecar.run()   // until SIGTERM or SIGINT
/// ```
public struct Sidecar: Sendable {
    public let config: SidecarConfig
    public let clock: any WallClock
    public let metrics: SidecarMetrics
    public let store: RaftLeaseStore
    public let service: DistributedGCService
    /// The reaper, the dispatcher and the loops that run them.
    public let cleanup: CleanupService
    public var reaper: Reaper { cleanup.reaper }
    public var dispatcher: CleanupDispatcher { cleanup.dispatcher }
    /// Cluster status, membership and leadership changes.
    public let admin: ClusterAdmin
    /// TLS material and the authorization policy (reloaded on SIGHUP).
    public let security: NodeSecurity
    /// The thread the request path runs on (sockets, handlers, store).
    public let eventLoop: NodeEventLoop
    let logger: Logger

    /// Builds the node; nothing listens until ``run()``.
    ///
    /// - Parameters:
    ///   - clock: wall-clock time for stamps and expiry (tests pass a manual clock).
    ///   - transport: how cleanups are delivered (tests pass a recording one).
    /// - Throws: ``StoreError`` when the data directory or its Raft log
    ///   cannot be opened or restored; ``TLSFileError`` or
    ///   ``AuthPolicyError`` when a configured certificate, key, CA or
    ///   policy file cannot be used.
    public init(config: SidecarConfig, logger: Logger, clock: any WallClock = SystemWallClock(),
                transport: (any CleanupTransport)? = nil, seed: UInt64? = nil) throws {
        var logger = logger
        logger[metadataKey: "node"] = "\(config.nodeID)"
        self.config = config
        self.clock = clock
        self.logger = logger
        let eventLoop = NodeEventLoop.shared
        self.eventLoop = eventLoop
        let metrics = SidecarMetrics()
        self.metrics = metrics
        let security = try NodeSecurity(config: config.security, logger: logger)
        self.security = security
        let cluster = Self.clusterSettings(config, logger: logger, metrics: metrics, security: security, eventLoop: eventLoop)
        // A new leader waits out the old one's term (an election timeout) and
        // the grace before reaping; alone, no other leader can exist.
        let holdOff = (config.isClustered ? cluster.electionTimeout : .zero) + .seconds(Int64(config.limits.cleanupGraceSeconds))
        store = try RaftLeaseStore(
            storage: try Self.openRaftStorage(config, metrics: metrics), limits: config.limits, clock: clock, logger: logger,
            snapshotThreshold: config.snapshotThreshold, cleanupHoldOff: holdOff,
            events: EventHub(retentionBytes: config.eventHistoryBytes, maxWatchers: config.maxWatchers), cluster: cluster,
            seed: seed ?? UInt64.random(in: .min ... .max),
            // In a cluster the loop reads peers' and clients' traffic while
            // the disk syncs; alone, the persist stays on the loop, which
            // measured faster (DESIGN, "Threads").
            persistMode: config.isClustered ? .offloaded(resumeOn: eventLoop) : .inline,
            onApply: { metrics.observe($0) })
        admin = ClusterAdmin(store: store, config: config, logger: logger)
        let egress = CleanupEgress(policy: config.cleanupEgress, onDenied: { metrics.recordEgressDenied(stage: $0) })
        service = DistributedGCService(store: store, clock: clock, metrics: metrics, nodeID: config.nodeID, logger: logger,
                                       egress: egress, leaderName: { [store] in await store.leaderName },
                                       authorizationRequired: security.authenticator != nil, executor: eventLoop.executor)
        Self.addScrapeHooks(config, metrics: metrics, store: store, clock: clock)
        cleanup = CleanupService(
            store: store,
            transport: transport ?? RoutingCleanupTransport(
                http: HTTPCleanupTransport(nodeName: config.nodeID, egress: egress), grpc: GRPCCleanupTransport(egress: egress, tlsCAFile: config.security.cleanupCAFile)),
            settings: .init(
                reapInterval: .seconds(Int64(config.cleanupIntervalSeconds)), reapBatchSize: Int(config.reapBatchSize),
                reapBatchPause: .milliseconds(Int64(config.reapBatchPauseMilliseconds)),
                deliveryTimeout: .seconds(Int64(config.cleanupTimeoutSeconds)), limits: config.cleanupLimits),
            clock: clock, metrics: metrics, logger: logger, seed: seed ?? UInt64.random(in: .min ... .max))
    }

    /// This node, its peers (GC_PEERS) and Raft timing.
    static func clusterSettings(_ config: SidecarConfig, logger: Logger, metrics: SidecarMetrics? = nil,
                                security: NodeSecurity = .insecure, eventLoop: NodeEventLoop? = nil) -> ClusterSettings {
        let local = config.peers.first { $0.name == config.nodeID }
            ?? ClusterMember(name: config.nodeID, host: config.raftHost == "0.0.0.0" ? "127.0.0.1" : config.raftHost, port: config.raftPort)
        let voters: Set<NodeID> = config.joinsExistingCluster ? [] : (config.peers.isEmpty ? [local.id] : Set(config.peers.map(\.id)))
        var settings = ClusterSettings(
            local: local, bootstrapVoters: voters,
            transport: PeerTransport(local: local, members: config.peers, logger: logger, metrics: metrics,
                                     security: security.peerClientSecurity, eventLoop: eventLoop),
            electionTicks: config.electionTicks,
            tickInterval: .milliseconds(Int64(config.heartbeatIntervalMilliseconds)),
            requestTimeout: .milliseconds(Int64(config.requestTimeoutMilliseconds)))
        settings.metrics = metrics
        return settings
    }

    /// The Raft log's home: an SQLite database in `GC_DATA_DIR`, or memory.
    static func openRaftStorage(_ config: SidecarConfig, metrics: SidecarMetrics? = nil) throws -> any RaftStorage {
        switch config.storageBackend {
        case .memory:
            return MemoryStorage()
        case .postgres:
            throw StoreError(.unavailable, "GC_STORAGE_BACKEND=postgres has no Raft log")
        case .sqlite:
            do {
                try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
            } catch {
                throw StoreError(.unavailable, "GC_DATA_DIR: cannot create \(config.dataDirectory): \(error.localizedDescription)")
            }
            let path = (config.dataDirectory as NSString).appendingPathComponent("raft.sqlite")
            do {
                return try SQLiteRaftStorage(path: path, observer: metrics?.storageObserver)
            } catch {
                throw StoreError(.unavailable, "cannot open the Raft log at \(path): \(error)")
            }
        }
    }

    /// The gRPC server for the client API on the configured host and port,
    /// with TLS and authorization when configured.
    ///
    /// - Parameter directUnaryCalls: false serves the hot unary calls through
    ///   GRPCCore too (``DirectUnaryTransport``); for tests.
    public func makeGRPCServer(directUnaryCalls: Bool = true) -> ClientPortServer {
        .clientPort(
            transport: .http2NIOPosix(
                address: .ipv4(host: config.host, port: config.port),
                transportSecurity: security.clientPortSecurity,
                config: .defaults {
                    // Bounds what one connection can hold open at once
                    // (the library default is 4,096 streams).
                    $0.http2.maxConcurrentStreams = Self.maxConcurrentStreamsPerConnection
                },
                eventLoopGroup: eventLoop.group),
            leases: service,
            services: [
                ClusterAdminService(admin: admin, securitySummary: security.summary),
                GRPCHealthService(health: NodeHealth(store: store)),
                BackupService(store: store, clock: clock, nodeName: config.nodeID)],
            metrics: metrics, authenticator: security.authenticator, direct: directUnaryCalls)
    }

    /// Concurrent RPCs one client connection may have open on the client port.
    public static let maxConcurrentStreamsPerConnection = 256

    /// The gRPC server for the peer protocol on `GC_RAFT_HOST:GC_RAFT_PORT`.
    /// It accepts batches up to 16 MiB (senders keep them under 4 MiB).
    public func makePeerServer() -> GRPCServer<HTTP2ServerTransport.Posix> {
        GRPCServer(
            transport: .http2NIOPosix(
                address: .ipv4(host: config.raftHost, port: config.raftPort),
                transportSecurity: security.peerPortSecurity,
                config: .defaults { $0.rpc.maxRequestPayloadSize = 16 << 20 },
                eventLoopGroup: eventLoop.group),
            services: [RaftPeerService(store: store, admin: admin, logger: logger, authorization: peerAuthorization,
                                       executor: eventLoop.executor)])
    }

    /// With peer TLS on, the peer port's check that each caller's certificate
    /// names the member it claims to be.
    var peerAuthorization: PeerAuthorization {
        let transport = store.cluster.transport as? PeerTransport
        let local = store.cluster.local.name
        return PeerAuthorization(enabled: security.peerTLSEnabled, logger: logger, metrics: metrics) {
            Set((transport?.peers ?? []).map(\.name) + [local])
        }
    }

    /// Runs every part of the node until SIGTERM/SIGINT, then shuts down in
    /// reverse order: client API first, cleanup loops next, metrics last.
    public func run() async throws {
        // Restore the log and take office before serving, so the reaper
        // resumes open work after a restart even if no client calls.
        try await store.start()
        let grpc = makeGRPCServer()
        let peerServer = makePeerServer()
        let logger = self.logger
        let config = self.config
        security.warnAboutGaps(logger: logger, clustered: config.isClustered)
        let health = NodeHealth(store: store)
        let statusPage = StatusPage(store: store, admin: admin, dispatcher: dispatcher, security: security, logger: logger)
        // Shutdown runs in reverse: leadership handoff, client API, cleanup,
        // Raft, metrics.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: try MetricsHTTPServer(host: config.metricsHost, port: config.metricsPort, metrics: metrics, logger: logger,
                                              tls: security.metricsCertificate, clientCA: config.security.metricsTLS?.caFile,
                                              health: health, statusPage: statusPage) { port in
                let scheme = config.security.metricsTLS == nil ? "http" : "https"
                logger.info("metrics listening", metadata: ["address": "\(scheme)://\(config.metricsHost):\(port)/metrics"])
            }),
            .init(service: StatusPageSampler(page: statusPage)),
            .init(service: SecurityReloadService(security: security, metrics: metrics, logger: logger)),
            .init(service: PeerServerService(server: peerServer, executor: eventLoop.executor)),
            .init(service: ListeningAnnouncer(address: { try await peerServer.listeningAddress }, host: config.raftHost, what: "peer port", logger: logger)),
            .init(service: RaftTicker(store: store, interval: store.cluster.tickInterval)),
            .init(service: HeapTrimmer()),
        ]
        if let transport = store.cluster.transport as? PeerTransport {
            services.append(.init(service: PeerTransportService(transport: transport)))
        }
        services += [
            .init(service: cleanup),
            .init(service: GRPCServerService(server: grpc, events: store.events, executor: eventLoop.executor)),
            .init(service: ListeningAnnouncer(address: { try await grpc.listeningAddress }, host: config.host, what: "gRPC", logger: logger)),
            // Last, so it hears of a shutdown first: a leader hands over
            // before the node stops serving.
            .init(service: LeadershipHandoffService(admin: admin)),
        ]
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}

/// Logs the gRPC address once the server listens (the port may be 0 = any).
struct ListeningAnnouncer: Service {
    /// The server's bound address, once it listens.
    let address: @Sendable () async throws -> GRPCNIOTransportCore.SocketAddress?
    let host: String
    var what = "gRPC"
    let logger: Logger

    func run() async throws {
        guard let address = try await address() else { return }
        let port = address.ipv4?.port ?? address.ipv6?.port ?? 0
        logger.info("\(what) listening", metadata: ["address": "\(host):\(port)"])
        try? await gracefulShutdown()
    }
}
