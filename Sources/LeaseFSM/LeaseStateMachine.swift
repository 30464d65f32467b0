import DequeModule

/// The deterministic lease state machine (DESIGN.md, "Lease semantics").
///
/// Every node applies the same commands in the same log order and ends in the
/// same state: `apply` reads no clock, no randomness and no I/O, and iterates
/// in sorted order wherever order is visible. Time comes from the commands'
/// stamps: ``now`` is the largest stamp applied so far, so it never goes back.
///
/// Invariants (checked by the property tests):
/// - an object has a cleanup job only when none of its leases is active;
/// - a lease's fencing token strictly increases with each grant or renewal;
/// - ``snapshot()`` then ``init(snapshot:limits:)`` gives an equal state.
public struct LeaseStateMachine: Sendable {
    public let limits: LeaseLimits
    /// The largest command stamp applied so far.
    public internal(set) var now: WallTime = .zero
    /// The log index of the last applied command.
    public internal(set) var appliedIndex: UInt64 = 0
    public internal(set) var stats = LeaseStats()

    // Replicated state (what snapshots hold and equality compares).
    var leases = LeaseTable()
    // The large tables are chunked: a snapshot in progress shares them, and
    // a write copies one chunk (see ChunkedArray), not the table.
    var objects = ShardedDictionary<ObjectKey, ObjectRecord>()
    var jobs = ShardedDictionary<JobID, CleanupJob>()
    var jobSequence: UInt64 = 0
    /// Client sessions by client id (see ``ClientOrigin``).
    var sessions: [String: ClientSession] = [:]

    // Indexes derived from the replicated state; rebuilt on restore.
    var indexes = Indexes()

    /// What the state machine knows of an object that has active leases.
    ///
    /// Compact: almost every object has one lease, held inline, and the
    /// cleanup source (set only when a lease named a target) is one shared
    /// box rather than a hundred bytes in every record.
    struct ObjectRecord: Hashable, Sendable {
        /// The log index that started this incarnation (the first lease after
        /// the object was last unheld), so incarnations only ever grow.
        var incarnation: UInt64
        var activeLeases: LeaseIDSet
        private var sourceBox: Box<CleanupSource>?

        init(incarnation: UInt64, activeLeases: some Sequence<LeaseID>, cleanupSource: CleanupSource?) {
            self.incarnation = incarnation
            self.activeLeases = LeaseIDSet(activeLeases)
            self.sourceBox = cleanupSource.map(Box.init)
        }

        /// The most recent lease of this incarnation that named a cleanup target.
        var cleanupSource: CleanupSource? {
            get { sourceBox?.value }
            set { sourceBox = newValue.map(Box.init) }
        }
    }

    /// The cleanup details a job copies from a lease.
    struct CleanupSource: Hashable, Sendable {
        var leaseID: LeaseID
        var serviceID: String
        var metadata: [String: String]
        private var specBox: Box<CleanupSpec>
        var fencingToken: UInt64

        var spec: CleanupSpec {
            get { specBox.value }
            set { specBox = Box(newValue) }
        }

        /// `lease`'s details with its (interned) cleanup spec box.
        init(_ lease: Lease, specBox: Box<CleanupSpec>) {
            self.leaseID = lease.id
            self.serviceID = lease.serviceID
            self.metadata = lease.metadata
            self.specBox = specBox
            self.fencingToken = lease.fencingToken
        }

        init(_ lease: Lease, spec: CleanupSpec) {
            self.init(lease, specBox: lease.cleanupBox.flatMap { $0.value == spec ? $0 : nil } ?? Box(spec))
        }

        init(leaseID: LeaseID, serviceID: String, metadata: [String: String], spec: CleanupSpec, fencingToken: UInt64) {
            self.leaseID = leaseID
            self.serviceID = serviceID
            self.metadata = metadata
            self.specBox = Box(spec)
            self.fencingToken = fencingToken
        }
    }

    struct Indexes: Sendable {
        /// Every retained lease id in creation (= id) order; may hold ids of
        /// forgotten leases until the next compaction.
        var orderedLeaseIDs = ChunkedArray<LeaseID>()
        var forgottenInOrder = 0
        /// Active leases by the second their `expires_at` falls in, as their
        /// slots in ``leases`` (4 bytes each instead of a 16-byte id; renumbered
        /// with the table, see ``rebuildExpiryIndex()``).
        var expiryBuckets: [Int64: Set<UInt32>] = [:]
        var activeByService: [String: Int] = [:]
        var activeByType: [ObjectType: Int] = [:]
        var activeCount = 0
        /// The pending or dead-lettered job of each object.
        var openJobByObject = ShardedDictionary<ObjectKey, JobID>()
        var pendingJobs = PendingJobIndex()
        var deadLetteredJobs: Set<JobID> = []
        /// Ended leases, oldest end first (ends are stamped with a monotonic now).
        var endedLeases: Deque<LeaseID> = []
        /// Succeeded or superseded jobs, oldest finish first.
        var finishedJobs: Deque<JobID> = []
        /// The largest counts of `endedLeases` and `finishedJobs` since they
        /// were last rebuilt (see ``shrinkStorageIfSparse()``).
        var endedHighWater = 0
        var finishedHighWater = 0
        /// Shared copies of service ids, cleanup specs and metadata.
        var interned = Interner()
    }

