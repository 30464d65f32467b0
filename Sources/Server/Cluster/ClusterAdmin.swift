import Foundation
import GCProto
import GRPCCore
import LeaseFSM
import Logging
import Raft

/// Cluster administration: status gathered from every member, membership
/// changes and leadership transfer. Shared by the client-facing
/// ``ClusterAdminService`` and the peer protocol (a follower hands changes
/// to the leader).
public struct ClusterAdmin: Sendable {
    let store: RaftLeaseStore
    let config: SidecarConfig
    let logger: Logger
    /// How long to wait for one peer's status.
    var statusTimeout: Duration = .seconds(1)
    /// How long a new member may take to catch up before it is promoted.
    var catchUpTimeout: Duration = .seconds(60)

    var transport: (any PeerNetwork)? { store.cluster.transport }
    var local: ClusterMember { store.cluster.local }

    // MARK: Status

    /// This node as it sees itself, plus (on the leader) its view of the others.
    func localStatus() async -> DistributedGc_Raft_PeerStatusResponse {
        let observed = await store.observe()
        let raft = observed.raft
        var me = DistributedGc_NodeStatus()
        me.nodeID = local.name
        me.raftAddress = transport == nil ? "" : local.address
        me.role = raft.role.description
        me.term = raft.term
        me.commitIndex = raft.commit
        me.appliedIndex = raft.applied
        me.lastLogIndex = raft.lastIndex
        me.snapshotIndex = raft.snapshotIndex
        me.dbSizeBytes = databaseSize()
        me.activeLeases = UInt64(observed.activeLeases)
        me.healthy = observed.healthProblem == nil && raft.leaderID != nil
        me.healthProblem = observed.healthProblem ?? (raft.leaderID == nil ? "no leader known" : "")
        me.leaderID = raft.leaderID.map { store.name(of: $0) } ?? ""
        me.reachable = true
        me.membership = raft.conf.learners.contains(local.id) ? "learner" : (raft.conf.voters.contains(local.id) ? "voter" : "none")
        me.matchIndex = raft.lastIndex
        me.lastContactMillis = 0

        var response = DistributedGc_Raft_PeerStatusResponse()
        response.self_p = me
        if raft.role == .leader {
            for (id, progress) in raft.progress.sorted(by: { $0.key < $1.key }) where id != local.id {
                var peer = DistributedGc_NodeStatus()
                peer.nodeID = store.name(of: id)
                peer.raftAddress = transport?.member(id)?.address ?? ""
                peer.matchIndex = progress.match
                peer.replicationLag = raft.lastIndex > progress.match ? raft.lastIndex - progress.match : 0
                peer.lastContactMillis = observed.lastHeard[id].map { observed.now.milliseconds - $0.milliseconds } ?? -1
                peer.membership = progress.isLearner ? "learner" : "voter"
                response.followers.append(peer)
            }
        }
        return response
    }

    /// Every member's status: this node's own, and each peer's as it
    /// answers within ``statusTimeout``; peers that do not answer are listed
    /// as unreachable.
    public func clusterStatus() async -> DistributedGc_ClusterStatusResponse {
        let mine = await localStatus()
        let conf = await store.status().conf
        var ids = conf.voters.union(conf.learners)
        for peer in transport?.peers ?? [] { ids.insert(peer.id) }
        ids.remove(local.id)
        let answers = await peerStatuses(ids)

        var nodes = [mine.self_p]
        var leaderView = mine.self_p.role == "leader" ? mine.followers : []
        for id in ids.sorted(by: { store.name(of: $0) < store.name(of: $1) }) {
            if let answer = answers[id]?.response {
                nodes.append(answer.self_p)
                if answer.self_p.role == "leader" { leaderView = answer.followers }
            } else {
                var node = DistributedGc_NodeStatus()
                node.nodeID = store.name(of: id)
                node.raftAddress = transport?.member(id)?.address ?? ""
                node.role = "unreachable"
                node.reachable = false
                node.error = answers[id]?.problem ?? "no answer"
                node.lastContactMillis = -1
                node.membership = conf.learners.contains(id) ? "learner" : (conf.voters.contains(id) ? "voter" : "none")
                nodes.append(node)
            }
        }
        // What the leader sees of each follower: match, lag, last contact.
        for view in leaderView {
            guard let i = nodes.firstIndex(where: { $0.nodeID == view.nodeID }) else { continue }
            nodes[i].matchIndex = view.matchIndex
            nodes[i].replicationLag = view.replicationLag
            nodes[i].lastContactMillis = view.lastContactMillis
        }
        if let i = nodes.firstIndex(where: { $0.role == "leader" }) { nodes[i].lastContactMillis = 0 }
        nodes.sort { $0.nodeID < $1.nodeID }

        var response = DistributedGc_ClusterStatusResponse()
        response.nodes = nodes
        response.answeredBy = local.name
        let leaders = nodes.filter { $0.role == "leader" }
        response.leaderID = leaders.max(by: { $0.term < $1.term })?.nodeID ?? ""
        let reachableVoters = nodes.filter { $0.reachable && $0.membership == "voter" }.count
        response.healthy = !response.leaderID.isEmpty && reachableVoters > conf.voters.count / 2
        return response
    }

