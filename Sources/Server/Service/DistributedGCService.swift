import Foundation
import GCProto
import GRPCCore
import LeaseFSM
import Logging

/// The client API (`distributed_gc.DistributedGCService`): validates each
/// request, turns writes into commands for ``LeaseStore/propose(_:)`` and
/// answers reads from the typed questions of ``LeaseReads``.
///
/// Errors a caller can fix come back as a non-OK status whose message names
/// the field and what to change; they change nothing.
public struct DistributedGCService: DistributedGc_DistributedGCService.SimpleServiceProtocol {
    /// Page size when a list asks for 0, and the most one page may hold.
    public static let defaultPageSize = 100
    public static let maxPageSize = 1000
    /// Bytes of leases one page may hold (below gRPC's 4 MiB message limit).
    public static let maxPageBytes = 2 << 20

    let store: any LeaseStore
    let clock: any WallClock
    let metrics: SidecarMetrics
    let nodeID: String
    let startedAt: WallTime
    let logger: Logger
    /// The cleanup egress policy endpoints are checked against at create time.
    let egress: CleanupEgress
    let leaderName: @Sendable () async -> String?
    /// Whether every call must carry an authenticated ``Caller`` (set by
    /// ``AuthorizationInterceptor``), checked per service here.
    let authorizationRequired: Bool
    /// Folds the renewals of every `KeepAlive` stream into few log entries
    /// (one per service instance, so one per node).
    public let renewals: RenewalBatcher

    /// - Parameters:
    ///   - egress: cleanup endpoints it denies are refused with INVALID_ARGUMENT.
    ///   - leaderName: the leader's node id as this node knows it (nil while
    ///     none is known), reported by `HealthCheck` as a hint for clients.
    ///   - authorizationRequired: calls without an authenticated caller are
    ///     refused, and each caller reaches only the services the policy
    ///     grants it (the server must install ``AuthorizationInterceptor``).
    ///   - executor: where renewal batches are proposed from (the node's event loop).
    public init(store: any LeaseStore, clock: any WallClock, metrics: SidecarMetrics, nodeID: String, logger: Logger,
                egress: CleanupEgress = CleanupEgress(),
                leaderName: @escaping @Sendable () async -> String? = { nil }, authorizationRequired: Bool = false,
                executor: (any TaskExecutor)? = nil) {
        self.authorizationRequired = authorizationRequired
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.nodeID = nodeID
        self.startedAt = clock.now()
        self.logger = logger
        self.egress = egress
        self.leaderName = leaderName
        self.renewals = RenewalBatcher(store: store, executor: executor)
    }

    // MARK: Writes

    public func createLease(request: DistributedGc_CreateLeaseRequest, context: ServerContext) async throws -> DistributedGc_CreateLeaseResponse {
        try await timed("CreateLease") {
            try authorizeWrite(request.serviceID, context)
            guard let type = ObjectType(wire: request.objectType) else {
                throw RPCError(code: .invalidArgument, message: "object_type: \(request.objectType.rawValue) is not a known object type (0 to 6, e.g. DATABASE_ROW)")
            }
            let cleanup = request.hasCleanupConfig ? CleanupSpec(wire: request.cleanupConfig) : nil
            if let problem = egress.problem(with: cleanup) { throw RPCError(code: .invalidArgument, message: problem) }
            let command = LeaseCommand.create(.init(
                leaseIDSuffix: Self.randomSuffix(), object: ObjectKey(type: type, id: request.objectID),
                serviceID: request.serviceID, durationSeconds: request.leaseDurationSeconds,
                metadata: request.metadata, cleanup: cleanup))
            guard case .created(let lease) = try await propose(command, origin: try origin(request.hasOrigin ? request.origin : nil, context)) else { throw unexpected() }
            var response = DistributedGc_CreateLeaseResponse()
            response.leaseID = lease.id.rawValue
            response.expiresAt = .init(lease.expiresAt)
            response.success = true
            response.fencingToken = lease.fencingToken
            response.incarnation = lease.incarnation
            return response
        }
    }

