import LeaseFSM
import Logging
import Synchronization

/// Delivers due cleanup jobs and records every outcome through the store.
///
/// At-least-once: a job stays pending in the replicated state until a
/// success or its dead-lettering is committed, so a crash, a lost outcome or a
/// leader change only means the job is delivered again (with the same
/// idempotency key).
public final class CleanupDispatcher: Sendable {
    let store: any LeaseStore
    let transport: any CleanupTransport
    let timeout: Duration
    let maxConcurrency: Int
    let policy: RetryPolicy
    let metrics: SidecarMetrics
    let logger: Logger
    private let inFlight = Mutex<Set<JobID>>([])
    private let random: Mutex<SplitMix64>

    public init(store: any LeaseStore, transport: any CleanupTransport, timeout: Duration, maxConcurrency: Int,
                metrics: SidecarMetrics, logger: Logger, policy: RetryPolicy = RetryPolicy(),
                seed: UInt64 = UInt64.random(in: .min ... .max)) {
        self.store = store
        self.transport = transport
        self.timeout = timeout
        self.maxConcurrency = maxConcurrency
        self.policy = policy
        self.metrics = metrics
        self.logger = logger
        self.random = Mutex(SplitMix64(seed: seed))
    }

    /// Jobs due at `now` that are not in flight, up to the free concurrency;
    /// they are marked in flight until ``attempt(_:)`` finishes them.
    public func claimDueJobs(now: WallTime) async throws -> [CleanupJob] {
        guard store.mayRunCleanup else { return [] }
        // A leader cut off from the others may not know yet that it was
        // deposed: confirm with a quorum before delivering anything.
        guard await store.confirmLeadership() else { return [] }
        let free = maxConcurrency - inFlight.withLock { $0.count }
        guard free > 0 else { return [] }
        let busy = inFlight.withLock { $0 }
        let due = try await store.read(.stale) { $0.dueCleanupJobs(asOf: now, limit: free + busy.count) }
        return inFlight.withLock { flying in
            var claimed: [CleanupJob] = []
            for job in due where !flying.contains(job.id) && claimed.count < maxConcurrency - flying.count {
                claimed.append(job)
            }
            flying.formUnion(claimed.map(\.id))
            return claimed
        }
    }

    /// Delivers one attempt of a claimed job and proposes its outcome.
    public func attempt(_ job: CleanupJob) async {
        defer { _ = inFlight.withLock { $0.remove(job.id) } }
        guard let target = job.spec.target else { return }
        let request = CleanupRequest(job: job)
        let result = await transport.deliver(request, to: target, timeout: timeout)
        let outcome: LeaseCommand.CleanupOutcome.Result
        switch result {
        case .succeeded:
            outcome = .succeeded
            logger.debug("cleanup delivered", metadata: metadata(job, request.attempt))
        case .failed(let reason, let permanent):
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
            _ = try await store.propose(.cleanupOutcome(.init(jobID: job.id, attempt: request.attempt, result: outcome)))
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

    /// Jobs being delivered right now.
    public var inFlightCount: Int { inFlight.withLock { $0.count } }

    private func metadata(_ job: CleanupJob, _ attempt: UInt32) -> Logger.Metadata {
        [
            "job": "\(job.id)", "lease_id": "\(job.leaseID)", "object": "\(job.object)",
            "incarnation": "\(job.incarnation)", "endpoint": "\(job.spec.httpEndpoint.isEmpty ? job.spec.grpcEndpoint : job.spec.httpEndpoint)",
            "attempt": "\(attempt)",
        ]
    }
}
