import Foundation
import GCProto
import GRPCCore
import LeaseFSM
import Logging
import Raft

/// The model behind the live status page at `/ui` on the metrics port:
/// gathers a ``StatusSnapshot`` (cluster status from every member via
/// ``ClusterAdmin``, lease and dead-letter counts from the replicated state,
/// cleanup rates from ``RateHistory``), tails lease events, and retries dead
/// letters for operators.
///
/// Any node can serve it: cluster status asks every peer over the peer
/// port, and the lease state is replicated (read through the leader when
/// one is known, else from this node's copy, and the page says so).
public final class StatusPage: Sendable {
    let store: RaftLeaseStore
    let admin: ClusterAdmin
    let dispatcher: CleanupDispatcher?
    let security: NodeSecurity
    let logger: Logger
    /// The cleanup rates' ring buffer, sampled every ``sampleInterval``.
    public let history: RateHistory
    public let sampleInterval: Duration
    /// Dead letters listed on the page, at most (the total is shown too).
    public static let deadLetterListLimit = 100
    /// Dead letters one retry may name, at most (as `RetryDeadLetters`).
    public static let maxRetriesPerCall = DistributedGCService.maxRetriesPerCall

    /// - Parameters:
    ///   - dispatcher: this node's cleanup dispatcher (for in-flight counts and breakers).
    ///   - sampleInterval: how often the cleanup rates are sampled.
    public init(store: RaftLeaseStore, admin: ClusterAdmin, dispatcher: CleanupDispatcher?, security: NodeSecurity,
                logger: Logger, sampleInterval: Duration = .seconds(5), history: RateHistory = RateHistory()) {
        self.store = store
        self.admin = admin
        self.dispatcher = dispatcher
        self.security = security
        self.sampleInterval = sampleInterval
        self.history = history
        var logger = logger
        logger[metadataKey: "component"] = "status-page"
        self.logger = logger
    }

    // MARK: Snapshot

    /// Records the replicated totals as of now into ``history``.
    public func sample() async {
        guard let stats = try? await store.summary(.stale).stats else { return }
        history.record(.init(at: await store.observe().now, stats: stats))
    }

    /// Everything the page shows, as of now. Never throws: a part that
    /// cannot be gathered says why instead (unreachable nodes, stale reads).
    public func snapshot() async -> StatusSnapshot {
        let status = await admin.clusterStatus()
        // Without a leader a linearizable read would only time out.
        let (leases, deadLetters, pending) = await stateView(leaderKnown: !status.leaderID.isEmpty)
        let isLeader = await store.status().role == .leader
        let breakers = (dispatcher?.throttle.breakers ?? [:])
            .filter { $0.value != .closed }
            .map { StatusSnapshot.Breaker(endpoint: $0.key, state: $0.value.rawValue) }
            .sorted { $0.endpoint < $1.endpoint }
        let peerTLS = security.peerTLSEnabled
        let nodes = status.nodes.map { n in
            StatusSnapshot.Node(
                id: n.nodeID, raftAddress: n.raftAddress, role: n.role, membership: n.membership, reachable: n.reachable,
                term: n.term, commitIndex: n.commitIndex, appliedIndex: n.appliedIndex, lastLogIndex: n.lastLogIndex,
                matchIndex: n.matchIndex, lag: n.replicationLag, lastContactMillis: n.lastContactMillis,
                healthy: n.reachable && n.healthy, problem: n.reachable ? n.healthProblem : n.error,
                activeLeases: n.activeLeases, dbSizeBytes: n.dbSizeBytes,
                peerTLS: n.reachable ? peerTLS : nil)
        }
        return StatusSnapshot(
            node: status.answeredBy,
            generatedAt: await store.observe().now.milliseconds,
            security: .init(clientPort: security.summary, peerTLS: peerTLS, metricsTLS: security.metricsCertificate != nil,
                            auth: security.authenticator != nil, retryRequires: retryRequirement),
            cluster: .init(leader: status.leaderID, healthy: status.healthy, nodes: nodes),
            leases: leases,
            cleanup: .init(pending: pending, deadLettered: deadLetters.total, inFlight: dispatcher?.inFlightCount ?? 0,
                           openBreakers: breakers, breakersAuthoritative: isLeader,
                           intervalSeconds: Int(sampleInterval.components.seconds), rates: history.rates),
            deadLetters: deadLetters)
    }

