import SwiftProtobuf

/// Versioned protobuf encoding of the whole state (proto/lease_fsm.proto).
extension LeaseStateMachine {
    /// The snapshot schema this code writes. Readers accept this and older.
    public static let snapshotVersion: UInt32 = 1

    /// Why a snapshot or command could not be decoded.
    public struct DecodingError: Error, Hashable, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { "cannot decode lease state: \(message)" }
    }

    /// The replicated state as bytes, deterministic for equal states.
    public func snapshot() throws(EncodingError) -> [UInt8] {
        var s = DistributedGc_Fsm_FsmSnapshot()
        s.version = Self.snapshotVersion
        s.nowMillis = now.milliseconds
        s.appliedIndex = appliedIndex
        s.jobSequence = jobSequence
        s.stats = .init(stats)
        s.leases = leases.keys.sorted().compactMap { leases[$0].map(DistributedGc_Fsm_LeaseRecord.init) }
        s.objects = objects.keys.sorted().compactMap { key in
            objects[key].map { DistributedGc_Fsm_ObjectRecordRecord(key: key, record: $0) }
        }
        s.jobs = jobs.keys.sorted().compactMap { jobs[$0].map(DistributedGc_Fsm_CleanupJobRecord.init) }
        s.sessions = sessions.keys.sorted().compactMap { id in
            sessions[id].map { DistributedGc_Fsm_ClientSessionRecord(id: id, session: $0) }
        }
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        // A failure here (e.g. a record past protobuf's 2 GiB limit) must
        // never turn into an empty snapshot that the log is compacted to.
        do {
            return try s.serializedBytes(options: options)
        } catch {
            throw EncodingError(message: "the lease state could not be encoded as a snapshot (\(error))")
        }
    }

    /// The state machine could not be encoded (``snapshot()``).
    public struct EncodingError: Error, Hashable, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Restores the state a ``snapshot()`` captured, enforcing `limits`.
    ///
    /// - Throws: ``DecodingError`` for bytes that are not a snapshot, or one
    ///   written by a newer version.
    public init(snapshot bytes: [UInt8], limits: LeaseLimits) throws(DecodingError) {
        let s: DistributedGc_Fsm_FsmSnapshot
        do {
            s = try DistributedGc_Fsm_FsmSnapshot(serializedBytes: bytes)
        } catch {
            throw DecodingError(message: "not a lease snapshot (\(error))")
        }
        guard s.version >= 1, s.version <= Self.snapshotVersion else {
            throw DecodingError(message: "snapshot version \(s.version) is not supported (this build reads 1...\(Self.snapshotVersion))")
        }
        self.init(limits: limits)
        now = WallTime(milliseconds: s.nowMillis)
        appliedIndex = s.appliedIndex
        jobSequence = s.jobSequence
        stats = LeaseStats(s.stats)
        for record in s.leases {
            let lease = try Lease(record)
            leases[lease.id] = lease
        }
        for record in s.objects {
            objects[try ObjectKey(record.object)] = ObjectRecord(record)
        }
        for record in s.jobs {
            let job = try CleanupJob(record)
            jobs[job.id] = job
        }
        for record in s.sessions {
            sessions[record.clientID] = try ClientSession(record)
        }
        rebuildIndexes()
    }
}

// MARK: - Record conversions

extension ObjectKey {
    init(_ r: DistributedGc_Fsm_ObjectKeyRecord) throws(LeaseStateMachine.DecodingError) {
        guard let type = ObjectType(rawValue: r.type) else {
            throw LeaseStateMachine.DecodingError(message: "unknown object type \(r.type)")
        }
        self.init(type: type, id: r.id)
    }
}

extension DistributedGc_Fsm_ObjectKeyRecord {
    init(_ key: ObjectKey) {
        self.init()
        type = key.type.rawValue
        id = key.id
    }
}

extension CleanupSpec {
    init(_ r: DistributedGc_Fsm_CleanupSpecRecord) {
        self.init(httpEndpoint: r.httpEndpoint, grpcEndpoint: r.grpcEndpoint, payload: r.payload,
                  maxRetries: r.maxRetries, retryDelaySeconds: r.retryDelaySeconds)
    }
}

extension DistributedGc_Fsm_CleanupSpecRecord {
    init(_ spec: CleanupSpec) {
        self.init()
        httpEndpoint = spec.httpEndpoint
        grpcEndpoint = spec.grpcEndpoint
        payload = spec.payload
        maxRetries = spec.maxRetries
        retryDelaySeconds = spec.retryDelaySeconds
    }
}

extension LeaseStats {
    init(_ r: DistributedGc_Fsm_StatsRecord) {
        self.init()
        created = r.created
        renewed = r.renewed
        expired = r.expired
        released = r.released
        cleanupAttempts = r.cleanupAttempts
        cleanupFailures = r.cleanupFailures
        cleanupSucceeded = r.cleanupSucceeded
        deadLettered = r.deadLettered
    }
}

