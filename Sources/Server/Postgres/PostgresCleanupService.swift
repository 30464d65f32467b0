import Foundation
import LeaseFSM
import Logging
import ServiceLifecycle
import Synchronization

/// Reaping and cleanup delivery of one sidecar in PostgreSQL mode; every
/// sidecar runs one, over the same database (DESIGN.md, "PostgreSQL mode").
///
/// Three loops run until graceful shutdown:
///
/// - **reap** (every `reapInterval`): expires due leases in batches until a
///   batch comes back short (``reapOnce()``). Leases another sidecar is
///   expiring are skipped (`SKIP LOCKED`), never waited for.
/// - **dispatch**: claims due jobs, as many as this sidecar has free
///   delivery slots, leaving out endpoints its ``EndpointThrottle`` cannot
///   admit now and jobs already in hand here; delivers each exactly as Raft
///   mode does (``CleanupDelivery``: transport, timeout, backoff with jitter,
///   per-endpoint concurrency, rate and circuit breaker, all per sidecar);
///   and records the outcomes in batches with their claim token. An outcome
///   whose claim expired and was taken over meanwhile is refused by the
///   store and counted (`gc_pg_outcomes_refused_total`); the job's other
///   delivery is the one that counts. Jobs the throttle refused after they
///   were claimed, and deliveries cut short by shutdown, are given back at
///   once (`releaseClaims`), so any sidecar may take them.
/// - **forget** (every ``Tuning/forgetInterval``): deletes ended leases and
///   finished jobs past their retention, and idle client sessions.
///
/// Delivery is at-least-once with the job's idempotency key: a sidecar that
/// dies holding claims has them taken over when they expire
/// (`gc_pg_claims_taken_over_total`), and its deliveries are made again
/// under the same key.
public final class PostgresCleanupService: Service, Sendable {
    /// Internal knobs, with production defaults (tests shorten them).
    public struct Tuning: Sendable {
        /// Leases expired per transaction (at most 500, the store's cap).
        public var expireBatch: Int
        /// How long a claim holds; nil: ``defaultClaimDuration(timeout:)``.
        public var claimDuration: Duration?
        /// How often retired rows are forgotten.
        public var forgetInterval: Duration
        /// Rows of each kind forgotten per transaction.
        public var forgetBatch: Int
        /// How soon the dispatcher looks again when the last look found
        /// fewer due jobs than it could take (or none).
        public var idlePollInterval: Duration
        /// How soon it looks again when the last look was cut by its free
        /// slots (more may be due), or no slot was free.
        public var busyPollInterval: Duration

        public init(expireBatch: Int = 500, claimDuration: Duration? = nil, forgetInterval: Duration = .seconds(10),
                    forgetBatch: Int = 1_000, idlePollInterval: Duration = .milliseconds(100),
                    busyPollInterval: Duration = .milliseconds(5)) {
            self.expireBatch = max(1, min(expireBatch, 500))
            self.claimDuration = claimDuration
            self.forgetInterval = forgetInterval
            self.forgetBatch = max(1, forgetBatch)
            self.idlePollInterval = idlePollInterval
            self.busyPollInterval = busyPollInterval
        }
    }

    /// The production claim: two delivery timeouts (the request, then
    /// recording its outcome with room to spare) plus ten seconds.
    public static func defaultClaimDuration(timeout: Duration) -> Duration {
        timeout * 2 + .seconds(10)
    }

    let store: PostgresLeaseStore
    /// This sidecar's name, written as the claim owner.
    public let owner: String
    /// How long each claim holds.
    public let claimDuration: Duration
    let tuning: Tuning
    let reapInterval: Duration
    let metrics: SidecarMetrics
    let claimMetrics: PostgresCleanupMetrics
    let logger: Logger
    let clock: any Clock<Duration>
    let wallClock: any WallClock
    private let delivery: CleanupDelivery
    private let flights: Flights
    private let outcomes: OutcomeBatcher<ClaimedOutcome>
    /// The endpoints seen per throttle origin, so an origin that cannot take
    /// more is left out of claims by its endpoints (the store selects on
    /// whole endpoints). Origins the throttle forgot (idle) are dropped.
    private let endpointsByOrigin = Mutex<[String: Set<String>]>([:])
    /// Endpoints remembered per origin; past this, a blocked origin's other
    /// endpoints are claimed and given back.
    static let maxEndpointsPerOrigin = 1_000

