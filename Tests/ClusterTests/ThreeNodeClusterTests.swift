import Foundation
import GCProto
import GRPCCore
import SwiftProtobuf
import Testing

/// Acceptance tests of issue 4 with three real `gc-sidecar` processes on
/// loopback (SQLite storage, real peer transport). Timing assertions use
/// bounded polling with deadlines; nothing sleeps for luck.
@Suite("Three real gc-sidecar processes", .serialized, .timeLimit(.minutes(3)))
struct ThreeNodeClusterTests {
    @Test("a lease created through a follower is readable from every node, and status shows one leader")
    func followerWriteIsReadableEverywhere() async throws {
        try await withProcessCluster { cluster in
            let leader = try await cluster.waitForLeader()
            let follower = (leader + 1) % 3
            let created = try await cluster.create(via: follower, object: "row-1")
            #expect(created.success)
            for i in 0..<3 {
                let got = try await cluster.get(via: i, created.leaseID)
                #expect(got.found, "node \(cluster.nodes[i].name) sees the lease")
                #expect(got.lease.objectID == "row-1")
            }
            for i in 0..<3 {
                // A node gathers its peers' status with a 1 s timeout: on a
                // loaded machine one slow fsync makes a peer look unreachable
                // for a moment, so poll until every peer answered.
                let status = try await cluster.eventually("status via \(cluster.nodes[i].name) with every peer reachable", timeout: .seconds(10)) {
                    let status = try await cluster.status(via: i)
                    return status.nodes.allSatisfy(\.reachable) ? status : nil
                }
                #expect(status.healthy)
                #expect(status.nodes.count == 3)
                #expect(status.nodes.filter { $0.role == "leader" }.map(\.nodeID) == [status.leaderID])
                #expect(status.nodes.filter { $0.role == "follower" }.count == 2)
                #expect(Set(status.nodes.map(\.term)).count == 1, "every node reports the same term")
                #expect(status.nodes.allSatisfy { $0.reachable && $0.activeLeases == 1 })
            }
        }
    }

    @Test("kill -9 of the leader: a new leader accepts writes within 2 s, nothing acknowledged is lost, the old one catches up")
    func leaderKillFailsOverAndLosesNothing() async throws {
        try await withProcessCluster { cluster in
            let leader = try await cluster.waitForLeader()
            var acknowledged: [String: Int64] = [:]
            for i in 0..<20 {
                let created = try await cluster.create(via: i % 3, object: "obj-\(i)")
                acknowledged[created.leaseID] = created.expiresAt.seconds
            }
            for id in acknowledged.keys.sorted().prefix(5) {
                let renewed = try await cluster.renew(via: (leader + 1) % 3, id, extend: 900)
                acknowledged[id] = renewed.newExpiresAt.seconds
            }

            cluster.nodes[leader].kill9()
            let killedAt = ContinuousClock.now
            let survivor = (leader + 1) % 3
            let afterKill = try await cluster.eventually("a write accepted after the kill", timeout: .seconds(10)) {
                try await cluster.create(via: survivor, object: "after-kill")
            }
            let failover = ContinuousClock.now - killedAt
            #expect(failover < .seconds(2), "new leader accepted a write after \(failover)")

            for i in 0..<3 where i != leader {
                for (id, expiry) in acknowledged {
                    let got = try await cluster.get(via: i, id)
                    #expect(got.found, "acknowledged lease \(id) survives on \(cluster.nodes[i].name)")
                    #expect(got.lease.expiresAt.seconds == expiry, "and its acknowledged renewal too")
                }
            }
            let status = try await cluster.status(via: survivor)
            #expect(status.healthy, "two of three voters is still a quorum")
            #expect(status.nodes.first { $0.nodeID == cluster.nodes[leader].name }?.reachable == false)

            try cluster.nodes[leader].start()
            let caughtUp = try await cluster.eventually("the restarted node catches up") {
                let got = try await cluster.get(via: leader, afterKill.leaseID, stale: true)
                return got.found ? got : nil
            }
            #expect(caughtUp.lease.objectID == "after-kill")
        }
    }

