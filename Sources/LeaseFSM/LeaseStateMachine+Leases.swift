import DequeModule

/// Create, renew, release and expire.
extension LeaseStateMachine {
    mutating func create(_ c: LeaseCommand.CreateLease, index: UInt64,
                         events: inout EventRecorder) -> Result<CommandResult, LeaseError> {
        let id = LeaseID(index: index, suffix: c.leaseIDSuffix)
        guard leases[id] == nil else {
            return .failure(LeaseError(.alreadyExists, "lease id \(id) is already taken"))
        }
        guard indexes.activeCount < limits.maxLeases else {
            return .failure(.clusterLeaseLimit(held: indexes.activeCount, limit: limits.maxLeases))
        }
        let held = indexes.activeByService[c.serviceID, default: 0]
        guard held < limits.maxLeasesPerService else {
            return .failure(.serviceLeaseLimit(serviceID: c.serviceID, held: held, limit: limits.maxLeasesPerService))
        }
        let duration = limits.resolvedDuration(c.durationSeconds)
        let spec = c.cleanup.flatMap { $0.target == nil ? nil : $0.resolved(with: limits) }

        let incarnation: UInt64
        if let existing = objects[c.object] {
            incarnation = existing.incarnation
        } else {
            incarnation = index
            supersedeOpenJob(of: c.object, newIncarnation: index, events: &events)
        }
        var lease = Lease(
            id: id, object: c.object, serviceID: indexes.interned.string(c.serviceID),
            metadata: indexes.interned.metadata(c.metadata), cleanup: nil,
            createdAt: now, expiresAt: now.adding(seconds: duration), lastRenewedAt: now,
            durationSeconds: duration, renewalCount: 0, fencingToken: index, incarnation: incarnation,
            state: .active, endedAt: nil, cleanupJobID: nil, createdIndex: index)
        let specBox = spec.map { indexes.interned.spec($0) }
        lease.cleanupBox = specBox

        var record = objects[c.object] ?? ObjectRecord(incarnation: incarnation, activeLeases: LeaseIDSet(), cleanupSource: nil)
        record.activeLeases.insert(id)
        if let specBox { record.cleanupSource = CleanupSource(lease, specBox: specBox) }
        objects[c.object] = record
        leases[id] = lease
        indexes.orderedLeaseIDs.append(id)
        indexActive(lease)
        stats.created += 1
        events.record(.created, lease: lease, at: now)
        return .success(.created(lease))
    }

    mutating func renew(_ r: LeaseCommand.RenewLeases, index: UInt64, events: inout EventRecorder) -> [RenewOutcome] {
        var done: [LeaseID: Result<Lease, LeaseError>] = [:]
        return r.leaseIDs.map { id in
            if let earlier = done[id] { return RenewOutcome(leaseID: id, result: earlier) }
            let result = renewOne(id, serviceID: r.serviceID, extendSeconds: r.extendSeconds, index: index, events: &events)
            done[id] = result
            return RenewOutcome(leaseID: id, result: result)
        }
    }

    private mutating func renewOne(_ id: LeaseID, serviceID: String, extendSeconds: UInt64, index: UInt64,
                                   events: inout EventRecorder) -> Result<Lease, LeaseError> {
        guard var lease = leases[id] else { return .failure(notFound(id)) }
        if let error = checkOwnerAndActive(lease, serviceID: serviceID, verb: "renew") { return .failure(error) }
        unindexExpiry(lease)
        let extend = extendSeconds == 0 ? lease.durationSeconds : extendSeconds
        lease.expiresAt = now.adding(seconds: extend)
        lease.lastRenewedAt = now
        lease.renewalCount = lease.renewalCount == .max ? .max : lease.renewalCount + 1
        lease.fencingToken = index
        leases[id] = lease
        indexExpiry(lease)
        stats.renewed += 1
        events.record(.renewed, lease: lease, at: now)
        return .success(lease)
    }