    /// Asks every peer in `ids` for its status at once, each within
    /// ``statusTimeout``: an answer or the reason there was none.
    func peerStatuses(_ ids: Set<NodeID>) async -> [NodeID: (response: DistributedGc_Raft_PeerStatusResponse?, problem: String)] {
        let timeout = statusTimeout
        let transport = self.transport
        return await withTaskGroup(of: PeerAnswer.self) { group in
            for id in ids {
                group.addTask {
                    guard let transport else { return PeerAnswer(id: id, response: nil, problem: "no address known") }
                    do {
                        return PeerAnswer(id: id, response: try await transport.status(of: id, timeout: timeout), problem: "")
                    } catch {
                        return PeerAnswer(id: id, response: nil, problem: Self.describeUnreachable(error))
                    }
                }
            }
            var answers: [NodeID: (response: DistributedGc_Raft_PeerStatusResponse?, problem: String)] = [:]
            while let answer = await group.next() {
                answers[answer.id] = (answer.response, answer.problem)
            }
            return answers
        }
    }

    struct PeerAnswer: Sendable {
        var id: NodeID
        var response: DistributedGc_Raft_PeerStatusResponse?
        var problem: String
    }

    /// A short reason a peer did not answer ("connection refused", "timed out").
    static func describeUnreachable(_ error: any Error) -> String {
        guard let rpc = error as? RPCError else { return "\(error)" }
        let text = "\(rpc.message) \(rpc.cause.map { "\($0)" } ?? "")".lowercased()
        if text.contains("refused") { return "connection refused" }
        if rpc.code == .deadlineExceeded || text.contains("timed out") || text.contains("deadline") { return "no answer in time" }
        return rpc.message
    }

    /// Bytes of this node's SQLite files (0 for the memory backend).
    func databaseSize() -> UInt64 {
        guard config.storageBackend == .sqlite else { return 0 }
        let base = (config.dataDirectory as NSString).appendingPathComponent("raft.sqlite")
        return [base, base + "-wal", base + "-shm"].reduce(0) { total, path in
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
            return total + size
        }
    }

    // MARK: Changes

    /// Performs `request` here if this node leads, or hands it to the leader.
    public func perform(_ request: DistributedGc_Raft_AdminRequest) async throws -> DistributedGc_Raft_AdminResponse {
        let status = await store.status()
        if status.role == .leader || transport == nil { return try await performLocally(request) }
        guard let leader = status.leaderID, let transport else {
            throw RPCError(code: .unavailable, message: "no leader is known; retry when the cluster has elected one")
        }
        return try await transport.admin(request, to: leader, timeout: catchUpTimeout + .seconds(10))
    }

    /// Performs `request` on this node, which must be the leader.
    func performLocally(_ request: DistributedGc_Raft_AdminRequest) async throws -> DistributedGc_Raft_AdminResponse {
        guard await store.status().role == .leader else {
            throw RPCError(code: .unavailable, message: "this node is not the leader (leader: \(await store.leaderName ?? "none")); retry")
        }
        var response = DistributedGc_Raft_AdminResponse()
        switch request.request {
        case .add(let add):
            response.membership = membership(try await addMember(add))
        case .remove(let remove):
            response.membership = membership(try await removeMember(remove))
        case .transfer(let transfer):
            var answer = DistributedGc_TransferLeadershipResponse()
            answer.leaderID = try await transferLeadership(transfer)
            response.transfer = answer
        case nil:
            throw RPCError(code: .invalidArgument, message: "request: set one of add, remove or transfer")
        }
        return response
    }

