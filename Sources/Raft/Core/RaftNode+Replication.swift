/// Log replication (Raft §5.3), commitment (§5.4.2), heartbeats and check-quorum (§6.2).
extension RaftNode {
    // MARK: Proposals

    /// Appends `data` as a new entry if this node is the leader.
    ///
    /// Fails fast with ``RaftError/notLeader(leaderHint:)`` on any other node (no forwarding), and
    /// with ``RaftError/leadershipTransferInProgress(target:)`` while a transfer runs. The
    /// returned position identifies the entry; it is committed when it shows up in
    /// ``Ready/committedEntries`` with the same term.
    @discardableResult
    public mutating func propose(_ data: [UInt8]) throws(RaftError) -> LogPosition {
        try checkCanPropose()
        return appendLocal([(.normal, data)])
    }

    /// Appends several entries at once (one batch, one persist).
    @discardableResult
    public mutating func propose(batch: [[UInt8]]) throws(RaftError) -> [LogPosition] {
        try checkCanPropose()
        guard !batch.isEmpty else { return [] }
        let first = log.lastIndex + 1
        let last = appendLocal(batch.map { (.normal, $0) })
        return (first...last.index).map { LogPosition(term: term, index: $0) }
    }

    func checkCanPropose() throws(RaftError) {
        guard role == .leader else { throw .notLeader(leaderHint: leaderID) }
        guard leadTransferee == 0 else { throw .leadershipTransferInProgress(target: leadTransferee) }
        guard log.lastIndex - log.committed < UInt64(config.maxUncommittedEntries) else {
            throw .tooManyUncommittedEntries
        }
    }

    /// Leader-local append of new entries of the current term; returns the last one's position.
    @discardableResult
    mutating func appendLocal(_ items: [(EntryKind, [UInt8])]) -> LogPosition {
        precondition(role == .leader, "only the leader appends new entries")
        var index = log.lastIndex
        var entries: [Entry] = []
        entries.reserveCapacity(items.count)
        for (kind, data) in items {
            index += 1
            entries.append(Entry(term: term, index: index, kind: kind, data: data))
        }
        let confBefore = log.conf
        log.appendNew(entries)
        if log.conf != confBefore { reconcileProgress() }
        maybeCommit() // commits at once for a single voter
        broadcastAppend()
        return LogPosition(term: term, index: index)
    }

    // MARK: Sending

    mutating func broadcastAppend() {
        guard role == .leader else { return }
        for peer in progress.keys.sorted() {
            sendAppend(to: peer, sendIfEmpty: true)
        }
    }

    /// Sends the next append to `peer` if its progress allows (probe: one at a time; replicate:
    /// while the inflight window has room). Falls back to a snapshot when the entries it needs are
    /// compacted. Returns whether a message was sent.
    @discardableResult
    mutating func sendAppend(to peer: NodeID, sendIfEmpty: Bool) -> Bool {
        guard role == .leader, let pr = progress[peer], !pr.isPaused else { return false }
        let prevIndex = pr.next - 1
        // Admission keeps every follower's progress within this log (acknowledgements beyond
        // it are refused), so only compaction leaves `prevTerm` unknown.
        guard prevIndex <= log.lastIndex else { return false }
        guard let prevTerm = log.term(at: prevIndex) else {
            return sendSnapshot(to: peer)
        }
        let entries = log.entries(from: pr.next, maxCount: config.maxEntriesPerAppend, maxBytes: config.maxBytesPerAppend)
        if entries.isEmpty && !sendIfEmpty { return false }
        send(Message(
            type: .append, from: id, to: peer, term: term,
            logTerm: prevTerm, index: prevIndex, entries: entries, commit: log.committed
        ))
        progress[peer]?.sentAppend(lastIndex: entries.last?.index)
        return true
    }

