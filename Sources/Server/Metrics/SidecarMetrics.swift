import LeaseFSM
import Prometheus
import Synchronization

/// The Prometheus metrics of one sidecar; every family carries `# HELP`.
///
/// Two kinds of numbers, under distinct names (the README's metrics table
/// says which is which):
///
/// - **Node-local** counters count what *this node* did: the lease calls it
///   served (`gc_leases_created_total`, …), the leases its reaper expired, the
///   cleanup deliveries its dispatcher attempted. Summing them over the pods
///   gives the cluster's rate.
/// - **Cluster-wide** numbers (`gc_cluster_*`) mirror the replicated state
///   machine, so every node reports the same value: after every applied
///   command ``observe(_:)`` brings them in line (the totals `GetMetrics`
///   reports). Aggregate them with `max`, never `sum`. `gc_active_leases`,
///   `gc_cleanup_pending` and `gc_cleanup_dead_letters` are gauges of that
///   same state, kept under their first names.
public final class SidecarMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    // Node-local lease and cleanup counters (the product's original metric names).
    private let created: Counter
    private let renewed: Counter
    private let expired: Counter
    private let released: Counter
    private let cleanupOperations: Counter
    private let cleanupFailures: Counter
    private let cleanupSucceeded: Counter
    private let cleanupDeadLettered: Counter

    // Cluster-wide: the replicated state machine's totals and gauges.
    private let clusterCreated: Counter
    private let clusterRenewed: Counter
    private let clusterExpired: Counter
    private let clusterReleased: Counter
    private let clusterCleanupAttempts: Counter
    private let clusterCleanupFailures: Counter
    private let clusterCleanupSucceeded: Counter
    private let clusterDeadLettered: Counter
    private let clusterActiveLeases: Gauge
    private let clusterPendingCleanups: Gauge
    private let clusterDeadLetters: Gauge
    private let activeLeases: Gauge
    private let pendingCleanups: Gauge
    private let deadLetters: Gauge

    private let proposeFailures: Counter
    private let cleanupDeliveryErrors: Counter
    private let raftTerm: Gauge
    private let raftIsLeader: Gauge
    private let raftCommitIndex: Gauge
    private let raftAppliedIndex: Gauge
    private let leaderChanges: Counter
    private let forwardedWrites: Counter
    private let cleanupInFlight: Gauge
    private let breakerOpened: Counter
    private let breakerClosed: Counter
    private let openBreakers = Mutex(0)
    private let egressDeniedAtCreate: Counter
    private let egressDeniedAtConnect: Counter
    private let openBreakersGauge: Gauge
    private let peerFailures = Mutex<[String: Counter]>([:])
    private let peerDrops = Mutex<[String: Counter]>([:])
    private let refusedPeerMessages = Mutex<[String: Counter]>([:])
    private let observed = Mutex(LeaseStats())
    private let requestTimers = Mutex<[String: DurationHistogram]>([:])
    /// Process, storage and gRPC families (see their files).
    let process: ProcessMetrics
    let storage: StorageMetrics
    let grpc: GRPCServerMetrics
    let expiryLag: ExpiryLagMetric
    private let scrapeHooks = Mutex<[@Sendable () async -> Void]>([])

    /// Duration buckets, 100 µs to 10 s.
    static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
    ]

    /// Metrics registered in their own `registry` (not the process-global
    /// one), so several sidecars can live in one test process.
    ///
    /// - Parameter build: what `gc_build_info` reports (version and commit).
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), build: BuildInfo = .current) {
        self.registry = registry
        let r = registry
        func counter(_ name: String, _ help: String) -> Counter { r.counter(name, help: help) }
        func gauge(_ name: String, _ help: String) -> Gauge { r.gauge(name, help: help) }
        let nodeLocal = " Node-local: sum over nodes for the cluster."
        let clusterWide = " Cluster-wide (replicated state, the same on every node): aggregate with max, not sum."

        created = counter("gc_leases_created_total", "Leases created by calls this node served." + nodeLocal)
        renewed = counter("gc_leases_renewed_total", "Lease renewals (RenewLease, RenewLeases, KeepAlive) this node served." + nodeLocal)
        expired = counter("gc_leases_expired_total", "Leases this node's reaper expired (only a leader reaps)." + nodeLocal)
        released = counter("gc_leases_released_total", "Leases released by calls this node served." + nodeLocal)
        cleanupOperations = counter("gc_cleanup_operations_total", "Cleanup deliveries this node's dispatcher attempted." + nodeLocal)
        cleanupFailures = counter("gc_cleanup_failures_total", "Cleanup deliveries by this node that failed (to be retried or dead-lettered)." + nodeLocal)
        cleanupSucceeded = counter("gc_cleanup_succeeded_total", "Cleanup deliveries by this node that succeeded." + nodeLocal)
        cleanupDeadLettered = counter("gc_cleanup_dead_lettered_total", "Cleanup deliveries by this node whose failure was final (dead letter)." + nodeLocal)

        clusterCreated = counter("gc_cluster_leases_created_total", "Leases ever created in the cluster." + clusterWide)
        clusterRenewed = counter("gc_cluster_leases_renewed_total", "Lease renewals ever applied in the cluster." + clusterWide)
        clusterExpired = counter("gc_cluster_leases_expired_total", "Leases ever expired in the cluster." + clusterWide)
        clusterReleased = counter("gc_cluster_leases_released_total", "Leases ever released in the cluster." + clusterWide)
        clusterCleanupAttempts = counter("gc_cluster_cleanup_attempts_total", "Cleanup attempts with a recorded outcome in the cluster." + clusterWide)
        clusterCleanupFailures = counter("gc_cluster_cleanup_failures_total", "Failed cleanup attempts recorded in the cluster." + clusterWide)
        clusterCleanupSucceeded = counter("gc_cluster_cleanup_succeeded_total", "Successful cleanup attempts recorded in the cluster." + clusterWide)
        clusterDeadLettered = counter("gc_cluster_cleanup_dead_lettered_total", "Cleanup jobs ever dead-lettered in the cluster." + clusterWide)
        clusterActiveLeases = gauge("gc_cluster_leases_active", "Active leases in the cluster." + clusterWide)
        clusterPendingCleanups = gauge("gc_cluster_cleanup_pending", "Cleanup jobs waiting for delivery in the cluster." + clusterWide)
        clusterDeadLetters = gauge("gc_cluster_cleanup_dead_letters", "Dead-lettered cleanup jobs in the cluster (retry them with gcctl dlq)." + clusterWide)
        activeLeases = gauge("gc_active_leases", "Active leases; the same as gc_cluster_leases_active." + clusterWide)
        pendingCleanups = gauge("gc_cleanup_pending", "Pending cleanup jobs; the same as gc_cluster_cleanup_pending." + clusterWide)
        deadLetters = gauge("gc_cleanup_dead_letters", "Dead-lettered cleanup jobs; the same as gc_cluster_cleanup_dead_letters." + clusterWide)

        proposeFailures = counter("gc_propose_failures_total", "Client writes this node could not propose (store unavailable).")
        cleanupDeliveryErrors = counter("gc_cleanup_outcome_record_failures_total", "Cleanup outcomes this node could not record (the job is retried).")
        raftTerm = gauge("gc_raft_term", "This node's current Raft term.")
        raftIsLeader = gauge("gc_raft_is_leader", "1 when this node is the Raft leader, else 0.")
        raftCommitIndex = gauge("gc_raft_commit_index", "Highest Raft log index this node knows committed.")
        raftAppliedIndex = gauge("gc_raft_applied_index", "Highest Raft log index this node applied to its state machine.")
        leaderChanges = counter("gc_raft_leader_changes_total", "Leader changes this node saw.")
        forwardedWrites = counter("gc_forwarded_writes_total", "Client writes this follower forwarded to the leader.")
        cleanupInFlight = gauge("gc_cleanup_in_flight", "Cleanup jobs this node's dispatcher has claimed and not finished.")
        let transitions = "Circuit breaker transitions of cleanup endpoints on this node."
        breakerOpened = r.counter("gc_cleanup_breaker_transitions_total", labels: [("to", "open")], help: transitions)
        breakerClosed = r.counter("gc_cleanup_breaker_transitions_total", labels: [("to", "closed")], help: transitions)
        openBreakersGauge = gauge("gc_cleanup_breakers_open", "Cleanup endpoints whose circuit breaker is not closed on this node.")
        let denied = "Cleanup endpoints refused by the egress policy, at create or at connect."
        egressDeniedAtCreate = r.counter("gc_cleanup_egress_denied_total", labels: [("stage", EgressStage.create.rawValue)], help: denied)
        egressDeniedAtConnect = r.counter("gc_cleanup_egress_denied_total", labels: [("stage", EgressStage.connect.rawValue)], help: denied)

        r.gauge("gc_build_info", labels: [("version", build.version), ("commit", build.commit)],
                    help: "Always 1; the labels name the running build.").set(1.0)
        process = ProcessMetrics(registry: r)
        storage = StorageMetrics(registry: r)
        grpc = GRPCServerMetrics(registry: r)
        expiryLag = ExpiryLagMetric(registry: r)
    }

    // MARK: Help texts of families whose series are made on first use

    static let peerFailuresHelp = "Peer streams from this node that broke, by peer."
    static let peerDropsHelp = "Raft messages to a peer dropped because its outbox was full, by peer."
    static let refusedHelp = "Peer Raft messages this node refused, by reason."
    static let requestHelp = "Lease API call latency on this node, by method (successes and failures)."

    /// Raft's state on this node (`gc_raft_term`, `gc_raft_is_leader`,
    /// `gc_raft_commit_index`, `gc_raft_applied_index`).
    public func observeRaft(term: UInt64, isLeader: Bool, commitIndex: UInt64, appliedIndex: UInt64) {
        raftTerm.record(Int64(clamping: term))
        raftIsLeader.set(isLeader ? 1.0 : 0.0)
        raftCommitIndex.record(Int64(clamping: commitIndex))
        raftAppliedIndex.record(Int64(clamping: appliedIndex))
    }

    /// This node saw the leader change (`gc_raft_leader_changes_total`).
    public func recordLeaderChange() { leaderChanges.increment() }

    /// A client write this follower forwarded to the leader (`gc_forwarded_writes_total`).
    public func recordForwardedWrite() { forwardedWrites.increment() }

    /// The stream to `peer` broke (`gc_peer_stream_failures_total{peer=…}`).
    public func recordPeerFailure(peer: String) {
        labelled(peerFailures, "gc_peer_stream_failures_total", "peer", peer, Self.peerFailuresHelp).increment()
    }

    /// Messages to `peer` dropped because its outbox was full
    /// (`gc_peer_messages_dropped_total{peer=…}`).
    public func recordDroppedPeerMessages(peer: String, count: Int) {
        labelled(peerDrops, "gc_peer_messages_dropped_total", "peer", peer, Self.peerDropsHelp).increment(by: Int64(count))
    }

    /// A peer's Raft message this node refused (`gc_raft_refused_messages_total{reason=…}`).
    /// Reasons are a fixed set (``PeerRefusals``), not peer input.
    public func recordRefusedPeerMessage(reason: String) {
        labelled(refusedPeerMessages, "gc_raft_refused_messages_total", "reason", reason, Self.refusedHelp).increment()
    }

    private func labelled(_ counters: borrowing Mutex<[String: Counter]>, _ name: String, _ label: String,
                          _ value: String, _ help: String) -> Counter {
        counters.withLock { counters in
            if let c = counters[value] { return c }
            let c = registry.counter(name, labels: [(label, value)], help: help)
            counters[value] = c
            return c
        }
    }

    // MARK: Node-local lease and cleanup work

    /// A lease write this node served was applied: counts the created,
    /// renewed (each successful renewal of a batch) or released lease.
    public func recordServed(_ result: CommandResult) {
        switch result {
        case .created: created.increment()
        case .renewed(let outcomes):
            let ok = outcomes.reduce(0) { n, outcome in
                if case .success = outcome.result { return n + 1 }
                return n
            }
            if ok > 0 { renewed.increment(by: Int64(ok)) }
        case .released: released.increment()
        default: break
        }
    }

    /// One renewal this node served on a `KeepAlive` stream succeeded.
    public func recordKeepAliveRenewal() { renewed.increment() }

    /// This node's reaper expired `count` leases (`gc_leases_expired_total`).
    public func recordExpired(_ count: Int) {
        if count > 0 { expired.increment(by: Int64(count)) }
    }

    /// One cleanup delivery by this node and how it went
    /// (`gc_cleanup_operations_total` and one of `gc_cleanup_succeeded_total`
    /// or `gc_cleanup_failures_total`; `final` failures also count in
    /// `gc_cleanup_dead_lettered_total`).
    public func recordCleanupDelivery(succeeded: Bool, final: Bool = false) {
        cleanupOperations.increment()
        if succeeded {
            cleanupSucceeded.increment()
        } else {
            cleanupFailures.increment()
            if final { cleanupDeadLettered.increment() }
        }
    }

    // MARK: Cluster-wide state

    /// Brings the cluster-wide counters and gauges in line with the state
    /// after an apply.
    public func observe(_ machine: LeaseStateMachine) {
        observeTotals(machine.stats, active: machine.activeLeaseCount, pending: machine.pendingCleanupCount,
                      deadLettered: machine.deadLetteredCleanupCount)
    }

    /// The same from a store's ``StoreSummary`` (PostgreSQL mode, at each scrape).
    public func observe(_ summary: StoreSummary) {
        observeTotals(summary.stats, active: summary.activeLeases, pending: summary.pendingCleanups,
                      deadLettered: summary.deadLetteredCleanups)
    }

    private func observeTotals(_ now: LeaseStats, active activeCount: Int, pending pendingCount: Int, deadLettered deadCount: Int) {
        let before = observed.withLock { previous in
            defer { previous = now }
            return previous
        }
        add(clusterCreated, now.created, before.created)
        add(clusterRenewed, now.renewed, before.renewed)
        add(clusterExpired, now.expired, before.expired)
        add(clusterReleased, now.released, before.released)
        add(clusterCleanupAttempts, now.cleanupAttempts, before.cleanupAttempts)
        add(clusterCleanupFailures, now.cleanupFailures, before.cleanupFailures)
        add(clusterCleanupSucceeded, now.cleanupSucceeded, before.cleanupSucceeded)
        add(clusterDeadLettered, now.deadLettered, before.deadLettered)
        let active = Int64(activeCount)
        let pending = Int64(pendingCount)
        let dead = Int64(deadCount)
        activeLeases.record(active)
        clusterActiveLeases.record(active)
        pendingCleanups.record(pending)
        clusterPendingCleanups.record(pending)
        deadLetters.record(dead)
        clusterDeadLetters.record(dead)
    }

    private func add(_ counter: Counter, _ now: UInt64, _ before: UInt64) {
        if now > before { counter.increment(by: Int64(clamping: now - before)) }
    }

    /// Records how long one RPC took (`gc_request_duration_seconds{method=…}`).
    public func recordRequest(method: String, duration: Duration) {
        let histogram = requestTimers.withLock { timers in
            if let t = timers[method] { return t }
            let t = registry.durationHistogram(
                "gc_request_duration_seconds", labels: [("method", method)], buckets: Self.durationBuckets,
                help: Self.requestHelp)
            timers[method] = t
            return t
        }
        histogram.record(duration)
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

    /// How far behind the reaper is, in seconds since the most overdue
    /// active lease should have expired (`gc_cluster_expiry_lag_seconds`).
    public func observeExpiryLag(seconds: Double) {
        expiryLag.set(seconds)
    }

    // MARK: Exposition

    /// Adds work to run before each ``scrape()`` (values read on demand,
    /// such as the expiry lag or the database size).
    public func onScrape(_ hook: @escaping @Sendable () async -> Void) {
        scrapeHooks.withLock { $0.append(hook) }
    }

    /// Refreshes the on-demand values (process, storage, the ``onScrape(_:)``
    /// hooks), then returns the exposition: what `GET /metrics` serves.
    public func scrape() async -> String {
        for hook in scrapeHooks.withLock({ $0 }) { await hook() }
        return exposition()
    }

    /// The Prometheus text exposition of every metric, with the process
    /// metrics read now (the ``onScrape(_:)`` hooks are not run).
    public func exposition() -> String {
        process.refresh()
        return registry.emitToString()
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }
}
