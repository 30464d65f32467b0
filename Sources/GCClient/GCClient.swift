import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// A client of a gc-sidecar cluster.
///
/// Give it every node's client address; any node serves any call (followers
/// forward writes to the leader). The client sticks to the node that last
/// answered, and moves to the next one when a node is down or answers
/// `UNAVAILABLE` (no leader, leadership moving, shutting down), retrying with
/// backoff until ``Configuration/retryDeadline``.
///
/// It follows leader hints: every ``Configuration/leaderCheckInterval``, and
/// soon after moving on from a failing node, it asks the node it uses which
/// node leads (`HealthCheck.leader_id`) and, when the leader is one of its
/// endpoints, moves there, so writes skip a follower's forwarding hop.
///
/// Retries are safe: every write carries this client's session and a
/// sequence number (`RequestOrigin`), so a create retried after a lost
/// answer returns the lease the first attempt made instead of a second one.
///
/// ```swift
/// try await GCClient.with(endpoints: ["10.0.0.1:50051", "10.0.0.2:50051"]) { client in
///     let lease = try await client.createLease(objectID: "blob-17", objectType: .blobStorage,
///                                              serviceID: "uploader", duration: .seconds(60))
///     ...
/// }
/// ```
public final class GCClient: Sendable {
    public struct Configuration: Sendable {
        /// Bound on one attempt of one call.
        public var callTimeout: Duration = .seconds(5)
        /// Bound on a call with all its retries.
        public var retryDeadline: Duration = .seconds(20)
        /// First pause between attempts (doubles up to one second).
        public var initialBackoff: Duration = .milliseconds(50)
        /// How often the client asks which node leads and moves to it
        /// (nil: never; the client then stays wherever calls succeed).
        public var leaderCheckInterval: Duration? = .seconds(10)
        /// TLS, client certificate and bearer token (default: plaintext).
        public var security: ClientSecurity = .plaintext

        public init() {}
    }

    typealias Stub = DistributedGc_DistributedGCService.Client<HTTP2ClientTransport.Posix>

    struct Node: Sendable {
        var endpoint: String
        var grpc: GRPCClient<HTTP2ClientTransport.Posix>
        var stub: Stub
    }

    /// What the client knows for following leader hints.
    private struct LeaderHints {
        /// Each endpoint's node id, once it answered a health check.
        var nodeIDs: [String?]
        /// When to ask next which node leads.
        var nextCheck: ContinuousClock.Instant
    }

    public let endpoints: [String]
    public let configuration: Configuration
    let nodes: [Node]
    let preferred = Mutex(0)
    private let hints: Mutex<LeaderHints>
    let session = ClientSession()

    /// The endpoint calls go to now (the node that answered last, or the
    /// leader once a hint named it).
    public var currentEndpoint: String { endpoints[preferred.withLock { $0 }] }

    /// - Parameter endpoints: `host:port` of each node's client API.
    /// - Throws: ``GCClientError/invalidEndpoint(_:)`` for a malformed address.
    public init(endpoints: [String], configuration: Configuration = Configuration()) throws {
        guard !endpoints.isEmpty else { throw GCClientError.invalidEndpoint("no endpoints given") }
        self.endpoints = endpoints
        self.configuration = configuration
        nodes = try endpoints.map { endpoint in
            let colon = endpoint.lastIndex(of: ":")
            guard let colon, let port = Int(endpoint[endpoint.index(after: colon)...]), (1...65535).contains(port),
                  colon != endpoint.startIndex else {
                throw GCClientError.invalidEndpoint("'\(endpoint)' is not host:port")
            }
            var host = String(endpoint[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            let transport = try HTTP2ClientTransport.Posix(
                target: resolvableTarget(host: host, port: port), transportSecurity: configuration.security.transportSecurity(),
                config: .defaults {
                    $0.backoff = .init(initial: .milliseconds(50), max: .seconds(1), multiplier: 2, jitter: 0.2)
                    if let name = configuration.security.serverName { $0.http2.authority = name }
                })
            let grpc = GRPCClient(transport: transport, interceptors: configuration.security.interceptors)
            return Node(endpoint: endpoint, grpc: grpc, stub: Stub(wrapping: grpc))
        }
        hints = Mutex(LeaderHints(nodeIDs: Array(repeating: nil, count: endpoints.count), nextCheck: .now))
    }

    /// Runs the connections until ``close()``; run it in a task beside the
    /// code that uses the client (or use ``with(endpoints:configuration:_:)``).
    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let interval = configuration.leaderCheckInterval, nodes.count > 1 {
                group.addTask { await self.followLeaderHints(every: interval) }
            }
            try await withThrowingDiscardingTaskGroup { connections in
                for node in nodes {
                    connections.addTask { try await node.grpc.runConnections() }
                }
            }
            // The connections are closed: no more hints to follow.
            group.cancelAll()
        }
    }

    /// Closes every connection once calls in progress end.
    public func close() {
        for node in nodes { node.grpc.beginGracefulShutdown() }
    }

