/// One service's claim on one object (DESIGN.md, "Lease semantics").
///
/// Stored compactly, because a node holds every active lease in memory
/// (DESIGN.md, "Memory"): the optional fields are flag bits beside their raw
/// values, the object key holds a short id inline (``ObjectKey``), and the cleanup spec is a
/// shared immutable box (leases of one service usually name the same target,
/// and the state machine interns them). The properties read and write as plain
/// values; equality and hashing are those of the values.
public struct Lease: Hashable, Sendable {
    /// The lease's own lifecycle.
    public enum State: Int32, Hashable, Sendable {
        case active = 0
        case expired = 1
        case released = 2
    }

    public var id: LeaseID
    public var object: ObjectKey
    public var serviceID: String
    public var metadata: [String: String]
    /// The cleanup spec, shared between leases that name the same one.
    var cleanupBox: Box<CleanupSpec>?
    public var createdAt: WallTime
    public var expiresAt: WallTime
    public var lastRenewedAt: WallTime
    /// The duration granted at creation; a renewal with 0 extends by this.
    public var durationSeconds: UInt64
    /// Log index of the command that last granted or renewed this lease.
    public var fencingToken: UInt64
    /// The incarnation of the object this lease holds.
    public var incarnation: UInt64
    /// Log index of the create command.
    public var createdIndex: UInt64
    /// `endedAt` in milliseconds when ``Flags/ended`` is set, else 0.
    private var endedAtRaw: Int64
    /// `cleanupJobID` when ``Flags/hasCleanupJob`` is set, else 0.
    private var cleanupJobIDRaw: JobID
    public var renewalCount: UInt32
    public var state: State
    private var flags: Flags

    private struct Flags: OptionSet, Hashable, Sendable {
        let rawValue: UInt8
        static let ended = Flags(rawValue: 1)
        static let hasCleanupJob = Flags(rawValue: 2)
    }

    init(id: LeaseID, object: ObjectKey, serviceID: String, metadata: [String: String], cleanup: CleanupSpec?,
         createdAt: WallTime, expiresAt: WallTime, lastRenewedAt: WallTime, durationSeconds: UInt64,
         renewalCount: UInt32, fencingToken: UInt64, incarnation: UInt64, state: State, endedAt: WallTime?,
         cleanupJobID: JobID?, createdIndex: UInt64) {
        self.id = id
        self.object = object
        self.serviceID = serviceID
        self.metadata = metadata
        self.cleanupBox = cleanup.map(Box.init)
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastRenewedAt = lastRenewedAt
        self.durationSeconds = durationSeconds
        self.fencingToken = fencingToken
        self.incarnation = incarnation
        self.createdIndex = createdIndex
        self.endedAtRaw = 0
        self.cleanupJobIDRaw = 0
        self.renewalCount = renewalCount
        self.state = state
        self.flags = []
        self.endedAt = endedAt
        self.cleanupJobID = cleanupJobID
    }

    /// Where the object is cleaned when this lease is its last; nil for none.
    public var cleanup: CleanupSpec? {
        get { cleanupBox?.value }
        set { cleanupBox = newValue.map(Box.init) }
    }

    /// When the lease expired or was released.
    public var endedAt: WallTime? {
        get { flags.contains(.ended) ? WallTime(milliseconds: endedAtRaw) : nil }
        set {
            endedAtRaw = newValue?.milliseconds ?? 0
            if newValue == nil { flags.remove(.ended) } else { flags.insert(.ended) }
        }
    }

    /// The cleanup job this lease's end created (it was the object's last).
    public var cleanupJobID: JobID? {
        get { flags.contains(.hasCleanupJob) ? cleanupJobIDRaw : nil }
        set {
            cleanupJobIDRaw = newValue ?? 0
            if newValue == nil { flags.remove(.hasCleanupJob) } else { flags.insert(.hasCleanupJob) }
        }
    }

    public var isActive: Bool { state == .active }
}

