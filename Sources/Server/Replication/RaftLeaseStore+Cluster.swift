import Foundation
import GCProto
import LeaseFSM
import Logging
import Raft
import Synchronization

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
        let unreachable = cluster.transport?.takeUnreachable() ?? []
        for peer in unreachable { node.reportUnreachable(peer) }
        // Writes sent on a stream that broke may never have arrived: retry.
        giveUp(forwards.withLock { $0.takeSentTo(unreachable) }, "the connection to the leader broke")
        giveUp(forwards.withLock { [ticks] in $0.takeOverdue(at: ticks) }, "the leader did not answer in time")
        node.tick()
        reads.expire(at: ticks, appliedIndex: machine.appliedIndex)
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
        guard let sender = messages.first?.from else { return }
        receive(messages.map(PeerTraffic.message), from: sender)
    }

    /// Handles what several peers sent, in one turn (see ``PeerInbox``).
    public func receive(_ deliveries: [(from: NodeID, traffic: [PeerTraffic])]) {
        for delivery in deliveries { receive(delivery.traffic, from: delivery.from) }
    }

    /// Handles what the peer `sender` sent in one batch: Raft messages are
    /// stepped, forwarded writes proposed (on the leader) and replies to this
    /// node's forwarded writes handed to their callers. All of it shares the
    /// next drain (one persist, one fsync).
    public func receive(_ traffic: [PeerTraffic], from sender: NodeID) {
        guard started, fault == nil, !traffic.isEmpty else { return }
        let now = clock.now()
        var heard = false
        for item in traffic {
            switch item {
            case .message(let message):
                if let refusal = node.step(message) {
                    refusals.record(refusal, peer: name(of: message.from))
                } else {
                    heard = true
                }
            case .forward(let write):
                acceptForwarded(write, from: sender)
            case .reply(let reply):
                completeForwards([reply], from: sender)
            }
        }
        if heard { lastHeard[sender] = now }
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

    // MARK: Reads

    /// A read index, retrying lost or refused rounds until the request timeout.
    func readIndexWithRetry() async throws -> UInt64 {
        let deadline = cluster.time.deadline(after: cluster.requestTimeout)
        var lastProblem = "no leader is known"
        while true {
            do {
                return try await readIndex()
            } catch let error as StoreError {
                if fault != nil { throw error }
                lastProblem = error.message
            }
            guard deadline.remaining > cluster.tickInterval else { break }
            try await cluster.time.sleep(for: cluster.tickInterval)
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
        do {
            try await waitApplied(position.index)
        } catch let error as StoreError {
            throw StoreError(error.code, "\(error.message); the change may or may not have been applied")
        }
        return node.conf
    }

    /// Waits until the entry at `index` is applied; fails with
    /// ``StoreError/Code/unavailable`` if it is not within the request timeout.
    func waitApplied(_ index: UInt64) async throws {
        if machine.appliedIndex >= index { return }
        let expiry = ticks + cluster.requestTimeoutTicks
        try await withCheckedThrowingContinuation { continuation in
            reads.waitApplied(index, expiresAtTick: expiry, continuation)
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
