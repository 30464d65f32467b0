/// A deterministic Raft state machine, in the style of etcd-io/raft's `RawNode`.
///
/// The node does no I/O and reads no clock or global randomness. Its inputs are ``tick()``,
/// ``step(_:)`` (a message from a peer) and the application's requests (``propose(_:)``,
/// ``proposeConfChange(_:)``, ``readIndex(context:)``, ``transferLeadership(to:)``). Its outputs are
/// collected in a ``Ready``: what to persist, what to send, what to apply. The driver loop is:
///
/// ```swift
/// node.tick()                      // every tick interval
/// node.step(message)               // for each message received
/// while node.hasReady {
///     let ready = node.ready()
///     try storage.persist(ready.persistBatch)   // 1. durable first
///     transport.send(ready.messages)            // 2. then talk
///     stateMachine.apply(ready)                 // 3. snapshot, committed entries, reads
///     node.advance(ready)                       // 4. acknowledge
/// }
/// ```
///
/// It is a value type and `Sendable`; it is not thread-safe by itself (use it from one task or
/// actor at a time).
public struct RaftNode: Sendable {
    /// This node's id.
    public let id: NodeID
    let config: RaftConfig
    var random: any RandomNumberGenerator & Sendable

    // Persistent state (Raft figure 2).
    /// Latest term this node has seen.
    public internal(set) var term: UInt64
    /// Candidate voted for in ``term``, or 0.
    public internal(set) var vote: NodeID
    var log: RaftLog

    // Volatile state.
    /// Current role.
    public internal(set) var role: Role = .follower
    /// Leader of the current term as far as this node knows, or 0.
    var leader: NodeID = 0
    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    var votes: [NodeID: Bool] = [:]

    // Leader state.
    var progress: [NodeID: Progress] = [:]
    var leadTransferee: NodeID = 0
    var readSeq: UInt64 = 0
    var pendingReads: [PendingRead] = []
    var readsAwaitingCommit: [PendingRead] = []
    var needsReadBroadcast = false

    // Follower state.
    var snapshotReceiver: SnapshotReceiver?

    /// The snapshot at `log.snapshotIndex`, sent to followers that lag behind it. Its data is
    /// empty once released (``releaseSnapshotData(readBackWith:)``): then
    /// `latestSnapshotSource` reads it back.
    var latestSnapshot: Snapshot?
    /// Reads the released data of `latestSnapshot` back from durable storage.
    var latestSnapshotSource: (@Sendable () -> [UInt8]?)?

    // Refused peers' messages (RaftNode+Admission).
    /// Count of refused messages by reason, since start.
    var refusedCounts: [RefusalReason: UInt64] = [:]
    /// The refusal of the message being stepped, if any.
    var stepRefusal: Refusal?

    // Outputs, drained by `ready()`.
    var messages: [Message] = []
    var readStates: [ReadState] = []
    var receivedSnapshot: Snapshot?
    var prevHardState: HardState
    var prevSoftState: SoftState
    var prevConf: ConfState

    /// Creates a node from its persisted state (empty for a brand-new node).
    ///
    /// After a restart the node is a follower of no known leader; the application restores its
    /// state machine from `state.snapshot`, and the following `Ready`s deliver the committed entries
    /// after it.
    public init(config: RaftConfig, state: PersistedState, random: some RandomNumberGenerator & Sendable) throws(RaftConfigError) {
        try config.validate()
        self.id = config.id
        self.config = config
        self.random = random
        self.term = state.hardState.term
        self.vote = state.hardState.vote
        self.log = RaftLog(
            snapshot: state.snapshot.metadata,
            entries: state.entries,
            committed: state.hardState.commit,
            bootstrapConf: config.peers
        )
        self.latestSnapshot = state.snapshot.isEmpty ? nil : state.snapshot
        self.prevHardState = state.hardState
        self.prevSoftState = SoftState(role: .follower, leaderID: nil)
        self.prevConf = ConfState()
        resetRandomizedElectionTimeout()
    }

    // MARK: Observation

    /// The leader this node knows of in the current term.
    public var leaderID: NodeID? { leader == 0 ? nil : leader }
    /// Highest index known committed.
    public var commitIndex: UInt64 { log.committed }
    /// Highest index the application reported applied.
    public var appliedIndex: UInt64 { log.applied }
    /// Index of the last entry in the log.
    public var lastIndex: UInt64 { log.lastIndex }
    /// Index of the last entry covered by the latest snapshot (0: none).
    public var snapshotIndex: UInt64 { log.snapshotIndex }
    /// The membership in force (the last configuration entry in the log, dissertation §4.1).
    public var conf: ConfState { log.conf }
    /// True if this node is a voter in its current configuration.
    public var isPromotable: Bool { log.conf.voters.contains(id) }

    /// Role and leader, as reported in ``Ready/softState``.
    public var softState: SoftState { SoftState(role: role, leaderID: leaderID) }

