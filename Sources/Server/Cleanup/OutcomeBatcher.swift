import LeaseFSM
import Synchronization

/// Commits cleanup outcomes in batches: while one batch is being recorded,
/// the outcomes that finish meanwhile queue up and go out together as the
/// next `cleanupOutcomes` command (Raft mode, ``init(store:onFinished:)``),
/// or the next `recordOutcomes` transaction (PostgreSQL mode, where each
/// `Item` carries its claim token). At 5,000 cleanups/s this is tens of log
/// entries a second instead of thousands, which also spaces out snapshots
/// (each is as large as the whole state).
///
/// Handing an outcome in costs a lock, not a task or an actor hop: one drain
/// task proposes while anything is queued, and after each proposal calls
/// `onFinished` once with the batch's job ids (and the error if the proposal
/// failed), so the dispatcher releases a whole batch of claims at once. A job
/// stays claimed until then, so it is never delivered twice at once.
final class OutcomeBatcher<Item: Sendable>: Sendable {
    /// Most outcomes in one command.
    static var maxBatch: Int { 1_000 }

    /// Called after each proposal with the job ids it carried, in the order
    /// they were submitted; `error` is what the proposal threw (nil: all
    /// committed).
    typealias Finished = @Sendable (_ jobIDs: [JobID], _ error: (any Error)?) -> Void

    /// Records one batch (at most ``maxBatch`` items, in submission order);
    /// what it throws is reported to `onFinished`.
    typealias Record = @Sendable (_ batch: [Item]) async throws -> Void

    private struct State {
        var queue: [Item] = []
        var draining = false
        /// Outcomes submitted so far, and how many of them are finished
        /// (committed or failed). Batches finish in submission order.
        var submitted: UInt64 = 0
        var finished: UInt64 = 0
        var waiters: [(ticket: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let record: Record
    private let jobID: @Sendable (Item) -> JobID
    private let onFinished: Finished
    private let state = Mutex(State())

    /// - Parameters:
    ///   - jobID: the job an item is the outcome of.
    ///   - record: commits one batch.
    init(jobID: @escaping @Sendable (Item) -> JobID, record: @escaping Record, onFinished: @escaping Finished = { _, _ in }) {
        self.jobID = jobID
        self.record = record
        self.onFinished = onFinished
    }

    /// Queues `outcome` for the next proposal and returns at once; the
    /// returned ticket can be waited for with ``waitUntilFinished(_:)``.
    @discardableResult
    func submit(_ outcome: Item) -> UInt64 {
        let (ticket, startDrain) = state.withLock { s in
            s.queue.append(outcome)
            s.submitted += 1
            defer { s.draining = true }
            return (s.submitted, !s.draining)
        }
        if startDrain { Task { await self.drain() } }
        return ticket
    }

    /// Returns once every outcome up to `ticket` is finished (committed, or
    /// its proposal failed and `onFinished` was told).
    func waitUntilFinished(_ ticket: UInt64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s in
                if s.finished >= ticket { return true }
                s.waiters.append((ticket, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    private func drain() async {
        while true {
            let batch: [Item]? = state.withLock { s in
                if s.queue.isEmpty {
                    s.draining = false
                    return nil
                }
                if s.queue.count <= Self.maxBatch {
                    defer { s.queue = [] }
                    return s.queue
                }
                defer { s.queue.removeFirst(Self.maxBatch) }
                return Array(s.queue.prefix(Self.maxBatch))
            }
            guard let batch else { return }
            var failure: (any Error)?
            do {
                try await record(batch)
            } catch {
                failure = error
            }
            onFinished(batch.map(jobID), failure)
            let ready = state.withLock { s in
                s.finished += UInt64(batch.count)
                let finished = s.finished
                let ready = s.waiters.filter { $0.ticket <= finished }.map(\.continuation)
                s.waiters.removeAll { $0.ticket <= finished }
                return ready
            }
            for continuation in ready { continuation.resume() }
        }
    }
}

extension OutcomeBatcher where Item == LeaseCommand.CleanupOutcome {
    /// Proposes each batch to `store` as one command (Raft mode).
    convenience init(store: any LeaseStore, onFinished: @escaping Finished = { _, _ in }) {
        self.init(jobID: { $0.jobID }, record: { batch in
            let command: LeaseCommand = batch.count == 1 ? .cleanupOutcome(batch[0]) : .cleanupOutcomes(batch)
            _ = try await store.propose(command)
        }, onFinished: onFinished)
    }
}
