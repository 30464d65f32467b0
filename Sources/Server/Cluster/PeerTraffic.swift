import Raft

/// One item of what a node sends another on the peer stream, in order: a
/// Raft message, a client write a follower hands to the leader (etcd's
/// `MsgProp`), or the leader's answer to such a write.
///
/// Forwarded writes travel with the Raft messages on the stream each node
/// already keeps open to every peer, so a follower's writes cost the leader
/// one decode each, not one gRPC call each.
public enum PeerTraffic: Sendable {
    case message(Message)
    case forward(ForwardedWrite)
    case reply(ForwardedReply)

    /// Rough wire size, for batching under the peer's message size limit.
    var estimatedSize: Int {
        switch self {
        case .message(let message): RaftMessageCoding.estimatedSize(message)
        case .forward(let write): 16 + write.command.count
        case .reply(let reply): reply.estimatedSize
        }
    }
}

/// A client write a follower hands to the leader.
public struct ForwardedWrite: Sendable, Hashable {
    /// Chosen by the forwarding node; the reply carries it back.
    public var id: UInt64
    /// The command in the log's encoding (``StampedCommand``), with the
    /// client's session set so a retry applies once; the leader stamps it.
    public var command: [UInt8]

    public init(id: UInt64, command: [UInt8]) {
        self.id = id
        self.command = command
    }
}

/// The leader's answer to a ``ForwardedWrite``.
public struct ForwardedReply: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        /// The state machine's reply, encoded (``CommandReplyCoding``).
        case reply([UInt8])
        /// The leader could not decide: the write may or may not have been
        /// applied; retry under the same session.
        case unavailable(String)
    }

    public var id: UInt64
    public var outcome: Outcome

    public init(id: UInt64, outcome: Outcome) {
        self.id = id
        self.outcome = outcome
    }

    var estimatedSize: Int {
        switch outcome {
        case .reply(let bytes): 16 + bytes.count
        case .unavailable(let message): 16 + message.utf8.count
        }
    }
}