    /// Lease counts and dead letters: through the leader when one is known
    /// (linearizable), else this node's applied state (stale, with why).
    func stateView(leaderKnown: Bool) async -> (StatusSnapshot.Leases, StatusSnapshot.DeadLetters, Int) {
        var staleReason = "no leader known"
        if leaderKnown, await store.status().leaderID != nil {
            do {
                return try await stateView(.linearizable)
            } catch {
                staleReason = "the leader could not confirm a read: \(error)"
            }
        }
        do {
            var view = try await stateView(.stale)
            view.0.consistency = "stale (\(staleReason))"
            return view
        } catch {
            return (.init(active: 0, byService: [], byType: [], consistency: "unavailable: \(error)", appliedIndex: 0),
                    .init(total: 0, items: []), 0)
        }
    }

    /// Lease counts, the first dead letters and the pending cleanups, read
    /// at `consistency` (two reads: the counts, then the dead letters).
    func stateView(_ consistency: ReadConsistency) async throws -> (StatusSnapshot.Leases, StatusSnapshot.DeadLetters, Int) {
        let summary = try await store.summary(consistency)
        let found = try await store.deadLetters(endpoint: nil, limit: Self.deadLetterListLimit, consistency)
        let byService = summary.activeByService.filter { $0.value > 0 }
            .map { StatusSnapshot.Count(name: $0.key, count: $0.value) }.sorted { $0.name < $1.name }
        let byType = summary.activeByType.filter { $0.value > 0 }
            .map { StatusSnapshot.Count(name: $0.key.wireName, count: $0.value) }.sorted { $0.name < $1.name }
        let leases = StatusSnapshot.Leases(active: summary.activeLeases, byService: byService, byType: byType,
                                           consistency: "linearizable", appliedIndex: summary.appliedIndex)
        let items = found.jobs.map { job in
            StatusSnapshot.DeadLetter(
                leaseId: job.leaseID.rawValue, serviceId: job.serviceID, objectType: job.object.type.wireName,
                objectId: job.object.id, endpoint: job.spec.endpoint, attempts: job.attempts, lastError: job.lastError,
                createdAt: job.createdAt.milliseconds, finishedAt: job.finishedAt?.milliseconds)
        }
        return (leases, StatusSnapshot.DeadLetters(total: found.total, items: items), summary.pendingCleanups)
    }

    // MARK: Retry

    /// How an operator is recognised for ``retryDeadLetters(leaseIDs:all:)``.
    var retryRequirement: String {
        guard security.authenticator != nil else { return "none" }
        return security.config.metricsTLS?.caFile != nil ? "operator token or client certificate" : "operator token"
    }

    /// Why a retry was refused, with the HTTP status to answer.
    public struct RetryRefusal: Error, Sendable {
        public var status: Int
        public var message: String
    }

    /// Who may retry: anyone without an authorization policy (as on the
    /// client port); with one, only a caller with the operator role,
    /// recognised by a bearer token (`authorization` header value) or the
    /// metrics port's verified client certificate.
    /// - Returns: the caller's identity (`anonymous` without a policy).
    public func authorizeRetry(authorization: String?, certificate: CertificateNames?) throws(RetryRefusal) -> String {
        guard let authenticator = security.authenticator else { return "anonymous" }
        var metadata = Metadata()
        if let authorization { metadata.addString(authorization, forKey: "authorization") }
        let caller: Caller
        do {
            caller = try authenticator.authenticate(metadata: metadata, certificate: certificate)
        } catch {
            throw RetryRefusal(status: error.code == .permissionDenied ? 403 : 401, message: error.message)
        }
        guard caller.isOperator else {
            authenticator.logDenial(identity: caller.identity, method: "ui/retry-dead-letters", reason: "not an operator")
            throw RetryRefusal(status: 403, message: "identity '\(caller.identity)' is not an operator: retrying dead letters needs the operator role")
        }
        return caller.identity
    }