    var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }

    /// A summary of this node's state.
    public func status() -> RaftStatus {
        var peers: [NodeID: PeerProgress] = [:]
        if role == .leader {
            for (peer, pr) in progress {
                peers[peer] = PeerProgress(match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner, recentActive: pr.recentActive)
            }
        }
        return RaftStatus(
            id: id, term: term, vote: vote, role: role, leaderID: leaderID,
            commit: log.committed, applied: log.applied, lastIndex: log.lastIndex,
            snapshotIndex: log.snapshotIndex, conf: log.conf, progress: peers,
            leadTransferee: leadTransferee == 0 ? nil : leadTransferee,
            refused: refusedCounts
        )
    }

    // MARK: Inputs

    /// Advances logical time by one tick: followers and candidates count towards an election
    /// timeout, leaders towards the next heartbeat and the check-quorum period.
    public mutating func tick() {
        switch role {
        case .leader: tickHeartbeat()
        case .follower, .preCandidate, .candidate: tickElection()
        }
    }

    /// Starts an election now (pre-vote first if enabled), as if the election timeout had elapsed.
    public mutating func campaign() {
        hup(transfer: false)
    }

    /// Handles a message from a peer.
    ///
    /// Term handling follows Raft figure 2 ("if RPC request or response contains term T >
    /// currentTerm: set currentTerm = T, convert to follower"), with the exceptions for pre-vote
    /// (§9.6) and the leader lease (§4.2.3: a node that heard from a leader within the minimum
    /// election timeout ignores RequestVote).
    ///
    /// A message no correct peer sends, or that contradicts this node's state (see
    /// ``RefusalReason``), is refused: it changes nothing, is counted in ``RaftStatus/refused``,
    /// and the refusal is returned for the driver to log. Returns nil for a message handled
    /// (which includes stale messages ignored as Raft prescribes).
    @discardableResult
    public mutating func step(_ m: Message) -> Refusal? {
        stepRefusal = nil
        if let refusal = admissionRefusal(m) {
            refuse(refusal)
        } else {
            handle(m)
        }
        return stepRefusal
    }

    /// Records a refused message (see ``step(_:)``).
    mutating func refuse(_ refusal: Refusal) {
        refusedCounts[refusal.reason, default: 0] += 1
        stepRefusal = refusal
    }

    /// Records a refusal found by a handler, after admission (a last line of defence: admission
    /// refuses such messages before they change anything).
    mutating func refuse(_ m: Message, _ reason: RefusalReason, _ detail: String) {
        refuse(Refusal(reason: reason, type: m.type, from: m.from, term: m.term, detail: detail))
    }

    private mutating func handle(_ m: Message) {
        if m.term > term {
            if m.type == .vote || m.type == .preVote {
                let inLease = config.checkQuorum && leader != 0 && electionElapsed < config.electionTick
                if inLease && !m.isLeadershipTransfer { return }
            }
            switch m.type {
            case .preVote:
                break // never change term for a pre-vote request
            case .preVoteResponse where !m.reject:
                break // our own pre-campaign term; handled by the candidate
            case .append, .heartbeat, .snapshot:
                becomeFollower(term: m.term, leader: m.from)
            default:
                becomeFollower(term: m.term, leader: 0)
            }
        } else if m.term < term {
            if (config.checkQuorum || config.preVote) && (m.type == .append || m.type == .heartbeat) {
                // A leader of an old term (or this node advanced its term while partitioned):
                // answering with our term makes the stale leader step down (etcd raft.go).
                send(Message(type: .appendResponse, from: id, to: m.from, term: term))
            } else if m.type == .preVote {
                send(Message(type: .preVoteResponse, from: id, to: m.from, term: term, reject: true))
            }
            return
        }

        switch m.type {
        case .vote, .preVote:
            handleVoteRequest(m)
        default:
            switch role {
            case .leader: stepLeader(m)
            case .candidate, .preCandidate: stepCandidate(m)
            case .follower: stepFollower(m)
            }
        }
    }

    // MARK: Ready / advance

    /// True if ``ready()`` has something for the driver.
    public var hasReady: Bool {
        softState != prevSoftState
            || hardState != prevHardState
            || log.hasUnstable
            || receivedSnapshot != nil
            || !messages.isEmpty
            || log.hasCommittedToApply
            || !readStates.isEmpty
            || needsReadBroadcast
            || log.conf != prevConf
    }

    /// Collects everything the driver must do now (see ``Ready`` for the order). The returned
    /// entries and messages are handed out exactly once.
    public mutating func ready() -> Ready {
        flushReadBroadcast()
        var rd = Ready()
        let soft = softState
        if soft != prevSoftState {
            rd.softState = soft
            prevSoftState = soft
        }
        let hard = hardState
        let termOrVoteChanged = hard.term != prevHardState.term || hard.vote != prevHardState.vote
        if hard != prevHardState {
            rd.hardState = hard
            prevHardState = hard
        }
        rd.snapshot = receivedSnapshot
        receivedSnapshot = nil
        rd.entries = log.takeUnstable()
        rd.mustSync = termOrVoteChanged || rd.snapshot != nil || !rd.entries.isEmpty
        rd.committedEntries = log.takeCommitted()
        rd.messages = Self.coalesced(messages, maxEntries: config.maxEntriesPerAppend, maxBytes: config.maxBytesPerAppend)
        messages.removeAll(keepingCapacity: true)
        rd.readStates = readStates
        readStates.removeAll()
        if log.conf != prevConf {
            rd.confState = log.conf
            prevConf = log.conf
        }
        return rd
    }

    /// Acknowledges that `ready` was persisted, sent and applied.
    public mutating func advance(_ ready: Ready) {
        if let snapshot = ready.snapshot {
            log.applied = max(log.applied, snapshot.metadata.index)
        }
        if let last = ready.committedEntries.last {
            log.applied = max(log.applied, last.index)
        }
    }

    // MARK: Helpers

    mutating func send(_ m: Message) {
        messages.append(m)
    }

    mutating func resetRandomizedElectionTimeout() {
        let spread = UInt64(config.electionTick)
        randomizedElectionTimeout = config.electionTick + Int(random.next() % spread)
    }

    /// Size of a majority of `voters`.
    static func quorum(_ voters: Set<NodeID>) -> Int { voters.count / 2 + 1 }
}
