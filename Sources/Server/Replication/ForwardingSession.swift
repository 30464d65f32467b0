import LeaseFSM

/// This node's client session (Raft dissertation §6.3) for the writes it
/// forwards to the leader: numbers them and tracks which are unanswered, so
/// the state machine can forget replies the node no longer needs.
struct ForwardingSession: Sendable {
    let clientID: String
    private var nextSequence: UInt64 = 1
    private var inFlight: Set<UInt64> = []

    init(clientID: String) {
        self.clientID = clientID
    }

    /// Opens the next command of the session.
    mutating func open() -> UInt64 {
        let sequence = nextSequence
        nextSequence += 1
        inFlight.insert(sequence)
        return sequence
    }

    /// The command `sequence` has its answer (or was given up on).
    mutating func close(_ sequence: UInt64) {
        inFlight.remove(sequence)
    }

    /// The origin to send with command `sequence`: every command below the
    /// oldest unanswered one is acknowledged.
    func origin(for sequence: UInt64) -> ClientOrigin {
        ClientOrigin(clientID: clientID, sequence: sequence, firstUnacknowledged: inFlight.min() ?? sequence)
    }
}

extension LeaseCommand {
    /// Commands clients send (forwarded by followers). The leader's own
    /// commands (expire decisions, cleanup outcomes) are never forwarded: a
    /// node that is not the leader must not make them.
    var isClientWrite: Bool {
        switch self {
        case .create, .renew, .release, .retryDeadLetters, .renewals: true
        case .expire, .cleanupOutcome, .cleanupOutcomes: false
        }
    }
}
