/// The cluster's state after the run, faults healed and every node caught up
/// (read from the leader).
public struct FinalState: Sendable {
    public struct Lease: Hashable, Sendable {
        public var view: LeaseView
        /// When it expired or was released, on the cluster's clock.
        public var endedAtMs: Int64?

        public init(view: LeaseView, endedAtMs: Int64?) {
            self.view = view
            self.endedAtMs = endedAtMs
        }
    }

    public struct Job: Hashable, Sendable {
        public enum State: String, Hashable, Sendable {
            case pending, succeeded, deadLettered, superseded
        }

        public var id: UInt64
        public var object: String
        public var incarnation: UInt64
        public var leaseID: String
        public var state: State
        public var idempotencyKey: String
        public var attempts: UInt32

        public init(id: UInt64, object: String, incarnation: UInt64, leaseID: String, state: State, idempotencyKey: String, attempts: UInt32) {
            self.id = id
            self.object = object
            self.incarnation = incarnation
            self.leaseID = leaseID
            self.state = state
            self.idempotencyKey = idempotencyKey
            self.attempts = attempts
        }
    }

    /// Every lease still retained, by id.
    public var leases: [String: Lease]
    public var jobs: [Job]

    public init(leases: [String: Lease], jobs: [Job]) {
        self.leases = leases
        self.jobs = jobs
    }
}

/// The timing the checkers allow for (all in ms of true time).
public struct CheckBounds: Sendable {
    /// The largest clock error a run injected: how far ahead plus how far
    /// behind true time any node's clock was at any point.
    public var clockErrorMs: Int64
    /// `GC_CLEANUP_GRACE_PERIOD`.
    public var graceMs: Int64
    /// How long after a lease is due (expiry + grace) the cluster may take to
    /// expire it when healthy: reap interval + hold-off + election timeout +
    /// slack for the run's own pacing.
    public var expiryLatencyMs: Int64
    /// When faults were active, in true time (and the run's warm-up and
    /// final heal): an expiry that waits through one of them is late for a
    /// recorded reason.
    public var disturbances: [ClosedRange<Int64>]
    /// Whether deliveries carry the sender's leadership check (in-process runs).
    public var deliveriesCarryConfirmation: Bool

    public init(clockErrorMs: Int64, graceMs: Int64, expiryLatencyMs: Int64, disturbances: [ClosedRange<Int64>],
                deliveriesCarryConfirmation: Bool) {
        self.clockErrorMs = clockErrorMs
        self.graceMs = graceMs
        self.expiryLatencyMs = expiryLatencyMs
        self.disturbances = disturbances
        self.deliveriesCarryConfirmation = deliveriesCarryConfirmation
    }
}

/// A broken promise, named by the property it breaks.
public struct Violation: Hashable, Sendable, CustomStringConvertible {
    public enum Property: String, Hashable, Sendable, CaseIterable {
        case linearizable = "a. linearizable lease operations"
        case noLostWrites = "b. no acknowledged write lost"
        case safeCleanup = "c. no cleanup of a held object, none from a non-leader"
        case eventualCleanup = "d. every unheld object cleaned or dead-lettered, once per incarnation"
        case expiryTiming = "e. leases expire neither early nor unreasonably late"
        case fencing = "f. fencing tokens strictly increase"
        case convergence = "g. live nodes converge"
    }

    public var property: Property
    public var message: String

    public init(_ property: Property, _ message: String) {
        self.property = property
        self.message = message
    }

    public var description: String { "[\(property.rawValue)] \(message)" }
}

extension CheckBounds {
    /// When a lease due at `due` (expiry + grace) must be expired by, at the
    /// latest: `expiryLatencyMs` after it, pushed back past every disturbance
    /// that overlaps the wait.
    func expiryDeadline(due: Int64) -> Int64 {
        var start = due
        for window in disturbances.sorted(by: { $0.lowerBound < $1.lowerBound })
        where window.lowerBound <= start + expiryLatencyMs && window.upperBound >= start {
            start = window.upperBound
        }
        return start + expiryLatencyMs
    }
}
