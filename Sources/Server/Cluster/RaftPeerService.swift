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
    /// Where every stream's batches wait for the store, coalesced.
    let inbox: PeerInbox

    /// - Parameter executor: where the inbox's pump runs (the node's event loop).
    init(store: RaftLeaseStore, admin: ClusterAdmin, logger: Logger, authorization: PeerAuthorization? = nil,
         executor: (any TaskExecutor)? = nil) {
        self.store = store
        self.admin = admin
        self.logger = logger
        self.authorization = authorization
        self.inbox = PeerInbox(store: store, executor: executor)
    }

    func stream(
        request: RPCAsyncSequence<DistributedGc_Raft_MessageBatch, any Error>, context: ServerContext
    ) async throws -> DistributedGc_Raft_StreamClosed {
        // The sender this stream's certificate was checked for; a batch
        // claiming another name or Raft id is checked again (and refused).
        var authorized: (name: String, id: UInt64)?
        for try await batch in request {
            if authorized?.name != batch.fromName || authorized?.id != batch.fromID {
                try authorization?.check(claimedName: batch.fromName, claimedID: batch.fromID, context)
                authorized = (batch.fromName, batch.fromID)
            }
            await Self.deliver(batch, to: store, via: inbox)
        }
        return DistributedGc_Raft_StreamClosed()
    }

    /// Decodes a peer's batch and hands its messages, forwarded writes and
    /// replies to `store`. A message
    /// that does not decode (a peer of another version?), whose `from` is not
    /// the batch's sender, or that is addressed to another node is dropped,
    /// counted and logged once per reason (``PeerRefusals``); the Raft core
    /// refuses the rest of what no correct peer sends.
    static func deliver(_ batch: DistributedGc_Raft_MessageBatch, to store: RaftLeaseStore, via inbox: PeerInbox? = nil) async {
        let refusals = store.refusals
        let local = store.cluster.local.id
        let peer = String(batch.fromName.prefix(64))
        var traffic: [PeerTraffic] = []
        traffic.reserveCapacity(batch.messages.count + batch.forwarded.count + batch.replies.count)
        for record in batch.messages {
            guard let message = RaftMessageCoding.message(record) else {
                refusals.record(.undecodable, peer: peer, detail: "message type \(record.type) or an entry kind is unknown (is the peer another version?)")
                continue
            }
            guard message.from == batch.fromID else {
                refusals.record(.senderMismatch, peer: peer, detail: "a \(message.type) from \(String(message.from, radix: 16)) in a batch from \(String(batch.fromID, radix: 16))")
                continue
            }
            guard message.to == local else {
                refusals.record(RefusalReason.wrongRecipient.rawValue, peer: peer, detail: "a \(message.type) addressed to \(String(message.to, radix: 16)), this node is \(String(local, radix: 16))")
                continue
            }
            traffic.append(.message(message))
        }
        for record in batch.forwarded { traffic.append(.forward(RaftMessageCoding.write(record))) }
        // Replies go straight to their waiting callers, not through the store.
        var replies: [ForwardedReply] = []
        for record in batch.replies {
            guard let reply = RaftMessageCoding.reply(record) else {
                refusals.record(.undecodable, peer: peer, detail: "a forwarded write's reply without an outcome (is the peer another version?)")
                continue
            }
            replies.append(reply)
        }
        if !replies.isEmpty { store.completeForwards(replies, from: batch.fromID) }
        guard !traffic.isEmpty else { return }
        if let inbox {
            await inbox.deliver(traffic, from: batch.fromID)
        } else {
            await store.receive(traffic, from: batch.fromID)
        }
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