    /// - Parameters:
    ///   - store: the database; shared by every sidecar.
    ///   - owner: this sidecar's name (claims and `gcctl cluster status` show it).
    ///   - transport: delivers the requests (HTTP and gRPC); shut down when `run()` returns.
    ///   - timeout: per request (`GC_CLEANUP_TIMEOUT`).
    ///   - limits: global and per-endpoint limits of this sidecar.
    ///   - reapInterval: how often due leases are looked for (`GC_CLEANUP_INTERVAL`).
    ///   - clock: what the loops sleep on (tests pass a fast one).
    ///   - wallClock: the throttle's time (token refills, breaker cool-downs).
    public init(store: PostgresLeaseStore, owner: String, transport: any CleanupTransport, timeout: Duration,
                limits: CleanupLimits, reapInterval: Duration, metrics: SidecarMetrics, logger: Logger,
                policy: RetryPolicy = RetryPolicy(), tuning: Tuning = Tuning(),
                clock: any Clock<Duration> = ContinuousClock(), wallClock: any WallClock = SystemWallClock(),
                seed: UInt64 = UInt64.random(in: .min ... .max)) {
        self.store = store
        self.owner = owner
        self.tuning = tuning
        self.claimDuration = tuning.claimDuration ?? Self.defaultClaimDuration(timeout: timeout)
        self.reapInterval = reapInterval
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
        self.wallClock = wallClock
        let delivery = CleanupDelivery(transport: transport, timeout: timeout, limits: limits, metrics: metrics, logger: logger,
                                       policy: policy, seed: seed)
        let flights = Flights()
        let claimMetrics = PostgresCleanupMetrics(registry: metrics.registry)
        self.delivery = delivery
        self.flights = flights
        self.claimMetrics = claimMetrics
        self.outcomes = OutcomeBatcher(
            jobID: { $0.outcome.jobID },
            record: { batch in
                let result = try await store.recordOutcomes(batch.map { ($0.outcome, $0.token) })
                guard result.refused > 0 else { return }
                claimMetrics.recordRefused(result.refused)
                logger.warning("cleanup outcomes refused: their claims expired and other sidecars took the jobs over", metadata: [
                    "count": "\(result.refused)",
                ])
            },
            onFinished: { ids, error in
                if let error {
                    // The jobs are still pending and claimed: once the claims
                    // expire, a sidecar delivers them again.
                    for _ in ids { metrics.recordOutcomeRecordFailure() }
                    logger.warning("cleanup outcomes not recorded; their jobs will be delivered again once their claims expire", metadata: [
                        "count": "\(ids.count)", "error": "\(error)",
                    ])
                }
                let (unused, count) = flights.remove(ids)
                for permit in unused { delivery.throttle.cancel(permit) }
                metrics.observeCleanupInFlight(count)
            })
    }

    /// This sidecar's per-endpoint admission.
    public var throttle: EndpointThrottle { delivery.throttle }
    public var limits: CleanupLimits { delivery.throttle.limits }

