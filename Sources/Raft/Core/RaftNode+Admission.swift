/// Admission of peers' messages: what ``step(_:)`` refuses before the message changes anything.
///
/// Everything a message carries comes from the network, so every field is checked against what a
/// correct peer can send and against this node's own state before the handlers (which assume
/// well-formed input) see it. A refused message leaves the node exactly as it was.
extension RaftNode {
    /// The largest index (log index, commit index, hint) a message may carry: 2^62. No real log
    /// gets near it, and every `+ 1` or `+ count` the core does on an index stays in range.
    public static let maxIndex: UInt64 = 1 << 62

    /// The largest term a message may carry: 2^32 below `UInt64.max`, so a node that adopts it
    /// can still campaign four billion times without overflowing.
    ///
    /// Terms are not otherwise bounded: Raft cannot tell a forged term from a real one, and a
    /// limit on how far ahead a term may be splits the cluster into nodes that no longer hear
    /// each other (the peer fuzz found that). So a peer that can forge a member's messages can
    /// raise the cluster to this term, after which elections end (nothing crashes). Peer
    /// authentication is the defence against forged messages, not this bound.
    public static let maxTerm: UInt64 = UInt64.max - (1 << 32)

    /// The reason to refuse `m`, or nil if it may be handled.
    func admissionRefusal(_ m: Message) -> Refusal? {
        func refusal(_ reason: RefusalReason, _ detail: String) -> Refusal {
            Refusal(reason: reason, type: m.type, from: m.from, term: m.term, detail: detail)
        }
        guard m.to == id else {
            return refusal(.wrongRecipient, "addressed to \(hex(m.to)), this node is \(hex(id))")
        }
        guard m.from != id, m.from != 0 else {
            return refusal(.wrongRecipient, m.from == 0 ? "sender is node 0 (none)" : "sender claims to be this node")
        }
        if let problem = rangeProblem(m) { return refusal(.outOfRange, problem) }
        guard mayHear(m) else {
            return refusal(.notAMember, "\(hex(m.from)) is not a member (voters \(hexes(log.conf.voters)), learners \(hexes(log.conf.learners)))")
        }
        switch m.type {
        case .append:
            if let problem = entriesProblem(m) { return refusal(.malformedEntries, problem) }
        case .heartbeat:
            // The leader never names a commit beyond what this follower acknowledged to it
            // (`min(match, committed)`): beyond our last entry, we lost acknowledged entries.
            if handledAsFollower(m), m.commit > log.lastIndex {
                return refusal(.commitBeyondLog, "the leader commits index \(m.commit), which this node acknowledged, but its log ends at \(log.lastIndex): it lost acknowledged entries")
            }
        case .snapshot:
            if let (reason, problem) = snapshotProblem(m) { return refusal(reason, problem) }
        case .appendResponse:
            if let (reason, problem) = appendResponseProblem(m) { return refusal(reason, problem) }
        case .heartbeatResponse:
            if role == .leader, m.term == term, m.readSeq > readSeq {
                return refusal(.unknownReadRound, "acknowledges read round \(m.readSeq), the latest sent is \(readSeq)")
            }
        case .vote, .voteResponse, .preVote, .preVoteResponse, .readIndex, .readIndexResponse, .timeoutNow:
            break
        }
        return nil
    }

    /// Which senders this node listens to (dissertation §4.2.3: removed servers must not disrupt
    /// the cluster). Members of the current configuration, and also:
    /// - anyone while this node knows no configuration (it joins an existing cluster and learns
    ///   the membership from the leader's first entries or snapshot);
    /// - the leader it follows in the current term, even once the entry removing that leader is
    ///   appended here (the leader keeps leading until the removal commits, §4.2.2);
    /// - a leader of this or a newer term that this node's configuration does not list (this
    ///   node lags behind the entry that added it, or restarted while following a leader that is
    ///   removing itself). A removed node never gets there: it wins no election, since the
    ///   members drop its vote requests; its messages of older terms are dropped.
    func mayHear(_ m: Message) -> Bool {
        let conf = log.conf
        if conf.voters.isEmpty && conf.learners.isEmpty { return true }
        if conf.voters.contains(m.from) || conf.learners.contains(m.from) { return true }
        if m.from == leader && m.term == term { return true }
        switch m.type {
        case .append, .heartbeat, .snapshot: return m.term >= term
        default: return false
        }
    }

    /// True if `m` reaches the follower handlers (after any term change in `step`).
    func handledAsFollower(_ m: Message) -> Bool {
        m.term > term || (m.term == term && role != .leader)
    }

