import LeaseFSM
import Raft

/// What the leader answered to a forwarded write.
enum ForwardOutcome: Sendable {
    /// The state machine's decision.
    case decided(Result<CommandResult, LeaseError>)
    /// The leader could not decide (or the answer was lost): the write may
    /// or may not have been applied; retry under the same session.
    case undecided(String)
}

/// A follower's client writes handed to the leader and not answered yet
/// (the follower half of forwarding; ``RaftLeaseStore`` holds one).
///
/// Each attempt waits for the reply of the leader it went to, and is given
/// up (answered ``ForwardOutcome/undecided(_:)``, so the caller retries under
/// the same session) when that leader loses office, its stream breaks, or no
/// reply comes within its deadline in ticks. A reply is accepted only from
/// the node the write went to.
struct PendingForwards {
    typealias Continuation = CheckedContinuation<ForwardOutcome, Never>

    private struct Attempt {
        var leader: NodeID
        var expiresAtTick: UInt64
        var continuation: Continuation
    }

    private var attempts: [UInt64: Attempt] = [:]
    private var lastID: UInt64 = 0

    /// A new attempt's id (never reused by this node's store).
    mutating func nextID() -> UInt64 {
        lastID += 1
        return lastID
    }

    mutating func add(_ id: UInt64, to leader: NodeID, expiresAtTick: UInt64, _ continuation: Continuation) {
        attempts[id] = Attempt(leader: leader, expiresAtTick: expiresAtTick, continuation: continuation)
    }

    /// The waiting attempt `id` if it went to `sender` (removed); nil for a
    /// reply nobody waits for or from another node.
    mutating func take(_ id: UInt64, from sender: NodeID) -> Continuation? {
        guard let attempt = attempts[id], attempt.leader == sender else { return nil }
        attempts.removeValue(forKey: id)
        return attempt.continuation
    }

    /// Removes and returns the attempts matching `isGivenUp`.
    private mutating func takeAll(where isGivenUp: (Attempt) -> Bool) -> [Continuation] {
        let ids = attempts.filter { isGivenUp($0.value) }.map(\.key)
        return ids.compactMap { attempts.removeValue(forKey: $0)?.continuation }
    }

    /// Attempts whose reply is overdue at `tick`.
    mutating func takeOverdue(at tick: UInt64) -> [Continuation] {
        takeAll { $0.expiresAtTick <= tick }
    }

    /// Attempts that went to a node other than `leader` (it lost office,
    /// or there is no leader now).
    mutating func takeNotSentTo(_ leader: NodeID?) -> [Continuation] {
        takeAll { $0.leader != leader }
    }

    /// Attempts that went to any of `peers` (their stream broke).
    mutating func takeSentTo(_ peers: Set<NodeID>) -> [Continuation] {
        guard !peers.isEmpty else { return [] }
        return takeAll { peers.contains($0.leader) }
    }

    /// Every attempt (the store stops).
    mutating func takeAll() -> [Continuation] {
        takeAll { _ in true }
    }
}
