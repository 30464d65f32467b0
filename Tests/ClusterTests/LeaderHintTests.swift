import GCClient
import GCProto
import Synchronization
import Testing

/// `GCClient` follows leader hints: nodes name the leader in `HealthCheck`,
/// and a client sends its calls to the leader when it is one of its
/// endpoints, so writes skip a follower's forwarding hop.
@Suite("GCClient follows leader hints", .serialized, .timeLimit(.minutes(2)))
struct LeaderHintTests {
    @Test("a client given the followers first moves to the leader, and to the new leader after a kill -9")
    func followsTheLeader() async throws {
        try await withProcessCluster(environment: ["GC_LOG_LEVEL": "warning"]) { cluster in
            let leader = try await cluster.waitForLeader()
            let followers = cluster.nodes.indices.filter { $0 != leader }
            // A follower names the leader (once it has heard from it).
            let health = try await cluster.eventually("a follower names the leader") {
                let health = try await cluster.leases[followers[0]].healthCheck(DistributedGc_HealthCheckRequest(), options: ProcessCluster.fast)
                return health.leaderID.isEmpty ? nil : health
            }
            #expect(health.nodeID == cluster.nodes[followers[0]].name)
            #expect(health.leaderID == cluster.nodes[leader].name)

            var configuration = GCClient.Configuration()
            configuration.leaderCheckInterval = .seconds(1)
            // The followers first: without hints the client would stay on the
            // first one for good (it answers every call, by forwarding).
            let endpoints = (followers + [leader]).map { cluster.nodes[$0].endpoint }
            try await GCClient.with(endpoints: endpoints, configuration: configuration) { client in
                _ = try await client.createLease(objectID: "before", objectType: .custom, serviceID: "svc", duration: .seconds(60))
                try await cluster.eventually("the client moves to the leader \(cluster.nodes[leader].name)", timeout: .seconds(10)) {
                    client.currentEndpoint == cluster.nodes[leader].endpoint ? true : nil
                }

                cluster.nodes[leader].kill9()
                _ = try await client.createLease(objectID: "after", objectType: .custom, serviceID: "svc", duration: .seconds(60))
                // Leadership may still move between the survivors: compare with
                // whoever leads at each look.
                let seen = Mutex("")
                do {
                    try await cluster.eventually("the client moves to the new leader", timeout: .seconds(20)) {
                        let now = try await cluster.waitForLeader(timeout: .seconds(2), excluding: [leader])
                        seen.withLock { $0 = "leader \(cluster.nodes[now].endpoint), client on \(client.currentEndpoint)" }
                        return client.currentEndpoint == cluster.nodes[now].endpoint ? true : nil
                    }
                } catch {
                    Issue.record("last look: \(seen.withLock { $0 })")
                    throw error
                }
            }
        }
    }
}