    /// An empty state machine enforcing `limits`.
    public init(limits: LeaseLimits) {
        self.limits = limits
    }

    /// Applies the command at log `index`, stamped by its proposer.
    ///
    /// A refused command (its result is a failure) changes nothing but
    /// ``appliedIndex`` and ``now``. Indexes must increase; gaps are allowed
    /// (the log also carries entries that are not lease commands).
    public mutating func apply(_ stamped: StampedCommand, index: UInt64) -> ApplyOutput {
        advance(to: index, stamp: stamped.stamp)
        defer { forgetIdleSessions(index: index) }
        if let origin = stamped.origin, let earlier = replayedReply(for: origin) {
            return ApplyOutput(result: earlier, events: [])
        }
        var events = EventRecorder(index: index)
        let result: Result<CommandResult, LeaseError>
        if let error = limits.validate(stamped.command) {
            result = .failure(error)
        } else {
            switch stamped.command {
            case .create(let c): result = create(c, index: index, events: &events)
            case .renew(let r): result = .success(.renewed(renew(r, index: index, events: &events)))
            case .release(let r): result = release(r, events: &events)
            case .expire(let e): result = .success(.expired(expire(e, events: &events)))
            case .cleanupOutcome(let o): result = .success(.cleanupRecorded(record(o, events: &events)))
            case .cleanupOutcomes(let outcomes):
                result = .success(.cleanupsRecorded(outcomes.compactMap { record($0, events: &events)?.id }))
            case .retryDeadLetters(let r): result = .success(.deadLettersRetried(retry(r, events: &events)))
            case .renewals(let items): result = .success(.renewals(renew(items, index: index, events: &events)))
            }
        }
        if let origin = stamped.origin { remember(result, for: origin) }
        forgetRetired()
        return ApplyOutput(result: result, events: events.events)
    }

    /// Records that the log entry at `index` carried no lease command (a Raft
    /// no-op or configuration change), keeping ``appliedIndex`` in step.
    public mutating func skip(index: UInt64) {
        precondition(index > appliedIndex, "log indexes are applied in increasing order")
        appliedIndex = index
        forgetIdleSessions(index: index)
    }

    private mutating func advance(to index: UInt64, stamp: WallTime) {
        precondition(index > appliedIndex, "log indexes are applied in increasing order (\(index) after \(appliedIndex))")
        appliedIndex = index
        if stamp > now { now = stamp }
    }

    /// Forgets ended leases and finished jobs older than the retention.
    private mutating func forgetRetired() {
        let cutoff = now.adding(milliseconds: -limits.endedRetentionSeconds.saturatingMilliseconds)
        while let id = indexes.endedLeases.first {
            if let ended = leases[id]?.endedAt, ended > cutoff { break }
            indexes.endedLeases.removeFirst()
            if leases.removeValue(forKey: id) != nil { indexes.forgottenInOrder += 1 }
        }
        if indexes.forgottenInOrder > 1024 && indexes.forgottenInOrder * 2 > indexes.orderedLeaseIDs.count {
            indexes.orderedLeaseIDs.removeAll { leases[$0] == nil }
            indexes.forgottenInOrder = 0
        }
        while let id = indexes.finishedJobs.first {
            if let finished = jobs[id]?.finishedAt, finished > cutoff { break }
            indexes.finishedJobs.removeFirst()
            jobs.removeValue(forKey: id)
        }
        shrinkStorageIfSparse()
    }
}

extension LeaseStateMachine: Equatable {
    /// Equal when the replicated state is equal (derived indexes are not compared).
    public static func == (lhs: LeaseStateMachine, rhs: LeaseStateMachine) -> Bool {
        lhs.limits == rhs.limits && lhs.now == rhs.now && lhs.appliedIndex == rhs.appliedIndex
            && lhs.stats == rhs.stats && lhs.jobSequence == rhs.jobSequence && lhs.leases == rhs.leases
            && lhs.objects == rhs.objects && lhs.jobs == rhs.jobs && lhs.sessions == rhs.sessions
    }
}

/// Collects the events of one command, numbering them in order.
struct EventRecorder {
    let index: UInt64
    private(set) var events: [LeaseEvent] = []

    init(index: UInt64) {
        self.index = index
    }

    mutating func record(_ kind: LeaseEvent.Kind, lease: Lease, at: WallTime, reason: String = "") {
        events.append(LeaseEvent(
            index: index, position: UInt32(events.count), kind: kind, leaseID: lease.id, object: lease.object,
            serviceID: lease.serviceID, incarnation: lease.incarnation, fencingToken: lease.fencingToken, at: at,
            expiresAt: lease.expiresAt, reason: reason, attempt: 0))
    }

    mutating func record(_ kind: LeaseEvent.Kind, job: CleanupJob, at: WallTime, reason: String = "") {
        events.append(LeaseEvent(
            index: index, position: UInt32(events.count), kind: kind, leaseID: job.leaseID, object: job.object,
            serviceID: job.serviceID, incarnation: job.incarnation, fencingToken: job.fencingToken, at: at,
            expiresAt: nil, reason: reason, attempt: job.attempts))
    }
}