    @Test("a node that missed more than the leader's log holds is sent a snapshot and catches up")
    func laggingNodeCatchesUpBySnapshot() async throws {
        try await withProcessCluster(environment: ["GC_SNAPSHOT_THRESHOLD": "100"]) { cluster in
            let leader = try await cluster.waitForLeader()
            let lagging = (leader + 1) % 3
            let before = try await cluster.status(via: lagging).nodes.first { $0.nodeID == cluster.nodes[lagging].name }
            cluster.nodes[lagging].kill9()
            var ids: [String] = []
            for batch in 0..<10 {
                let created = try await withThrowingTaskGroup(of: String.self) { group in
                    for i in 0..<25 {
                        group.addTask { try await cluster.create(via: leader, object: "bulk-\(batch)-\(i)").leaseID }
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                ids += created
            }
            let leaderStatus = try await cluster.status(via: leader).nodes.first { $0.role == "leader" }
            let leaderSnapshot = try #require(leaderStatus?.snapshotIndex)
            #expect(leaderSnapshot > (before?.lastLogIndex ?? 0), "the entries the lagging node needs were compacted away")

            try cluster.nodes[lagging].start()
            let target = try #require(leaderStatus?.commitIndex)
            try await cluster.eventually("the lagging node applies past \(target)") {
                let me = try await cluster.status(via: lagging).nodes.first { $0.nodeID == cluster.nodes[lagging].name }
                return (me?.appliedIndex ?? 0) >= target ? true : nil
            }
            for id in [ids.first, ids.last].compactMap({ $0 }) {
                #expect(try await cluster.get(via: lagging, id, stale: true).found, "\(id) is on the caught-up node")
            }
            let me = try await cluster.status(via: lagging).nodes.first { $0.nodeID == cluster.nodes[lagging].name }
            #expect(me?.activeLeases == UInt64(ids.count))
        }
    }

    @Test("a write to the minority side of a partition is not acknowledged; the majority side keeps working")
    func minorityDoesNotAcknowledge() async throws {
        try await withProcessCluster(environment: ["GC_REQUEST_TIMEOUT_MS": "2000"]) { cluster in
            let leader = try await cluster.waitForLeader()
            let others = (0..<3).filter { $0 != leader }
            // Cut the leader off from both followers (they are frozen).
            for i in others { cluster.nodes[i].pause() }
            do {
                let created = try await cluster.create(via: leader, object: "minority")
                Issue.record("a minority leader acknowledged \(created.leaseID)")
            } catch let error as RPCError {
                #expect(error.code == .unavailable, "refused with \(error.code): \(error.message)")
            }
            for i in others { cluster.nodes[i].resume() }
            _ = try await cluster.waitForLeader()

            // Now the old leader alone is cut off: the other two elect and serve.
            let current = try await cluster.waitForLeader()
            cluster.nodes[current].pause()
            let majority = (0..<3).filter { $0 != current }
            let created = try await cluster.eventually("the majority accepts a write", timeout: .seconds(10)) {
                try await cluster.create(via: majority[0], object: "majority")
            }
            cluster.nodes[current].resume()
            try await cluster.eventually("the healed node sees the majority's write") {
                try await cluster.get(via: current, created.leaseID).found ? true : nil
            }
        }
    }

    @Test("cleanup happens exactly once per expired object across a leader change, and never from the old leader")
    func cleanupExactlyOnceAcrossLeaderChange() async throws {
        let sink = CleanupSink()
        try await sink.run { url in
            try await withProcessCluster { cluster in
                let leader = try await cluster.waitForLeader()
                let oldLeader = cluster.nodes[leader].name
                for i in 0..<5 { _ = try await cluster.create(via: i % 3, object: "wave-a-\(i)", duration: 1, cleanupURL: url) }
                try await cluster.eventually("wave A is cleaned by the first leader") {
                    Set(sink.deliveries.map(\.objectID)).count == 5 ? true : nil
                }
                // Long enough that none of them is due before the freeze, even
                // when the creates are slow on a loaded machine.
                for i in 0..<5 { _ = try await cluster.create(via: i % 3, object: "wave-b-\(i)", duration: 8, cleanupURL: url) }
                try #require(!sink.deliveries.contains { $0.objectID.hasPrefix("wave-b") }, "wave B expired before the freeze")

                // Freeze the leader: it neither knows nor can act while the others elect.
                cluster.nodes[leader].pause()
                let frozenAt = ContinuousClock.now
                try await cluster.waitForLeader(excluding: [leader])
                try await cluster.eventually("wave B is cleaned by the new leader", timeout: .seconds(20)) {
                    Set(sink.deliveries.map(\.objectID)).count == 10 ? true : nil
                }
                cluster.nodes[leader].resume()
                // Watch for a while after the old leader wakes: it must not deliver anything.
                let watchUntil = ContinuousClock.now + .seconds(3)
                while ContinuousClock.now < watchUntil {
                    try await Task.sleep(for: .milliseconds(100))
                }

                let deliveries = sink.deliveries
                let perObject = Dictionary(grouping: deliveries, by: \.objectID)
                for (object, list) in perObject {
                    #expect(list.count == 1, "\(object) was cleaned \(list.count) times: \(list.map(\.node))")
                }
                #expect(perObject.count == 10)
                let late = deliveries.filter { $0.at > frozenAt && $0.node == oldLeader }
                #expect(late.isEmpty, "the old leader delivered after it was cut off: \(late.map(\.objectID))")
                // Leadership may move again between the two survivors; what
                // matters is that the frozen old leader delivered none of them.
                #expect(deliveries.filter { $0.objectID.hasPrefix("wave-b") }.allSatisfy { $0.node != oldLeader })
            }
        }
    }

    @Test("restarting all three nodes keeps every lease")
    func fullRestartKeepsLeases() async throws {
        try await withProcessCluster { cluster in
            _ = try await cluster.waitForLeader()
            var ids: [String] = []
            for i in 0..<30 { ids.append(try await cluster.create(via: i % 3, object: "keep-\(i)").leaseID) }
            for node in cluster.nodes { node.stop() }
            for node in cluster.nodes { try node.start() }
            let leader = try await cluster.waitForLeader()
            for id in ids {
                #expect(try await cluster.get(via: leader, id).found, "\(id) survives a full restart")
            }
        }
    }

    @Test("transfer-leader moves leadership; a fourth node joins as learner, is promoted, gets the data, and can be removed")
    func membershipAndTransfer() async throws {
        try await withProcessCluster { cluster in
            let leader = try await cluster.waitForLeader()
            let target = (leader + 1) % 3
            var transfer = DistributedGc_TransferLeadershipRequest()
            transfer.targetNodeID = cluster.nodes[target].name
            // Asked through a follower: it hands the request to the leader.
            let moved = try await cluster.admin[(leader + 2) % 3].transferLeadership(transfer, options: ProcessCluster.fast)
            #expect(moved.leaderID == cluster.nodes[target].name)
            #expect(try await cluster.waitForLeader() == target)

            _ = try await cluster.create(via: leader, object: "before-join")
            let raftPort = try freePort()
            let joining = SidecarProcess(
                name: "n4", clientPort: try freePort(), raftPort: raftPort, metricsPort: try freePort(),
                directory: cluster.directory,
                // It learns the membership from the leader; GC_PEERS gives it every address.
                environment: ["GC_CLUSTER_STATE": "existing",
                              "GC_PEERS": (cluster.nodes.map { "\($0.name)=127.0.0.1:\($0.raftPort)" } + ["n4=127.0.0.1:\(raftPort)"]).joined(separator: ",")]
                    .merging(try cluster.tls?.environment(for: "n4", directory: cluster.directory) ?? [:]) { _, new in new })
            try joining.start()
            defer { joining.kill9() }
            var add = DistributedGc_AddMemberRequest()
            add.nodeID = "n4"
            add.raftAddress = "127.0.0.1:\(raftPort)"
            var slow = ProcessCluster.fast
            slow.timeout = .seconds(60)
            let joined = try await cluster.admin[leader].addMember(add, options: slow)
            #expect(joined.voters.contains("n4"), "promoted once caught up: \(joined)")
            let status = try await cluster.status(via: target)
            #expect(status.nodes.count == 4)
            #expect(status.nodes.first { $0.nodeID == "n4" }?.membership == "voter")
            #expect(status.nodes.first { $0.nodeID == "n4" }?.activeLeases == 1, "n4 has the lease created before it joined")

            var remove = DistributedGc_RemoveMemberRequest()
            remove.nodeID = "n4"
            let after = try await cluster.admin[target].removeMember(remove, options: ProcessCluster.fast)
            #expect(after.voters == cluster.nodes.map(\.name).sorted())
            var unknown = DistributedGc_RemoveMemberRequest()
            unknown.nodeID = "n9"
            await #expect(throws: RPCError.self) { try await cluster.admin[target].removeMember(unknown, options: ProcessCluster.fast) }
        }
    }

    @Test("a leader stopped with SIGTERM hands leadership over first, so writes continue without an election timeout")
    func gracefulStopHandsOver() async throws {
        try await withProcessCluster { cluster in
            let leader = try await cluster.waitForLeader()
            let before = try await cluster.status(via: leader).nodes.first { $0.role == "leader" }?.term ?? 0
            cluster.nodes[leader].stop()
            #expect(cluster.nodes[leader].logTail(40).contains("handed leadership over before shutting down"),
                    "the old leader's log: \(cluster.nodes[leader].logTail(10))")
            let survivor = (leader + 1) % 3
            // The hand-over happened before the old leader exited (its log
            // says so); the survivor reports it once its status gathering
            // has seen the new leader.
            let status = try await cluster.eventually("a healthy cluster via the survivor", timeout: .seconds(3)) {
                let status = try await cluster.status(via: survivor)
                return status.healthy ? status : nil
            }
            #expect(status.nodes.first { $0.role == "leader" }?.term == before + 1, "one transfer, no extra election rounds")
            _ = try await cluster.create(via: survivor, object: "after-handoff")
        }
    }
}