    mutating func broadcastHeartbeat() {
        for peer in progress.keys.sorted() {
            guard let pr = progress[peer] else { continue }
            // Never tell a follower to commit beyond what it is known to hold.
            send(Message(
                type: .heartbeat, from: id, to: peer, term: term,
                commit: min(pr.match, log.committed), readSeq: readSeq
            ))
        }
    }

    // MARK: Leader receive

    mutating func stepLeader(_ m: Message) {
        switch m.type {
        case .appendResponse:
            handleAppendResponse(m)
        case .heartbeatResponse:
            handleHeartbeatResponse(m)
        case .readIndex:
            handleReadIndexRequest(from: m.from, context: m.context)
        default:
            break
        }
    }

    mutating func handleAppendResponse(_ m: Message) {
        guard let before = progress[m.from] else { return }
        progress[m.from]?.recentActive = true
        if m.reject {
            // Fast back-off (dissertation §5.3 "the leader can use the conflict information"):
            // jump to the follower's hint, refined by our own log when it names a term.
            var nextProbe = m.rejectHint
            if m.logTerm > 0 {
                nextProbe = log.findConflictByTerm(index: m.rejectHint, term: m.logTerm).index
            }
            if progress[m.from]?.maybeDecrTo(rejected: m.index, matchHint: nextProbe) == true {
                if before.state == .replicate { progress[m.from]?.becomeProbe() }
                sendAppend(to: m.from, sendIfEmpty: true)
            }
            return
        }
        // A probe acknowledged at the known match also confirms it (etcd-io/raft #52): without
        // this, an idle caught-up follower that fell back to probe would never leave it.
        let probeAckedAtMatch = before.state == .probe && before.match == m.index
        guard progress[m.from]?.maybeUpdate(m.index) == true || probeAckedAtMatch, let updated = progress[m.from] else { return }
        switch updated.state {
        case .probe:
            progress[m.from]?.becomeReplicate()
        case .snapshot:
            if updated.match + 1 >= log.firstIndex {
                // The follower can continue from the log.
                progress[m.from]?.becomeProbe()
                progress[m.from]?.becomeReplicate()
            } else if updated.match >= updated.pendingSnapshot {
                // It installed the snapshot we sent, but we compacted further since: send anew.
                progress[m.from]?.becomeProbe()
            }
        case .replicate:
            progress[m.from]?.inflights.freeLE(m.index)
        }
        if maybeCommit() {
            broadcastAppend()
        } else if before.isPaused {
            sendAppend(to: m.from, sendIfEmpty: true)
        }
        // Pipelining: fill the inflight window.
        while sendAppend(to: m.from, sendIfEmpty: false) {}
        if m.from == leadTransferee, progress[m.from]?.match == log.lastIndex {
            sendTimeoutNow(to: m.from)
        }
    }

    mutating func handleHeartbeatResponse(_ m: Message) {
        guard let pr = progress[m.from] else { return }
        progress[m.from]?.recentActive = true
        progress[m.from]?.probeSent = false
        if pr.state == .replicate && pr.inflights.isFull {
            progress[m.from]?.inflights.freeFirstOne()
        }
        if pr.match < log.lastIndex || pr.state == .probe {
            sendAppend(to: m.from, sendIfEmpty: true)
        }
        if m.readSeq > pr.readAckSeq {
            progress[m.from]?.readAckSeq = m.readSeq
            releaseConfirmedReads()
        }
    }

    /// Advances the commit index to the highest index stored on a majority of voters, but only if
    /// that entry is of the current term (Raft §5.4.2; figure 8 shows why counting replicas of an
    /// older term's entry is unsafe). Returns true if the commit index moved.
    @discardableResult
    mutating func maybeCommit() -> Bool {
        guard role == .leader else { return false }
        let voters = log.conf.voters
        guard !voters.isEmpty else { return false }
        var matches: [UInt64] = []
        matches.reserveCapacity(voters.count)
        for voter in voters {
            matches.append(voter == id ? log.lastIndex : (progress[voter]?.match ?? 0))
        }
        matches.sort(by: >)
        let candidate = matches[Self.quorum(voters) - 1]
        guard candidate > log.committed, log.term(at: candidate) == term else { return false }
        log.commit(to: candidate)
        leaderCommitted()
        return true
    }