    /// A client for the duration of `body`.
    public static func with<Result: Sendable>(
        endpoints: [String], configuration: Configuration = Configuration(),
        isolation: isolated (any Actor)? = #isolation,
        _ body: (GCClient) async throws -> Result
    ) async throws -> Result {
        let client = try GCClient(endpoints: endpoints, configuration: configuration)
        let connections = Task { try await client.run() }
        defer {
            client.close()
            connections.cancel()
        }
        return try await body(client)
    }

    // MARK: Calls

    /// Creates a lease; retried safely (applied once).
    public func createLease(_ request: DistributedGc_CreateLeaseRequest) async throws -> DistributedGc_CreateLeaseResponse {
        try await write { stub, origin, options in
            var request = request
            request.origin = origin
            return try await stub.createLease(request, options: options)
        }
    }

    /// Creates a lease of `serviceID` on an object.
    public func createLease(objectID: String, objectType: DistributedGc_ObjectType, serviceID: String, duration: Duration,
                            metadata: [String: String] = [:], cleanup: DistributedGc_CleanupConfig? = nil) async throws -> DistributedGc_CreateLeaseResponse {
        var request = DistributedGc_CreateLeaseRequest()
        request.objectID = objectID
        request.objectType = objectType
        request.serviceID = serviceID
        // Whole seconds on the wire; 0 would mean "the server's default".
        request.leaseDurationSeconds = UInt64(max(1, duration.components.seconds))
        request.metadata = metadata
        if let cleanup { request.cleanupConfig = cleanup }
        return try await createLease(request)
    }

    /// Renews many leases of one service in one call; each succeeds or fails
    /// on its own (see `RenewLeaseResult`).
    ///
    /// - Parameter within: bound on the call with its retries (default
    ///   ``Configuration/retryDeadline``); ``LeaseKeeper`` passes a third of
    ///   the TTL so that a stuck call never delays the next renewal.
    public func renewLeases(_ leaseIDs: [String], serviceID: String, extend: Duration? = nil,
                            within: Duration? = nil) async throws -> [DistributedGc_RenewLeaseResult] {
        var request = DistributedGc_RenewLeasesRequest()
        request.leaseIds = leaseIDs
        request.serviceID = serviceID
        // nil: each lease's own duration (0 on the wire); else whole seconds, at least 1.
        request.extendDurationSeconds = extend.map { UInt64(max(1, $0.components.seconds)) } ?? 0
        return try await write(within: within) { [request] stub, origin, options in
            var request = request
            request.origin = origin
            return try await stub.renewLeases(request, options: options).results
        }
    }

    /// Releases a lease; retried safely.
    public func releaseLease(_ leaseID: String, serviceID: String) async throws {
        var request = DistributedGc_ReleaseLeaseRequest()
        request.leaseID = leaseID
        request.serviceID = serviceID
        _ = try await write { [request] stub, origin, options in
            var request = request
            request.origin = origin
            return try await stub.releaseLease(request, options: options)
        }
    }

    /// The lease, or nil when the cluster does not know it.
    public func getLease(_ leaseID: String, consistency: DistributedGc_ReadConsistency = .linearizable) async throws -> DistributedGc_LeaseInfo? {
        var request = DistributedGc_GetLeaseRequest()
        request.leaseID = leaseID
        request.consistency = consistency
        let response = try await call { [request] stub, options in try await stub.getLease(request, options: options) }
        return response.found ? response.lease : nil
    }

    /// One page of leases (see `ListLeasesRequest`).
    public func listLeases(_ request: DistributedGc_ListLeasesRequest) async throws -> DistributedGc_ListLeasesResponse {
        try await call { stub, options in try await stub.listLeases(request, options: options) }
    }

    public func healthCheck() async throws -> DistributedGc_HealthCheckResponse {
        try await call { stub, options in try await stub.healthCheck(DistributedGc_HealthCheckRequest(), options: options) }
    }

    // MARK: Retrying

    /// Statuses after which another attempt (maybe on another node) may succeed.
    static let retriable: Set<RPCError.Code> = [.unavailable, .deadlineExceeded, .resourceExhausted, .aborted, .unknown]

    /// Node `index` failed a call: calls go to the next node next time (it
    /// may be down, cut off or without a leader), and the client asks soon
    /// which node leads now, rather than stay wherever the rotation lands.
    func moveOn(from index: Int) {
        preferred.withLock { if $0 == index { $0 = (index + 1) % nodes.count } }
        hints.withLock { $0.nextCheck = min($0.nextCheck, .now + .milliseconds(500)) }
    }

    /// A write: one sequence of the session for every attempt.
    private func write<R: Sendable>(
        within: Duration? = nil,
        _ body: @Sendable (Stub, DistributedGc_RequestOrigin, CallOptions) async throws -> R
    ) async throws -> R {
        let sequence = session.open()
        defer { session.close(sequence) }
        return try await call(within: within) { stub, options in try await body(stub, self.session.origin(sequence), options) }
    }

