import GCProto
import GRPCCore
import Logging
import Raft

/// The peer protocol's server side (proto/raft.proto), on `GC_RAFT_PORT`.
struct RaftPeerService: DistributedGc_Raft_RaftPeer.SimpleServiceProtocol {
    let store: RaftLeaseStore
    let admin: ClusterAdmin
    let logger: Logger
    /// With peer TLS: each call's certificate must name the member it claims to be.
    var authorization: PeerAuthorization?

    func stream(
        request: RPCAsyncSequence<DistributedGc_Raft_MessageBatch, any Error>, context: ServerContext
    ) async throws -> DistributedGc_Raft_StreamClosed {
        var undecodable = 0
        var authorizedName: String?
        for try await batch in request {
            if batch.fromName != authorizedName {
                try authorization?.check(claimedName: batch.fromName, claimedID: batch.fromID, context)
                authorizedName = batch.fromName
            }
            var messages: [Message] = []
            messages.reserveCapacity(batch.messages.count)
            for record in batch.messages {
                if let message = RaftMessageCoding.message(record), message.from == batch.fromID {
                    messages.append(message)
                } else {
                    undecodable += 1
                }
            }
            if undecodable == 1 {
                logger.warning("dropping peer messages that do not decode (is the peer another version?)",
                               metadata: ["peer": "\(batch.fromName)"])
            }
            await store.receive(messages)
        }
        return DistributedGc_Raft_StreamClosed()
    }

    func forward(request: DistributedGc_Raft_ForwardRequest, context: ServerContext) async throws -> DistributedGc_Raft_ForwardResponse {
        try authorization?.check(claimedName: request.fromName, context)
        return await store.acceptForwarded(request)
    }

    func status(request: DistributedGc_Raft_PeerStatusRequest, context: ServerContext) async throws -> DistributedGc_Raft_PeerStatusResponse {
        try authorization?.checkIsMember(context)
        return await admin.localStatus()
    }

    func admin(request: DistributedGc_Raft_AdminRequest, context: ServerContext) async throws -> DistributedGc_Raft_AdminResponse {
        try authorization?.checkIsMember(context)
        return try await admin.performLocally(request)
    }
}
