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
///
/// Batches: one claim takes every due job the free slots and endpoints
/// admit (after one leadership confirmation), ``deliver(_:)`` sends a claimed
/// batch from one task group, and outcomes are committed many to a log entry
/// (``OutcomeBatcher``); the claims of a committed entry are released, and
/// the in-flight gauge set, once per entry.
public final class CleanupDispatcher: Sendable {
    let store: any LeaseStore & MachineReadable
    let metrics: SidecarMetrics
    let logger: Logger
    /// Sends one attempt and turns the answer into an outcome (shared with
    /// PostgreSQL mode).
    private let delivery: CleanupDelivery
    /// Jobs claimed and not yet finished, with their endpoint permit (nil
    /// once the request is over and only the outcome is being recorded).
    private let inFlight = Mutex<[JobID: EndpointThrottle.Permit?]>([:])
    private let outcomes: OutcomeBatcher<LeaseCommand.CleanupOutcome>
    /// Set once in `init` (the batcher calls back into this dispatcher).
    private let finishedRelay = FinishedRelay()

    public init(store: any LeaseStore & MachineReadable, transport: any CleanupTransport, timeout: Duration, limits: CleanupLimits,
                metrics: SidecarMetrics, logger: Logger, policy: RetryPolicy = RetryPolicy(),
                seed: UInt64 = UInt64.random(in: .min ... .max)) {
        self.store = store
        self.metrics = metrics
        self.logger = logger
        self.delivery = CleanupDelivery(transport: transport, timeout: timeout, limits: limits, metrics: metrics, logger: logger,
                                        policy: policy, seed: seed)
        let relay = finishedRelay
        self.outcomes = OutcomeBatcher(store: store) { ids, error in relay.forward(ids, error) }
        finishedRelay.target.withLock { $0 = { [weak self] ids, error in self?.outcomesFinished(ids, error) } }
    }

    /// Per-endpoint admission (shared with metrics and tests).
    public var throttle: EndpointThrottle { delivery.throttle }
    var transport: any CleanupTransport { delivery.transport }

    public var limits: CleanupLimits { throttle.limits }

    /// Claims jobs due at `now` that are not in flight, up to the free
    /// global concurrency and what each endpoint admits; they stay claimed
    /// until ``deliver(_:)`` (or ``attempt(_:)``) has recorded their outcome.
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
            machine.dueCleanupJobs(asOf: now, limit: free, room: { room[CleanupEndpointText.origin($0)] ?? defaultRoom }, excluding: busy)
        }
        guard try await !store.read(.stale, query).isEmpty else { return [] }
        // A leader cut off from the others may not know yet that it was
        // deposed: confirm with a quorum before delivering anything. Then
        // look again: what is delivered is read after the confirmation, so
        // a job superseded while this node was briefly deposed is not sent.
        guard await store.confirmLeadership(), store.mayRunCleanup else { return [] }
        let due = try await store.read(.stale, query)
        var claimed: [CleanupJob] = []
        claimed.reserveCapacity(due.count)
        var origins: [String: String] = [:]
        for job in due {
            let endpoint = job.spec.endpoint
            let origin = origins[endpoint] ?? CleanupEndpointText.origin(endpoint)
            origins[endpoint] = origin
            guard let permit = throttle.admit(origin: origin, now: now) else { continue }
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

    /// Delivers one attempt of each claimed job in `jobs`, concurrently, and
    /// hands each outcome to the batcher as soon as it is known; returns
    /// once every attempt is over and its outcome committed (or its
    /// proposal failed: the job stays pending and is delivered again).
    ///
    /// A delivery cut short by cancellation (shutdown) records nothing and
    /// uses no attempt; its claim is released at once.
    public func deliver(_ jobs: [CleanupJob]) async {
        guard !jobs.isEmpty else { return }
        let lastTicket: UInt64? = await withTaskGroup(of: UInt64?.self) { group in
            for job in jobs {
                group.addTask { await self.send(job) }
            }
            var last: UInt64?
            for await ticket in group {
                if let ticket { last = max(last ?? 0, ticket) }
            }
            return last
        }
        if let lastTicket { await outcomes.waitUntilFinished(lastTicket) }
    }

    /// Delivers one attempt of a claimed job and commits its outcome.
    public func attempt(_ job: CleanupJob) async {
        await deliver([job])
    }

    /// One attempt of `job`: sends it, settles its endpoint permit and
    /// submits its outcome; returns the outcome's batcher ticket, or nil
    /// when no outcome is recorded (claim already released).
    private func send(_ job: CleanupJob) async -> UInt64? {
        // The endpoint's slot is free once it answered; the job stays claimed
        // until its outcome is recorded, so it is not sent twice meanwhile.
        let outcome = await delivery.attempt(job) {
            inFlight.withLock { flying in flying.updateValue(nil, forKey: job.id) ?? nil }
        }
        // No target, or cut short by shutdown: not an attempt (the job stays
        // pending; the next leader delivers it).
        guard let outcome else {
            release([job.id])
            return nil
        }
        return outcomes.submit(outcome)
    }

    /// Called by the batcher after each proposal: the batch's claims are
    /// released together and the gauge set once.
    private func outcomesFinished(_ ids: [JobID], _ error: (any Error)?) {
        if let error {
            // The jobs are still pending in the replicated state: they will
            // be delivered again. Counted so operators see it.
            for _ in ids { metrics.recordOutcomeRecordFailure() }
            logger.warning("cleanup outcomes not recorded; their jobs will be retried", metadata: [
                "count": "\(ids.count)", "jobs": "\(ids.prefix(10).map(String.init).joined(separator: ","))\(ids.count > 10 ? ",…" : "")",
                "error": "\(error)",
            ])
        }
        release(ids)
    }

    /// Ends the claims of `ids`, handing back any endpoint permit still held
    /// (nothing was sent on it).
    private func release(_ ids: [JobID]) {
        let (unused, count) = inFlight.withLock { flying in
            var unused: [EndpointThrottle.Permit] = []
            for id in ids {
                if case .some(.some(let permit)) = flying.removeValue(forKey: id) { unused.append(permit) }
            }
            return (unused, flying.count)
        }
        for permit in unused { throttle.cancel(permit) }
        metrics.observeCleanupInFlight(count)
    }

    /// Claims every due job and delivers them concurrently; returns when all
    /// attempts have finished. Returns the number of attempts made.
    @discardableResult
    public func dispatchDue(now: WallTime) async throws -> Int {
        let jobs = try await claimDueJobs(now: now)
        await deliver(jobs)
        return jobs.count
    }

    /// Jobs being delivered, or whose outcome is being recorded, right now.
    public var inFlightCount: Int { inFlight.withLock { $0.count } }
}

/// Lets the batcher, created before the dispatcher's `init` finishes, call
/// the dispatcher back without a reference cycle. Set once, in `init`.
private final class FinishedRelay: Sendable {
    let target = Mutex<(@Sendable ([JobID], (any Error)?) -> Void)?>(nil)

    func forward(_ ids: [JobID], _ error: (any Error)?) {
        let target = self.target.withLock { $0 }
        target?(ids, error)
    }
}
