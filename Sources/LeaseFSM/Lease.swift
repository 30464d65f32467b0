/// One service's claim on one object (DESIGN.md, "Lease semantics").
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
    /// Where the object is cleaned when this lease is its last; nil for none.
    public var cleanup: CleanupSpec?
    public var createdAt: WallTime
    public var expiresAt: WallTime
    public var lastRenewedAt: WallTime
    /// The duration granted at creation; a renewal with 0 extends by this.
    public var durationSeconds: UInt64
    public var renewalCount: UInt32
    /// Log index of the command that last granted or renewed this lease.
    public var fencingToken: UInt64
    /// The incarnation of the object this lease holds.
    public var incarnation: UInt64
    public var state: State
    /// When the lease expired or was released.
    public var endedAt: WallTime?
    /// The cleanup job this lease's end created (it was the object's last).
    public var cleanupJobID: JobID?
    /// Log index of the create command.
    public var createdIndex: UInt64

    public var isActive: Bool { state == .active }
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