    /// Runs `body` against the preferred node, moving on and retrying with
    /// backoff after a retriable failure, until the retry deadline.
    func call<R: Sendable>(within: Duration? = nil, _ body: @Sendable (Stub, CallOptions) async throws -> R) async throws -> R {
        let bound = within ?? configuration.retryDeadline
        let deadline = ContinuousClock.now + bound
        var backoff = configuration.initialBackoff
        var options = CallOptions.defaults
        options.timeout = min(configuration.callTimeout, bound)
        options.waitForReady = false
        while true {
            let index = preferred.withLock { $0 }
            do {
                return try await body(nodes[index].stub, options)
            } catch let error as RPCError where Self.retriable.contains(error.code) {
                moveOn(from: index)
                guard ContinuousClock.now + backoff < deadline else {
                    throw GCClientError.unavailable(lastError: error, endpoints: endpoints)
                }
                try await Task.sleep(for: backoff * Double.random(in: 0.8...1.2))
                backoff = min(backoff * 2, .seconds(1))
            }
        }
    }
}

// MARK: Leader hints

extension GCClient {
    /// Asks which node leads whenever a check is due, until cancelled (when
    /// the connections close).
    private func followLeaderHints(every interval: Duration) async {
        while !Task.isCancelled {
            let now = ContinuousClock.now
            let due = hints.withLock { h in
                guard h.nextCheck <= now else { return false }
                // The next regular check; a fail-over during this one lowers
                // it again, and that request is kept.
                h.nextCheck = now + interval
                return true
            }
            if due, await !checkLeader() {
                // No leader known or confirmed yet (an election, a node cut
                // off), or a fail-over moved the client meanwhile: look again
                // in about a second, jittered so that clients do not ask in step.
                let retry = ContinuousClock.now + min(interval, .seconds(1)) * Double.random(in: 0.8...1.2)
                hints.withLock { $0.nextCheck = min($0.nextCheck, retry) }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Asks which node leads (the current node first, then the others while
    /// none answers or names one) and moves there when the leader is one of
    /// the endpoints and confirms it: it answers, is healthy and names itself,
    /// so the client never moves to a node that is down, stopped or no longer
    /// leads. Returns whether the client now uses the leader (or the leader
    /// is not one of the endpoints).
    private func checkLeader() async -> Bool {
        let current = preferred.withLock { $0 }
        let order = [current] + nodes.indices.filter { $0 != current }
        for asked in order {
            guard let health = await askHealth(of: asked), !health.leaderID.isEmpty else { continue }
            let leader = health.leaderID
            if health.nodeID == leader {
                guard health.healthy else { continue }
                return asked == current || move(from: current, to: asked)
            }
            var target = hints.withLock { $0.nodeIDs.firstIndex(of: leader) }
            if target == nil {
                // Learn the node ids not known yet (a node down at the last
                // check, or not asked so far).
                let unknown = hints.withLock { h in h.nodeIDs.indices.filter { h.nodeIDs[$0] == nil } }
                for i in unknown where target == nil {
                    if await askHealth(of: i)?.nodeID == leader { target = i }
                }
            }
            // The leader is not one of the endpoints: stay.
            guard let target else { return true }
            guard let own = await askHealth(of: target), own.healthy, own.nodeID == leader, own.leaderID == leader else { continue }
            return target == current || move(from: current, to: target)
        }
        return false
    }

    /// Moves calls from `current` to `target` unless a failing call moved
    /// them meanwhile; returns whether it moved them.
    private func move(from current: Int, to target: Int) -> Bool {
        preferred.withLock { preferred in
            guard preferred == current else { return false }
            preferred = target
            return true
        }
    }

    /// One health check of endpoint `i` (bounded by the call timeout),
    /// remembering its node id; nil when it does not answer.
    private func askHealth(of i: Int) async -> DistributedGc_HealthCheckResponse? {
        var options = CallOptions.defaults
        options.timeout = min(configuration.callTimeout, .seconds(2))
        options.waitForReady = false
        guard let health = try? await nodes[i].stub.healthCheck(DistributedGc_HealthCheckRequest(), options: options) else {
            return nil
        }
        hints.withLock { $0.nodeIDs[i] = health.nodeID.isEmpty ? nil : health.nodeID }
        return health
    }
}

/// Why a ``GCClient`` call failed (besides the node's own `RPCError`s, which
/// are passed through: `INVALID_ARGUMENT`, `NOT_FOUND`, ...).
public enum GCClientError: Error, CustomStringConvertible {
    case invalidEndpoint(String)
    /// No node answered usefully before the retry deadline.
    case unavailable(lastError: RPCError, endpoints: [String])

    public var description: String {
        switch self {
        case .invalidEndpoint(let why): "invalid endpoint: \(why)"
        case .unavailable(let error, let endpoints): "no node of \(endpoints) could serve the call before the deadline (last: \(error.code): \(error.message))"
        }
    }
}
