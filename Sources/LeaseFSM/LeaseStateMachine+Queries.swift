/// Read-only views of the state, for RPC reads, the reaper and the dispatcher.
extension LeaseStateMachine {
    /// Which leases a list returns. A nil field matches everything.
    public struct LeaseFilter: Hashable, Sendable {
        public var serviceID: String?
        public var objectType: ObjectType?
        public var objectID: String?
        public var states: Set<Lease.State>?
        public var cleanupStates: Set<LeaseCleanupState>?
        /// The lease's cleanup endpoint (HTTP or gRPC), exactly.
        public var cleanupEndpoint: String?
        /// Only leases of these services (an authorized caller's own); nil: any.
        public var serviceIDs: Set<String>?

        public init(serviceID: String? = nil, objectType: ObjectType? = nil, objectID: String? = nil,
                    states: Set<Lease.State>? = nil, cleanupStates: Set<LeaseCleanupState>? = nil,
                    cleanupEndpoint: String? = nil) {
            self.cleanupEndpoint = cleanupEndpoint
            self.serviceID = serviceID
            self.objectType = objectType
            self.objectID = objectID
            self.states = states
            self.cleanupStates = cleanupStates
        }

        /// Whether `lease`, whose cleanup is in state `cleanup`, passes this filter.
        public func matches(_ lease: Lease, cleanup: LeaseCleanupState) -> Bool {
            if let serviceID, lease.serviceID != serviceID { return false }
            if let serviceIDs, !serviceIDs.contains(lease.serviceID) { return false }
            if let objectType, lease.object.type != objectType { return false }
            if let objectID, lease.object.id != objectID { return false }
            if let states, !states.contains(lease.state) { return false }
            if let cleanupStates, !cleanupStates.contains(cleanup) { return false }
            if let cleanupEndpoint, lease.cleanup?.endpoint != cleanupEndpoint { return false }
            return true
        }
    }

    public func lease(_ id: LeaseID) -> Lease? { leases[id] }

    public func job(_ id: JobID) -> CleanupJob? { jobs[id] }

    /// What became of the cleanup this lease's end triggered.
    public func cleanupState(of lease: Lease) -> LeaseCleanupState {
        guard let id = lease.cleanupJobID else { return .none }
        guard let job = jobs[id] else { return .succeeded }  // forgotten after retention: it had finished
        switch job.state {
        case .pending: return .pending
        case .succeeded: return .succeeded
        case .deadLettered: return .deadLettered
        case .superseded: return .superseded
        }
    }

    /// The cleanup job this lease's end triggered, while it is retained.
    public func cleanupJob(of lease: Lease) -> CleanupJob? {
        lease.cleanupJobID.flatMap { jobs[$0] }
    }

