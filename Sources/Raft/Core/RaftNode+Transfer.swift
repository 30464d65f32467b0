/// Leadership transfer (dissertation §3.10).
extension RaftNode {
    /// Hands leadership to the voter `target`: the leader stops accepting proposals, brings the
    /// target's log up to date, then sends it `timeoutNow`, upon which the target campaigns at once
    /// (skipping pre-vote; its votes pass the other nodes' leader lease). The transfer is abandoned
    /// if it has not completed within an election timeout.
    public mutating func transferLeadership(to target: NodeID) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leaderHint: leaderID) }
        guard target != id, log.conf.voters.contains(target), progress[target] != nil else {
            throw .invalidTransferTarget(target)
        }
        if leadTransferee == target { return }
        leadTransferee = target
        electionElapsed = 0
        if progress[target]?.match == log.lastIndex {
            sendTimeoutNow(to: target)
        } else {
            // Catch the target up now rather than wait for outstanding appends (which may have
            // been lost): restart from its known match.
            if progress[target]?.state != .snapshot { progress[target]?.becomeProbe() }
            sendAppend(to: target, sendIfEmpty: true)
        }
    }

    mutating func sendTimeoutNow(to target: NodeID) {
        send(Message(type: .timeoutNow, from: id, to: target, term: term))
    }
}
