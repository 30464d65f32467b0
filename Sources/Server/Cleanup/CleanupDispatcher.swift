import LeaseFSM
import Raft
import Logging
import Synchronization

/// Delivers due cleanup jobs and records every outcome through the store.
///
/// At-least-once: a job stays pending in the replicated state until a
/// success or its dead-lettering is committed, so a crash, a lost outcome or a
/// leader change only means the job is delivered again (with the same
/// idempotency key).
///
/// Admission: at most ``CleanupLimits/maxConcurrency`` jobs are in flight,
/// and each endpoint's requests pass its ``EndpointThrottle`` (concurrency,
/// rate, circuit breaker). Jobs of an endpoint that cannot take more stay
/// pending without using an attempt, and do not hold up other endpoints'.
public final class CleanupDispatcher: Sendable {
    let store: any LeaseStore
    let transport: any CleanupTransport
    let timeout: Duration
    let policy: RetryPolicy
    let metrics: SidecarMetrics
    let logger: Logger
    /// Per-endpoint admission (shared with metrics and tests).
    public let throttle: EndpointThrottle
    /// Jobs claimed and not yet finished, with their endpoint permit (nil
    /// once the request is over and only the outcome is being recorded).
    private let inFlight = Mutex<[JobID: EndpointThrottle.Permit?]>([:])
    private let random: Mutex<SplitMix64>
    private let outcomes: OutcomeBatcher

    public init(store: any LeaseStore, transport: any CleanupTransport, timeout: Duration, limits: CleanupLimits,
                metrics: SidecarMetrics, logger: Logger, policy: RetryPolicy = RetryPolicy(),
                seed: UInt64 = UInt64.random(in: .min ... .max)) {
        self.store = store
        self.transport = transport
        self.timeout = timeout
        self.policy = policy
        self.metrics = metrics
        self.logger = logger
        self.random = Mutex(SplitMix64(seed: seed))
        self.outcomes = OutcomeBatcher(store: store)
        self.throttle = EndpointThrottle(limits: limits) { [logger, metrics] endpoint, from, to in
            metrics.recordBreaker(from: from, to: to)
            switch to {
            case .open: logger.warning("cleanup endpoint failing; circuit breaker open, its cleanups wait", metadata: ["endpoint": "\(endpoint)", "cooldown_ms": "\(limits.breakerCooldownMilliseconds)"])
            case .halfOpen: logger.info("probing cleanup endpoint", metadata: ["endpoint": "\(endpoint)"])
            case .closed: logger.info("cleanup endpoint recovered; circuit breaker closed", metadata: ["endpoint": "\(endpoint)"])
            }
        }
    }

    public var limits: CleanupLimits { throttle.limits }

    /// Claims jobs due at `now` that are not in flight, up to the free
    /// global concurrency and what each endpoint admits; they stay claimed
    /// until ``attempt(_:)`` finishes them.
    ///
    /// Nothing is claimed unless this node leads and a quorum confirms it
    /// (a deposed leader cut off from the others must not deliver).
    public func claimDueJobs(now: WallTime) async throws -> [CleanupJob] {
        guard store.mayRunCleanup else { return [] }
        let busy = inFlight.withLock { Set($0.keys) }
        let free = limits.maxConcurrency - busy.count
        // Each look costs the store's actor a query: while busy, wait until
        // an eighth of the slots are free rather than refill them one by one.
        guard free > 0, busy.isEmpty || free >= max(1, limits.maxConcurrency / 8) else { return [] }
        let room = throttle.room(now: now)
        let defaultRoom = throttle.defaultRoom
        let query: @Sendable (LeaseStateMachine) -> [CleanupJob] = { machine in
            machine.dueCleanupJobs(asOf: now, limit: free, room: { room[CleanupEndpointText.origin($0)] ?? defaultRoom }) { busy.contains($0.id) }
        }
        guard try await !store.read(.stale, query).isEmpty else { return [] }
        // A leader cut off from the others may not know yet that it was
        // deposed: confirm with a quorum before delivering anything. Then
        // look again: what is delivered is read after the confirmation, so
        // a job superseded while this node was briefly deposed is not sent.
        guard await store.confirmLeadership(), store.mayRunCleanup else { return [] }
        let due = try await store.read(.stale, query)
        var claimed: [CleanupJob] = []
        for job in due {
            guard let permit = throttle.admit(job.spec.endpoint, now: now) else { continue }
            let taken = inFlight.withLock { flying in
                guard flying[job.id] == nil, flying.count < limits.maxConcurrency else { return false }
                flying[job.id] = permit
                return true
            }
            if taken { claimed.append(job) } else { throttle.cancel(permit) }
        }
        metrics.observeCleanupInFlight(inFlightCount)
        return claimed
    }

