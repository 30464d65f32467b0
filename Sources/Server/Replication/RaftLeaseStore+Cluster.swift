import Foundation
import GCProto
import LeaseFSM
import Logging
import Raft

/// The cluster side of the store: ticks, peers' messages, forwarding,
/// ReadIndex with retries, leadership confirmation and membership.
extension RaftLeaseStore {
    // MARK: Driving Raft

    /// Advances Raft's logical clock by one tick (elections, heartbeats,
    /// check-quorum) and fails reads whose answer is overdue. Called every
    /// ``ClusterSettings/tickInterval`` by ``RaftTicker``.
    public func tick() {
        guard started, fault == nil else { return }
        ticks += 1
        for peer in cluster.transport?.takeUnreachable() ?? [] { node.reportUnreachable(peer) }
        node.tick()
        expireOverdueReads()
        drain()
        if ticks % 10 == 0 { publishRaftMetrics() }
    }

    /// Updates the `gc_raft_*` gauges.
    func publishRaftMetrics() {
        cluster.metrics?.observeRaft(term: node.term, isLeader: node.role == .leader,
                                     commitIndex: node.commitIndex, appliedIndex: machine.appliedIndex)
    }

    /// Steps messages a peer sent; they are handled in the next drain, with
    /// whatever else arrived meanwhile (one persist for all). Messages the
    /// Raft core refuses (not addressed here, from a non-member, malformed,
    /// or contradicting this node's log: ``RefusalReason``) change nothing;
    /// they are counted and logged once per reason (``refusals``).
    public func receive(_ messages: [Message]) {
        guard started, fault == nil, !messages.isEmpty else { return }
        let now = clock.now()
        for message in messages {
            if let refusal = node.step(message) {
                refusals.record(refusal, peer: name(of: message.from))
            } else {
                lastHeard[message.from] = now
            }
        }
        scheduleDrain()
    }

    /// The operator's name of node `id` (`n2`), or its id in hex.
    nonisolated func name(of id: NodeID) -> String {
        cluster.transport?.member(id)?.name ?? (id == cluster.local.id ? cluster.local.name : String(id, radix: 16))
    }

    /// The leader's name, if one is known. None once this node stopped (a
    /// storage fault or an entry it cannot apply): it no longer hears who
    /// leads, so what it last knew would mislead.
    public var leaderName: String? {
        guard fault == nil else { return nil }
        return node.leaderID.map { name(of: $0) }
    }

    // MARK: Forwarding (follower side)

    /// Sends a client's write to the leader under this node's session and
    /// returns the leader's answer. Retries (with the same sequence, so it
    /// applies once) until the request timeout: while no leader is known, when
    /// the leader changes, or when the answer is lost.
    /// Forwards a client write to the leader, retrying within the request
    /// timeout. The command carries `clientOrigin` when the client gave one,
    /// else a sequence of this node's own session: either way a retry is
    /// applied once.
    func forward(_ command: LeaseCommand, origin clientOrigin: ClientOrigin? = nil) async throws -> Result<CommandResult, LeaseError> {
        let sequence = clientOrigin == nil ? session.open() : 0
        defer { if clientOrigin == nil { session.close(sequence) } }
        let deadline = ContinuousClock.now + cluster.requestTimeout
        var lastProblem = "no leader is known"
        while ContinuousClock.now < deadline {
            if let fault { throw fault }
            let origin = clientOrigin ?? session.origin(for: sequence)
            if node.role == .leader {
                do {
                    return try await proposeLocally(StampedCommand(command, stamp: clock.now(), origin: origin))
                } catch let error as StoreError {
                    lastProblem = error.message
                }
            } else if let leader = node.leaderID, let transport = cluster.transport {
                var request = DistributedGc_Raft_ForwardRequest()
                request.command = Data(StampedCommand(command, stamp: .zero, origin: origin).encoded())
                request.fromName = cluster.local.name
                let remaining = deadline - ContinuousClock.now
                do {
                    cluster.metrics?.recordForwardedWrite()
                    let response = try await transport.forward(request, to: leader, timeout: max(remaining, .milliseconds(10)))
                    switch response.outcome {
                    case .reply(let bytes):
                        do {
                            return try CommandReplyCoding.decode([UInt8](bytes))
                        } catch {
                            throw StoreError(.unavailable, "the leader's reply could not be decoded (\(error)); the command may have been applied")
                        }
                    case .unavailable(let message):
                        lastProblem = "\(name(of: leader)): \(message)"
                    case nil:
                        lastProblem = "\(name(of: leader)) answered without an outcome"
                    }
                } catch let error as StoreError {
                    throw error
                } catch {
                    lastProblem = "forwarding to \(name(of: leader)) failed: \(error)"
                }
            }
            try await Task.sleep(for: cluster.tickInterval)
        }
        throw StoreError(.unavailable, "no leader accepted the write within \(cluster.requestTimeout) (\(lastProblem)); "
            + "leader hint: \(leaderName ?? "none"); it may or may not have been applied, retry")
    }