    /// Work a leader does after its commit index advances.
    mutating func leaderCommitted() {
        releaseReadsAwaitingCommit()
        // Dissertation §4.2.2: a leader removed from the configuration steps down once the
        // configuration entry that removes it is committed.
        if !log.conf.voters.contains(id) && log.lastConfIndex <= log.committed {
            // Tell the followers the new commit index first, and hand leadership to an
            // up-to-date voter so the cluster need not wait for an election timeout.
            broadcastAppend()
            let successor = log.conf.voters.sorted().first { progress[$0]?.match == log.lastIndex }
            if let successor { sendTimeoutNow(to: successor) }
            becomeFollower(term: term, leader: 0)
        }
    }

    // MARK: Follower receive

    /// AppendEntries receiver (figure 2). Rejections carry a conflict hint: the largest index at
    /// or below the rejected one whose term is at most the leader's `logTerm`, so the leader skips
    /// a whole term per round trip.
    mutating func handleAppend(_ m: Message) {
        if m.index < log.committed {
            send(Message(type: .appendResponse, from: id, to: m.from, term: term, index: log.committed))
            return
        }
        switch log.maybeAppend(prevIndex: m.index, prevTerm: m.logTerm, leaderCommit: m.commit, entries: m.entries) {
        case .appended(let lastNew):
            send(Message(type: .appendResponse, from: id, to: m.from, term: term, index: lastNew))
            return
        case .refused(let why):
            refuse(m, .conflictBelowCommit, why)
            return
        case .mismatch:
            break
        }
        let hint = log.findConflictByTerm(index: min(m.index, log.lastIndex), term: m.logTerm)
        send(Message(
            type: .appendResponse, from: id, to: m.from, term: term,
            logTerm: hint.term, index: m.index, reject: true, rejectHint: hint.index
        ))
    }

    mutating func handleHeartbeat(_ m: Message) {
        // Admission refuses a commit beyond the log (this node lost acknowledged entries).
        log.commit(to: min(m.commit, log.lastIndex))
        send(Message(type: .heartbeatResponse, from: id, to: m.from, term: term, readSeq: m.readSeq))
    }

    // MARK: Leader tick

    /// Leader tick: heartbeats every `heartbeatTick`; every `electionTick`, check-quorum (step down
    /// if a majority was not heard from, dissertation §6.2) and expiry of a leadership transfer.
    mutating func tickHeartbeat() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= config.electionTick {
            electionElapsed = 0
            if config.checkQuorum && !quorumActive() {
                becomeFollower(term: term, leader: 0)
                return
            }
            leadTransferee = 0
        }
        for peer in progress.keys.sorted() where progress[peer]?.state == .snapshot {
            progress[peer]?.snapshotTicks += 1
            if let ticks = progress[peer]?.snapshotTicks, ticks > 2 * config.electionTick {
                progress[peer]?.abortSnapshot()
            }
        }
        if heartbeatElapsed >= config.heartbeatTick {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
    }

    /// True if a majority of voters (counting this node) was heard from in this period; resets
    /// the activity flags for the next one.
    mutating func quorumActive() -> Bool {
        let voters = log.conf.voters
        var active = 0
        for voter in voters where voter == id || progress[voter]?.recentActive == true {
            active += 1
        }
        for peer in progress.keys.sorted() {
            progress[peer]?.recentActive = false
        }
        return active >= Self.quorum(voters)
    }

    /// Tells the leader that `peer` could not be reached; replication to it falls back to probing.
    public mutating func reportUnreachable(_ peer: NodeID) {
        guard role == .leader, progress[peer]?.state == .replicate else { return }
        progress[peer]?.becomeProbe()
    }
}
