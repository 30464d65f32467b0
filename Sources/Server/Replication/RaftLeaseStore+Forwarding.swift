import Foundation
import GCProto
import LeaseFSM
import Raft
import Synchronization

/// Forwarding, both halves: a follower hands its clients' writes to the
/// leader on the peer stream (``PeerTraffic/forward(_:)``, like etcd's
/// `MsgProp`), and the leader proposes them and sends each answer back on
/// its own stream once the entry applied. Writes carry a client session
/// (``ClientOrigin``), so a retried forward applies once.
extension RaftLeaseStore {
    // MARK: Follower side

    /// Forwards a client write to the leader, retrying within the request
    /// timeout: while no leader is known, when the leader changes, when its
    /// answer is lost. The command carries `clientOrigin` when the client
    /// gave one, else a sequence of this node's own session: either way a
    /// retry is applied once.
    func forward(_ command: LeaseCommand, origin clientOrigin: ClientOrigin? = nil) async throws -> Result<CommandResult, LeaseError> {
        let sequence = clientOrigin == nil ? session.open() : 0
        defer { if clientOrigin == nil { session.close(sequence) } }
        let deadline = cluster.time.deadline(after: cluster.requestTimeout)
        var lastProblem = "no leader is known"
        while !deadline.hasPassed {
            if let fault { throw fault }
            let origin = clientOrigin ?? session.origin(for: sequence)
            if node.role == .leader {
                do {
                    return try await proposeLocally(StampedCommand(command, stamp: clock.now(), origin: origin))
                } catch let error as StoreError {
                    lastProblem = error.message
                }
            } else if let leader = node.leaderID, cluster.transport != nil {
                let encoded = StampedCommand(command, stamp: .zero, origin: origin).encoded()
                cluster.metrics?.recordForwardedWrite()
                switch await forwardOnce(encoded, to: leader) {
                case .decided(let result):
                    return result
                case .undecided(let problem):
                    lastProblem = "\(name(of: leader)): \(problem)"
                }
            }
            try await cluster.time.sleep(for: cluster.tickInterval)
        }
        throw StoreError(.unavailable, "no leader accepted the write within \(cluster.requestTimeout) (\(lastProblem)); "
            + "leader hint: \(leaderName ?? "none"); it may or may not have been applied, retry")
    }

    /// One attempt: queues the write for `leader` and waits for its answer,
    /// or until the attempt is given up (see ``PendingForwards``).
    private func forwardOnce(_ command: [UInt8], to leader: NodeID) async -> ForwardOutcome {
        let id = forwards.withLock { $0.nextID() }
        // Two election timeouts: a leader that is alive answers well within
        // it; one that is not is replaced by then.
        let expiry = ticks + UInt64(2 * max(2, cluster.electionTicks))
        return await withCheckedContinuation { continuation in
            forwards.withLock { $0.add(id, to: leader, expiresAtTick: expiry, continuation) }
            let queued = cluster.transport?.send([.forward(ForwardedWrite(id: id, command: command))], to: leader) ?? false
            if !queued, let waiting = forwards.withLock({ $0.take(id, from: leader) }) {
                waiting.resume(returning: .undecided("the connection to the leader is backed up or down"))
            }
        }
    }

    /// The leader's answers to this node's forwarded writes, handed to their
    /// callers at once (no hop onto the store). A reply nobody waits for from
    /// `sender` is refused and counted.
    public nonisolated func completeForwards(_ replies: [ForwardedReply], from sender: NodeID) {
        for reply in replies { completeForward(reply, from: sender) }
    }

