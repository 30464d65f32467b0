import LeaseFSM
import Logging
import Raft
import Synchronization

/// One delivery attempt of a cleanup job, turned into the outcome the store
/// records: the part of cleanup delivery both backends share (the Raft
/// mode's ``CleanupDispatcher`` and PostgreSQL mode's
/// ``PostgresCleanupService``).
///
/// It owns this sidecar's ``EndpointThrottle`` (per-endpoint concurrency,
/// rate and circuit breaker, with breaker changes logged and counted), the
/// transport with its timeout, and the ``RetryPolicy`` that spaces out
/// retries with jitter. It counts every attempt in the node-local cleanup
/// counters and logs failures; it records nothing in the store itself: how
/// outcomes are committed, and how claims are held, is the caller's.
final class CleanupDelivery: Sendable {
    let transport: any CleanupTransport
    let timeout: Duration
    let policy: RetryPolicy
    let metrics: SidecarMetrics
    let logger: Logger
    /// Per-endpoint admission of this sidecar.
    let throttle: EndpointThrottle
    private let random: Mutex<SplitMix64>

    init(transport: any CleanupTransport, timeout: Duration, limits: CleanupLimits, metrics: SidecarMetrics, logger: Logger,
         policy: RetryPolicy, seed: UInt64) {
        self.transport = transport
        self.timeout = timeout
        self.policy = policy
        self.metrics = metrics
        self.logger = logger
        self.random = Mutex(SplitMix64(seed: seed))
        self.throttle = EndpointThrottle(limits: limits) { [logger, metrics] endpoint, from, to in
            metrics.recordBreaker(from: from, to: to)
            switch to {
            case .open: logger.warning("cleanup endpoint failing; circuit breaker open, its cleanups wait", metadata: ["endpoint": "\(endpoint)", "cooldown_ms": "\(limits.breakerCooldownMilliseconds)"])
            case .halfOpen: logger.info("probing cleanup endpoint", metadata: ["endpoint": "\(endpoint)"])
            case .closed: logger.info("cleanup endpoint recovered; circuit breaker closed", metadata: ["endpoint": "\(endpoint)"])
            }
        }
    }

    /// Sends attempt `job.attempts + 1` of `job` and returns its outcome, or
    /// nil when nothing was attempted: the job has no target, or the
    /// delivery was cut short by cancellation (shutdown: not the target's
    /// failure, and not an attempt). On nil the endpoint permit is still the
    /// caller's to hand back.
    ///
    /// Once the target answered, `takePermit` is called to take the job's
    /// endpoint permit (nil if it has none), which is settled here: a
    /// success or a permanent failure (an answer: the target is up) counts
    /// as healthy, silence and server errors count toward the breaker.
    func attempt(_ job: CleanupJob, takePermit: () -> EndpointThrottle.Permit?) async -> LeaseCommand.CleanupOutcome? {
        guard let target = job.spec.target else { return nil }
        let request = CleanupRequest(job: job)
        let result = await transport.deliver(request, to: target, timeout: timeout)
        if Task.isCancelled { return nil }
        let permit = takePermit()
        let outcome: LeaseCommand.CleanupOutcome.Result
        switch result {
        case .succeeded:
            if let permit { throttle.finish(permit, targetHealthy: true) }
            outcome = .succeeded
            metrics.recordCleanupDelivery(succeeded: true)
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
            metrics.recordCleanupDelivery(succeeded: false, final: final)
            meta["next"] = final ? "dead-letter" : "retry in \(delay) ms"
            logger.warning("cleanup attempt failed", metadata: meta)
        }
        return .init(jobID: job.id, attempt: request.attempt, result: outcome)
    }

    /// The log metadata naming one attempt of `job` (its endpoint redacted).
    func metadata(_ job: CleanupJob, _ attempt: UInt32) -> Logger.Metadata {
        [
            "job": "\(job.id)", "lease_id": "\(job.leaseID)", "object": "\(job.object)",
            "incarnation": "\(job.incarnation)", "endpoint": "\(CleanupEndpointText.redacted(job.spec.endpoint))",
            "attempt": "\(attempt)",
        ]
    }
}