    private func addMember(_ request: DistributedGc_AddMemberRequest) async throws -> ConfState {
        guard let member = ClusterMember(parsing: "\(request.nodeID)=\(request.raftAddress)"),
              ClusterMember.isValidName(member.name) else {
            throw RPCError(code: .invalidArgument, message: "node_id must be letters, digits, '-', '_' or '.' and raft_address host:port (e.g. n4 and 10.0.0.4:50052)")
        }
        let conf = await store.status().conf
        if conf.voters.contains(member.id) { return conf }
        if !conf.learners.contains(member.id) {
            try await change(ConfChange(type: .addLearner, nodeID: member.id, context: Array(member.description.utf8)))
            logger.info("learner added; waiting for it to catch up", metadata: ["peer": "\(member)"])
        }
        if request.asLearner { return await store.status().conf }
        // Promote only once it has caught up (dissertation §4.2.1), so the
        // new voter does not stall commits while it fetches the log.
        let deadline = store.cluster.time.deadline(after: catchUpTimeout)
        while true {
            let status = await store.status()
            guard status.role == .leader else {
                throw RPCError(code: .unavailable, message: "leadership changed while \(member.name) was catching up; it remains a learner, retry")
            }
            if let progress = status.progress[member.id], progress.match >= status.commit { break }
            guard !deadline.hasPassed else {
                throw RPCError(code: .deadlineExceeded, message: "\(member.name) did not catch up within \(catchUpTimeout); it remains a learner (is it running at \(member.address)?). Retry to promote it")
            }
            try await store.cluster.time.sleep(for: store.cluster.tickInterval)
        }
        return try await change(ConfChange(type: .promote, nodeID: member.id, context: Array(member.description.utf8)))
    }

    private func removeMember(_ request: DistributedGc_RemoveMemberRequest) async throws -> ConfState {
        let id = ClusterMember.nodeID(forName: request.nodeID)
        let conf = await store.status().conf
        guard conf.voters.contains(id) || conf.learners.contains(id) else {
            throw RPCError(code: .notFound, message: "node_id: '\(request.nodeID)' is not a member")
        }
        guard id != local.id else {
            throw RPCError(code: .failedPrecondition, message: "\(request.nodeID) is the leader: transfer leadership first (gcctl cluster transfer-leader)")
        }
        return try await change(ConfChange(type: .removeNode, nodeID: id))
    }

    private func transferLeadership(_ request: DistributedGc_TransferLeadershipRequest) async throws -> String {
        let status = await store.status()
        let target: NodeID
        if request.targetNodeID.isEmpty {
            guard let best = status.progress.filter({ $0.key != local.id && status.conf.voters.contains($0.key) })
                .max(by: { $0.value.match < $1.value.match })?.key else {
                throw RPCError(code: .failedPrecondition, message: "there is no other voter to hand leadership to")
            }
            target = best
        } else {
            target = ClusterMember.nodeID(forName: request.targetNodeID)
            guard status.conf.voters.contains(target) else {
                throw RPCError(code: .notFound, message: "target_node_id: '\(request.targetNodeID)' is not a voter")
            }
        }
        if target == local.id { return local.name }
        do {
            try await store.transferLeadership(to: target)
        } catch let error as StoreError {
            throw RPCError(code: .unavailable, message: error.message)
        }
        let deadline = store.cluster.time.deadline(after: store.cluster.electionTimeout * 4)
        while !deadline.hasPassed {
            if let leader = await store.status().leaderID, leader != local.id { return store.name(of: leader) }
            try await store.cluster.time.sleep(for: store.cluster.tickInterval)
        }
        throw RPCError(code: .deadlineExceeded, message: "leadership did not move to \(store.name(of: target)) in time; the transfer was abandoned, retry")
    }

    /// Called on graceful shutdown: a leader hands leadership to the most
    /// caught-up voter first, so a rolling restart costs one transfer instead
    /// of an election timeout without a leader. Best effort: on failure the
    /// others elect as after a crash.
    public func handOffLeadership() async {
        let status = await store.status()
        guard transport != nil, status.role == .leader, status.conf.voters.count > 1 else { return }
        do {
            let next = try await transferLeadership(DistributedGc_TransferLeadershipRequest())
            logger.info("handed leadership over before shutting down", metadata: ["leader": "\(next)"])
        } catch {
            logger.warning("could not hand leadership over before shutting down; the others will elect a leader",
                           metadata: ["error": "\(error)"])
        }
    }

    @discardableResult
    private func change(_ change: ConfChange) async throws -> ConfState {
        do {
            return try await store.changeMembership(change)
        } catch let error as StoreError {
            throw RPCError(code: .unavailable, message: error.message)
        }
    }

    private func membership(_ conf: ConfState) -> DistributedGc_MembershipResponse {
        var response = DistributedGc_MembershipResponse()
        response.voters = conf.voters.map { store.name(of: $0) }.sorted()
        response.learners = conf.learners.map { store.name(of: $0) }.sorted()
        return response
    }
}
