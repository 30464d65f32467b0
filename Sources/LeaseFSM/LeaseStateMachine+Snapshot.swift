import Dispatch
import SwiftProtobuf
import Synchronization

/// Snapshots of the whole state: written in the compact binary format 2 (``SnapshotCodec``);
/// read in format 2 or in the protobuf format 1 (proto/lease_fsm.proto) older versions wrote.
extension LeaseStateMachine {
    /// The protobuf snapshot schema (format 1) this code still reads. Readers accept this and older.
    public static let snapshotVersion: UInt32 = 1

    /// Why a snapshot or command could not be decoded.
    public struct DecodingError: Error, Hashable, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { "cannot decode lease state: \(message)" }
    }

    /// The replicated state as bytes (format 2), deterministic for equal states.
    ///
    /// One pass over the state into one pre-sized buffer: no per-record message objects.
    public func snapshot() throws(EncodingError) -> [UInt8] {
        var w = SnapshotWriter(capacity: 64 + leases.count * 192 + objects.count * 96 + jobs.count * 256)
        w.bytes.append(contentsOf: SnapshotCodec.magic)
        w.u8(SnapshotCodec.format)
        w.time(now)
        w.u64(appliedIndex)
        w.u64(jobSequence)
        for counter in [stats.created, stats.renewed, stats.expired, stats.released, stats.cleanupAttempts,
                        stats.cleanupFailures, stats.cleanupSucceeded, stats.deadLettered] {
            w.u64(counter)
        }
        let (leaseIDs, objectKeys) = snapshotOrder()
        w.u64(UInt64(leases.count))
        for id in leaseIDs {
            if let lease = leases[id] { w.lease(lease) }
        }
        w.u64(UInt64(objects.count))
        for key in objectKeys {
            guard let record = objects[key] else { continue }
            w.object(key)
            w.u64(record.incarnation)
            w.u32(UInt32(truncatingIfNeeded: record.activeLeases.count))
            for id in record.activeLeases.sorted() { w.string(id.rawValue) }
            if let source = record.cleanupSource {
                w.u8(1)
                w.string(source.leaseID.rawValue)
                w.string(source.serviceID)
                w.metadata(source.metadata)
                w.spec(source.spec)
                w.u64(source.fencingToken)
            } else {
                w.u8(0)
            }
        }
        w.u64(UInt64(jobs.count))
        for id in jobs.keys.sorted() {
            if let job = jobs[id] { w.job(job) }
        }
        w.u64(UInt64(sessions.count))
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        for id in sessions.keys.sorted() {
            guard let session = sessions[id] else { continue }
            do {
                w.raw(try DistributedGc_Fsm_ClientSessionRecord(id: id, session: session).serializedBytes(options: options))
            } catch {
                throw EncodingError(message: "client session \(id) could not be encoded (\(error))")
            }
        }
        return w.bytes
    }

    /// The order a snapshot writes leases and objects in, the same for equal states: leases by
    /// id, each object where its oldest active lease comes. Both come from one pass over
    /// ``Indexes/orderedLeaseIDs`` (kept sorted), without sorting the tables: sorting a
    /// million string keys was more than half of a snapshot's encoding time. Should that
    /// index ever disagree with the tables, the tables are sorted instead (nothing is lost).
    func snapshotOrder() -> (leases: [LeaseID], objects: [ObjectKey]) {
        var leaseIDs: [LeaseID] = []
        leaseIDs.reserveCapacity(leases.count)
        var objectKeys: [ObjectKey] = []
        objectKeys.reserveCapacity(objects.count)
        for id in indexes.orderedLeaseIDs {
            guard let lease = leases[id] else { continue }
            leaseIDs.append(id)
            if let record = objects[lease.object], record.activeLeases.smallest == id {
                objectKeys.append(lease.object)
            }
        }
        if leaseIDs.count != leases.count { leaseIDs = leases.keys.sorted() }
        if objectKeys.count != objects.count { objectKeys = objects.keys.sorted() }
        return (leaseIDs, objectKeys)
    }

    /// The state in the protobuf format 1 that versions before format 2 wrote (tests: old
    /// snapshots must still restore).
    func protobufSnapshot() throws(EncodingError) -> [UInt8] {
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

    /// Restores the state a ``snapshot()`` captured (format 2, or format 1 written by an
    /// older version), enforcing `limits`.
    ///
    /// - Throws: ``DecodingError`` for bytes that are not a snapshot, or one
    ///   written by a newer version.
    public init(snapshot bytes: [UInt8], limits: LeaseLimits) throws(DecodingError) {
        if SnapshotCodec.isBinary(bytes) {
            try self.init(binarySnapshot: bytes, limits: limits)
            return
        }
        try self.init(protobufSnapshot: bytes, limits: limits)
    }

    /// Snapshots with at least this many leases are decoded on two threads.
    static let parallelDecodeLeases = 20_000

    /// Restores a format-2 snapshot (``SnapshotCodec``).
    ///
    /// A large one is decoded in two halves at once: the leases (with their indexes) on one
    /// thread, the objects, cleanup jobs and sessions after them on another; a scan that only
    /// reads lengths finds where the leases end. A restart's decode was most of its time
    /// to serving (DESIGN.md, "Restart").
    ///
    /// - Parameter parallelFrom: the lease count from which the two halves run at once (tests
    ///   pass 0 to decode small states that way).
    init(binarySnapshot bytes: [UInt8], limits: LeaseLimits, parallelFrom: Int = parallelDecodeLeases) throws(DecodingError) {
        let (header, leaseCount, leasesStart, restStart) = try bytes.withSnapshotReader(at: SnapshotCodec.magic.count) {
            (r: inout SnapshotReader) throws(DecodingError) -> (SnapshotHeader, Int, Int, Int?) in
            let header = try SnapshotHeader(&r)
            let leaseCount = try r.count(minimumSize: 100)
            let leasesStart = r.position
            guard leaseCount >= parallelFrom else { return (header, leaseCount, leasesStart, nil) }
            for _ in 0..<leaseCount { try r.skipLease() }
            return (header, leaseCount, leasesStart, r.position)
        }
        let decodeLeases = { @Sendable () throws(DecodingError) -> (LeaseStateMachine, Int) in
            var part = LeaseStateMachine(limits: limits)
            let end = try bytes.withSnapshotReader(at: leasesStart) { r throws(DecodingError) in
                try part.decodeLeases(&r, count: leaseCount)
                return r.position
            }
            return (part, end)
        }
        let decodeRest = { @Sendable (start: Int) throws(DecodingError) -> LeaseStateMachine in
            var part = LeaseStateMachine(limits: limits)
            try bytes.withSnapshotReader(at: start) { r throws(DecodingError) in try part.decodeRest(&r) }
            return part
        }
        let leasePart: LeaseStateMachine
        let restPart: LeaseStateMachine
        if let restStart {
            let end: Int
            ((leasePart, end), restPart) = try Self.inParallel(
                { () throws(DecodingError) in try decodeLeases() },
                { () throws(DecodingError) in try decodeRest(restStart) })
            guard end == restStart else {
                throw DecodingError(message: "snapshot leases end at byte \(end), not at \(restStart) where scanning them ended")
            }
        } else {
            let end: Int
            (leasePart, end) = try decodeLeases()
            restPart = try decodeRest(end)
        }
        self = leasePart
        now = header.now
        appliedIndex = header.appliedIndex
        jobSequence = header.jobSequence
        stats = header.stats
        objects = restPart.objects
        jobs = restPart.jobs
        sessions = restPart.sessions
        rebuildJobIndexes()
    }

    /// Runs `first` on the calling thread and `second` on another at the same time; the
    /// first error (in that order) is thrown once both have ended.
    static func inParallel<A: Sendable, B: Sendable>(
        _ first: @Sendable () throws(DecodingError) -> A, _ second: @Sendable () throws(DecodingError) -> B
    ) throws(DecodingError) -> (A, B) {
        let a = Mutex<Result<A, DecodingError>?>(nil)
        let b = Mutex<Result<B, DecodingError>?>(nil)
        DispatchQueue.concurrentPerform(iterations: 2) { half in
            if half == 0 {
                let result = Result { () throws(DecodingError) in try first() }
                a.withLock { $0 = result }
            } else {
                let result = Result { () throws(DecodingError) in try second() }
                b.withLock { $0 = result }
            }
        }
        guard let first = a.withLock({ $0 }), let second = b.withLock({ $0 }) else {
            preconditionFailure("concurrentPerform returned before both halves ran")
        }
        return (try first.get(), try second.get())
    }

    /// Decodes `count` leases into the (empty) lease table and builds their indexes.
    ///
    /// ``snapshot()`` writes leases in id order: kept as read, that order is the id index,
    /// which then needs no sort (a million string keys took over a second). Any other order
    /// is sorted as before.
    private mutating func decodeLeases(_ r: inout SnapshotReader, count leaseCount: Int) throws(DecodingError) {
        leases.reserveCapacity(leaseCount)
        var leaseIDsInOrder = ChunkedArray<LeaseID>()
        leaseIDsInOrder.reserveCapacity(leaseCount)
        var ascending = true
        for _ in 0..<leaseCount {
            var lease = try r.lease()
            if ascending, let last = leaseIDsInOrder.last, !(last < lease.id) { ascending = false }
            intern(&lease)
            leases[lease.id] = lease
            leaseIDsInOrder.append(lease.id)
        }
        rebuildLeaseIndexes(leaseIDsInOrder: ascending ? leaseIDsInOrder : nil)
    }

    /// Decodes what follows the leases (objects, cleanup jobs, client sessions) up to the end.
    private mutating func decodeRest(_ r: inout SnapshotReader) throws(DecodingError) {
        let objectCount = try r.count(minimumSize: 21)
        objects.reserveCapacity(objectCount)
        for _ in 0..<objectCount {
            let key = try r.object()
            let incarnation = try r.u64()
            let activeCount = Int(try r.u32())
            guard activeCount <= r.remaining / 4 else {
                throw DecodingError(message: "object \(key) claims \(activeCount) active leases")
            }
            var active = LeaseIDSet()  // inline for the usual one lease: no Set per object
            for _ in 0..<activeCount { active.insert(LeaseID(try r.string())) }
            var source: CleanupSource?
            if try r.flag() {
                source = CleanupSource(leaseID: LeaseID(try r.string()), serviceID: try r.string(), metadata: try r.metadata(),
                                       spec: try r.spec(), fencingToken: try r.u64())
            }
            objects[key] = ObjectRecord(incarnation: incarnation, activeLeases: active, cleanupSource: source)
        }
        let jobCount = try r.count(minimumSize: 100)
        jobs.reserveCapacity(jobCount)
        for _ in 0..<jobCount {
            let job = try r.job()
            jobs[job.id] = job
        }
        let sessionCount = try r.count(minimumSize: 4)
        for _ in 0..<sessionCount {
            let bytes = try r.raw()
            let record: DistributedGc_Fsm_ClientSessionRecord
            do {
                record = try DistributedGc_Fsm_ClientSessionRecord(serializedBytes: bytes)
            } catch {
                throw DecodingError(message: "a client session in the snapshot is not decodable (\(error))")
            }
            sessions[record.clientID] = try ClientSession(record)
        }
        guard r.remaining == 0 else {
            throw DecodingError(message: "snapshot has \(r.remaining) bytes after its last record")
        }
    }

    /// Restores a format-1 (protobuf) snapshot.
    init(protobufSnapshot bytes: [UInt8], limits: LeaseLimits) throws(DecodingError) {
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
        internRestoredLeases()
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
