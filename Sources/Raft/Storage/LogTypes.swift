/// Identity of a Raft node. `0` is reserved for "none".
public typealias NodeID = UInt64

/// What a log entry carries.
public enum EntryKind: UInt8, Sendable, Hashable {
    /// An application command (opaque bytes, handed to the state machine on commit).
    case normal = 0
    /// The empty entry a new leader appends at the start of its term (Raft §8 / dissertation §6.4).
    case noop = 1
    /// A membership change; `data` is an encoded ``ConfChange``.
    case configChange = 2
}

/// One entry of the replicated log.
public struct Entry: Sendable, Hashable {
    public var term: UInt64
    public var index: UInt64
    public var kind: EntryKind
    public var data: [UInt8]

    public init(term: UInt64, index: UInt64, kind: EntryKind = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }
}

/// The state a node must persist before answering any message that depends on it (Raft figure 2).
public struct HardState: Sendable, Hashable {
    public var term: UInt64
    /// Candidate voted for in `term`, or `0` for none.
    public var vote: NodeID
    /// Highest index known committed. Persisted so a restart need not rediscover it.
    public var commit: UInt64

    public init(term: UInt64 = 0, vote: NodeID = 0, commit: UInt64 = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// Cluster membership: voters decide elections and commits; learners only receive the log.
public struct ConfState: Sendable, Hashable {
    public var voters: Set<NodeID>
    public var learners: Set<NodeID>

    public init(voters: Set<NodeID> = [], learners: Set<NodeID> = []) {
        self.voters = voters
        self.learners = learners
    }
}

/// Describes the log prefix a snapshot replaces.
public struct SnapshotMetadata: Sendable, Hashable {
    /// Index of the last entry the snapshot covers.
    public var index: UInt64
    /// Term of that entry.
    public var term: UInt64
    /// Membership as of `index`.
    public var conf: ConfState

    public init(index: UInt64 = 0, term: UInt64 = 0, conf: ConfState = ConfState()) {
        self.index = index
        self.term = term
        self.conf = conf
    }
}

/// Application state as of `metadata.index`, opaque to Raft.
public struct Snapshot: Sendable, Hashable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata = SnapshotMetadata(), data: [UInt8] = []) {
        self.metadata = metadata
        self.data = data
    }

    /// True for the "no snapshot yet" value.
    public var isEmpty: Bool { metadata.index == 0 }
}
