import GCProto
import GRPCCore

/// `ClusterService` in PostgreSQL mode: `gcctl cluster status` lists the
/// live sidecars (their heartbeat rows) and the shared database. There is
/// no Raft membership to change: more capacity is more sidecars over the
/// same database, so the membership calls are refused with what to do instead.
public struct PostgresClusterService: DistributedGc_ClusterService.SimpleServiceProtocol {
    let nodeName: String
    let securitySummary: String
    let sidecars: @Sendable () async throws -> [DistributedGc_SidecarStatus]
    let database: @Sendable () async -> DistributedGc_DatabaseStatus

    /// - Parameters:
    ///   - sidecars: the sidecars seen recently (from `gc_sidecars`).
    ///   - database: the database as this sidecar sees it now.
    public init(nodeName: String, securitySummary: String,
                sidecars: @escaping @Sendable () async throws -> [DistributedGc_SidecarStatus],
                database: @escaping @Sendable () async -> DistributedGc_DatabaseStatus) {
        self.nodeName = nodeName
        self.securitySummary = securitySummary
        self.sidecars = sidecars
        self.database = database
    }

    public func getClusterStatus(request: DistributedGc_ClusterStatusRequest, context: ServerContext) async throws -> DistributedGc_ClusterStatusResponse {
        var response = DistributedGc_ClusterStatusResponse()
        response.backend = "postgres"
        response.answeredBy = nodeName
        response.security = securitySummary
        response.database = await database()
        if response.database.reachable {
            do {
                response.sidecars = try await sidecars()
            } catch {
                response.database.reachable = false
                response.database.error = "\(error)"
            }
        }
        response.healthy = response.database.reachable
        return response
    }

    public func addMember(request: DistributedGc_AddMemberRequest, context: ServerContext) async throws -> DistributedGc_MembershipResponse {
        throw Self.noMembership
    }

    public func removeMember(request: DistributedGc_RemoveMemberRequest, context: ServerContext) async throws -> DistributedGc_MembershipResponse {
        throw Self.noMembership
    }

    public func transferLeadership(request: DistributedGc_TransferLeadershipRequest, context: ServerContext) async throws -> DistributedGc_TransferLeadershipResponse {
        throw RPCError(code: .failedPrecondition, message: "GC_STORAGE_BACKEND=postgres has no leader: every sidecar serves, reaps and cleans up")
    }

    static let noMembership = RPCError(code: .failedPrecondition, message: "GC_STORAGE_BACKEND=postgres has no Raft membership: start or stop sidecars over the same DATABASE_URL instead")
}
