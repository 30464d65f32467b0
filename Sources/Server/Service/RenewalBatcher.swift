import LeaseFSM
import Synchronization

/// Group commit of lease renewals, node-wide: the renewals of every
/// `KeepAlive` stream that arrive while a batch is committing are folded into
/// the next batch, one ``LeaseCommand/renewals(_:)`` log entry.
///
/// Each batch goes through ``LeaseStore/propose(_:origin:)`` like any write
/// (on a follower the store forwards it to the leader), so a renewal is
/// answered OK only once its entry is committed on a majority and applied:
/// as durable as a `RenewLease`, unlike etcd's keepalives, which live in the
/// leader's memory.
///
/// Bounds: at most ``maxInFlight`` batches are being proposed at once, each
/// of at most ``maxBatch`` renewals; at most ``maxQueued`` renewals wait for
/// a batch, and ``submit(_:_:)`` refuses more (RESOURCE_EXHAUSTED for the
/// caller) instead of growing without bound.
public final class RenewalBatcher: Sendable {
    /// What a renewal came to: its new expiry, or why not (a ``LeaseError``
    /// for this item, or the ``StoreError`` that failed its whole batch).
    public typealias Outcome = Result<Renewed, any Error>
    /// Called once per submitted renewal, from the task that proposed its
    /// batch; must be quick (hand the result on, do not wait).
    public typealias Completion = @Sendable (Outcome) -> Void

    /// Most renewals in one log entry.
    public let maxBatch: Int
    /// Most batches being proposed at once.
    public let maxInFlight: Int
    /// Most renewals waiting for a batch.
    public let maxQueued: Int

    private let store: any LeaseStore
    private let executor: (any TaskExecutor)?
    private let state = Mutex(State())

    private struct Pending: Sendable {
        var renewal: LeaseCommand.Renewal
        var done: Completion
    }

    private struct State: Sendable {
        var queue = GroupCommitQueue<Pending>()
        var entries: UInt64 = 0
        var renewals: UInt64 = 0
    }

    /// What the batcher has done so far (for metrics and tests).
    public struct Stats: Hashable, Sendable {
        /// Log entries proposed.
        public var entries: UInt64
        /// Renewals those entries carried.
        public var renewals: UInt64
        /// Renewals waiting for a batch now.
        public var queued: Int
        /// Batches being proposed now.
        public var inFlight: Int
    }

    /// - Parameters:
    ///   - maxBatch: renewals per entry, 1 to ``LeaseLimits/maxRenewalsPerEntry``.
    ///   - maxInFlight: batches proposed at once (at least 1). One by
    ///     default: measured on a 3-node cluster with 64 streams, two in
    ///     flight per node halved the batch size (about 5 renewals per entry)
    ///     while the cluster's entry rate, not its latency, was the limit.
    ///   - maxQueued: renewals waiting at most (at least `maxBatch`).
    ///   - executor: where batches are proposed from (the node's event loop).
    public init(store: any LeaseStore, executor: (any TaskExecutor)? = nil, maxBatch: Int = LeaseLimits.maxRenewalsPerEntry, maxInFlight: Int = 1,
                maxQueued: Int = 16 * LeaseLimits.maxRenewalsPerEntry) {
        self.store = store
        self.executor = executor
        self.maxBatch = min(max(1, maxBatch), LeaseLimits.maxRenewalsPerEntry)
        self.maxInFlight = max(1, maxInFlight)
        self.maxQueued = max(maxQueued, self.maxBatch)
    }

    public var stats: Stats {
        state.withLock { Stats(entries: $0.entries, renewals: $0.renewals, queued: $0.queue.waiting.count, inFlight: $0.queue.inFlight) }
    }

    /// Queues `renewal` for the next batch; `done` gets its outcome once the
    /// batch is applied (or failed). Returns false, without calling `done`,
    /// when ``maxQueued`` renewals are already waiting.
    ///
    /// The renewal should be well formed (``LeaseLimits/validate(_:)-(LeaseCommand.Renewal)``);
    /// a malformed one fails alone when applied.
    public func submit(_ renewal: LeaseCommand.Renewal, _ done: @escaping Completion) -> Bool {
        // nil: queued, a batch in flight will take it; []: refused (full);
        // otherwise the batch this call starts.
        let start: [Pending]? = state.withLock { s in
            guard s.queue.waiting.count < maxQueued else { return [] }
            return s.queue.add(Pending(renewal: renewal, done: done), maxInFlight: maxInFlight, maxBatch: maxBatch)
        }
        guard let start else { return true }
        if start.isEmpty { return false }
        Task(executorPreference: executor) { await self.propose(first: start) }
        return true
    }

    /// Proposes `first`, then whatever queued meanwhile, until the queue is
    /// empty; then gives its in-flight slot back.
    private func propose(first: [Pending]) async {
        var batch = first
        while !batch.isEmpty {
            await commit(batch)
            batch = state.withLock { $0.queue.next(maxBatch: maxBatch) }
        }
    }

    private func commit(_ batch: [Pending]) async {
        state.withLock { s in
            s.entries += 1
            s.renewals += UInt64(batch.count)
        }
        let results: [Result<Renewed, LeaseError>]
        do {
            guard case .renewals(let applied) = try await store.propose(.renewals(batch.map(\.renewal)), origin: nil),
                  applied.count == batch.count else {
                throw StoreError(.unavailable, "the store answered a renewals batch with a result of the wrong kind")
            }
            results = applied
        } catch {
            for item in batch { item.done(.failure(error)) }
            return
        }
        for (item, result) in zip(batch, results) {
            item.done(result.mapError { $0 as any Error })
        }
    }
}
