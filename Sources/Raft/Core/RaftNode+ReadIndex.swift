/// Linearizable reads without writing to the log: ReadIndex (dissertation §6.4).
extension RaftNode {
    /// Requests a read index for `context`. The answer arrives as a ``ReadState`` in a later
    /// ``Ready`` (once the leader has confirmed with a quorum that it is still leader); the
    /// application serves the read after applying up to ``ReadState/index``.
    ///
    /// On the leader: the read waits until the leader has committed an entry of its own term
    /// (its no-op), then records the commit index and piggybacks a round number on the next
    /// heartbeat broadcast; every read registered before that broadcast shares it (batching).
    /// On a follower: the request is forwarded to the leader, which answers with the index.
    /// Fails with ``RaftError/notLeader(leaderHint:)`` if no leader is known.
    ///
    /// A request can be lost without an error (the leader steps down, or the forwarded message or
    /// its answer is dropped); the application times it out and retries.
    public mutating func readIndex(context: [UInt8]) throws(RaftError) {
        switch role {
        case .leader:
            handleReadIndexRequest(from: id, context: context)
        case .follower where leader != 0:
            send(Message(type: .readIndex, from: id, to: leader, term: term, context: context))
        default:
            throw .notLeader(leaderHint: leaderID)
        }
    }

    mutating func handleReadIndexRequest(from requester: NodeID, context: [UInt8]) {
        guard role == .leader else { return }
        let voters = log.conf.voters
        if voters == [id] {
            answerRead(PendingRead(seq: 0, index: log.committed, context: context, from: requester))
            return
        }
        guard log.term(at: log.committed) == term else {
            // §6.4 step 1: the leader's commit index is only known to be current once it has
            // committed an entry of its term.
            readsAwaitingCommit.append(PendingRead(seq: 0, index: 0, context: context, from: requester))
            return
        }
        registerRead(context: context, from: requester)
    }

    mutating func registerRead(context: [UInt8], from requester: NodeID) {
        if !needsReadBroadcast {
            readSeq += 1
            needsReadBroadcast = true
        }
        pendingReads.append(PendingRead(seq: readSeq, index: log.committed, context: context, from: requester))
    }

    /// Sends the heartbeat round for reads registered since the last `Ready`.
    mutating func flushReadBroadcast() {
        guard needsReadBroadcast else { return }
        needsReadBroadcast = false
        guard role == .leader else { return }
        broadcastHeartbeat()
    }

    mutating func releaseReadsAwaitingCommit() {
        guard !readsAwaitingCommit.isEmpty, log.term(at: log.committed) == term else { return }
        let waiting = readsAwaitingCommit
        readsAwaitingCommit = []
        for read in waiting {
            registerRead(context: read.context, from: read.from)
        }
    }

    /// §6.4 step 3: a read is confirmed once a majority acknowledged a heartbeat round sent after
    /// it was registered.
    mutating func releaseConfirmedReads() {
        guard !pendingReads.isEmpty else { return }
        let voters = log.conf.voters
        var acks: [UInt64] = []
        for voter in voters {
            acks.append(voter == id ? readSeq : (progress[voter]?.readAckSeq ?? 0))
        }
        acks.sort(by: >)
        let confirmed = acks[Self.quorum(voters) - 1]
        // A round still waiting for its broadcast cannot be confirmed yet.
        let broadcastLimit = needsReadBroadcast ? readSeq - 1 : readSeq
        let limit = min(confirmed, broadcastLimit)
        var released = 0
        while released < pendingReads.count, pendingReads[released].seq <= limit {
            answerRead(pendingReads[released])
            released += 1
        }
        if released > 0 { pendingReads.removeFirst(released) }
    }

    mutating func answerRead(_ read: PendingRead) {
        if read.from == id {
            readStates.append(ReadState(index: read.index, context: read.context))
        } else {
            send(Message(type: .readIndexResponse, from: id, to: read.from, term: term, index: read.index, context: read.context))
        }
    }
}
