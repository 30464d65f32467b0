/// Read-only views of the state, for RPC reads, the reaper and the dispatcher.
extension LeaseStateMachine {
    /// Which leases a list returns. A nil field matches everything.
    public struct LeaseFilter: Hashable, Sendable {
        public var serviceID: String?
        public var objectType: ObjectType?
        public var objectID: String?
        public var states: Set<Lease.State>?
        public var cleanupStates: Set<LeaseCleanupState>?

        public init(serviceID: String? = nil, objectType: ObjectType? = nil, objectID: String? = nil,
                    states: Set<Lease.State>? = nil, cleanupStates: Set<LeaseCleanupState>? = nil) {
            self.serviceID = serviceID
            self.objectType = objectType
            self.objectID = objectID
            self.states = states
            self.cleanupStates = cleanupStates
        }

        func matches(_ lease: Lease, cleanup: LeaseCleanupState) -> Bool {
            if let serviceID, lease.serviceID != serviceID { return false }
            if let objectType, lease.object.type != objectType { return false }
            if let objectID, lease.object.id != objectID { return false }
            if let states, !states.contains(lease.state) { return false }
            if let cleanupStates, !cleanupStates.contains(cleanup) { return false }
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
    /// first, at most `limit`: what a reaper proposes to expire.
    public func expirableLeases(asOf time: WallTime, limit: Int) -> [LeaseID] {
        let cutoff = time.adding(milliseconds: -limits.cleanupGraceSeconds.saturatingMilliseconds)
        let last = Self.bucket(of: cutoff)
        var result: [LeaseID] = []
        for key in indexes.expiryBuckets.keys.filter({ $0 <= last }).sorted() {
            guard let bucket = indexes.expiryBuckets[key] else { continue }
            let due = bucket.compactMap { leases[$0] }.filter { $0.expiresAt <= cutoff }
            for lease in due.sorted(by: { ($0.expiresAt, $0.id) < ($1.expiresAt, $1.id) }) {
                if result.count == limit { return result }
                result.append(lease.id)
            }
        }
        return result
    }

    /// Pending jobs whose next attempt is due at `time`, most overdue first.
    public func dueCleanupJobs(asOf time: WallTime, limit: Int) -> [CleanupJob] {
        let due = indexes.pendingJobs.compactMap { jobs[$0] }.filter { $0.nextAttemptAt <= time }
        return Array(due.sorted { ($0.nextAttemptAt, $0.id) < ($1.nextAttemptAt, $1.id) }.prefix(limit))
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