    /// One page of leases in id (= creation) order, starting after `after`.
    ///
    /// - Returns: at most `limit` leases, and the id to continue after when
    ///   more matching leases exist (nil on the last page).
    public func listLeases(_ filter: LeaseFilter, after: LeaseID?, limit: Int) -> (leases: [Lease], next: LeaseID?) {
        let ids = indexes.orderedLeaseIDs
        var lo = 0
        if let after {
            var hi = ids.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if ids[mid] <= after { lo = mid + 1 } else { hi = mid }
            }
        }
        var page: [Lease] = []
        var i = lo
        while i < ids.count {
            defer { i += 1 }
            guard let lease = leases[ids[i]], filter.matches(lease, cleanup: cleanupState(of: lease)) else { continue }
            if page.count == limit { return (page, page.last?.id) }
            page.append(lease)
        }
        return (page, nil)
    }

    /// Active leases whose `expires_at` + grace is at or before `time`, oldest
    /// first (then by id), at most `limit`: what a reaper proposes to expire.
    public func expirableLeases(asOf time: WallTime, limit: Int) -> [LeaseID] {
        let cutoff = time.adding(milliseconds: -limits.cleanupGraceSeconds.saturatingMilliseconds)
        let last = Self.bucket(of: cutoff)
        // Whole buckets (one second each), oldest first, until enough are in
        // hand; then the `limit` earliest of them. A mass expiry puts 100,000
        // leases in one bucket: selecting beats sorting them per batch.
        var due: [(expiresAt: WallTime, id: LeaseID)] = []
        for key in indexes.expiryBuckets.keys.filter({ $0 <= last }).sorted() {
            guard due.count < limit, let bucket = indexes.expiryBuckets[key] else { break }
            for slot in bucket {
                if let lease = leases[slot: slot], lease.expiresAt <= cutoff { due.append((lease.expiresAt, lease.id)) }
            }
        }
        return due.smallest(limit) { ($0.expiresAt, $0.id) < ($1.expiresAt, $1.id) }.map(\.id)
    }

    /// Pending jobs whose next attempt is due at `time`, at most `limit`,
    /// the most overdue first (then by id).
    ///
    /// At most `room(endpoint)` jobs of each endpoint are returned (what it
    /// can take now: 0 skips it without looking at its jobs), so an endpoint
    /// with a large backlog and little room does not crowd out the others;
    /// jobs `skip` rejects (in flight) are passed over.
    public func dueCleanupJobs(asOf time: WallTime, limit: Int, room: (String) -> Int = { _ in .max },
                               skip: (CleanupJob) -> Bool = { _ in false }) -> [CleanupJob] {
        dueCleanupJobs(asOf: time, limit: limit, room: room, skippingID: { id in jobs[id].map(skip) ?? true })
    }

    /// ``dueCleanupJobs(asOf:limit:room:skip:)`` passing over the jobs in
    /// `excluded` (the dispatcher's in-flight set). Only the jobs returned
    /// are copied out of the state, however many the slots looked at hold.
    public func dueCleanupJobs(asOf time: WallTime, limit: Int, room: (String) -> Int = { _ in .max },
                               excluding excluded: Set<JobID>) -> [CleanupJob] {
        dueCleanupJobs(asOf: time, limit: limit, room: room, skippingID: { excluded.contains($0) })
    }

    private func dueCleanupJobs(asOf time: WallTime, limit: Int, room: (String) -> Int,
                                skippingID skip: (JobID) -> Bool) -> [CleanupJob] {
        guard limit > 0 else { return [] }
        var due: [(at: Int64, id: JobID)] = []
        for endpoint in indexes.pendingJobs.endpoints {
            let cap = min(limit, room(endpoint))
            guard cap > 0 else { continue }
            due += indexes.pendingJobs.mostOverdue(of: endpoint, asOf: time, limit: cap, skip: skip)
        }
        return due.smallest(limit) { ($0.at, $0.id) < ($1.at, $1.id) }.compactMap { jobs[$0.id] }
    }

    /// Dead-lettered jobs bound for `endpoint` (any when nil), in id order,
    /// at most `limit`; and how many match in all.
    public func deadLetteredJobs(endpoint: String?, limit: Int) -> (jobs: [CleanupJob], total: Int) {
        var matching = indexes.deadLetteredJobs.compactMap { jobs[$0] }
        if let endpoint { matching = matching.filter { $0.spec.endpoint == endpoint } }
        matching.sort { $0.id < $1.id }
        return (Array(matching.prefix(limit)), matching.count)
    }

    /// Dead-lettered jobs in id order.
    public var deadLetteredJobs: [CleanupJob] {
        indexes.deadLetteredJobs.sorted().compactMap { jobs[$0] }
    }

    public var activeLeaseCount: Int { indexes.activeCount }
    public var pendingCleanupCount: Int { indexes.pendingJobs.count }
    public var deadLetteredCleanupCount: Int { indexes.deadLetteredJobs.count }
    /// Leases retained in total (active and ended within retention).
    public var retainedLeaseCount: Int { leases.count }
    /// Cleanup jobs retained in total (pending, dead-lettered, and finished
    /// within retention).
    public var retainedJobCount: Int { jobs.count }
    public var activeLeasesByService: [String: Int] { indexes.activeByService }
    public var activeLeasesByType: [ObjectType: Int] { indexes.activeByType }

    /// Whether any lease on `object` is active (used by invariant checks).
    public func isHeld(_ object: ObjectKey) -> Bool { objects[object] != nil }
}

/// The cleanup side of a lease that has ended (see `CleanupState` on the wire).
public enum LeaseCleanupState: Int32, Hashable, Sendable, CaseIterable {
    /// Active, or ended while the object was still held, or no target set.
    case none = 0
    case pending = 1
    case succeeded = 2
    case deadLettered = 3
    case superseded = 4
}
