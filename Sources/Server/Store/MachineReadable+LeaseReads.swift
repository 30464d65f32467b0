import LeaseFSM

/// ``LeaseReads`` for a store with an in-memory state machine: each answer
/// is one ``MachineReadable/read(_:_:)`` at the consistency asked, so it is
/// as fresh, and as atomic, as that one read.
extension LeaseReads where Self: MachineReadable {
    public func summary(_ consistency: ReadConsistency) async throws -> StoreSummary {
        try await read(consistency) { machine in
            StoreSummary(stats: machine.stats, activeLeases: machine.activeLeaseCount,
                         activeByService: machine.activeLeasesByService, activeByType: machine.activeLeasesByType,
                         pendingCleanups: machine.pendingCleanupCount, deadLetteredCleanups: machine.deadLetteredCleanupCount,
                         appliedIndex: machine.appliedIndex)
        }
    }

    public func leaseDetails(_ ids: [LeaseID], _ consistency: ReadConsistency) async throws -> [LeaseID: LeaseDetail] {
        try await read(consistency) { machine in
            var found: [LeaseID: LeaseDetail] = [:]
            for id in ids { if let lease = machine.lease(id) { found[id] = machine.detail(lease) } }
            return found
        }
    }

    public func listLeases(_ filter: LeaseStateMachine.LeaseFilter, after: LeaseID?, limit: Int,
                           _ consistency: ReadConsistency) async throws -> (leases: [LeaseDetail], next: LeaseID?) {
        try await read(consistency) { machine in
            let page = machine.listLeases(filter, after: after, limit: limit)
            return (page.leases.map(machine.detail), page.next)
        }
    }

    public func deadLetters(endpoint: String?, limit: Int, _ consistency: ReadConsistency) async throws -> (jobs: [CleanupJob], total: Int) {
        try await read(consistency) { machine in machine.deadLetteredJobs(endpoint: endpoint, limit: limit) }
    }

    public func jobs(_ ids: [JobID], _ consistency: ReadConsistency) async throws -> [CleanupJob] {
        try await read(consistency) { machine in ids.compactMap(machine.job) }
    }
}

extension LeaseStateMachine {
    /// `lease` with what this machine knows of its cleanup.
    func detail(_ lease: Lease) -> LeaseDetail {
        LeaseDetail(lease: lease, cleanupState: cleanupState(of: lease), cleanupJob: cleanupJob(of: lease))
    }
}
