/// Leader election (Raft §5.2), pre-vote (dissertation §9.6) and role transitions.
extension RaftNode {
    /// Follower and candidate tick: start an election after a randomized timeout in
    /// `[electionTick, 2 * electionTick)` without hearing from a leader (Raft §5.2).
    mutating func tickElection() {
        electionElapsed += 1
        if isPromotable && electionElapsed >= randomizedElectionTimeout {
            electionElapsed = 0
            hup(transfer: false)
        }
    }

    /// Starts a campaign: a pre-vote round first when enabled, unless this is a leadership
    /// transfer (which must not be blocked by pre-vote or the lease, §3.10).
    mutating func hup(transfer: Bool) {
        guard role != .leader, isPromotable else { return }
        if transfer {
            startCampaign(.transfer)
        } else if config.preVote {
            startCampaign(.preElection)
        } else {
            startCampaign(.election)
        }
    }

    enum CampaignKind {
        case preElection
        case election
        case transfer
    }

    mutating func startCampaign(_ kind: CampaignKind) {
        let voteTerm: UInt64
        let type: MessageType
        if kind == .preElection {
            becomePreCandidate()
            voteTerm = term + 1
            type = .preVote
        } else {
            becomeCandidate()
            voteTerm = term
            type = .vote
        }
        if recordVote(from: id, granted: true) == .won {
            // Single voter: won outright.
            if kind == .preElection { startCampaign(.election) } else { becomeLeader() }
            return
        }
        for voter in log.conf.voters.sorted() where voter != id {
            send(Message(
                type: type, from: id, to: voter, term: voteTerm,
                logTerm: log.lastTerm, index: log.lastIndex,
                isLeadershipTransfer: kind == .transfer
            ))
        }
    }

    enum VoteResult {
        case pending
        case won
        case lost
    }

    mutating func recordVote(from voter: NodeID, granted: Bool) -> VoteResult {
        if votes[voter] == nil { votes[voter] = granted }
        let voters = log.conf.voters
        let quorum = Self.quorum(voters)
        var yes = 0
        var no = 0
        for (node, vote) in votes where voters.contains(node) {
            if vote { yes += 1 } else { no += 1 }
        }
        if yes >= quorum { return .won }
        if voters.count - no < quorum { return .lost }
        return .pending
    }

    /// RequestVote receiver (figure 2): grant if we have not voted for someone else in this term
    /// and the candidate's log is at least as up-to-date as ours (§5.4.1). A pre-vote is granted
    /// under the same log rule for a higher term, without recording a vote.
    mutating func handleVoteRequest(_ m: Message) {
        let isPre = m.type == .preVote
        let responseType: MessageType = isPre ? .preVoteResponse : .voteResponse
        let canVote = vote == m.from
            || (vote == 0 && leader == 0)
            || (isPre && m.term > term)
        if canVote && log.isUpToDate(lastIndex: m.index, lastTerm: m.logTerm) {
            // A pre-vote reply carries the requested term, so the pre-candidate counts it.
            send(Message(type: responseType, from: id, to: m.from, term: m.term))
            if !isPre {
                electionElapsed = 0
                vote = m.from
            }
        } else {
            send(Message(type: responseType, from: id, to: m.from, term: term, reject: true))
        }
    }

    mutating func stepCandidate(_ m: Message) {
        let myResponseType: MessageType = role == .preCandidate ? .preVoteResponse : .voteResponse
        switch m.type {
        case .append:
            becomeFollower(term: m.term, leader: m.from)
            handleAppend(m)
        case .heartbeat:
            becomeFollower(term: m.term, leader: m.from)
            handleHeartbeat(m)
        case .snapshot:
            becomeFollower(term: m.term, leader: m.from)
            handleSnapshotChunk(m)
        case myResponseType:
            switch recordVote(from: m.from, granted: !m.reject) {
            case .won:
                if role == .preCandidate { startCampaign(.election) } else { becomeLeader() }
            case .lost:
                becomeFollower(term: term, leader: 0)
            case .pending:
                break
            }
        default:
            break
        }
    }

    mutating func stepFollower(_ m: Message) {
        switch m.type {
        case .append:
            electionElapsed = 0
            leader = m.from
            handleAppend(m)
        case .heartbeat:
            electionElapsed = 0
            leader = m.from
            handleHeartbeat(m)
        case .snapshot:
            electionElapsed = 0
            leader = m.from
            handleSnapshotChunk(m)
        case .readIndexResponse:
            readStates.append(ReadState(index: m.index, context: m.context))
        case .timeoutNow:
            // Leadership transfer (§3.10): campaign at once, skipping pre-vote and the lease.
            hup(transfer: true)
        default:
            break
        }
    }

    // MARK: Transitions

    private mutating func reset(term newTerm: UInt64) {
        if newTerm != term {
            term = newTerm
            vote = 0
            snapshotReceiver = nil
        }
        leader = 0
        electionElapsed = 0
        heartbeatElapsed = 0
        resetRandomizedElectionTimeout()
        votes = [:]
        progress = [:]
        leadTransferee = 0
        readSeq = 0
        pendingReads = []
        readsAwaitingCommit = []
        needsReadBroadcast = false
    }

    mutating func becomeFollower(term newTerm: UInt64, leader newLeader: NodeID) {
        reset(term: newTerm)
        role = .follower
        leader = newLeader
    }

    mutating func becomePreCandidate() {
        precondition(role != .leader, "a leader cannot become pre-candidate")
        // Pre-vote changes neither term nor vote (§9.6).
        let keptTerm = term
        reset(term: keptTerm)
        role = .preCandidate
    }

    mutating func becomeCandidate() {
        precondition(role != .leader, "a leader cannot become candidate")
        reset(term: term + 1)
        vote = id
        role = .candidate
    }

    /// Becomes leader and appends a no-op entry of the new term: committing it commits every
    /// earlier entry (Raft §5.4.2, §8; dissertation §6.4).
    mutating func becomeLeader() {
        precondition(role == .candidate, "only a candidate becomes leader")
        reset(term: term)
        role = .leader
        leader = id
        reconcileProgress()
        appendLocal([(.noop, [])])
        broadcastAppend()
    }
}
