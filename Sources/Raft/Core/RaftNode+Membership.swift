/// Single-server membership changes (dissertation §4.1-§4.2).
///
/// A configuration takes effect on each node as soon as its entry is **appended** to that node's
/// log, committed or not (dissertation §4.1), and is reverted if the entry is truncated. The leader
/// accepts a new change only when (a) it has committed an entry of its current term (the fix for
/// the single-server change bug, dissertation §4.1 / raft-dev 2015) and (b) the previous change is
/// committed, so at most one change is pending at a time.
extension RaftNode {
    /// Proposes a membership change. Returns the position of its configuration entry.
    @discardableResult
    public mutating func proposeConfChange(_ change: ConfChange) throws(RaftError) -> LogPosition {
        try checkCanPropose()
        guard log.term(at: log.committed) == term else { throw .leaderNotReady }
        guard log.lastConfIndex <= log.committed else { throw .confChangeInProgress }
        var change = change
        change.resultingConf = try change.applied(to: log.conf)
        return appendLocal([(.configChange, change.encoded())])
    }

    /// Makes the leader's progress table match the current configuration.
    mutating func reconcileProgress() {
        guard role == .leader else { return }
        let conf = log.conf
        for peer in progress.keys.sorted() where !conf.voters.contains(peer) && !conf.learners.contains(peer) {
            progress[peer] = nil
        }
        for member in conf.voters.union(conf.learners).sorted() where member != id {
            let isLearner = conf.learners.contains(member)
            if progress[member] == nil {
                var pr = Progress(next: log.lastIndex + 1, isLearner: isLearner, maxInflight: config.maxInflightAppends)
                pr.recentActive = true
                progress[member] = pr
            } else {
                progress[member]?.isLearner = isLearner
            }
        }
        if leadTransferee != 0 && !conf.voters.contains(leadTransferee) {
            leadTransferee = 0
        }
        // A smaller quorum may commit more.
        maybeCommit()
    }
}
