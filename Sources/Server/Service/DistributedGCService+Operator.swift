import GCProto
import GRPCCore
import LeaseFSM
import Logging

/// Operator commands: retrying dead-lettered cleanups and force-releasing a
/// lease. Both go through the log like any write (so every node agrees and
/// a follower forwards them) and show in the event stream
/// (`CLEANUP_RETRIED`, `RELEASED` with the operator's reason).
extension DistributedGCService {
    /// Most dead letters one `RetryDeadLetters` call retries.
    public static let maxRetriesPerCall = 1_000

    public func retryDeadLetters(request: DistributedGc_RetryDeadLettersRequest, context: ServerContext) async throws -> DistributedGc_RetryDeadLettersResponse {
        try await timed("RetryDeadLetters") {
            if let caller = try authorizedCaller(context), !caller.isOperator { throw deny(.deadLettersRetry, caller, "") }
            let limit = Self.maxRetriesPerCall
            let selection: (jobs: [JobID], remaining: Int)
            if request.all {
                guard request.leaseIds.isEmpty else {
                    throw RPCError(code: .invalidArgument, message: "lease_ids: give either lease ids or all = true, not both")
                }
                let endpoint = request.cleanupEndpoint.isEmpty ? nil : request.cleanupEndpoint
                let found = try await read { try await store.deadLetters(endpoint: endpoint, limit: limit, .linearizable) }
                selection = (found.jobs.map(\.id), found.total - found.jobs.count)
            } else {
                guard !request.leaseIds.isEmpty else {
                    throw RPCError(code: .invalidArgument, message: "lease_ids: name at least one lease whose cleanup was dead-lettered, or set all = true")
                }
                guard request.leaseIds.count <= limit else {
                    throw RPCError(code: .invalidArgument, message: "lease_ids: \(request.leaseIds.count) ids; at most \(limit) per call")
                }
                guard request.cleanupEndpoint.isEmpty else {
                    throw RPCError(code: .invalidArgument, message: "cleanup_endpoint: only filters all = true; leave it empty when naming leases")
                }
                for id in request.leaseIds {
                    if let error = LeaseLimits.checkLeaseID(id) { throw RPCError(error) }
                }
                var jobs: [JobID] = []
                let ids = request.leaseIds.map(LeaseID.init)
                let details = try await read { try await store.leaseDetails(ids, .linearizable) }
                for id in ids {
                    guard let detail = details[id] else {
                        throw RPCError(code: .notFound, message: "lease_ids: lease '\(id)' does not exist (or ended more than GC_ENDED_LEASE_RETENTION ago); nothing was retried")
                    }
                    guard let job = detail.cleanupJob, job.state == .deadLettered else {
                        throw RPCError(code: .failedPrecondition, message: "lease_ids: lease '\(id)' has no dead-lettered cleanup (its cleanup state is \(detail.cleanupState.wireName)); nothing was retried")
                    }
                    jobs.append(job.id)
                }
                selection = (jobs, 0)
            }
            var response = DistributedGc_RetryDeadLettersResponse()
            response.limit = UInt32(limit)
            response.remaining = UInt64(selection.remaining)
            guard !selection.jobs.isEmpty else { return response }
            guard case .deadLettersRetried(let retried) = try await propose(.retryDeadLetters(.init(jobIDs: selection.jobs))) else {
                throw unexpected()
            }
            // Read back which leases they belong to (a job names its lease).
            response.leaseIds = try await read { try await store.jobs(retried, .stale) }.map(\.leaseID.rawValue)
            logger.notice("dead-lettered cleanups retried by operator", metadata: ["count": "\(retried.count)", "remaining": "\(selection.remaining)"])
            return response
        }
    }

    public func forceReleaseLease(request: DistributedGc_ForceReleaseLeaseRequest, context: ServerContext) async throws -> DistributedGc_ForceReleaseLeaseResponse {
        try await timed("ForceReleaseLease") {
            if let caller = try authorizedCaller(context), !caller.isOperator { throw deny(.leasesForceRelease, caller, "") }
            if let error = LeaseLimits.checkLeaseID(request.leaseID) { throw RPCError(error) }
            let command = LeaseCommand.release(.forced(LeaseID(request.leaseID), reason: request.reason))
            guard case .released(let lease) = try await propose(command) else { throw unexpected() }
            logger.notice("lease force-released by operator", metadata: ["lease_id": "\(lease.id)", "service_id": "\(lease.serviceID)", "reason": "\(request.reason)"])
            let asOf = clock.now()
            var response = DistributedGc_ForceReleaseLeaseResponse()
            // Linearizable: on a follower the release was applied by the
            // leader, maybe not here yet; a stale read could answer with the
            // lease still active (an operator-only call: the extra round is cheap).
            let detail: LeaseDetail
            if let found = try await read({ try await store.leaseDetail(lease.id, .linearizable) }) {
                detail = found
            } else {
                detail = try await forgottenDetail(lease)
            }
            response.lease = DistributedGc_LeaseInfo(detail, asOf: asOf)
            return response
        }
    }

    /// `lease` as released when the store has already forgotten it (an
    /// ended-lease retention of zero): its cleanup as the store still knows
    /// it, or succeeded once that job is forgotten too.
    func forgottenDetail(_ lease: Lease) async throws -> LeaseDetail {
        guard let jobID = lease.cleanupJobID else { return LeaseDetail(lease: lease, cleanupState: .none, cleanupJob: nil) }
        guard let job = try await read({ try await store.jobs([jobID], .linearizable) }).first else {
            return LeaseDetail(lease: lease, cleanupState: .succeeded, cleanupJob: nil)
        }
        let state: LeaseCleanupState = switch job.state {
        case .pending: .pending
        case .succeeded: .succeeded
        case .deadLettered: .deadLettered
        case .superseded: .superseded
        }
        return LeaseDetail(lease: lease, cleanupState: state, cleanupJob: job)
    }
}