    public func renewLease(request: DistributedGc_RenewLeaseRequest, context: ServerContext) async throws -> DistributedGc_RenewLeaseResponse {
        try await timed("RenewLease") {
            try authorizeWrite(request.serviceID, context)
            let command = LeaseCommand.renew(.init(
                leaseIDs: [LeaseID(request.leaseID)], serviceID: request.serviceID,
                extendSeconds: request.extendDurationSeconds))
            guard case .renewed(let outcomes) = try await propose(command, origin: try origin(request.hasOrigin ? request.origin : nil, context)), let outcome = outcomes.first else {
                throw unexpected()
            }
            let lease = try outcome.result.get()
            var response = DistributedGc_RenewLeaseResponse()
            response.newExpiresAt = .init(lease.expiresAt)
            response.success = true
            response.fencingToken = lease.fencingToken
            return response
        }
    }

    public func renewLeases(request: DistributedGc_RenewLeasesRequest, context: ServerContext) async throws -> DistributedGc_RenewLeasesResponse {
        try await timed("RenewLeases") {
            try authorizeWrite(request.serviceID, context)
            let command = LeaseCommand.renew(.init(
                leaseIDs: request.leaseIds.map(LeaseID.init), serviceID: request.serviceID,
                extendSeconds: request.extendDurationSeconds))
            guard case .renewed(let outcomes) = try await propose(command, origin: try origin(request.hasOrigin ? request.origin : nil, context)) else { throw unexpected() }
            var response = DistributedGc_RenewLeasesResponse()
            response.results = outcomes.map { outcome in
                var r = DistributedGc_RenewLeaseResult()
                r.leaseID = outcome.leaseID.rawValue
                switch outcome.result {
                case .success(let lease):
                    r.success = true
                    r.newExpiresAt = .init(lease.expiresAt)
                    r.fencingToken = lease.fencingToken
                case .failure(let error):
                    r.errorCode = error.code.description
                    r.errorMessage = error.message
                }
                return r
            }
            return response
        }
    }

    public func releaseLease(request: DistributedGc_ReleaseLeaseRequest, context: ServerContext) async throws -> DistributedGc_ReleaseLeaseResponse {
        try await timed("ReleaseLease") {
            try authorizeWrite(request.serviceID, context)
            let command = LeaseCommand.release(.init(leaseID: LeaseID(request.leaseID), serviceID: request.serviceID))
            guard case .released = try await propose(command, origin: try origin(request.hasOrigin ? request.origin : nil, context)) else { throw unexpected() }
            var response = DistributedGc_ReleaseLeaseResponse()
            response.success = true
            return response
        }
    }

    // MARK: Reads

    public func getLease(request: DistributedGc_GetLeaseRequest, context: ServerContext) async throws -> DistributedGc_GetLeaseResponse {
        try await timed("GetLease") {
            if let error = LeaseLimits.checkLeaseID(request.leaseID) { throw error }
            let id = LeaseID(request.leaseID)
            let asOf = clock.now()
            let readable = try authorizedCaller(context)?.readableServices
            let detail = try await read { try await store.leaseDetail(id, ReadConsistency(wire: request.consistency)) }
            var response = DistributedGc_GetLeaseResponse()
            var hidden = false
            if let detail {
                if let readable, !readable.contains(detail.lease.serviceID) {
                    hidden = true
                } else {
                    response.found = true
                    response.lease = DistributedGc_LeaseInfo(detail, asOf: asOf)
                }
            }
            if hidden, let caller = context.caller {
                // Another service's lease: say so without naming the service.
                throw deny(.leasesRead, caller, "lease '\(id)' (it belongs to a service this identity does not hold)")
            }
            return response
        }
    }

