import CoreMetrics
import LeaseFSM
import Metrics
import Prometheus
import Synchronization

/// The Prometheus metrics of one sidecar (names from SPEC.md, plus a few).
///
/// Lease and cleanup counters mirror the state machine's replicated totals:
/// after every applied command ``observe(_:)`` adds the difference, so the
/// Prometheus counters and `GetMetrics` report the same numbers.
public final class SidecarMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    private let created: CoreMetrics.Counter
    private let renewed: CoreMetrics.Counter
    private let expired: CoreMetrics.Counter
    private let released: CoreMetrics.Counter
    private let cleanupOperations: CoreMetrics.Counter
    private let cleanupFailures: CoreMetrics.Counter
    private let cleanupSucceeded: CoreMetrics.Counter
    private let cleanupDeadLettered: CoreMetrics.Counter
    private let activeLeases: CoreMetrics.Gauge
    private let pendingCleanups: CoreMetrics.Gauge
    private let deadLetters: CoreMetrics.Gauge
    private let proposeFailures: CoreMetrics.Counter
    private let cleanupDeliveryErrors: CoreMetrics.Counter
    private let raftTerm: CoreMetrics.Gauge
    private let raftIsLeader: CoreMetrics.Gauge
    private let raftCommitIndex: CoreMetrics.Gauge
    private let raftAppliedIndex: CoreMetrics.Gauge
    private let leaderChanges: CoreMetrics.Counter
    private let forwardedWrites: CoreMetrics.Counter
    private let cleanupInFlight: CoreMetrics.Gauge
    private let breakerOpened: CoreMetrics.Counter
    private let breakerClosed: CoreMetrics.Counter
    private let openBreakers = Mutex(0)
    private let egressDeniedAtCreate: CoreMetrics.Counter
    private let egressDeniedAtConnect: CoreMetrics.Counter
    private let openBreakersGauge: CoreMetrics.Gauge
    private let peerFailures = Mutex<[String: CoreMetrics.Counter]>([:])
    private let peerDrops = Mutex<[String: CoreMetrics.Counter]>([:])
    private let refusedPeerMessages = Mutex<[String: CoreMetrics.Counter]>([:])
    private let observed = Mutex(LeaseStats())
    private let requestTimers = Mutex<[String: Metrics.Timer]>([:])

    /// Metrics registered in their own `registry` (not the process-global
    /// one), so several sidecars can live in one test process.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        self.factory = factory
        created = CoreMetrics.Counter(label: "gc_leases_created_total", factory: factory)
        renewed = CoreMetrics.Counter(label: "gc_leases_renewed_total", factory: factory)
        expired = CoreMetrics.Counter(label: "gc_leases_expired_total", factory: factory)
        released = CoreMetrics.Counter(label: "gc_leases_released_total", factory: factory)
        cleanupOperations = CoreMetrics.Counter(label: "gc_cleanup_operations_total", factory: factory)
        cleanupFailures = CoreMetrics.Counter(label: "gc_cleanup_failures_total", factory: factory)
        cleanupSucceeded = CoreMetrics.Counter(label: "gc_cleanup_succeeded_total", factory: factory)
        cleanupDeadLettered = CoreMetrics.Counter(label: "gc_cleanup_dead_lettered_total", factory: factory)
        activeLeases = CoreMetrics.Gauge(label: "gc_active_leases", factory: factory)
        pendingCleanups = CoreMetrics.Gauge(label: "gc_cleanup_pending", factory: factory)
        deadLetters = CoreMetrics.Gauge(label: "gc_cleanup_dead_letters", factory: factory)
        proposeFailures = CoreMetrics.Counter(label: "gc_propose_failures_total", factory: factory)
        cleanupDeliveryErrors = CoreMetrics.Counter(label: "gc_cleanup_outcome_record_failures_total", factory: factory)
        raftTerm = CoreMetrics.Gauge(label: "gc_raft_term", factory: factory)
        raftIsLeader = CoreMetrics.Gauge(label: "gc_raft_is_leader", factory: factory)
        raftCommitIndex = CoreMetrics.Gauge(label: "gc_raft_commit_index", factory: factory)
        raftAppliedIndex = CoreMetrics.Gauge(label: "gc_raft_applied_index", factory: factory)
        leaderChanges = CoreMetrics.Counter(label: "gc_raft_leader_changes_total", factory: factory)
        forwardedWrites = CoreMetrics.Counter(label: "gc_forwarded_writes_total", factory: factory)
        cleanupInFlight = CoreMetrics.Gauge(label: "gc_cleanup_in_flight", factory: factory)
        breakerOpened = CoreMetrics.Counter(label: "gc_cleanup_breaker_transitions_total", dimensions: [("to", "open")], factory: factory)
        breakerClosed = CoreMetrics.Counter(label: "gc_cleanup_breaker_transitions_total", dimensions: [("to", "closed")], factory: factory)
        openBreakersGauge = CoreMetrics.Gauge(label: "gc_cleanup_breakers_open", factory: factory)
        egressDeniedAtCreate = CoreMetrics.Counter(label: "gc_cleanup_egress_denied_total", dimensions: [("stage", EgressStage.create.rawValue)], factory: factory)
        egressDeniedAtConnect = CoreMetrics.Counter(label: "gc_cleanup_egress_denied_total", dimensions: [("stage", EgressStage.connect.rawValue)], factory: factory)
    }

    /// Raft's state on this node (`gc_raft_term`, `gc_raft_is_leader`,
    /// `gc_raft_commit_index`, `gc_raft_applied_index`).
    public func observeRaft(term: UInt64, isLeader: Bool, commitIndex: UInt64, appliedIndex: UInt64) {
        raftTerm.record(Int64(clamping: term))
        raftIsLeader.record(isLeader ? 1 : 0)
        raftCommitIndex.record(Int64(clamping: commitIndex))
        raftAppliedIndex.record(Int64(clamping: appliedIndex))
    }

    /// This node saw the leader change (`gc_raft_leader_changes_total`).
    public func recordLeaderChange() { leaderChanges.increment() }

    /// A client write this follower forwarded to the leader (`gc_forwarded_writes_total`).
    public func recordForwardedWrite() { forwardedWrites.increment() }

    /// The stream to `peer` broke (`gc_peer_stream_failures_total{peer=…}`).
    public func recordPeerFailure(peer: String) {
        perPeer(peerFailures, "gc_peer_stream_failures_total", peer).increment()
    }

    /// Messages to `peer` dropped because its outbox was full
    /// (`gc_peer_messages_dropped_total{peer=…}`).
    public func recordDroppedPeerMessages(peer: String, count: Int) {
        perPeer(peerDrops, "gc_peer_messages_dropped_total", peer).increment(by: Int64(count))
    }

    /// A peer's Raft message this node refused (`gc_raft_refused_messages_total{reason=…}`).
    /// Reasons are a fixed set (``PeerRefusals``), not peer input.
    public func recordRefusedPeerMessage(reason: String) {
        refusedPeerMessages.withLock { counters in
            if let c = counters[reason] { return c }
            let c = CoreMetrics.Counter(label: "gc_raft_refused_messages_total", dimensions: [("reason", reason)], factory: factory)
            counters[reason] = c
            return c
        }.increment()
    }

    private func perPeer(_ counters: borrowing Mutex<[String: CoreMetrics.Counter]>, _ label: String, _ peer: String) -> CoreMetrics.Counter {
        counters.withLock { counters in
            if let c = counters[peer] { return c }
            let c = CoreMetrics.Counter(label: label, dimensions: [("peer", peer)], factory: factory)
            counters[peer] = c
            return c
        }
    }

    /// Brings counters and gauges in line with the state after an apply.
    public func observe(_ machine: LeaseStateMachine) {
        let now = machine.stats
        let before = observed.withLock { previous in
            defer { previous = now }
            return previous
        }
        add(created, now.created, before.created)
        add(renewed, now.renewed, before.renewed)
        add(expired, now.expired, before.expired)
        add(released, now.released, before.released)
        add(cleanupOperations, now.cleanupAttempts, before.cleanupAttempts)
        add(cleanupFailures, now.cleanupFailures, before.cleanupFailures)
        add(cleanupSucceeded, now.cleanupSucceeded, before.cleanupSucceeded)
        add(cleanupDeadLettered, now.deadLettered, before.deadLettered)
        activeLeases.record(machine.activeLeaseCount)
        pendingCleanups.record(machine.pendingCleanupCount)
        deadLetters.record(machine.deadLetteredCleanupCount)
    }

    private func add(_ counter: CoreMetrics.Counter, _ now: UInt64, _ before: UInt64) {
        if now > before { counter.increment(by: Int64(clamping: now - before)) }
    }

    /// Records how long one RPC took (`gc_request_duration_seconds{method=…}`).
    public func recordRequest(method: String, duration: Duration) {
        let timer = requestTimers.withLock { timers in
            if let t = timers[method] { return t }
            let t = Metrics.Timer(label: "gc_request_duration_seconds", dimensions: [("method", method)], factory: factory)
            timers[method] = t
            return t
        }
        timer.recordNanoseconds(duration.nanoseconds)
    }

    /// Cleanup jobs claimed by this node's dispatcher (`gc_cleanup_in_flight`).
    public func observeCleanupInFlight(_ count: Int) { cleanupInFlight.record(Int64(count)) }

    /// An endpoint's circuit breaker changed
    /// (`gc_cleanup_breaker_transitions_total{to=open|closed}`, and
    /// `gc_cleanup_breakers_open`: endpoints whose breaker is not closed).
    /// Endpoints are not a label: they can be as many as the leases.
    public func recordBreaker(from: EndpointThrottle.BreakerState, to: EndpointThrottle.BreakerState) {
        if to == .open { breakerOpened.increment() }
        if to == .closed { breakerClosed.increment() }
        let open: Int = openBreakers.withLock { n in
            if from == .closed && to != .closed { n += 1 }
            if from != .closed && to == .closed { n = max(0, n - 1) }
            return n
        }
        openBreakersGauge.record(Int64(open))
    }

    /// A cleanup endpoint refused by the egress policy
    /// (`gc_cleanup_egress_denied_total{stage=create|connect}`).
    public func recordEgressDenied(stage: EgressStage) {
        switch stage {
        case .create: egressDeniedAtCreate.increment()
        case .connect: egressDeniedAtConnect.increment()
        }
    }

    /// A write that could not be proposed (store unavailable).
    public func recordProposeFailure() { proposeFailures.increment() }

    /// A cleanup outcome that could not be recorded (it will be retried).
    public func recordOutcomeRecordFailure() { cleanupDeliveryErrors.increment() }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> String { registry.emitToString() }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }
}
