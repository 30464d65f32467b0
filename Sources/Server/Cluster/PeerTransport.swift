import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOPosix
import Raft
import Synchronization

/// This node's connections to the other members, over the peer protocol
/// (proto/raft.proto) on their `GC_RAFT_PORT`.
///
/// Each peer gets one gRPC connection and one long-lived `Stream` RPC that
/// carries batches of Raft messages, forwarded client writes and the
/// leader's replies to them (``PeerTraffic``); when the stream breaks it is reopened
/// with exponential backoff (50 ms doubling to 1 s), the peer is reported
/// unreachable to Raft once, and the outage is logged once. Unary calls
/// (status, admin) share the connection.
///
/// Sending never waits: ``send(_:)`` queues into the peer's bounded
/// ``PeerOutbox``. Nothing here reorders messages to one peer.
public final class PeerTransport: Sendable {
    /// This node.
    public let local: ClusterMember
    private let links = Mutex<[NodeID: PeerLink]>([:])
    private let unreachable = Mutex<Set<NodeID>>([])
    private let logger: Logger
    private let metrics: SidecarMetrics?
    /// How connections to peers are secured (mutual TLS with peer TLS on).
    let security: HTTP2ClientTransport.Posix.TransportSecurity
    /// The loop the connections and their stream tasks run on (the node's
    /// ``NodeEventLoop``), or nil for SwiftNIO's shared group and Swift's pool.
    let eventLoop: NodeEventLoop?
    /// Largest batch put on the stream (the receiver accepts up to 16 MiB).
    static let maxBatchBytes = 4 << 20

    /// Connects to every member of `members` except `local` (lazily: the
    /// connections open when ``start()`` runs).
    ///
    /// - Parameter security: with TLS, each connection presents this node's
    ///   peer certificate and accepts a peer only if its certificate chains
    ///   to the peer CA and names the member dialled (its `GC_PEERS` name).
    /// - Parameter eventLoop: the node's loop, shared with its servers.
    public init(local: ClusterMember, members: [ClusterMember], logger: Logger, metrics: SidecarMetrics? = nil,
                security: HTTP2ClientTransport.Posix.TransportSecurity = .plaintext, eventLoop: NodeEventLoop? = nil) {
        self.local = local
        self.security = security
        self.eventLoop = eventLoop
        self.logger = logger
        self.metrics = metrics
        for member in members where member.id != local.id {
            addMember(member)
        }
    }

    // MARK: Membership

    /// The members this node can reach (not itself).
    public var peers: [ClusterMember] { links.withLock { $0.values.map(\.member) }.sorted { $0.name < $1.name } }

    /// The member with Raft id `id`, this node included.
    public func member(_ id: NodeID) -> ClusterMember? {
        if id == local.id { return local }
        return links.withLock { $0[id]?.member }
    }

    /// Starts talking to `member` (a configuration change added it); an
    /// address change replaces the connection.
    public func addMember(_ member: ClusterMember) {
        guard member.id != local.id else { return }
        let (link, replaced): (PeerLink?, PeerLink?)
        do {
            (link, replaced) = try links.withLock { links -> (PeerLink?, PeerLink?) in
                if let existing = links[member.id], existing.member == member { return (nil, nil) }
                let link = try PeerLink(member: member, local: local, transport: self, logger: logger)
                let old = links.updateValue(link, forKey: member.id)
                return (link, old)
            }
        } catch {
            logger.error("cannot connect to peer; it will be unreachable", metadata: ["peer": "\(member)", "error": "\(error)"])
            return
        }
        replaced?.stop()
        if link != nil { logger.info("peer added", metadata: ["peer": "\(member)"]) }
        if let link, started.withLock({ $0 }) { link.start() }
    }

    /// Stops talking to the member `id` (a configuration change removed it).
    public func removeMember(_ id: NodeID) {
        let link = links.withLock { $0.removeValue(forKey: id) }
        link?.stop()
        if let link { logger.info("peer removed", metadata: ["peer": "\(link.member)"]) }
    }

    private let started = Mutex(false)

    /// Opens the connections and streams.
    public func start() {
        let toStart = links.withLock { links in
            started.withLock { $0 = true }
            return Array(links.values)
        }
        for link in toStart { link.start() }
    }

    /// Closes every connection.
    public func stop() {
        let all = links.withLock { links in
            started.withLock { $0 = false }
            return Array(links.values)
        }
        for link in all { link.stop() }
    }

    // MARK: Raft messages and forwarded writes

    /// Queues `traffic` to `peer`; returns false if some of it was dropped
    /// (an unknown peer, or its outbox is full: Raft treats that as lost).
    @discardableResult
    public func send(_ traffic: [PeerTraffic], to peer: NodeID) -> Bool {
        guard !traffic.isEmpty else { return true }
        guard let link = links.withLock({ $0[peer] }) else { return false }
        let dropped = link.outbox.add(traffic)
        if dropped > 0 { metrics?.recordDroppedPeerMessages(peer: link.member.name, count: dropped) }
        return dropped == 0
    }