    /// Retries the dead-lettered cleanups of `leaseIDs` (or every one, up to
    /// ``maxRetriesPerCall``, with `all`), through the log as
    /// `RetryDeadLetters` does. Returns the leases whose cleanup was retried.
    public func retryDeadLetters(leaseIDs: [String], all: Bool, by identity: String) async throws(RetryRefusal) -> [String] {
        let limit = Self.maxRetriesPerCall
        guard all != !leaseIDs.isEmpty else {
            throw RetryRefusal(status: 400, message: "give either leaseIds or all: true")
        }
        guard leaseIDs.count <= limit else {
            throw RetryRefusal(status: 400, message: "at most \(limit) lease ids per retry")
        }
        for id in leaseIDs {
            if let problem = LeaseLimits.checkLeaseID(id) { throw RetryRefusal(status: 400, message: "\(problem)") }
        }
        let ids = leaseIDs.map(LeaseID.init)
        let jobs: [JobID]
        do {
            if all {
                jobs = try await store.deadLetters(endpoint: nil, limit: limit, .linearizable).jobs.map(\.id)
            } else {
                var named: [JobID] = []
                let details = try await store.leaseDetails(ids, .linearizable)
                for id in ids {
                    if let job = details[id]?.cleanupJob, job.state == .deadLettered {
                        named.append(job.id)
                    }
                }
                jobs = named
            }
        } catch {
            throw RetryRefusal(status: 503, message: "cannot read the dead letters now: \(error)")
        }
        guard !jobs.isEmpty else {
            if all { return [] }
            throw RetryRefusal(status: 404, message: "none of the named leases has a dead-lettered cleanup")
        }
        do {
            guard case .deadLettersRetried(let retried) = try await store.propose(.retryDeadLetters(.init(jobIDs: jobs))) else {
                throw RetryRefusal(status: 500, message: "unexpected result from the state machine")
            }
            let leases = try await store.jobs(retried, .stale).map(\.leaseID.rawValue)
            logger.notice("dead-lettered cleanups retried from the status page",
                          metadata: ["count": "\(retried.count)", "identity": "\(identity)"])
            return leases
        } catch let refusal as RetryRefusal {
            throw refusal
        } catch {
            throw RetryRefusal(status: 503, message: "the retry was not committed: \(error); retry")
        }
    }

    // MARK: Events

    /// Log indexes of recent events a new live tail starts with.
    public static let backlogIndexes: UInt64 = 100

    /// Lease events applied on this node after `after` (a browser's
    /// `Last-Event-ID` when it reconnects), else those of the last
    /// ``backlogIndexes`` log indexes and every one from now on. When the
    /// events after `after` are no longer retained, from now on.
    /// - Throws: ``EventHub/WatchError`` (too many watchers, shutting down).
    public func events(after: EventHub.Cursor?) async throws(EventHub.WatchError) -> AsyncThrowingStream<LeaseEvent, any Error> {
        let applied = await store.status().applied
        let start = after ?? EventHub.Cursor(index: applied > Self.backlogIndexes ? applied - Self.backlogIndexes : 0)
        do {
            return try store.events.subscribe(after: start)
        } catch .compacted {
            return try store.events.subscribe(after: nil)
        }
    }

    /// An event's SSE id, `index.position`, and back (``events(after:)``).
    public static func eventID(_ event: LeaseEvent) -> String { "\(event.index).\(event.position)" }

    /// The cursor just after the event whose SSE id is `id`, nil when `id` is not one.
    public static func cursor(afterEventID id: String) -> EventHub.Cursor? {
        let parts = id.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = UInt64(parts[0]), let position = UInt32(parts[1]) else { return nil }
        return EventHub.Cursor(index: index, position: position)
    }

    /// `event` as the page's JSON.
    public static func view(of event: LeaseEvent) -> StatusEvent {
        StatusEvent(index: event.index, position: event.position, kind: kindName(event.kind), leaseId: event.leaseID.rawValue,
                    serviceId: event.serviceID, objectType: event.object.type.wireName, objectId: event.object.id,
                    at: event.at.milliseconds, reason: event.reason, attempt: event.attempt)
    }

    static func kindName(_ kind: LeaseEvent.Kind) -> String {
        switch kind {
        case .created: "created"
        case .renewed: "renewed"
        case .released: "released"
        case .expired: "expired"
        case .cleanupSucceeded: "cleanup_succeeded"
        case .cleanupFailed: "cleanup_failed"
        case .cleanupDeadLettered: "cleanup_dead_lettered"
        case .cleanupSuperseded: "cleanup_superseded"
        case .cleanupRetried: "cleanup_retried"
        }
    }
}
