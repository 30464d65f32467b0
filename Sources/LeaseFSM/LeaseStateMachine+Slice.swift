import SwiftProtobuf

/// A part of the lease state that lives elsewhere (PostgreSQL mode): the
/// rows one command reads or changes, each as LeaseFSM's own record bytes
/// (the same records a snapshot holds).
///
/// The PostgreSQL store locks these rows, builds a machine of them with
/// ``LeaseStateMachine/init(slice:limits:jobSequence:)``, applies the
/// command with the same ``LeaseStateMachine/apply(_:index:)`` every Raft
/// node runs, and writes back ``LeaseStateMachine/changes(since:)``. So the
/// lease rules exist once, whatever the backend.
public struct LeaseStateSlice: Hashable, Sendable {
    public var leases: [[UInt8]] = []
    public var objects: [[UInt8]] = []
    public var jobs: [[UInt8]] = []
    public var sessions: [[UInt8]] = []

    public init() {}
}

/// The rows applying commands to a slice changed, to write back.
public struct LeaseSliceChanges: Sendable {
    /// New or changed leases, with their record bytes.
    public var leases: [(lease: Lease, record: [UInt8])] = []
    /// Leases the machine forgot (ended longer than the retention ago).
    public var forgottenLeases: [LeaseID] = []
    /// Objects with active leases that are new or changed, with their record bytes.
    public var objects: [(object: ObjectKey, record: [UInt8])] = []
    /// Objects whose last active lease ended.
    public var removedObjects: [ObjectKey] = []
    public var jobs: [(job: CleanupJob, record: [UInt8])] = []
    public var forgottenJobs: [JobID] = []
    public var sessions: [(clientID: String, lastActive: WallTime, record: [UInt8])] = []
    public var forgottenSessions: [String] = []

    public var isEmpty: Bool {
        leases.isEmpty && forgottenLeases.isEmpty && objects.isEmpty && removedObjects.isEmpty && jobs.isEmpty
            && forgottenJobs.isEmpty && sessions.isEmpty && forgottenSessions.isEmpty
    }
}

extension LeaseStateMachine {
    /// A machine holding only `slice`, to apply commands to.
    ///
    /// - Parameters:
    ///   - limits: the configured rules.
    ///   - jobSequence: the id below the first cleanup job this machine may
    ///     create; job ids are `jobSequence + 1`, `+ 2`, ...
    ///   - activeCounts: the whole state's active lease counts, for the
    ///     quotas (`GC_MAX_LEASES`, `GC_MAX_LEASES_PER_SERVICE`). When nil the
    ///     quotas are not checked: the caller, who holds the global counts
    ///     the slice does not, enforces them.
    /// - Throws: ``DecodingError`` when a record is not one of LeaseFSM's.
    public init(slice: LeaseStateSlice, limits: LeaseLimits, jobSequence: UInt64,
                activeCounts: ActiveLeaseCounts? = nil) throws(DecodingError) {
        var sliceLimits = limits
        if activeCounts == nil {
            sliceLimits.maxLeases = .max
            sliceLimits.maxLeasesPerService = .max
        }
        self.init(limits: sliceLimits)
        self.jobSequence = jobSequence
        for bytes in slice.leases {
            let lease = try Lease(Self.record(DistributedGc_Fsm_LeaseRecord.self, bytes, "lease"))
            leases[lease.id] = lease
        }
        for bytes in slice.objects {
            let record = try Self.record(DistributedGc_Fsm_ObjectRecordRecord.self, bytes, "object")
            objects[try ObjectKey(record.object)] = ObjectRecord(record)
        }
        for bytes in slice.jobs {
            let job = try CleanupJob(Self.record(DistributedGc_Fsm_CleanupJobRecord.self, bytes, "cleanup job"))
            jobs[job.id] = job
        }
        for bytes in slice.sessions {
            let record = try Self.record(DistributedGc_Fsm_ClientSessionRecord.self, bytes, "client session")
            sessions[record.clientID] = try ClientSession(record)
        }
        rebuildIndexes()
        internRestoredLeases()
        if let activeCounts {
            indexes.activeCount = activeCounts.total
            indexes.activeByService = activeCounts.byService
        }
    }