    private nonisolated func completeForward(_ reply: ForwardedReply, from sender: NodeID) {
        guard let continuation = forwards.withLock({ $0.take(reply.id, from: sender) }) else {
            refusals.record(.unexpectedReply, peer: name(of: sender), detail: "a reply to forwarded write \(reply.id), which this node is not waiting for from that peer")
            return
        }
        switch reply.outcome {
        case .reply(let bytes):
            do {
                continuation.resume(returning: .decided(try CommandReplyCoding.decode(bytes)))
            } catch {
                continuation.resume(returning: .undecided("its reply could not be decoded (\(error)); the command may have been applied"))
            }
        case .unavailable(let message):
            continuation.resume(returning: .undecided(message))
        }
    }

    /// Answers forwarded writes that will get no reply (their leader lost
    /// office, its stream broke, the reply is overdue, or this store
    /// stopped): their callers retry, or give up, under the same session.
    nonisolated func giveUp(_ continuations: [PendingForwards.Continuation], _ reason: String) {
        for continuation in continuations { continuation.resume(returning: .undecided(reason)) }
    }

    // MARK: Leader side

    /// A write the follower `peer` forwarded on its stream: refused at once
    /// when it is not a client write with a session, invalid, or this node
    /// is not the leader; else stamped with this leader's clock and proposed
    /// under the follower's session. The answer goes back once it applied.
    func acceptForwarded(_ write: ForwardedWrite, from peer: NodeID) {
        guard cluster.transport?.member(peer) != nil, peer != cluster.local.id else {
            refusals.record(.forwardFromNonMember, peer: name(of: peer), detail: "forwarded write \(write.id)")
            return
        }
        switch admitForwarded(write.command) {
        case .failure(let refusal):
            proposals.reply(to: peer, id: write.id, refusal)
        case .success(let stamped):
            do {
                let position = try node.propose(stamped.encoded())
                proposals.add(.remote(peer: peer, id: write.id), at: position)
            } catch {
                proposals.reply(to: peer, id: write.id, .unavailable(describe(error)))
            }
        }
        // Replies (refusals now, decisions after the drain) go out with the drain.
        scheduleDrain()
    }

    /// Applies a write a follower forwarded with the unary `Forward` call
    /// (kept for peers of the previous version): stamps it with this
    /// leader's clock and proposes it under the follower's session.
    public func acceptForwarded(_ request: DistributedGc_Raft_ForwardRequest) async -> DistributedGc_Raft_ForwardResponse {
        var response = DistributedGc_Raft_ForwardResponse()
        response.leaderHint = leaderName ?? ""
        switch admitForwarded([UInt8](request.command)) {
        case .failure(.reply(let bytes)):
            response.reply = Data(bytes)
        case .failure(.unavailable(let message)):
            response.unavailable = message
        case .success(let stamped):
            do {
                response.reply = Data(CommandReplyCoding.encode(try await proposeLocally(stamped)))
            } catch {
                response.unavailable = "\(error)"
            }
        }
        return response
    }

    /// A forwarded command, stamped and ready to propose, or the answer
    /// that refuses it.
    private func admitForwarded(_ bytes: [UInt8]) -> Result<StampedCommand, ForwardRefusal> {
        var stamped: StampedCommand
        do {
            stamped = try StampedCommand(decoding: bytes)
        } catch {
            return .failure(.refused(LeaseError(.invalidArgument, "the forwarded command does not decode: \(error)")))
        }
        guard stamped.origin != nil, stamped.command.isClientWrite else {
            return .failure(.refused(LeaseError(.invalidArgument, "only client writes with a session may be forwarded")))
        }
        if let error = limits.validate(stamped.command) { return .failure(.refused(error)) }
        if let fault { return .failure(.unavailable(fault.message)) }
        guard node.role == .leader else { return .failure(.unavailable("not the leader")) }
        stamped.stamp = clock.now()
        return .success(stamped)
    }
}

/// Why a forwarded write was not proposed, as its answer.
typealias ForwardRefusal = ForwardedReply.Outcome

extension ForwardedReply.Outcome: Error {
    /// The state machine's kind of refusal (nothing changed).
    static func refused(_ error: LeaseError) -> Self { .reply(CommandReplyCoding.encode(.failure(error))) }
}