    public func listLeases(request: DistributedGc_ListLeasesRequest, context: ServerContext) async throws -> DistributedGc_ListLeasesResponse {
        try await timed("ListLeases") {
            var filter = try Self.filter(for: request)
            if let caller = try authorizedCaller(context) {
                if !request.serviceID.isEmpty, !caller.mayRead(request.serviceID) {
                    throw deny(.leasesRead, caller, "service '\(request.serviceID)'")
                }
                filter.serviceIDs = caller.readableServices
            }
            let query = filter
            let limit = request.limit == 0 ? Self.defaultPageSize : min(Int(request.limit), Self.maxPageSize)
            let after: LeaseID?
            if request.pageToken.isEmpty {
                after = nil
            } else {
                guard let decoded = PageToken.decode(request.pageToken) else {
                    throw RPCError(code: .invalidArgument, message: "page_token: not a token returned by ListLeases; pass next_page_token unchanged, or empty for the first page")
                }
                after = decoded
            }
            let asOf = clock.now()
            let page = try await read {
                try await store.listLeases(query, after: after, limit: limit, ReadConsistency(wire: request.consistency))
            }
            var response = DistributedGc_ListLeasesResponse()
            var bytes = 0
            var next = page.next
            for detail in page.leases {
                let info = DistributedGc_LeaseInfo(detail, asOf: asOf)
                // Keep a page under the reply budget (large metadata and
                // payloads): the rest comes with the next page.
                bytes += info.serializedSize
                if bytes > Self.maxPageBytes, !response.leases.isEmpty {
                    next = response.leases.last.map { LeaseID($0.leaseID) }
                    break
                }
                response.leases.append(info)
            }
            response.nextPageToken = next.map(PageToken.encode) ?? ""
            return response
        }
    }

    static func filter(for request: DistributedGc_ListLeasesRequest) throws -> LeaseStateMachine.LeaseFilter {
        var filter = LeaseStateMachine.LeaseFilter()
        if !request.serviceID.isEmpty { filter.serviceID = request.serviceID }
        if !request.objectID.isEmpty { filter.objectID = request.objectID }
        if !request.cleanupEndpoint.isEmpty { filter.cleanupEndpoint = request.cleanupEndpoint }
        if request.objectType != .unknown {
            guard let type = ObjectType(wire: request.objectType) else {
                throw RPCError(code: .invalidArgument, message: "object_type: \(request.objectType.rawValue) is not a known object type")
            }
            filter.objectType = type
        }
        if !request.states.isEmpty {
            filter.states = Set(try request.states.map { wire in
                guard let s = Lease.State(wire: wire) else {
                    throw RPCError(code: .invalidArgument, message: "states: \(wire.rawValue) is not a lease state (ACTIVE, EXPIRED, RELEASED)")
                }
                return s
            })
        } else if request.state != .active {
            guard let s = Lease.State(wire: request.state) else {
                throw RPCError(code: .invalidArgument, message: "state: \(request.state.rawValue) is not a lease state (ACTIVE, EXPIRED, RELEASED)")
            }
            filter.states = [s]
        }
        if !request.cleanupStates.isEmpty {
            filter.cleanupStates = Set(try request.cleanupStates.map { wire in
                guard let s = LeaseCleanupState(wire: wire) else {
                    throw RPCError(code: .invalidArgument, message: "cleanup_states: \(wire.rawValue) is not a cleanup state")
                }
                return s
            })
        }
        return filter
    }

    public func healthCheck(request: DistributedGc_HealthCheckRequest, context: ServerContext) async throws -> DistributedGc_HealthCheckResponse {
        try await timed("HealthCheck") {
            let version = SidecarVersion.current
            let (nodeID, startedAt) = (self.nodeID, self.startedAt)
            let problem = store.healthProblem
            let leader = await self.leaderName() ?? ""
            let summary = try await store.summary(.stale)
            var response = DistributedGc_HealthCheckResponse()
            response.healthy = problem == nil
            response.version = version
            response.activeLeases = UInt64(summary.activeLeases)
            response.expiredLeases = summary.stats.expired
            response.uptime = .init(startedAt)
            response.nodeID = nodeID
            response.pendingCleanups = UInt64(summary.pendingCleanups)
            response.deadLetteredCleanups = UInt64(summary.deadLetteredCleanups)
            response.appliedIndex = summary.appliedIndex
            response.leaderID = leader
            return response
        }
    }