    /// Delivers one attempt of a claimed job and proposes its outcome.
    public func attempt(_ job: CleanupJob) async {
        defer {
            let count = inFlight.withLock { flying in
                if case .some(.some(let permit)) = flying.removeValue(forKey: job.id) { throttle.cancel(permit) }
                return flying.count
            }
            metrics.observeCleanupInFlight(count)
        }
        guard let target = job.spec.target else { return }
        let request = CleanupRequest(job: job)
        let result = await transport.deliver(request, to: target, timeout: timeout)
        // Cut short by shutdown: not the target's failure, and not an attempt
        // (the job stays pending; the next leader delivers it).
        if Task.isCancelled { return }
        // The endpoint's slot is free once it answered; the job stays claimed
        // until its outcome is recorded, so it is not sent twice meanwhile.
        let permit = inFlight.withLock { flying in flying.updateValue(nil, forKey: job.id) ?? nil }
        let outcome: LeaseCommand.CleanupOutcome.Result
        switch result {
        case .succeeded:
            if let permit { throttle.finish(permit, targetHealthy: true) }
            outcome = .succeeded
            logger.debug("cleanup delivered", metadata: metadata(job, request.attempt))
        case .failed(let reason, let permanent):
            // A permanent failure is an answer ("this request is wrong"): the
            // target is up. Only silence and server errors trip the breaker.
            if let permit { throttle.finish(permit, targetHealthy: permanent) }
            let delay = random.withLock { rng in
                policy.delayMilliseconds(afterAttempt: request.attempt, baseSeconds: job.spec.retryDelaySeconds, using: &rng)
            }
            outcome = .failed(error: reason, retryAfterMilliseconds: delay, permanent: permanent)
            var meta = metadata(job, request.attempt)
            meta["error"] = "\(reason)"
            let final = permanent || request.attempt > job.spec.maxRetries
            meta["next"] = final ? "dead-letter" : "retry in \(delay) ms"
            logger.warning("cleanup attempt failed", metadata: meta)
        }
        do {
            try await outcomes.commit(.init(jobID: job.id, attempt: request.attempt, result: outcome))
        } catch {
            // The job is still pending in the replicated state: it will be
            // delivered again. Counted so operators see it.
            metrics.recordOutcomeRecordFailure()
            var meta = metadata(job, request.attempt)
            meta["error"] = "\(error)"
            logger.warning("cleanup outcome not recorded; the job will be retried", metadata: meta)
        }
    }

    /// Claims every due job and delivers them concurrently; returns when all
    /// attempts have finished. Returns the number of attempts made.
    @discardableResult
    public func dispatchDue(now: WallTime) async throws -> Int {
        let jobs = try await claimDueJobs(now: now)
        await withDiscardingTaskGroup { group in
            for job in jobs {
                group.addTask { await self.attempt(job) }
            }
        }
        return jobs.count
    }

    /// Jobs being delivered, or whose outcome is being recorded, right now.
    public var inFlightCount: Int { inFlight.withLock { $0.count } }

    private func metadata(_ job: CleanupJob, _ attempt: UInt32) -> Logger.Metadata {
        [
            "job": "\(job.id)", "lease_id": "\(job.leaseID)", "object": "\(job.object)",
            "incarnation": "\(job.incarnation)", "endpoint": "\(CleanupEndpointText.redacted(job.spec.endpoint))",
            "attempt": "\(attempt)",
        ]
    }
}