    mutating func release(_ r: LeaseCommand.ReleaseLease, events: inout EventRecorder) -> Result<CommandResult, LeaseError> {
        guard let lease = leases[r.leaseID] else { return .failure(notFound(r.leaseID)) }
        // A forced release skips only the holder check: an ended lease stays ended.
        let holder = r.force ? lease.serviceID : r.serviceID
        if let error = checkOwnerAndActive(lease, serviceID: holder, verb: "release") { return .failure(error) }
        let reason = r.force ? "force-released by operator: \(r.reason)" : "released by \(r.serviceID)"
        let ended = end(lease, as: .released, events: &events, reason: reason)
        stats.released += 1
        return .success(.released(ended))
    }

    mutating func expire(_ e: LeaseCommand.ExpireLeases, events: inout EventRecorder) -> [LeaseID] {
        let grace = limits.cleanupGraceSeconds.saturatingMilliseconds
        var expired: [LeaseID] = []
        for id in Set(e.leaseIDs).sorted() {
            // Re-checked at apply time: a lease renewed after the leader decided
            // to expire it must survive (the renewal is earlier in the log).
            guard let lease = leases[id], lease.isActive, lease.expiresAt.adding(milliseconds: grace) <= now else {
                continue
            }
            end(lease, as: .expired, events: &events, reason: "not renewed before \(lease.expiresAt.milliseconds) ms")
            stats.expired += 1
            expired.append(id)
        }
        return expired
    }

    private func notFound(_ id: LeaseID) -> LeaseError {
        LeaseError(.notFound, "lease '\(id.rawValue.prefix(300))' does not exist (never created, or ended more than GC_ENDED_LEASE_RETENTION ago)", field: "lease_id")
    }

    private func checkOwnerAndActive(_ lease: Lease, serviceID: String, verb: String) -> LeaseError? {
        guard lease.serviceID == serviceID else {
            return LeaseError(.permissionDenied, "lease \(lease.id) belongs to another service, not '\(serviceID)': only its holder may \(verb) it", field: "service_id")
        }
        switch lease.state {
        case .released:
            return LeaseError(.failedPrecondition, "lease \(lease.id) was already released; create a new lease")
        case .expired:
            return LeaseError(.failedPrecondition, "lease \(lease.id) expired at \(lease.expiresAt.milliseconds) ms (Unix); create a new lease")
        case .active:
            guard lease.expiresAt > now else {
                return LeaseError(.failedPrecondition, "lease \(lease.id) expired at \(lease.expiresAt.milliseconds) ms (Unix), before this \(verb) arrived at \(now.milliseconds) ms; create a new lease")
            }
            return nil
        }
    }

    /// Ends an active lease; when it was its object's last, schedules the
    /// object's cleanup (if any lease of this incarnation named a target).
    @discardableResult
    private mutating func end(_ active: Lease, as state: Lease.State, events: inout EventRecorder, reason: String) -> Lease {
        precondition(active.isActive, "only active leases end")
        unindexActive(active)
        var lease = active
        lease.state = state
        lease.endedAt = now
        guard var record = objects[lease.object] else {
            preconditionFailure("an active lease's object has a record")
        }
        record.activeLeases.remove(lease.id)
        if record.activeLeases.isEmpty {
            objects.removeValue(forKey: lease.object)
            let source = lease.cleanup.map { CleanupSource(lease, spec: $0) } ?? record.cleanupSource
            if let source {
                lease.cleanupJobID = scheduleCleanup(of: lease.object, incarnation: record.incarnation, source: source)
            }
        } else {
            objects[lease.object] = record
        }
        leases[lease.id] = lease
        indexes.endedLeases.append(lease.id)
        events.record(state == .released ? .released : .expired, lease: lease, at: now, reason: reason)
        return lease
    }

    // MARK: Index upkeep

    /// Counts and indexes an active lease, which is stored in ``leases``
    /// (in `slot`, when the caller knows it).
    private mutating func indexActive(_ lease: Lease, slot: UInt32? = nil) {
        indexes.activeCount += 1
        indexes.activeByService[lease.serviceID, default: 0] += 1
        indexes.activeByType[lease.object.type, default: 0] += 1
        indexExpiry(lease, slot: slot)
    }

    private mutating func unindexActive(_ lease: Lease) {
        indexes.activeCount -= 1
        decrement(&indexes.activeByService, lease.serviceID)
        decrement(&indexes.activeByType, lease.object.type)
        unindexExpiry(lease)
    }

    private func decrement<K: Hashable>(_ counts: inout [K: Int], _ key: K) {
        let n = counts[key, default: 0] - 1
        counts[key] = n > 0 ? n : nil
    }