    // MARK: Forwarding (leader side)

    /// Applies a write a follower forwarded: stamps it with this leader's
    /// clock and proposes it under the follower's session.
    public func acceptForwarded(_ request: DistributedGc_Raft_ForwardRequest) async -> DistributedGc_Raft_ForwardResponse {
        var response = DistributedGc_Raft_ForwardResponse()
        response.leaderHint = leaderName ?? ""
        var stamped: StampedCommand
        do {
            stamped = try StampedCommand(decoding: [UInt8](request.command))
        } catch {
            response.reply = Data(CommandReplyCoding.encode(.failure(LeaseError(.invalidArgument, "the forwarded command does not decode: \(error)"))))
            return response
        }
        guard stamped.origin != nil, stamped.command.isClientWrite else {
            response.reply = Data(CommandReplyCoding.encode(.failure(LeaseError(.invalidArgument, "only client writes with a session may be forwarded"))))
            return response
        }
        if let error = limits.validate(stamped.command) {
            response.reply = Data(CommandReplyCoding.encode(.failure(error)))
            return response
        }
        guard node.role == .leader else {
            response.unavailable = "not the leader"
            return response
        }
        stamped.stamp = clock.now()
        do {
            response.reply = Data(CommandReplyCoding.encode(try await proposeLocally(stamped)))
        } catch {
            response.unavailable = "\(error)"
        }
        return response
    }

    // MARK: Reads

    /// A read index, retrying lost or refused rounds until the request timeout.
    func readIndexWithRetry() async throws -> UInt64 {
        let deadline = ContinuousClock.now + cluster.requestTimeout
        var lastProblem = "no leader is known"
        while true {
            do {
                return try await readIndex()
            } catch let error as StoreError {
                if fault != nil { throw error }
                lastProblem = error.message
            }
            guard ContinuousClock.now + cluster.tickInterval < deadline else { break }
            try await Task.sleep(for: cluster.tickInterval)
        }
        throw StoreError(.unavailable, "no leader confirmed the read within \(cluster.requestTimeout) (\(lastProblem)); "
            + "leader hint: \(leaderName ?? "none"); retry, or ask for a stale read")
    }

    /// True if this node is the leader and a quorum confirms it still is
    /// (a ReadIndex round): the dispatcher asks before each batch of
    /// cleanups, so a deposed leader that has not noticed yet never
    /// dispatches.
    public func confirmLeadership() async -> Bool {
        guard node.role == .leader else { return false }
        let term = node.term
        do {
            _ = try await readIndex()
        } catch {
            return false
        }
        return node.role == .leader && node.term == term
    }

    // MARK: Membership

    /// Keeps the transport's address book in step with committed
    /// configuration changes (their context is `name=host:port`).
    func membershipApplied(_ entry: Entry) {
        guard let change = try? ConfChange.decode(entry.data) else { return }
        switch change.type {
        case .addLearner, .addVoter, .promote:
            if let text = String(bytes: change.context, encoding: .utf8), let member = ClusterMember(parsing: text) {
                cluster.transport?.addMember(member)
            }
        case .removeNode:
            if change.nodeID == cluster.local.id {
                logger.warning("this node was removed from the cluster; it no longer votes or serves writes")
            } else {
                cluster.transport?.removeMember(change.nodeID)
            }
        }
        logger.info("membership changed", metadata: [
            "change": "\(change.type)", "node": "\(name(of: change.nodeID))",
            "voters": "\(change.resultingConf.voters.map { name(of: $0) }.sorted())",
            "learners": "\(change.resultingConf.learners.map { name(of: $0) }.sorted())",
        ])
    }

    /// Proposes a configuration change (on the leader) and waits until it is
    /// applied; returns the membership then in force.
    public func changeMembership(_ change: ConfChange) async throws -> ConfState {
        try start()
        let position: LogPosition
        do {
            position = try node.proposeConfChange(change)
        } catch {
            throw StoreError(.unavailable, describe(error))
        }
        try await waitApplied(position.index)
        return node.conf
    }

    /// Waits until the entry at `index` is applied.
    func waitApplied(_ index: UInt64) async throws {
        if machine.appliedIndex >= index { return }
        try await withCheckedThrowingContinuation { continuation in
            applyWaiters.append((index, continuation))
            scheduleDrain()
        }
    }

    /// Asks Raft to hand leadership to `target` (on the leader).
    public func transferLeadership(to target: NodeID) throws {
        do {
            try node.transferLeadership(to: target)
        } catch {
            throw StoreError(.unavailable, describe(error))
        }
        drain()
    }
}
