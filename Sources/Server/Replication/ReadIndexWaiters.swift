/// Linearizable reads waiting for their ReadIndex round, by request id, and
/// reads waiting for the state machine to catch up with their index.
///
/// A round's request or answer may be lost: a round still unanswered at its
/// deadline (in ticks) fails, and the reader retries. A node may also never
/// catch up (cut off from the leader, or refusing a log it cannot hold): a
/// wait for an index still unapplied at its deadline fails too, so no caller
/// waits forever.
struct ReadIndexWaiters {
    typealias RoundContinuation = CheckedContinuation<UInt64, any Error>
    typealias ApplyContinuation = CheckedContinuation<Void, any Error>
    /// A caller waiting until `index` is applied, failed at `expiresAtTick`.
    typealias ApplyWaiter = (index: UInt64, expiresAtTick: UInt64, continuation: ApplyContinuation)

    private var rounds: [UInt64: (expiresAtTick: UInt64, continuation: RoundContinuation)] = [:]
    private var applying: [ApplyWaiter] = []
    private var lastID: UInt64 = 0

    /// A new round's id; its context on the wire is ``context(_:)``.
    mutating func nextID() -> UInt64 {
        lastID += 1
        return lastID
    }

    mutating func add(round id: UInt64, expiresAtTick: UInt64, _ continuation: RoundContinuation) {
        rounds[id] = (expiresAtTick, continuation)
    }

    /// Answers the round whose context is `context` with `index`.
    mutating func complete(context: [UInt8], index: UInt64) {
        guard let id = Self.id(context), let round = rounds.removeValue(forKey: id) else { return }
        round.continuation.resume(returning: index)
    }

    /// Fails the rounds, and the waits for an index, overdue at `tick`.
    mutating func expire(at tick: UInt64, appliedIndex: UInt64) {
        let overdue = rounds.filter { $0.value.expiresAtTick <= tick }.map(\.key)
        for id in overdue {
            rounds.removeValue(forKey: id)?.continuation.resume(throwing: StoreError(.unavailable, "the leader did not confirm the read in time"))
        }
        guard applying.contains(where: { $0.expiresAtTick <= tick }) else { return }
        var waiting: [ApplyWaiter] = []
        for waiter in applying {
            if waiter.expiresAtTick > tick {
                waiting.append(waiter)
            } else {
                waiter.continuation.resume(throwing: StoreError(.unavailable,
                    "this node has applied the log only up to index \(appliedIndex), not to index \(waiter.index), "
                    + "within the request timeout (it is behind or cut off from the leader); retry, or ask another node"))
            }
        }
        applying = waiting
    }

    /// `continuation` resumes once the entry at `index` is applied, or fails at `expiresAtTick`.
    mutating func waitApplied(_ index: UInt64, expiresAtTick: UInt64, _ continuation: ApplyContinuation) {
        applying.append((index, expiresAtTick, continuation))
    }

    /// How many callers wait for an index to be applied.
    var waitingForIndexCount: Int { applying.count }

    /// Resumes those waiting for an index up to `applied`.
    mutating func applied(through applied: UInt64) {
        guard !applying.isEmpty else { return }
        var waiting: [ApplyWaiter] = []
        for waiter in applying {
            if waiter.index <= applied { waiter.continuation.resume() } else { waiting.append(waiter) }
        }
        applying = waiting
    }

    /// Fails every waiting read (the store stopped).
    mutating func failAll(_ error: StoreError) {
        for round in rounds.values { round.continuation.resume(throwing: error) }
        rounds.removeAll()
        for waiter in applying { waiter.continuation.resume(throwing: error) }
        applying.removeAll()
    }

    /// The round id `id` as a ReadIndex context (8 bytes, little-endian).
    static func context(_ id: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: id >> (8 * $0)) }
    }

    private static func id(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }
}
