/// A change to the lease state, as it travels through the replicated log.
///
/// Commands carry no time and no randomness of their own making: the proposer
/// stamps the time (see ``StampedCommand``) and supplies random parts (the
/// lease id suffix, the retry jitter).
public enum LeaseCommand: Hashable, Sendable {
    case create(CreateLease)
    /// Renews one or more leases of one service (a single renew is a batch of one).
    case renew(RenewLeases)
    case release(ReleaseLease)
    /// The leader's decision that these leases have expired. Leases renewed
    /// since the decision was made are skipped when it is applied.
    case expire(ExpireLeases)
    case cleanupOutcome(CleanupOutcome)
    /// Many outcomes in one entry; each is applied as its own
    /// ``cleanupOutcome`` would be (stale ones are ignored).
    case cleanupOutcomes([CleanupOutcome])
    case retryDeadLetters(RetryDeadLetters)
    /// Renewals of any leases of any services in one entry (the `KeepAlive`
    /// batcher's group commit). Each item is applied as a renew of its one
    /// lease would be, and fails or succeeds on its own; an item repeated
    /// within the entry gets the first one's result.
    case renewals([Renewal])

    public struct CreateLease: Hashable, Sendable {
        /// Random suffix of the new lease's id (1 to 16 lowercase hex digits).
        public var leaseIDSuffix: String
        public var object: ObjectKey
        public var serviceID: String
        /// 0 means the default duration.
        public var durationSeconds: UInt64
        public var metadata: [String: String]
        public var cleanup: CleanupSpec?

        public init(leaseIDSuffix: String, object: ObjectKey, serviceID: String, durationSeconds: UInt64,
                    metadata: [String: String] = [:], cleanup: CleanupSpec? = nil) {
            self.leaseIDSuffix = leaseIDSuffix
            self.object = object
            self.serviceID = serviceID
            self.durationSeconds = durationSeconds
            self.metadata = metadata
            self.cleanup = cleanup
        }
    }

    public struct RenewLeases: Hashable, Sendable {
        public var leaseIDs: [LeaseID]
        public var serviceID: String
        /// 0 means each lease's own duration.
        public var extendSeconds: UInt64

        public init(leaseIDs: [LeaseID], serviceID: String, extendSeconds: UInt64 = 0) {
            self.leaseIDs = leaseIDs
            self.serviceID = serviceID
            self.extendSeconds = extendSeconds
        }
    }

    /// One renewal of a ``LeaseCommand/renewals(_:)`` entry.
    public struct Renewal: Hashable, Sendable {
        public var leaseID: LeaseID
        /// The holder; must match the lease's service.
        public var serviceID: String
        /// 0 means the lease's own duration.
        public var extendSeconds: UInt64

        public init(leaseID: LeaseID, serviceID: String, extendSeconds: UInt64 = 0) {
            self.leaseID = leaseID
            self.serviceID = serviceID
            self.extendSeconds = extendSeconds
        }
    }

    public struct ReleaseLease: Hashable, Sendable {
        public var leaseID: LeaseID
        /// The holder; must match the lease's service unless `force`.
        public var serviceID: String
        /// An operator's release (`gcctl lease force-release`): ends the
        /// lease whoever holds it; `serviceID` is not checked.
        public var force: Bool
        /// Why, for a forced release (kept in the event's reason).
        public var reason: String

        public init(leaseID: LeaseID, serviceID: String) {
            self.leaseID = leaseID
            self.serviceID = serviceID
            self.force = false
            self.reason = ""
        }

        /// An operator's release of `leaseID`, with the reason to record.
        public static func forced(_ leaseID: LeaseID, reason: String) -> ReleaseLease {
            var r = ReleaseLease(leaseID: leaseID, serviceID: "")
            r.force = true
            r.reason = reason
            return r
        }
    }

    public struct ExpireLeases: Hashable, Sendable {
        public var leaseIDs: [LeaseID]

        public init(leaseIDs: [LeaseID]) {
            self.leaseIDs = leaseIDs
        }
    }

    public struct CleanupOutcome: Hashable, Sendable {
        public enum Result: Hashable, Sendable {
            case succeeded
            /// The attempt failed. `retryAfterMilliseconds` is the backoff the
            /// dispatcher drew (with jitter); `permanent` dead-letters at once.
            case failed(error: String, retryAfterMilliseconds: Int64, permanent: Bool)
        }

        public var jobID: JobID
        /// The attempt number this outcome is for (1-based). An outcome for
        /// any other attempt than the job's next is stale and ignored.
        public var attempt: UInt32
        public var result: Result

        public init(jobID: JobID, attempt: UInt32, result: Result) {
            self.jobID = jobID
            self.attempt = attempt
            self.result = result
        }
    }

    public struct RetryDeadLetters: Hashable, Sendable {
        public var jobIDs: [JobID]

        public init(jobIDs: [JobID]) {
            self.jobIDs = jobIDs
        }
    }
}

/// A command with the time the proposer stamped on it.
public struct StampedCommand: Hashable, Sendable {
    public var command: LeaseCommand
    public var stamp: WallTime
    /// The client session that proposed it, when it must apply at most once
    /// across retries (forwarded writes); nil for the leader's own commands.
    public var origin: ClientOrigin?

    public init(_ command: LeaseCommand, stamp: WallTime, origin: ClientOrigin? = nil) {
        self.command = command
        self.stamp = stamp
        self.origin = origin
    }
}

/// What applying a command produced.
public enum CommandResult: Hashable, Sendable {
    case created(Lease)
    case renewed([RenewOutcome])
    case released(Lease)
    case expired([LeaseID])
    /// The job after the outcome was recorded, or nil when the outcome was
    /// stale (already recorded, or for a job that is no longer pending).
    case cleanupRecorded(CleanupJob?)
    /// The jobs whose outcome a batch recorded (stale outcomes left out).
    case cleanupsRecorded([JobID])
    case deadLettersRetried([JobID])
    /// One result per item of a ``LeaseCommand/renewals(_:)`` entry, in order.
    case renewals([Result<Renewed, LeaseError>])
}

/// What a successful renewal of a ``LeaseCommand/renewals(_:)`` entry
/// answers: only what a renew's caller needs (the whole lease stays in the
/// state), so a batch's reply and a session's stored copy stay small.
public struct Renewed: Hashable, Sendable {
    public var expiresAt: WallTime
    public var fencingToken: UInt64

    public init(expiresAt: WallTime, fencingToken: UInt64) {
        self.expiresAt = expiresAt
        self.fencingToken = fencingToken
    }
}

/// The result of renewing one lease of a batch.
public struct RenewOutcome: Hashable, Sendable {
    public var leaseID: LeaseID
    public var result: Result<Lease, LeaseError>
}

/// The result of applying one command: its answer and the events it caused.
public struct ApplyOutput: Hashable, Sendable {
    public var result: Result<CommandResult, LeaseError>
    public var events: [LeaseEvent]
}