    /// Active lease counts of a whole state, which a slice cannot count itself.
    public struct ActiveLeaseCounts: Hashable, Sendable {
        public var total: Int
        public var byService: [String: Int]

        public init(total: Int, byService: [String: Int]) {
            self.total = total
            self.byService = byService
        }
    }

    /// What changed in this machine since it was `before` (a copy taken
    /// right after ``init(slice:limits:jobSequence:)``).
    public func changes(since before: LeaseStateMachine) -> LeaseSliceChanges {
        var changes = LeaseSliceChanges()
        for (id, lease) in leases where before.leases[id] != lease {
            changes.leases.append((lease, Self.bytes(DistributedGc_Fsm_LeaseRecord(lease))))
        }
        changes.forgottenLeases = before.leases.keys.filter { leases[$0] == nil }
        for (key, record) in objects where before.objects[key] != record {
            changes.objects.append((key, Self.bytes(DistributedGc_Fsm_ObjectRecordRecord(key: key, record: record))))
        }
        changes.removedObjects = before.objects.keys.filter { objects[$0] == nil }
        for (id, job) in jobs where before.jobs[id] != job {
            changes.jobs.append((job, Self.bytes(DistributedGc_Fsm_CleanupJobRecord(job))))
        }
        changes.forgottenJobs = before.jobs.keys.filter { jobs[$0] == nil }
        for (id, session) in sessions where before.sessions[id] != session {
            changes.sessions.append((id, session.lastActive, Self.bytes(DistributedGc_Fsm_ClientSessionRecord(id: id, session: session))))
        }
        changes.forgottenSessions = before.sessions.keys.filter { sessions[$0] == nil }
        return changes
    }

    /// The record bytes of `lease`, as a slice holds them.
    public static func record(of lease: Lease) -> [UInt8] {
        bytes(DistributedGc_Fsm_LeaseRecord(lease))
    }

    /// The record bytes of `job`, as a slice holds them.
    public static func record(of job: CleanupJob) -> [UInt8] {
        bytes(DistributedGc_Fsm_CleanupJobRecord(job))
    }

    /// The lease a slice record holds.
    public static func lease(record bytes: [UInt8]) throws(DecodingError) -> Lease {
        try Lease(record(DistributedGc_Fsm_LeaseRecord.self, bytes, "lease"))
    }

    /// The cleanup job a slice record holds.
    public static func job(record bytes: [UInt8]) throws(DecodingError) -> CleanupJob {
        try CleanupJob(record(DistributedGc_Fsm_CleanupJobRecord.self, bytes, "cleanup job"))
    }

    private static func record<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8], _ what: String) throws(DecodingError) -> M {
        do {
            return try M(serializedBytes: bytes)
        } catch {
            throw DecodingError(message: "not a \(what) record (\(error))")
        }
    }

    private static func bytes(_ message: some SwiftProtobuf.Message) -> [UInt8] {
        // Serializing a message built from valid Swift values cannot fail
        // (no required fields, no Any); an empty record would be refused on read.
        (try? message.serializedBytes()) ?? []
    }
}

extension LeaseError {
    /// A create refused because every lease of the cluster's quota is active
    /// (`GC_MAX_LEASES`).
    public static func clusterLeaseLimit(held: Int, limit: Int) -> LeaseError {
        LeaseError(.resourceExhausted, "the cluster holds \(held) active leases, the limit (GC_MAX_LEASES) is \(limit): release or let some expire first")
    }

    /// A create refused because `serviceID` holds its quota of active leases
    /// (`GC_MAX_LEASES_PER_SERVICE`).
    public static func serviceLeaseLimit(serviceID: String, held: Int, limit: Int) -> LeaseError {
        LeaseError(.resourceExhausted, "service '\(serviceID)' already holds \(held) active leases, the limit (GC_MAX_LEASES_PER_SERVICE) is \(limit): release or let some expire first", field: "service_id")
    }
}
