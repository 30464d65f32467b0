import LeaseFSM
import Server
import Testing

/// The commands and reads the contract tests repeat, as one backend-neutral vocabulary.
extension LeaseStoreBackend {
    /// Creates a lease on `object` and returns it (fails the test on any other answer).
    @discardableResult
    func create(_ object: String, type: ObjectType = .databaseRow, service: String = "svc", duration: UInt64 = 60,
                metadata: [String: String] = [:], cleanup: CleanupSpec? = nil,
                origin: ClientOrigin? = nil) async throws -> Lease {
        let command = LeaseCommand.create(.init(leaseIDSuffix: "c0", object: ObjectKey(type: type, id: object), serviceID: service,
                                                durationSeconds: duration, metadata: metadata, cleanup: cleanup))
        guard case .created(let lease) = try await store.propose(command, origin: origin) else {
            throw TestFailure("a create did not answer .created")
        }
        return lease
    }

    /// Renews one lease; a refusal is thrown as its `LeaseError`.
    @discardableResult
    func renew(_ id: LeaseID, service: String = "svc", extend: UInt64 = 0) async throws -> Lease {
        guard case .renewed(let outcomes) = try await store.propose(.renew(.init(leaseIDs: [id], serviceID: service, extendSeconds: extend))),
              outcomes.count == 1, outcomes[0].leaseID == id else {
            throw TestFailure("a renew did not answer one .renewed outcome")
        }
        return try outcomes[0].result.get()
    }

    @discardableResult
    func release(_ id: LeaseID, service: String = "svc", origin: ClientOrigin? = nil) async throws -> Lease {
        guard case .released(let lease) = try await store.propose(.release(.init(leaseID: id, serviceID: service)), origin: origin) else {
            throw TestFailure("a release did not answer .released")
        }
        return lease
    }

    @discardableResult
    func forceRelease(_ id: LeaseID, reason: String = "stuck holder") async throws -> Lease {
        guard case .released(let lease) = try await store.propose(.release(.forced(id, reason: reason))) else {
            throw TestFailure("a forced release did not answer .released")
        }
        return lease
    }

    func detail(_ id: LeaseID) async throws -> LeaseDetail? {
        try await store.leaseDetail(id, .linearizable)
    }

    func job(_ id: JobID) async throws -> CleanupJob? {
        try await store.jobs([id], .linearizable).first
    }

    func summary() async throws -> StoreSummary {
        try await store.summary(.linearizable)
    }

    /// Every lease `filter` admits, read page by page (`limit` per page).
    func listAll(_ filter: LeaseStateMachine.LeaseFilter = .init(), pageSize: Int = 1_000) async throws -> [LeaseID] {
        var ids: [LeaseID] = []
        var after: LeaseID?
        repeat {
            let page = try await store.listLeases(filter, after: after, limit: pageSize, .linearizable)
            ids += page.leases.map(\.lease.id)
            after = page.next
        } while after != nil
        return ids
    }

    /// Retries `attempt` of `job` failing (not permanently), due again at once.
    func fail(_ job: CleanupJob, attempt: UInt32, retryAfterMilliseconds: Int64 = 0, permanent: Bool = false,
              error: String = "endpoint answered 503") async throws -> [JobID] {
        try await record([.init(jobID: job.id, attempt: attempt,
                                result: .failed(error: error, retryAfterMilliseconds: retryAfterMilliseconds, permanent: permanent))])
    }

    func succeed(_ job: CleanupJob, attempt: UInt32) async throws -> [JobID] {
        try await record([.init(jobID: job.id, attempt: attempt, result: .succeeded)])
    }
}

/// A cleanup target (never contacted: the contract records outcomes by hand).
func cleanupSpec(_ endpoint: String = "http://127.0.0.1:9/cleanup", maxRetries: UInt32 = 0,
                 retryDelaySeconds: UInt64 = 0) -> CleanupSpec {
    CleanupSpec(httpEndpoint: endpoint, maxRetries: maxRetries, retryDelaySeconds: retryDelaySeconds)
}

/// The `LeaseError` `body` threw, or nil when it threw nothing (any other
/// error fails the test and answers nil).
func leaseError(_ body: () async throws -> some Any, sourceLocation: SourceLocation = #_sourceLocation) async -> LeaseError? {
    do {
        _ = try await body()
        return nil
    } catch let error as LeaseError {
        return error
    } catch {
        Issue.record("expected a LeaseError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The refusal of a lease that does not exist (LeaseFSM's wording, which
/// both backends must give).
func notFoundError(_ id: LeaseID) -> LeaseError {
    LeaseError(.notFound, "lease '\(id.rawValue)' does not exist (never created, or ended more than GC_ENDED_LEASE_RETENTION ago)",
               field: "lease_id")
}

func notHolderError(_ id: LeaseID, caller: String, verb: String) -> LeaseError {
    LeaseError(.permissionDenied, "lease \(id) belongs to another service, not '\(caller)': only its holder may \(verb) it",
               field: "service_id")
}

func alreadyReleasedError(_ id: LeaseID) -> LeaseError {
    LeaseError(.failedPrecondition, "lease \(id) was already released; create a new lease")
}

func expiredError(_ lease: Lease) -> LeaseError {
    LeaseError(.failedPrecondition, "lease \(lease.id) expired at \(lease.expiresAt.milliseconds) ms (Unix); create a new lease")
}
