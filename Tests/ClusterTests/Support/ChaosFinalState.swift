import ChaosCheck
import GCProto

// The final state of a real-process chaos run as the wire shows it (Raft
// clusters and postgres-mode sidecars alike).

/// Every lease, linearizably, through node `i`.
func listAll(_ cluster: ProcessCluster, via i: Int) async throws -> [DistributedGc_LeaseInfo] {
    var leases: [DistributedGc_LeaseInfo] = []
    var token = ""
    repeat {
        var request = DistributedGc_ListLeasesRequest()
        request.limit = 1000
        request.pageToken = token
        let page = try await cluster.leases[i].listLeases(request, options: ProcessCluster.fast)
        leases += page.leases
        token = page.nextPageToken
    } while !token.isEmpty
    return leases
}

/// The final state as the wire shows it: each lease, and a job per lease
/// that carries its object's cleanup (its idempotency key is the one the
/// sink saw for that incarnation).
func finalState(_ leases: [DistributedGc_LeaseInfo], deliveries: [ChaosCheck.Delivery]) -> FinalState {
    var final = FinalState(leases: [:], jobs: [])
    let keys = Dictionary(grouping: deliveries, by: { "\($0.object)#\($0.incarnation)" }).mapValues { $0[0].idempotencyKey }
    for (i, lease) in leases.enumerated() {
        let leaseView = view(lease)
        final.leases[lease.leaseID] = FinalState.Lease(
            view: leaseView, endedAtMs: lease.hasEndedAt ? milliseconds(lease.endedAt) : nil)
        let state: FinalState.Job.State
        switch lease.cleanupState {
        case .cleanupPending: state = .pending
        case .cleanupSucceeded: state = .succeeded
        case .cleanupDeadLettered: state = .deadLettered
        case .cleanupSuperseded: state = .superseded
        default: continue
        }
        final.jobs.append(FinalState.Job(
            id: UInt64(i), object: leaseView.object, incarnation: lease.incarnation, leaseID: lease.leaseID, state: state,
            idempotencyKey: keys["\(leaseView.object)#\(lease.incarnation)"] ?? "(never delivered)", attempts: lease.cleanupAttempts))
    }
    return final
}
