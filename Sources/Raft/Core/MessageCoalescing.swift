/// Folding the messages of one ``Ready`` that say, to one peer, what a
/// single message could.
///
/// A busy leader proposes one entry per client write and acknowledges each
/// follower's answer as it comes, so without this a `Ready` carries one
/// append per proposal per follower (each with one entry, or none, only to
/// move the commit index on), and a follower answers each with its own
/// acknowledgement. Measured on a 3-node cluster under 64 concurrent creates:
/// about four Raft messages per create from the leader and two from each
/// follower, each encoded, sent, decoded and stepped.
///
/// Two rules, each equivalent to something Raft already tolerates:
///
/// - **Appends to one follower that continue each other** (the second's
///   previous entry is the first's last, in the same term) become one
///   append with both runs of entries and the later commit index, within
///   ``RaftConfig/maxEntriesPerAppend`` and ``RaftConfig/maxBytesPerAppend``.
///   The follower applies it exactly as it would the two in turn, and
///   answers once: as if its first answer had been lost. The leader's
///   in-flight window frees both by the answer's index.
/// - **Accepting answers to one leader** keep only the highest index: a
///   leader that hears the higher one needs nothing from the lower (lost
///   answers are normal in Raft). Refusals are never merged: each carries its
///   own hint.
///
/// Order per peer is kept; nothing else (votes, heartbeats, snapshots, reads)
/// is touched.
extension RaftNode {
    static func coalesced(_ messages: [Message], maxEntries: Int, maxBytes: Int) -> [Message] {
        guard messages.count > 1 else { return messages }
        var out: [Message] = []
        out.reserveCapacity(messages.count)
        // Where the last message kept for each peer is in `out`.
        var lastToPeer: [NodeID: Int] = [:]
        for message in messages {
            if let at = lastToPeer[message.to], fold(message, into: &out[at], maxEntries: maxEntries, maxBytes: maxBytes) {
                continue
            }
            lastToPeer[message.to] = out.count
            out.append(message)
        }
        return out
    }

    /// Folds `next` into `kept` (the message before it to the same peer) if
    /// one message can say both; returns false, changing nothing, otherwise.
    static func fold(_ next: Message, into kept: inout Message, maxEntries: Int, maxBytes: Int) -> Bool {
        guard next.type == kept.type, next.term == kept.term, next.from == kept.from, next.to == kept.to else { return false }
        switch next.type {
        case .append:
            let keptLastIndex = kept.entries.last?.index ?? kept.index
            let keptLastTerm = kept.entries.last?.term ?? kept.logTerm
            guard next.index == keptLastIndex, next.logTerm == keptLastTerm,
                  kept.snapshot == nil, next.snapshot == nil,
                  kept.entries.count + next.entries.count <= maxEntries else { return false }
            if !next.entries.isEmpty {
                let bytes = kept.entries.reduce(0) { $0 + $1.data.count } + next.entries.reduce(0) { $0 + $1.data.count }
                guard bytes <= maxBytes else { return false }
                kept.entries.append(contentsOf: next.entries)
            }
            kept.commit = max(kept.commit, next.commit)
            return true
        case .appendResponse:
            guard !kept.reject, !next.reject else { return false }
            kept.index = max(kept.index, next.index)
            return true
        default:
            return false
        }
    }
}