    /// Jobs this sidecar holds claims on now: being delivered, or their
    /// outcome being recorded (the heartbeat reports it).
    public var claimsHeld: Int { flights.count }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                await cancelWhenGracefulShutdown {
                    await repeatingPass("reap", logger: self.logger, clock: self.clock) {
                        try await self.reapOnce()
                        return self.reapInterval
                    }
                }
            }
            group.addTask {
                await cancelWhenGracefulShutdown {
                    await repeatingPass("forget retired rows", logger: self.logger, clock: self.clock) {
                        try await self.forgetRetiredOnce()
                        return self.tuning.forgetInterval
                    }
                }
            }
            group.addTask {
                await cancelWhenGracefulShutdown {
                    await withDiscardingTaskGroup { deliveries in
                        await repeatingPass("dispatch", logger: self.logger, clock: self.clock) {
                            let (claimed, more) = try await self.claimPass()
                            if !claimed.jobs.isEmpty {
                                deliveries.addTask { await self.deliver(claimed) }
                            }
                            return more ? self.tuning.busyPollInterval : self.tuning.idlePollInterval
                        }
                    }
                }
            }
        }
        delivery.transport.shutdown()
    }

    // MARK: Reaping

    /// Expires due leases, a batch per transaction, until a batch comes back
    /// short; returns how many this sidecar expired.
    @discardableResult
    public func reapOnce() async throws -> Int {
        var total = 0
        while !Task.isCancelled {
            let expired = try await store.expireDue(limit: tuning.expireBatch)
            total += expired.count
            metrics.recordExpired(expired.count)
            if expired.count < tuning.expireBatch { break }
        }
        if total > 0 { logger.info("expired leases", metadata: ["count": "\(total)"]) }
        return total
    }

    /// Forgets retired rows until a round deletes less than a batch (at most
    /// ten rounds); returns how many rows were deleted.
    @discardableResult
    public func forgetRetiredOnce() async throws -> Int {
        var total = 0
        for _ in 0..<10 {
            let deleted = try await store.forgetRetired(limit: tuning.forgetBatch)
            total += deleted
            if deleted < tuning.forgetBatch || Task.isCancelled { break }
        }
        if total > 0 { logger.debug("forgot retired rows", metadata: ["count": "\(total)"]) }
        return total
    }

    // MARK: Delivery

    /// Claims due jobs for this sidecar: up to its free delivery slots,
    /// leaving out endpoints its throttle cannot admit now and jobs already
    /// in hand. Each returned job holds an endpoint permit and stays in hand
    /// until ``deliver(_:)`` has recorded its outcome (or given it back);
    /// claimed jobs the throttle refused are given back at once.
    public func claimDue() async throws -> PostgresLeaseStore.ClaimedJobs {
        try await claimPass().claimed
    }

    /// ``claimDue()``, and whether more may be due than it took (the look
    /// was cut by the free slots, or no slot was free).
    private func claimPass() async throws -> (claimed: PostgresLeaseStore.ClaimedJobs, more: Bool) {
        let busy = flights.ids
        let maxConcurrency = limits.maxConcurrency
        let free = maxConcurrency - busy.count
        // Each look is a transaction: while busy, wait until an eighth of the
        // slots are free rather than refill them one by one.
        guard free > 0, busy.isEmpty || free >= max(1, maxConcurrency / 8) else {
            return (PostgresLeaseStore.ClaimedJobs(token: UUID(), jobs: [], takenOver: 0), true)
        }
        let now = wallClock.now()
        let room = throttle.room(now: now)
        let excludedEndpoints: [String] = endpointsByOrigin.withLock { known in
            known = known.filter { room[$0.key] != nil }
            // Jobs with no target have nothing to deliver: never claim them.
            return [""] + room.filter { $0.value == 0 }.keys.flatMap { known[$0] ?? [] }
        }
        let claimed = try await store.claimDueJobs(limit: free, owner: owner, claimFor: claimDuration,
                                                   excludedEndpoints: excludedEndpoints, excludedJobs: Array(busy))
        claimMetrics.recordClaims(claimed.jobs.count, takenOver: claimed.takenOver)
        if claimed.takenOver > 0 {
            logger.info("took over expired cleanup claims of other sidecars", metadata: ["count": "\(claimed.takenOver)"])
        }
        var admitted: [CleanupJob] = []
        var refused: [JobID] = []
        admitted.reserveCapacity(claimed.jobs.count)
        var origins: [String: String] = [:]
        for job in claimed.jobs {
            let endpoint = job.spec.endpoint
            let origin = origins[endpoint] ?? CleanupEndpointText.origin(endpoint)
            origins[endpoint] = origin
            guard let permit = throttle.admit(origin: origin, now: now) else {
                refused.append(job.id)
                continue
            }
            if flights.insert(job.id, Flight(token: claimed.token, permit: permit)) {
                admitted.append(job)
            } else {
                throttle.cancel(permit)
            }
        }
        endpointsByOrigin.withLock { known in
            for (endpoint, origin) in origins where known[origin, default: []].count < Self.maxEndpointsPerOrigin {
                known[origin, default: []].insert(endpoint)
            }
        }
        metrics.observeCleanupInFlight(flights.count)
        if !refused.isEmpty { await giveBack(refused, token: claimed.token) }
        let more = claimed.jobs.count >= free
        return (PostgresLeaseStore.ClaimedJobs(token: claimed.token, jobs: admitted, takenOver: claimed.takenOver), more)
    }

    /// Delivers one attempt of each job of `claimed` (from ``claimDue()``),
    /// concurrently, and hands each outcome to the batcher as soon as it is
    /// known; returns once every attempt is over and its outcome recorded,
    /// refused as stale, or failed to record (the job is delivered again
    /// once its claim expires).
    ///
    /// A delivery cut short by cancellation (shutdown) records nothing,
    /// uses no attempt and gives its claim back.
    public func deliver(_ claimed: PostgresLeaseStore.ClaimedJobs) async {
        guard !claimed.jobs.isEmpty else { return }
        let token = claimed.token
        let (last, unattempted) = await withTaskGroup(of: Sent.self) { group in
            for job in claimed.jobs {
                group.addTask { await self.send(job, token: token) }
            }
            var last: UInt64?
            var unattempted: [JobID] = []
            for await sent in group {
                switch sent {
                case .submitted(let ticket): last = max(last ?? 0, ticket)
                case .notAttempted(let id): unattempted.append(id)
                }
            }
            return (last, unattempted)
        }
        if !unattempted.isEmpty {
            await giveBack(unattempted, token: token)
            let (unused, count) = flights.remove(unattempted)
            for permit in unused { throttle.cancel(permit) }
            metrics.observeCleanupInFlight(count)
        }
        if let last { await outcomes.waitUntilFinished(last) }
    }

    /// Claims due jobs and delivers them; returns when every attempt has
    /// finished and its outcome is recorded. Returns the attempts made.
    @discardableResult
    public func dispatchDue() async throws -> Int {
        let claimed = try await claimDue()
        await deliver(claimed)
        return claimed.jobs.count
    }

    private enum Sent: Sendable {
        case submitted(UInt64)
        case notAttempted(JobID)
    }

    private func send(_ job: CleanupJob, token: UUID) async -> Sent {
        // The endpoint's slot is free once it answered; the job stays in hand
        // (and claimed) until its outcome is recorded.
        let outcome = await delivery.attempt(job) { flights.takePermit(job.id) }
        guard let outcome else { return .notAttempted(job.id) }
        return .submitted(outcomes.submit(ClaimedOutcome(outcome: outcome, token: token)))
    }

    /// Gives the claims of `ids` back in the database so any sidecar may take
    /// them at once. Runs in its own task: the caller may be cancelled
    /// (shutdown) and the claims must still be given back; if that fails,
    /// they are taken over when they expire.
    private func giveBack(_ ids: [JobID], token: UUID) async {
        claimMetrics.recordReleased(ids.count)
        let store = self.store
        let result = await Task { try await store.releaseClaims(ids, token: token) }.result
        if case .failure(let error) = result {
            logger.warning("could not give cleanup claims back; they are taken over when they expire", metadata: [
                "count": "\(ids.count)", "error": "\(error)",
            ])
        }
    }
}

