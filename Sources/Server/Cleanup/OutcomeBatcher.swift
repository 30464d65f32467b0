import LeaseFSM

/// Commits cleanup outcomes in batches: while one batch is being proposed,
/// the outcomes that finish meanwhile queue up and go out together as the
/// next `cleanupOutcomes` command. At 5,000 cleanups/s this is tens of log
/// entries a second instead of thousands, which also spaces out snapshots
/// (each is as large as the whole state).
///
/// Each caller waits until its own outcome is committed (or the proposal
/// failed), so a job stays claimed until then and is never delivered twice
/// at once.
actor OutcomeBatcher {
    /// Most outcomes in one command.
    static let maxBatch = 1_000

    private let store: any LeaseStore
    private var queue: [(outcome: LeaseCommand.CleanupOutcome, done: CheckedContinuation<Void, any Error>)] = []
    private var proposing = false

    init(store: any LeaseStore) {
        self.store = store
    }

    /// Returns once `outcome` is committed; throws what the proposal threw.
    func commit(_ outcome: LeaseCommand.CleanupOutcome) async throws {
        try await withCheckedThrowingContinuation { continuation in
            queue.append((outcome, continuation))
            if !proposing {
                proposing = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !queue.isEmpty {
            let batch = Array(queue.prefix(Self.maxBatch))
            queue.removeFirst(batch.count)
            let command: LeaseCommand = batch.count == 1
                ? .cleanupOutcome(batch[0].outcome) : .cleanupOutcomes(batch.map(\.outcome))
            do {
                _ = try await store.propose(command)
                for item in batch { item.done.resume() }
            } catch {
                for item in batch { item.done.resume(throwing: error) }
            }
        }
        proposing = false
    }
}
