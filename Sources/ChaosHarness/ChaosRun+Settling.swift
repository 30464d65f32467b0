import ChaosCheck
import LeaseFSM
import Raft
import Server
import Synchronization

/// The end of a run: waiting for the healed cluster to settle, reading the
/// final state, and checking that every node converged.
extension ChaosRun {

    func isSettled() async -> Bool {
        guard let leader = await currentLeader(), let life = leader.current else { return false }
        let commit = await life.store.status().commit
        for node in nodes {
            guard let other = node.current, await other.store.status().applied >= commit else { return false }
        }
        let state = await life.store.appliedState
        return state.activeLeaseCount == 0 && state.pendingCleanupCount == 0
    }

    func describeCluster() async -> String {
        var parts: [String] = []
        for node in nodes {
            guard let life = node.current else {
                parts.append("\(node.name): down")
                continue
            }
            let status = await life.store.status()
            let state = await life.store.appliedState
            parts.append("\(node.name): \(status.role) term \(status.term) commit \(status.commit) applied \(status.applied), \(state.activeLeaseCount) active, \(state.pendingCleanupCount) pending cleanups")
        }
        return parts.joined(separator: "; ")
    }

    /// Reads every known lease linearizably through the leader (recorded as
    /// history operations, so lost writes show up as linearizability
    /// violations too) and the full final state.
    func readFinalState() async throws -> FinalState {
        guard let leader = await currentLeader(), let life = leader.current else {
            throw ChaosError("no leader after healing")
        }
        let known = state.withLock { $0.knownLeases }
        let ops = known.map { recorder.invoke(client: -1, node: leader.name, kind: .get, leaseID: $0.0.rawValue, object: objectName($0.1)) }
        let machine = try await life.chaosStore.read(.linearizable) { $0 }
        for (op, lease) in zip(ops, known) { recorder.complete(op, .ok(machine.lease(lease.0).map(view))) }
        var leases: [String: FinalState.Lease] = [:]
        var jobs: [JobID: FinalState.Job] = [:]
        var after: LeaseID?
        repeat {
            let page = machine.listLeases(LeaseStateMachine.LeaseFilter(), after: after, limit: 1000)
            for lease in page.leases {
                leases[lease.id.rawValue] = FinalState.Lease(view: view(lease), endedAtMs: lease.endedAt?.milliseconds)
                if let id = lease.cleanupJobID, let job = machine.job(id) {
                    let jobState: FinalState.Job.State = switch job.state {
                    case .pending: .pending
                    case .succeeded: .succeeded
                    case .deadLettered: .deadLettered
                    case .superseded: .superseded
                    }
                    jobs[id] = FinalState.Job(id: id, object: objectName(job.object), incarnation: job.incarnation, leaseID: job.leaseID.rawValue,
                                              state: jobState, idempotencyKey: job.idempotencyKey, attempts: job.attempts)
                }
            }
            after = page.next
        } while after != nil
        return FinalState(leases: leases, jobs: Array(jobs.values))
    }

    /// g: every node reaches the leader's applied index and the same state.
    func convergence() async -> [Violation] {
        guard let leader = await currentLeader(), let life = leader.current else {
            return [Violation(.convergence, "no leader to compare with")]
        }
        let target = await life.store.status().applied
        let caughtUp = await waitTicks(upTo: 400, every: 2) {
            for node in self.nodes {
                guard let other = node.current, await other.store.status().applied >= target else { return false }
            }
            return true
        }
        guard caughtUp else { return [Violation(.convergence, "not every node applied index \(target) after healing: \(await describeCluster())")] }
        let reference = await life.store.appliedState
        var violations: [Violation] = []
        for node in nodes where node !== leader {
            guard let other = node.current else { continue }
            let state = await other.store.appliedState
            if state.appliedIndex == reference.appliedIndex, state != reference {
                violations.append(Violation(.convergence, "\(node.name)'s state at index \(state.appliedIndex) differs from \(leader.name)'s: \(state.activeLeaseCount) vs \(reference.activeLeaseCount) active, \(state.retainedLeaseCount) vs \(reference.retainedLeaseCount) leases, \(state.pendingCleanupCount) vs \(reference.pendingCleanupCount) pending cleanups"))
            }
        }
        return violations
    }
}
