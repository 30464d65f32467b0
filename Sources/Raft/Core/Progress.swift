/// The leader's view of one follower (Raft figure 2: `nextIndex[]`, `matchIndex[]`).
struct Progress: Sendable, Hashable {
    var match: UInt64 = 0
    var next: UInt64
    var state: ProgressState = .probe
    /// In `probe`, an append is outstanding; wait for its reply or a heartbeat reply.
    var probeSent = false
    /// In `snapshot`, the index of the snapshot being sent.
    var pendingSnapshot: UInt64 = 0
    /// Ticks spent in `snapshot`; after a bound the leader retries from `probe`.
    var snapshotTicks = 0
    /// Heard from the follower during the current check-quorum period.
    var recentActive = false
    var isLearner: Bool
    var inflights: Inflights
    /// Highest ReadIndex round the follower acknowledged.
    var readAckSeq: UInt64 = 0

    init(next: UInt64, isLearner: Bool, maxInflight: Int) {
        self.next = next
        self.isLearner = isLearner
        self.inflights = Inflights(capacity: maxInflight)
    }

    var isPaused: Bool {
        switch state {
        case .probe: probeSent
        case .replicate: inflights.isFull
        case .snapshot: true
        }
    }

    private mutating func resetState(_ newState: ProgressState) {
        state = newState
        probeSent = false
        pendingSnapshot = 0
        snapshotTicks = 0
        inflights.reset()
    }

    mutating func becomeProbe() {
        if state == .snapshot {
            let pending = pendingSnapshot
            resetState(.probe)
            next = max(match + 1, pending + 1)
        } else {
            resetState(.probe)
            next = match + 1
        }
    }

    mutating func becomeReplicate() {
        resetState(.replicate)
        next = match + 1
    }

    mutating func becomeSnapshot(_ index: UInt64) {
        resetState(.snapshot)
        pendingSnapshot = index
    }

    /// Gives up on a snapshot transfer that went unanswered (a chunk was probably lost).
    mutating func abortSnapshot() {
        resetState(.probe)
        next = match + 1
    }

    /// Records an append acknowledged up to `index`. Returns false for a stale acknowledgement.
    mutating func maybeUpdate(_ index: UInt64) -> Bool {
        var updated = false
        if match < index {
            match = index
            updated = true
            probeSent = false
        }
        next = max(next, index + 1)
        return updated
    }

    /// Handles a rejected append of previous index `rejected`; `matchHint` is the next index to
    /// probe according to the follower's conflict hint. Returns false if the rejection is stale.
    mutating func maybeDecrTo(rejected: UInt64, matchHint: UInt64) -> Bool {
        if state == .replicate {
            guard rejected > match else { return false }
            next = match + 1
            return true
        }
        guard next - 1 == rejected else { return false }
        next = max(min(rejected, matchHint + 1), match + 1)
        probeSent = false
        return true
    }

    /// Records an append just sent whose last entry is `lastIndex` (nil for an empty append).
    mutating func sentAppend(lastIndex: UInt64?) {
        switch state {
        case .replicate:
            if let lastIndex {
                next = lastIndex + 1
                inflights.add(lastIndex)
            }
        case .probe:
            probeSent = true
        case .snapshot:
            // `sendAppend` never sends to a paused follower, and `snapshot` pauses; should one
            // be sent anyway, it is one more message and changes nothing here.
            break
        }
    }
}