    /// The second `time` falls in (expiry buckets).
    static func bucket(of time: WallTime) -> Int64 { slot(of: time, width: 1000) }

    /// `time` in slots of `width` ms, rounded down (also before 1970).
    static func slot(of time: WallTime, width: Int64) -> Int64 {
        let (q, r) = time.milliseconds.quotientAndRemainder(dividingBy: width)
        return r < 0 ? q - 1 : q
    }

    /// Puts an active lease, stored in ``leases``, in its expiry bucket.
    private mutating func indexExpiry(_ lease: Lease, slot: UInt32? = nil) {
        guard let slot = slot ?? leases.slot(of: lease.id) else {
            assertionFailure("lease \(lease.id) is indexed before it is stored")
            return
        }
        indexes.expiryBuckets[Self.bucket(of: lease.expiresAt), default: []].insert(slot)
    }

    /// Takes a lease out of its expiry bucket (while it is still stored).
    private mutating func unindexExpiry(_ lease: Lease) {
        guard let slot = leases.slot(of: lease.id) else {
            assertionFailure("lease \(lease.id) is unindexed after it was removed")
            return
        }
        let key = Self.bucket(of: lease.expiresAt)
        indexes.expiryBuckets[key]?.remove(slot)
        if indexes.expiryBuckets[key]?.isEmpty == true { indexes.expiryBuckets[key] = nil }
    }

    /// Rebuilds the expiry buckets from the table: after ``LeaseTable/rebuilt()``
    /// renumbered its slots.
    mutating func rebuildExpiryIndex() {
        indexes.expiryBuckets = [:]
        let table = leases
        table.forEachSlot { slot, lease in
            if lease.isActive { indexExpiry(lease, slot: slot) }
        }
    }

    /// Rebuilds every derived index from the replicated state (the interned
    /// copies are kept: they only share storage).
    mutating func rebuildIndexes() {
        rebuildLeaseIndexes(leaseIDsInOrder: nil)
        rebuildJobIndexes()
    }

    /// Rebuilds the indexes of leases (and resets those of jobs: see ``rebuildJobIndexes()``).
    ///
    /// - Parameter leaseIDsInOrder: every retained lease id in ascending
    ///   order, when the caller has it (a snapshot lists leases so); without
    ///   it the ids are sorted.
    mutating func rebuildLeaseIndexes(leaseIDsInOrder: ChunkedArray<LeaseID>?) {
        let interned = indexes.interned
        indexes = Indexes()
        indexes.interned = interned
        if let leaseIDsInOrder, leaseIDsInOrder.count == leases.count {
            indexes.orderedLeaseIDs = leaseIDsInOrder
        } else {
            indexes.orderedLeaseIDs = ChunkedArray(leases.keys.sorted())
        }
        // One pass over the table in storage order: the active indexes are
        // counts and sets, and only the ended leases need an order.
        var ended: [(endedAt: WallTime, id: LeaseID)] = []
        let table = leases
        table.forEachSlot { slot, lease in
            if lease.isActive {
                indexActive(lease, slot: slot)
            } else {
                ended.append((lease.endedAt ?? .zero, lease.id))
            }
        }
        ended.sort { ($0.endedAt, $0.id) < ($1.endedAt, $1.id) }
        indexes.endedLeases = Deque(ended.map(\.id))
    }

    /// Rebuilds the indexes of cleanup jobs, which are empty (after ``rebuildLeaseIndexes(leaseIDsInOrder:)``).
    mutating func rebuildJobIndexes() {
        for job in jobs.values.sorted(by: { $0.id < $1.id }) {
            switch job.state {
            case .pending:
                indexes.pendingJobs.insert(job)
                indexes.openJobByObject[job.object] = job.id
            case .deadLettered:
                indexes.deadLetteredJobs.insert(job.id)
                indexes.openJobByObject[job.object] = job.id
            case .succeeded, .superseded:
                break
            }
        }
        let finished = jobs.values.filter { !$0.isOpen }.sorted { ($0.finishedAt ?? .zero, $0.id) < ($1.finishedAt ?? .zero, $1.id) }
        indexes.finishedJobs = Deque(finished.map(\.id))
    }
}