    /// Peers whose stream broke since the last call (Raft slows its appends
    /// to them to probes until they answer).
    public func takeUnreachable() -> Set<NodeID> {
        unreachable.withLock { set in
            defer { set.removeAll() }
            return set
        }
    }

    func markUnreachable(_ id: NodeID) {
        _ = unreachable.withLock { $0.insert(id) }
        if let name = member(id)?.name { metrics?.recordPeerFailure(peer: name) }
    }

    // MARK: Unary calls

    /// The status of member `id`, as it reports it.
    public func status(of id: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_PeerStatusResponse {
        let link = try self.link(id)
        return try await link.client.status(DistributedGc_Raft_PeerStatusRequest(), options: Self.options(timeout))
    }

    /// Hands a membership or leadership change to the leader `leader`.
    public func admin(_ request: DistributedGc_Raft_AdminRequest, to leader: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_AdminResponse {
        let link = try self.link(leader)
        return try await link.client.admin(request, options: Self.options(timeout))
    }

    private func link(_ id: NodeID) throws -> PeerLink {
        guard let link = links.withLock({ $0[id] }) else {
            throw RPCError(code: .unavailable, message: "node \(String(id, radix: 16)) is not a known peer")
        }
        return link
    }

    static func options(_ timeout: Duration) -> CallOptions {
        var options = CallOptions.defaults
        options.timeout = timeout
        options.waitForReady = false
        return options
    }
}

/// One peer: its connection, outbox and stream task.
final class PeerLink: Sendable {
    let member: ClusterMember
    let outbox = PeerOutbox()
    let client: DistributedGc_Raft_RaftPeer.Client<HTTP2ClientTransport.Posix>
    private let grpc: GRPCClient<HTTP2ClientTransport.Posix>
    private let local: ClusterMember
    private let logger: Logger
    private let reportDown: @Sendable (NodeID) -> Void
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let isDown = Mutex(false)
    private let executor: (any TaskExecutor)?

    /// - Throws: when no connection can be made for the address (no resolver for it).
    init(member: ClusterMember, local: ClusterMember, transport: PeerTransport, logger: Logger) throws {
        self.member = member
        self.local = local
        self.reportDown = { [weak transport] id in transport?.markUnreachable(id) }
        self.executor = transport.eventLoop?.executor
        var logger = logger
        logger[metadataKey: "peer"] = "\(member.name)"
        self.logger = logger
        // Reconnect quickly: a restarted peer should rejoin within a heartbeat
        // or two (the library's default starts at 1 s and grows to 2 min).
        let grpcTransport = try HTTP2ClientTransport.Posix(
            target: .dns(host: member.host, port: member.port),
            transportSecurity: transport.security,
            config: .defaults {
                $0.backoff = .init(initial: .milliseconds(50), max: .seconds(1), multiplier: 2, jitter: 0.2)
                // The name the peer's certificate must carry (TLS SNI and
                // hostname verification): its member name, not its address.
                $0.http2.authority = member.name
            },
            eventLoopGroup: transport.eventLoop?.group ?? MultiThreadedEventLoopGroup.singleton)
        grpc = GRPCClient(transport: grpcTransport)
        client = DistributedGc_Raft_RaftPeer.Client(wrapping: grpc)
    }

    func start() {
        let grpc = self.grpc
        let connections = Task(executorPreference: executor) { _ = try? await grpc.runConnections() }
        let stream = Task(executorPreference: executor) { await self.streamLoop() }
        tasks.withLock { $0 = [connections, stream] }
    }

    func stop() {
        outbox.close()
        grpc.beginGracefulShutdown()
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }

    /// Keeps one `Stream` RPC open and feeds it from the outbox.
    private func streamLoop() async {
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled {
            let local = self.local
            let outbox = self.outbox
            let wrote = Mutex(false)
            do {
                var options = CallOptions.defaults
                options.waitForReady = false
                _ = try await client.stream(
                    request: StreamingClientRequest(of: DistributedGc_Raft_MessageBatch.self) { writer in
                        while let traffic = await outbox.next(maxBytes: PeerTransport.maxBatchBytes) {
                            try await writer.write(RaftMessageCoding.batch(traffic, from: local))
                            wrote.withLock { $0 = true }
                            self.markUp()
                        }
                    },
                    options: options)
                return  // the outbox closed: this link was stopped
            } catch {
                logger.debug("peer stream ended", metadata: ["error": "\(error)", "backoff": "\(backoff)"])
                if Task.isCancelled { return }
                if wrote.withLock({ $0 }) { backoff = .milliseconds(50) }
                markDown(error)
                outbox.discardQueued()
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(1))
            }
        }
    }

    private func markUp() {
        let wasDown = isDown.withLock { down in
            defer { down = false }
            return down
        }
        if wasDown { logger.info("peer reachable again", metadata: ["address": "\(member.address)"]) }
    }

    private func markDown(_ error: any Error) {
        reportDown(member.id)
        let wasDown = isDown.withLock { down in
            defer { down = true }
            return down
        }
        if !wasDown {
            logger.warning("peer unreachable; retrying with backoff", metadata: ["address": "\(member.address)", "error": "\(error)"])
        }
    }
}