/// An immutable value on the heap, shared by every copy that holds it (e.g.
/// one cleanup spec for all the leases that name it). Equal and hashed as
/// its value, so sharing never shows.
final class Box<Value: Hashable & Sendable>: Hashable, Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }

    static func == (lhs: Box, rhs: Box) -> Bool {
        lhs === rhs || lhs.value == rhs.value
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(value)
    }
}

/// The delivery of one object's cleanup, with its attempts (at-least-once).
public struct CleanupJob: Hashable, Sendable {
    public enum State: Int32, Hashable, Sendable {
        /// Waiting for its next attempt at `nextAttemptAt`.
        case pending = 0
        case succeeded = 1
        /// Every attempt failed; kept until an operator retries it.
        case deadLettered = 2
        /// The object was leased again before the cleanup succeeded, so the
        /// cleanup of this incarnation was cancelled.
        case superseded = 3
    }

    public var id: JobID
    public var object: ObjectKey
    public var incarnation: UInt64
    /// The lease whose end made the object garbage (or whose cleanup config is used).
    public var leaseID: LeaseID
    public var serviceID: String
    public var metadata: [String: String]
    public var spec: CleanupSpec
    public var fencingToken: UInt64
    /// Attempts made so far; the next attempt is number `attempts + 1`.
    public var attempts: UInt32
    public var nextAttemptAt: WallTime
    public var state: State
    public var lastError: String
    public var createdAt: WallTime
    public var finishedAt: WallTime?

    /// Stable for every attempt of this job on every node, and unique across
    /// restarts (the lease id carries a random suffix).
    public var idempotencyKey: String { "\(leaseID.rawValue)-job\(id)" }

    public var isOpen: Bool { state == .pending || state == .deadLettered }
}

/// Something that happened to a lease or a cleanup, in log order.
public struct LeaseEvent: Hashable, Sendable {
    public enum Kind: Int32, Hashable, Sendable {
        case created = 1
        case renewed = 2
        case released = 3
        case expired = 4
        case cleanupSucceeded = 5
        case cleanupFailed = 6
        case cleanupDeadLettered = 7
        case cleanupSuperseded = 8
        case cleanupRetried = 9
    }

    /// Log index of the command that caused the event.
    public var index: UInt64
    /// Position among the events of the same index.
    public var position: UInt32
    public var kind: Kind
    public var leaseID: LeaseID
    public var object: ObjectKey
    public var serviceID: String
    public var incarnation: UInt64
    public var fencingToken: UInt64
    public var at: WallTime
    public var expiresAt: WallTime?
    public var reason: String
    public var attempt: UInt32

    /// An event with these fields (public for stores that keep events
    /// outside the state machine: PostgreSQL mode reads them back from its
    /// events table).
    public init(
        index: UInt64, position: UInt32, kind: Kind, leaseID: LeaseID, object: ObjectKey, serviceID: String,
        incarnation: UInt64, fencingToken: UInt64, at: WallTime, expiresAt: WallTime?, reason: String, attempt: UInt32
    ) {
        self.index = index
        self.position = position
        self.kind = kind
        self.leaseID = leaseID
        self.object = object
        self.serviceID = serviceID
        self.incarnation = incarnation
        self.fencingToken = fencingToken
        self.at = at
        self.expiresAt = expiresAt
        self.reason = reason
        self.attempt = attempt
    }
}

/// Running totals since the cluster was created (replicated, in snapshots).
public struct LeaseStats: Hashable, Sendable {
    public var created: UInt64 = 0
    public var renewed: UInt64 = 0
    public var expired: UInt64 = 0
    public var released: UInt64 = 0
    /// Every cleanup attempt with a recorded outcome.
    public var cleanupAttempts: UInt64 = 0
    public var cleanupFailures: UInt64 = 0
    public var cleanupSucceeded: UInt64 = 0
    public var deadLettered: UInt64 = 0

    public init() {}
}