extension DistributedGc_Fsm_StatsRecord {
    init(_ s: LeaseStats) {
        self.init()
        created = s.created
        renewed = s.renewed
        expired = s.expired
        released = s.released
        cleanupAttempts = s.cleanupAttempts
        cleanupFailures = s.cleanupFailures
        cleanupSucceeded = s.cleanupSucceeded
        deadLettered = s.deadLettered
    }
}

extension Lease {
    init(_ r: DistributedGc_Fsm_LeaseRecord) throws(LeaseStateMachine.DecodingError) {
        guard let state = State(rawValue: r.state) else {
            throw LeaseStateMachine.DecodingError(message: "lease \(r.id) has unknown state \(r.state)")
        }
        self.init(
            id: LeaseID(r.id), object: try ObjectKey(r.object), serviceID: r.serviceID, metadata: r.metadata,
            cleanup: r.hasCleanup ? CleanupSpec(r.cleanup) : nil, createdAt: WallTime(milliseconds: r.createdAt),
            expiresAt: WallTime(milliseconds: r.expiresAt), lastRenewedAt: WallTime(milliseconds: r.lastRenewedAt),
            durationSeconds: r.durationSeconds, renewalCount: r.renewalCount, fencingToken: r.fencingToken,
            incarnation: r.incarnation, state: state,
            endedAt: state == .active ? nil : WallTime(milliseconds: r.endedAt),
            cleanupJobID: r.cleanupJobID == 0 ? nil : r.cleanupJobID, createdIndex: r.createdIndex)
    }
}

extension DistributedGc_Fsm_LeaseRecord {
    init(_ l: Lease) {
        self.init()
        id = l.id.rawValue
        object = .init(l.object)
        serviceID = l.serviceID
        metadata = l.metadata
        if let spec = l.cleanup { cleanup = .init(spec) }
        createdAt = l.createdAt.milliseconds
        expiresAt = l.expiresAt.milliseconds
        lastRenewedAt = l.lastRenewedAt.milliseconds
        durationSeconds = l.durationSeconds
        renewalCount = l.renewalCount
        fencingToken = l.fencingToken
        incarnation = l.incarnation
        state = l.state.rawValue
        endedAt = l.endedAt?.milliseconds ?? 0
        cleanupJobID = l.cleanupJobID ?? 0
        createdIndex = l.createdIndex
    }
}

extension LeaseStateMachine.ObjectRecord {
    init(_ r: DistributedGc_Fsm_ObjectRecordRecord) {
        let source = r.hasCleanupSource ? r.cleanupSource : nil
        self.init(
            incarnation: r.incarnation, activeLeases: Set(r.activeLeaseIds.map(LeaseID.init)),
            cleanupSource: source.map {
                LeaseStateMachine.CleanupSource(
                    leaseID: LeaseID($0.leaseID), serviceID: $0.serviceID, metadata: $0.metadata,
                    spec: CleanupSpec($0.cleanup), fencingToken: $0.fencingToken)
            })
    }
}

extension DistributedGc_Fsm_ObjectRecordRecord {
    init(key: ObjectKey, record: LeaseStateMachine.ObjectRecord) {
        self.init()
        object = .init(key)
        incarnation = record.incarnation
        activeLeaseIds = record.activeLeases.sorted().map(\.rawValue)
        if let s = record.cleanupSource {
            var src = DistributedGc_Fsm_CleanupSourceRecord()
            src.leaseID = s.leaseID.rawValue
            src.serviceID = s.serviceID
            src.metadata = s.metadata
            src.cleanup = .init(s.spec)
            src.fencingToken = s.fencingToken
            cleanupSource = src
        }
    }
}

extension CleanupJob {
    init(_ r: DistributedGc_Fsm_CleanupJobRecord) throws(LeaseStateMachine.DecodingError) {
        guard let state = State(rawValue: r.state) else {
            throw LeaseStateMachine.DecodingError(message: "job \(r.id) has unknown state \(r.state)")
        }
        self.init(
            id: r.id, object: try ObjectKey(r.object), incarnation: r.incarnation, leaseID: LeaseID(r.leaseID),
            serviceID: r.serviceID, metadata: r.metadata, spec: CleanupSpec(r.cleanup), fencingToken: r.fencingToken,
            attempts: r.attempts, nextAttemptAt: WallTime(milliseconds: r.nextAttemptAt), state: state,
            lastError: r.lastError, createdAt: WallTime(milliseconds: r.createdAt),
            finishedAt: (state == .succeeded || state == .superseded) ? WallTime(milliseconds: r.finishedAt) : nil)
    }
}

extension DistributedGc_Fsm_CleanupJobRecord {
    init(_ j: CleanupJob) {
        self.init()
        id = j.id
        object = .init(j.object)
        incarnation = j.incarnation
        leaseID = j.leaseID.rawValue
        serviceID = j.serviceID
        metadata = j.metadata
        cleanup = .init(j.spec)
        fencingToken = j.fencingToken
        attempts = j.attempts
        nextAttemptAt = j.nextAttemptAt.milliseconds
        state = j.state.rawValue
        lastError = j.lastError
        createdAt = j.createdAt.milliseconds
        finishedAt = j.finishedAt?.milliseconds ?? 0
    }
}
