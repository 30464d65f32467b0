import Foundation
import GCClient
import GCProto
import GRPCCore
import Synchronization
import Testing

/// The client library against real processes: `LeaseKeeper` through a leader
/// failure, and its jeopardy signal when no node answers.
@Suite("GCClient and LeaseKeeper against real nodes", .serialized, .timeLimit(.minutes(3)))
struct LeaseKeeperTests {
    @Test("LeaseKeeper keeps 1,000 leases alive through a kill -9 of the leader")
    func keepsLeasesThroughLeaderFailure() async throws {
        try await withProcessCluster(environment: ["GC_LOG_LEVEL": "warning"]) { cluster in
            let leader = try await cluster.waitForLeader()
            // The leader first: the client starts there and must move on.
            let order = [leader] + cluster.nodes.indices.filter { $0 != leader }
            let endpoints = order.map { cluster.nodes[$0].endpoint }
            // Long enough that a loaded CI machine (the whole suite on two
            // cores) renews in time; the failover takes about one second.
            let ttl = Duration.seconds(20)
            let jeopardies = Mutex<[LeaseKeeper.Jeopardy]>([])
            try await GCClient.with(endpoints: endpoints) { client in
                let keeper = LeaseKeeper(client: client, safetyMargin: .seconds(3)) { j in
                    jeopardies.withLock { $0.append(j) }
                }
                let keeping = Task { await keeper.run() }
                defer { keeping.cancel() }
                // 1,000 leases, 50 creates at a time, each kept from when its
                // create was sent.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<50 {
                        group.addTask {
                            for i in stride(from: worker, to: 1000, by: 50) {
                                let sent = ContinuousClock.now
                                let lease = try await client.createLease(
                                    objectID: "obj-\(i)", objectType: .cacheEntry, serviceID: "keeper", duration: ttl)
                                await keeper.keep(leaseID: lease.leaseID, serviceID: "keeper", ttl: ttl, confirmedAt: sent)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(await keeper.leaseIDs.count == 1000)

                cluster.nodes[leader].kill9()
                _ = try await cluster.waitForLeader(excluding: [leader])
                // A TTL and more after the failure: every lease would have
                // expired had renewals stopped with the old leader.
                try await Task.sleep(for: ttl + .seconds(5))
                let fell = jeopardies.withLock { $0 }
                #expect(fell.isEmpty, "\(fell.count) leases fell into jeopardy, e.g. \(fell.prefix(3))")

                let survivor = order[1]
                var request = DistributedGc_ListLeasesRequest()
                request.serviceID = "keeper"
                request.limit = 1000
                let listed = try await cluster.leases[survivor].listLeases(request, options: ProcessCluster.fast)
                #expect(listed.leases.count == 1000)
                #expect(listed.leases.allSatisfy { $0.state == .active }, "expired: \(listed.leases.filter { $0.state != .active }.count)")
            }
        }
    }

    @Test("jeopardy fires for every kept lease, TTL minus the margin after its last renewal, when no node answers")
    func jeopardyFiresWhenRenewalsAreBlocked() async throws {
        try await withProcessCluster(size: 1, environment: ["GC_LOG_LEVEL": "warning"]) { cluster in
            _ = try await cluster.waitForLeader()
            let ttl = Duration.seconds(6), margin = Duration.seconds(1)
            let fired = Mutex<[(String, ContinuousClock.Instant)]>([])
            var config = GCClient.Configuration()
            // Short enough to notice the pause, long enough that one slow
            // fsync on a loaded machine does not fail a renewal (the keeper
            // bounds each renewal by TTL/3 anyway).
            config.callTimeout = .seconds(2)
            config.retryDeadline = .seconds(2)
            let node = cluster.nodes[0]
            defer { node.resume() }
            try await GCClient.with(endpoints: [node.endpoint], configuration: config) { client in
                let keeper = LeaseKeeper(client: client, safetyMargin: margin) { j in
                    if case .noRenewalWithin = j.reason { fired.withLock { $0.append((j.leaseID, .now)) } }
                }
                let keeping = Task { await keeper.run() }
                defer { keeping.cancel() }
                var ids: Set<String> = []
                for i in 0..<5 {
                    let sent = ContinuousClock.now
                    let lease = try await client.createLease(objectID: "o\(i)", objectType: .custom, serviceID: "s", duration: ttl)
                    await keeper.keep(leaseID: lease.leaseID, serviceID: "s", ttl: ttl, confirmedAt: sent)
                    ids.insert(lease.leaseID)
                }
                // Renewals work while the node answers: a full TTL passes
                // with no jeopardy.
                try await Task.sleep(for: ttl)
                #expect(fired.withLock { $0 }.isEmpty)

                node.pause()
                let pausedAt = ContinuousClock.now
                let deadline = pausedAt + ttl + .seconds(2)
                while fired.withLock({ $0.count }) < ids.count && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                let events = fired.withLock { $0 }
                #expect(Set(events.map(\.0)) == ids, "every lease reported once")
                #expect(events.count == ids.count)
                for (_, at) in events {
                    // The last renewal succeeded before the pause, so
                    // jeopardy comes at most TTL − margin after it (plus a
                    // check interval and slack for a loaded machine).
                    let after = at - pausedAt
                    #expect(after <= ttl - margin + .seconds(2), "promptly: \(after)")
                }
            }
        }
    }
}
