/// Client sessions: exactly-once application of retried commands (Raft
/// dissertation §6.3). A session remembers the reply to each command that its
/// client has not yet acknowledged; a command seen again gets that reply and
/// changes nothing.
extension LeaseStateMachine {
    struct ClientSession: Hashable, Sendable {
        /// Stamp of the session's latest command (idle sessions are forgotten).
        var lastActive: WallTime
        /// Replies below this sequence were acknowledged and forgotten.
        var firstRetained: UInt64 = 0
        var replies: [UInt64: Result<CommandResult, LeaseError>] = [:]
    }

    /// How long a session with no commands is remembered. A node retries a
    /// forward only within its client's deadline, far shorter than this; a
    /// restarted node opens a new session.
    public static let sessionIdleLimitMilliseconds: Int64 = 3_600_000
    /// Client sessions remembered at once; a new client session past this is
    /// refused (nodes' own forwarding sessions, not prefixed `client:`, are
    /// exempt, so forwarding keeps working).
    public static let maxClientSessions = 100_000
    /// Unacknowledged replies one session may hold; a client must advance
    /// `first_unacknowledged` to send more.
    public static let maxRepliesPerSession = 10_000

    /// The reply already given to `origin`'s command, if it was applied
    /// before; records the session's activity and acknowledgements either way.
    mutating func replayedReply(for origin: ClientOrigin) -> Result<CommandResult, LeaseError>? {
        if sessions[origin.clientID] == nil, origin.clientID.hasPrefix("client:"), sessions.count >= Self.maxClientSessions {
            return .failure(LeaseError(.resourceExhausted,
                "client sessions limit: \(sessions.count) sessions are remembered (at most \(Self.maxClientSessions)); retry later, or reuse one origin.client_id per process"))
        }
        var session = sessions[origin.clientID] ?? ClientSession(lastActive: now)
        session.lastActive = now
        if origin.firstUnacknowledged > session.firstRetained {
            session.firstRetained = origin.firstUnacknowledged
            session.replies = session.replies.filter { $0.key >= origin.firstUnacknowledged }
        }
        sessions[origin.clientID] = session
        if let reply = session.replies[origin.sequence] { return reply }
        if origin.sequence < session.firstRetained {
            return .failure(LeaseError(.failedPrecondition,
                "command \(origin.sequence) of session \(origin.clientID) was already answered; it was not applied again"))
        }
        if session.replies.count >= Self.maxRepliesPerSession {
            return .failure(LeaseError(.resourceExhausted,
                "session replies limit: \(session.replies.count) answered writes of this session are unacknowledged (at most \(Self.maxRepliesPerSession)); advance origin.first_unacknowledged"))
        }
        return nil
    }

    /// Stores the reply to `origin`'s command for retries.
    mutating func remember(_ reply: Result<CommandResult, LeaseError>, for origin: ClientOrigin) {
        sessions[origin.clientID]?.replies[origin.sequence] = reply
    }

    /// Forgets sessions idle for longer than ``sessionIdleLimitMilliseconds``.
    /// Runs every 256th index so that it costs little; every replica runs it
    /// at the same indexes, so they stay identical.
    mutating func forgetIdleSessions(index: UInt64) {
        guard index % 256 == 0, !sessions.isEmpty else { return }
        let cutoff = now.adding(milliseconds: -Self.sessionIdleLimitMilliseconds)
        sessions = sessions.filter { $0.value.lastActive > cutoff }
    }

    /// Number of client sessions remembered (for metrics and tests).
    public var sessionCount: Int { sessions.count }
}

extension DistributedGc_Fsm_ClientSessionRecord {
    init(id: String, session: LeaseStateMachine.ClientSession) {
        self.init()
        clientID = id
        lastActive = session.lastActive.milliseconds
        firstRetained = session.firstRetained
        replies = session.replies.keys.sorted().compactMap { sequence in
            session.replies[sequence].map { reply in
                var r = DistributedGc_Fsm_StoredReplyRecord()
                r.sequence = sequence
                r.reply = CommandReplyCoding.record(reply)
                return r
            }
        }
    }
}

extension LeaseStateMachine.ClientSession {
    init(_ r: DistributedGc_Fsm_ClientSessionRecord) throws(LeaseStateMachine.DecodingError) {
        self.init(lastActive: WallTime(milliseconds: r.lastActive), firstRetained: r.firstRetained)
        for stored in r.replies {
            replies[stored.sequence] = try CommandReplyCoding.reply(stored.reply)
        }
    }
}
