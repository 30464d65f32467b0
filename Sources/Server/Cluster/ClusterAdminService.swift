import GCProto
import GRPCCore

/// `ClusterService` (proto/cluster.proto) on the client port: what
/// `gcctl cluster status|add|remove|transfer-leader` calls.
public struct ClusterAdminService: DistributedGc_ClusterService.SimpleServiceProtocol {
    let admin: ClusterAdmin
    /// `insecure`, `mtls+auth`, … (``NodeSecurity/summary``), reported in the status.
    var securitySummary = "insecure"

    public func getClusterStatus(request: DistributedGc_ClusterStatusRequest, context: ServerContext) async throws -> DistributedGc_ClusterStatusResponse {
        var status = await admin.clusterStatus()
        status.security = securitySummary
        status.backend = "raft"
        return status
    }

    public func addMember(request: DistributedGc_AddMemberRequest, context: ServerContext) async throws -> DistributedGc_MembershipResponse {
        var admin = DistributedGc_Raft_AdminRequest()
        admin.add = request
        return try await self.admin.perform(admin).membership
    }

    public func removeMember(request: DistributedGc_RemoveMemberRequest, context: ServerContext) async throws -> DistributedGc_MembershipResponse {
        var admin = DistributedGc_Raft_AdminRequest()
        admin.remove = request
        return try await self.admin.perform(admin).membership
    }

    public func transferLeadership(request: DistributedGc_TransferLeadershipRequest, context: ServerContext) async throws -> DistributedGc_TransferLeadershipResponse {
        var admin = DistributedGc_Raft_AdminRequest()
        admin.transfer = request
        return try await self.admin.perform(admin).transfer
    }
}
