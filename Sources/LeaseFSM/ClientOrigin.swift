/// Who proposed a command on a client's behalf, for exactly-once application
/// (Raft dissertation §6.3).
///
/// A node forwarding client writes to the leader opens a session (a client id
/// unique to that process) and numbers its commands. If a forward is retried
/// (the leader crashed after committing, the answer was lost), the state
/// machine sees the same client id and sequence again and returns the reply it
/// stored instead of applying the command twice.
public struct ClientOrigin: Hashable, Sendable {
    /// The proposing session, e.g. `n2/5f3a…` (node name and boot nonce).
    public var clientID: String
    /// This command's number within the session (from 1).
    public var sequence: UInt64
    /// The session holds answers for every sequence below this one: the state
    /// machine may forget their replies.
    public var firstUnacknowledged: UInt64

    public init(clientID: String, sequence: UInt64, firstUnacknowledged: UInt64) {
        self.clientID = clientID
        self.sequence = sequence
        self.firstUnacknowledged = firstUnacknowledged
    }
}
