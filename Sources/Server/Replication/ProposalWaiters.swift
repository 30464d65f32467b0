import LeaseFSM
import Raft

/// Who waits for the commands this node proposed as leader, by log index: a
/// local caller, or a follower that forwarded the write on the peer stream.
///
/// Local callers are resumed as their entries apply; a follower's answers
/// are collected and sent back in one batch per follower after each drain
/// (``takeReplies()``).
struct ProposalWaiters {
    typealias Continuation = CheckedContinuation<Result<CommandResult, LeaseError>, any Error>

    enum Waiter {
        case local(Continuation)
        /// The write `id` forwarded by `peer`.
        case remote(peer: NodeID, id: UInt64)
    }

    private var byIndex: [UInt64: (term: UInt64, waiter: Waiter)] = [:]
    private var replies: [NodeID: [ForwardedReply]] = [:]

    /// `waiter` waits for the entry proposed at `position`.
    mutating func add(_ waiter: Waiter, at position: LogPosition) {
        byIndex[position.index] = (position.term, waiter)
    }

    /// The entry at `index` (of term `term`) applied with `result`: its
    /// waiter gets the result if it proposed that very entry, else "not
    /// applied" (a new leader put another entry at that index).
    mutating func applied(index: UInt64, term: UInt64, _ result: Result<CommandResult, LeaseError>) {
        guard let (proposedTerm, waiter) = byIndex.removeValue(forKey: index) else { return }
        if proposedTerm == term {
            answer(waiter, .success(result))
        } else {
            answer(waiter, .failure(Self.notApplied))
        }
    }

    /// The entry at `index` is not a command (an empty entry of a new term,
    /// a membership change): whoever waited there was not applied.
    mutating func superseded(index: UInt64) {
        guard let (_, waiter) = byIndex.removeValue(forKey: index) else { return }
        answer(waiter, .failure(Self.notApplied))
    }

    /// The entry at `index` cannot be applied: this node stops.
    mutating func failed(index: UInt64, _ error: StoreError) {
        guard let (_, waiter) = byIndex.removeValue(forKey: index) else { return }
        answer(waiter, .failure(error))
    }

    /// Every waiter gets `error` (leadership lost, the store stopped): the
    /// outcome is unknown.
    mutating func failAll(_ error: StoreError) {
        let all = byIndex
        byIndex.removeAll()
        for (_, entry) in all { answer(entry.waiter, .failure(error)) }
    }

    /// Answers a forwarded write at once (refused before it was proposed).
    mutating func reply(to peer: NodeID, id: UInt64, _ outcome: ForwardedReply.Outcome) {
        replies[peer, default: []].append(ForwardedReply(id: id, outcome: outcome))
    }

    /// The answers to send back, by follower, since the last call.
    mutating func takeReplies() -> [NodeID: [ForwardedReply]] {
        guard !replies.isEmpty else { return [:] }
        defer { replies.removeAll() }
        return replies
    }

    private mutating func answer(_ waiter: Waiter, _ outcome: Result<Result<CommandResult, LeaseError>, StoreError>) {
        switch (waiter, outcome) {
        case (.local(let continuation), .success(let result)):
            continuation.resume(returning: result)
        case (.local(let continuation), .failure(let error)):
            continuation.resume(throwing: error)
        case (.remote(let peer, let id), .success(let result)):
            reply(to: peer, id: id, .reply(CommandReplyCoding.encode(result)))
        case (.remote(let peer, let id), .failure(let error)):
            reply(to: peer, id: id, .unavailable(error.message))
        }
    }

    static let notApplied = StoreError(.unavailable, "leadership changed before the command committed; it was not applied")
}