    public func getMetrics(request: DistributedGc_MetricsRequest, context: ServerContext) async throws -> DistributedGc_MetricsResponse {
        try await timed("GetMetrics") {
            let readable = try authorizedCaller(context)?.readableServices
            let summary = try await store.summary(.stale)
            let s = summary.stats
            var response = DistributedGc_MetricsResponse()
            response.totalLeasesCreated = s.created
            response.totalLeasesRenewed = s.renewed
            response.totalLeasesExpired = s.expired
            response.totalLeasesReleased = s.released
            response.totalCleanupOperations = s.cleanupAttempts
            response.failedCleanupOperations = s.cleanupFailures
            response.activeLeases = UInt64(summary.activeLeases)
            response.leasesByService = summary.activeByService
                .filter { readable?.contains($0.key) ?? true }.mapValues { UInt64($0) }
            response.leasesByType = Dictionary(uniqueKeysWithValues: summary.activeByType.map { ($0.key.wireName, UInt64($0.value)) })
            response.pendingCleanups = UInt64(summary.pendingCleanups)
            response.deadLetteredCleanups = UInt64(summary.deadLetteredCleanups)
            response.succeededCleanups = s.cleanupSucceeded
            return response
        }
    }

    public func watchLeases(request: DistributedGc_WatchLeasesRequest, response: RPCWriter<DistributedGc_LeaseEvent>, context: ServerContext) async throws {
        let types = Set(request.objectTypes.compactMap(ObjectType.init(wire:)))
        guard types.count == Set(request.objectTypes.map(\.rawValue)).count else {
            throw RPCError(code: .invalidArgument, message: "object_types: contains a value that is not a known object type")
        }
        let caller = try authorizedCaller(context)
        if let caller, !request.serviceID.isEmpty, !caller.mayRead(request.serviceID) {
            throw deny(.leasesRead, caller, "service '\(request.serviceID)'")
        }
        let readable = caller?.readableServices
        let stream: AsyncThrowingStream<LeaseEvent, any Error>
        do {
            let after: EventHub.Cursor? = request.afterIndex == 0 && !request.hasAfterPosition
                ? nil : EventHub.Cursor(index: request.afterIndex, position: request.hasAfterPosition ? request.afterPosition : nil)
            stream = try store.events.subscribe(after: after)
        } catch .compacted(let requested, let oldest) {
            throw Self.compacted(requested, oldest)
        } catch .tooManyWatchers(let limit) {
            throw RPCError(code: .resourceExhausted, message: "GC_MAX_WATCHERS: this node serves \(limit) watchers already; retry later or on another node")
        } catch {
            throw RPCError(code: .unavailable, message: "cannot watch now (\(error)); retry, possibly on another node")
        }
        let serviceID = request.serviceID
        do {
            // gRPC reports a client's cancellation through the context, not by
            // cancelling this task: race the stream against it.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await event in stream {
                        if !serviceID.isEmpty && event.serviceID != serviceID { continue }
                        if let readable, !readable.contains(event.serviceID) { continue }
                        if !types.isEmpty && !types.contains(event.object.type) { continue }
                        try await response.write(DistributedGc_LeaseEvent(event))
                    }
                }
                group.addTask { try await context.cancellation.cancelled }
                try await group.next()
                group.cancelAll()
            }
        } catch EventHub.WatchError.tooSlow(let last) {
            throw RPCError(code: .resourceExhausted, message: "watcher fell too far behind; resume with \(last)")
        } catch EventHub.WatchError.closed(let last) {
            throw RPCError(code: .unavailable, message: "node is shutting down; resume with \(last)")
        } catch EventHub.WatchError.compacted(let requested, let oldest) {
            // This node installed a snapshot past the watcher's position.
            throw Self.compacted(requested, oldest)
        } catch is CancellationError {
            return
        }
    }

    static func compacted(_ requested: UInt64, _ oldest: UInt64) -> RPCError {
        RPCError(code: .outOfRange, message: "after_index \(requested): events before index \(oldest) are no longer retained on this node; list the current leases and watch from 0 (or resume on a node that retains them)")
    }

    // MARK: Helpers

    /// The authenticated caller; nil when authorization is off (every
    /// caller may do everything).
    func authorizedCaller(_ context: ServerContext) throws -> Caller? {
        guard authorizationRequired else { return nil }
        guard let caller = context.caller else {
            throw RPCError(code: .unauthenticated, message: "no authenticated caller: present a client certificate (mTLS) or an 'authorization: Bearer <token>' header")
        }
        return caller
    }

    /// Refuses a lease write for a service the caller does not hold.
    func authorizeWrite(_ serviceID: String, _ context: ServerContext) throws {
        guard let caller = try authorizedCaller(context), !caller.mayWrite(serviceID) else { return }
        throw deny(.leasesWrite, caller, "service '\(serviceID)'")
    }

    func deny(_ permission: Permission, _ caller: Caller, _ detail: String) -> RPCError {
        metrics.recordAuthDecision(method: "per-service", decision: "denied")
        return .denied(permission, caller, detail)
    }

    func propose(_ command: LeaseCommand, origin: ClientOrigin? = nil) async throws -> CommandResult {
        do {
            let result = try await store.propose(command, origin: origin)
            metrics.recordServed(result)
            return result
        } catch let error as LeaseError {
            throw RPCError(error)
        } catch let error as StoreError {
            metrics.recordProposeFailure()
            logger.warning("write not applied", metadata: ["error": "\(error)"])
            throw RPCError(error)
        }
    }

    /// A request's `origin`, checked, in the caller's own namespace when
    /// authorization is on: one identity can never name (replay, or
    /// acknowledge away) another's session.
    func origin(_ wire: DistributedGc_RequestOrigin?, _ context: ServerContext) throws -> ClientOrigin? {
        guard var origin = try Self.origin(wire) else { return nil }
        if let caller = try authorizedCaller(context) {
            origin.clientID = "client:" + caller.identity + "/" + String(origin.clientID.dropFirst("client:".count))
        }
        return origin
    }

    /// A request's `origin`, checked (nil when the client sent none).
    static func origin(_ wire: DistributedGc_RequestOrigin?) throws -> ClientOrigin? {
        guard let wire else { return nil }
        guard !wire.clientID.isEmpty, wire.clientID.utf8.count <= 128 else {
            throw RPCError(code: .invalidArgument, message: "origin.client_id: must be 1 to 128 bytes (one random id per client process)")
        }
        guard wire.sequence >= 1 else {
            throw RPCError(code: .invalidArgument, message: "origin.sequence: number writes from 1")
        }
        guard wire.firstUnacknowledged <= wire.sequence else {
            throw RPCError(code: .invalidArgument, message: "origin.first_unacknowledged: \(wire.firstUnacknowledged) is above sequence \(wire.sequence); it names the oldest write still waiting for its answer")
        }
        // Prefixed so a client can never name (and disturb) a node's own
        // forwarding session, whose ids are "<node>/<nonce>".
        return ClientOrigin(clientID: "client:" + wire.clientID, sequence: wire.sequence, firstUnacknowledged: wire.firstUnacknowledged)
    }

    /// Runs one of the store's reads; a store that cannot answer becomes UNAVAILABLE.
    func read<R>(_ body: () async throws -> R) async throws -> R {
        do {
            return try await body()
        } catch let error as StoreError {
            throw RPCError(error)
        }
    }

    func timed<R>(_ method: String, _ body: () async throws -> R) async throws -> R {
        let start = ContinuousClock.now
        defer { metrics.recordRequest(method: method, duration: ContinuousClock.now - start) }
        return try await body()
    }

    func unexpected() -> RPCError {
        RPCError(code: .internalError, message: "the store answered with a result of the wrong kind")
    }

    /// 8 random lowercase hex digits for a new lease id.
    static func randomSuffix() -> String {
        let hex = String(UInt32.random(in: .min ... .max), radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}

/// `ListLeases` page tokens: the last returned lease id, base64url-encoded so
/// clients treat it as opaque.
enum PageToken {
    static func encode(_ id: LeaseID) -> String {
        Data(id.rawValue.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    static func decode(_ token: String) -> LeaseID? {
        guard token.utf8.count <= 1024 else { return nil }
        let b64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard let data = Data(base64Encoded: b64), let s = String(data: data, encoding: .utf8), !s.isEmpty else { return nil }
        return LeaseID(s)
    }
}

/// The version reported by `HealthCheck`.
public enum SidecarVersion {
    public static let current = "0.1.0"
}