/// One outcome and the claim token it is recorded under.
struct ClaimedOutcome: Sendable {
    var outcome: LeaseCommand.CleanupOutcome
    var token: UUID
}

/// A job in hand: its claim token, and its endpoint permit until the
/// request is over.
private struct Flight: Sendable {
    var token: UUID
    var permit: EndpointThrottle.Permit?
}

/// The jobs one sidecar holds claims on, shared by the service and its
/// outcome batcher (which ends them once recorded).
private final class Flights: Sendable {
    private let flying = Mutex<[JobID: Flight]>([:])

    var count: Int { flying.withLock { $0.count } }
    var ids: Set<JobID> { flying.withLock { Set($0.keys) } }

    /// Adds `id`; false if it is already in hand.
    func insert(_ id: JobID, _ flight: Flight) -> Bool {
        flying.withLock { all in
            guard all[id] == nil else { return false }
            all[id] = flight
            return true
        }
    }

    /// Takes the endpoint permit of `id` (the request is over).
    func takePermit(_ id: JobID) -> EndpointThrottle.Permit? {
        flying.withLock { all in
            let permit = all[id]?.permit
            all[id]?.permit = nil
            return permit
        }
    }

    /// Ends `ids`; returns the permits still held (nothing was sent on them)
    /// and how many jobs remain in hand.
    func remove(_ ids: [JobID]) -> (unused: [EndpointThrottle.Permit], remaining: Int) {
        flying.withLock { all in
            var unused: [EndpointThrottle.Permit] = []
            for id in ids {
                if let permit = all.removeValue(forKey: id)?.permit { unused.append(permit) }
            }
            return (unused, all.count)
        }
    }
}
