/// The kinds of message Raft peers exchange.
///
/// The RPCs of Raft figure 2 (AppendEntries, RequestVote) appear as request/response pairs; the
/// rest come from the dissertation: pre-vote (§9.6), InstallSnapshot (§5.3, figure 5.3),
/// ReadIndex (§6.4) and TimeoutNow for leadership transfer (§3.10).
public enum MessageType: UInt8, Sendable, Hashable, CaseIterable {
    /// AppendEntries request: `index`/`logTerm` are the previous entry, `entries` the new ones.
    case append = 1
    /// AppendEntries reply: on success `index` is the follower's last matching index; on reject
    /// `index` echoes the rejected previous index and `rejectHint`/`logTerm` carry the
    /// conflict hint for fast back-off.
    case appendResponse = 2
    /// Leader liveness and commit propagation; `readSeq` carries the ReadIndex round.
    case heartbeat = 3
    /// Heartbeat reply, echoing `readSeq`.
    case heartbeatResponse = 4
    /// RequestVote: `index`/`logTerm` describe the candidate's last entry (§5.4.1).
    case vote = 5
    /// RequestVote reply.
    case voteResponse = 6
    /// Pre-vote request, sent for `term + 1` without incrementing the sender's term (§9.6).
    case preVote = 7
    /// Pre-vote reply.
    case preVoteResponse = 8
    /// One chunk of an InstallSnapshot transfer (`snapshot` is set).
    case snapshot = 9
    /// A follower asks the leader for a read index on behalf of `context`.
    case readIndex = 10
    /// The leader's answer: `index` is the read index for `context`.
    case readIndexResponse = 11
    /// Leadership transfer: the receiver campaigns at once, bypassing pre-vote (§3.10).
    case timeoutNow = 12
}