    private func rangeProblem(_ m: Message) -> String? {
        for (name, value) in [("term", m.term), ("logTerm", m.logTerm)] where value > Self.maxTerm {
            return "\(name) \(value) exceeds \(Self.maxTerm)"
        }
        for (name, value) in [("index", m.index), ("commit", m.commit), ("rejectHint", m.rejectHint)] where value > Self.maxIndex {
            return "\(name) \(value) exceeds \(Self.maxIndex)"
        }
        if let meta = m.snapshot?.metadata, meta.index > Self.maxIndex || meta.term > Self.maxTerm {
            return "snapshot index \(meta.index) / term \(meta.term) out of range"
        }
        return nil
    }

    /// AppendEntries: the entries follow `index` one by one, their terms never go down, start no
    /// lower than `logTerm` and never exceed the sender's term (a leader only sends entries of its
    /// term or older).
    private func entriesProblem(_ m: Message) -> String? {
        guard m.logTerm <= m.term else { return "previous entry's term \(m.logTerm) exceeds the sender's term \(m.term)" }
        var expected = m.index
        var previousTerm = m.logTerm
        for entry in m.entries {
            expected += 1 // m.index <= 2^62 and an array has fewer than 2^62 elements
            guard entry.index == expected else {
                return "entry index \(entry.index) where \(expected) must follow (previous index \(m.index))"
            }
            guard entry.term >= previousTerm, entry.term <= m.term else {
                return "entry \(entry.index) has term \(entry.term) (previous \(previousTerm), sender's term \(m.term))"
            }
            previousTerm = entry.term
            // A configuration entry takes effect when appended: it must name a usable one.
            // (Bytes that do not decode are not a configuration and stay ignored, as before.)
            if entry.kind == .configChange, let change = try? ConfChange.decode(entry.data), !Self.isUsable(change.resultingConf) {
                return "configuration entry \(entry.index) names no usable membership (voters \(hexes(change.resultingConf.voters)), learners \(hexes(change.resultingConf.learners)))"
            }
        }
        return nil
    }

    /// At least one voter, no node both voter and learner, no node 0.
    static func isUsable(_ conf: ConfState) -> Bool {
        !conf.voters.isEmpty && conf.voters.isDisjoint(with: conf.learners) && !conf.voters.contains(0) && !conf.learners.contains(0)
    }

    private func snapshotProblem(_ m: Message) -> (RefusalReason, String)? {
        guard let chunk = m.snapshot else { return (.malformedSnapshot, "snapshot message without a chunk") }
        let meta = chunk.metadata
        guard meta.index > 0, meta.term > 0, meta.term <= m.term else {
            return (.malformedSnapshot, "snapshot at index \(meta.index) term \(meta.term) from a sender at term \(m.term)")
        }
        guard Self.isUsable(meta.conf) else {
            return (.malformedSnapshot, "snapshot membership is not a configuration (voters \(hexes(meta.conf.voters)), learners \(hexes(meta.conf.learners)))")
        }
        guard chunk.totalSize <= config.maxSnapshotBytes else {
            return (.snapshotTooLarge, "snapshot of \(chunk.totalSize) bytes exceeds the limit of \(config.maxSnapshotBytes)")
        }
        guard chunk.offset <= chunk.totalSize, UInt64(chunk.data.count) <= chunk.totalSize - chunk.offset else {
            return (.malformedSnapshot, "chunk of \(chunk.data.count) bytes at offset \(chunk.offset) outside a snapshot of \(chunk.totalSize) bytes")
        }
        guard !chunk.data.isEmpty || chunk.totalSize == 0 else {
            return (.malformedSnapshot, "empty chunk at offset \(chunk.offset) of a snapshot of \(chunk.totalSize) bytes")
        }
        if handledAsFollower(m), let receiver = snapshotReceiver, receiver.belongs(chunk, term: m.term, from: m.from),
           !receiver.fits(chunk) {
            return (.malformedSnapshot, "chunk at offset \(chunk.offset) would hold more than the snapshot's \(chunk.totalSize) bytes")
        }
        return nil
    }

    /// A reply to this leader's append, in its own term, from a follower it replicates to.
    private func appendResponseProblem(_ m: Message) -> (RefusalReason, String)? {
        guard role == .leader, m.term == term, let pr = progress[m.from] else { return nil }
        guard m.index <= log.lastIndex else {
            return (.ackBeyondLog, "\(m.reject ? "rejects" : "acknowledges") index \(m.index) beyond this leader's last index \(log.lastIndex)")
        }
        guard m.reject else { return nil }
        guard m.rejectHint <= m.index else {
            return (.malformedReject, "rejection of index \(m.index) hints at the later index \(m.rejectHint)")
        }
        if m.index <= pr.match {
            return (.rejectBelowMatch, "rejects index \(m.index) but acknowledged index \(pr.match) in this term: a stale rejection, or its log went backwards (it lost acknowledged entries); hint \(m.rejectHint)")
        }
        return nil
    }
}

func hex(_ id: NodeID) -> String { String(id, radix: 16) }

func hexes(_ ids: Set<NodeID>) -> String { "[" + ids.sorted().map(hex).joined(separator: ", ") + "]" }
