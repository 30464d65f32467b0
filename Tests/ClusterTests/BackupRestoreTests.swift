import Foundation
import GCProto
import GRPCCore
import TestPKI
import Testing

/// `gcctl snapshot save`, `gc-sidecar restore` and `gc-sidecar recover` with
/// real processes: a backup survives the loss of every node, and a cluster
/// that lost its quorum for good comes back from one survivor.
@Suite("Backup, restore and lost-quorum recovery", .serialized, .timeLimit(.minutes(5)))
struct BackupRestoreTests {
    @Test("a snapshot saved through a follower restores into a new 3-node cluster with every lease, its deadline, and its pending and dead-lettered cleanups, on every node")
    func saveDestroyRestore() async throws {
        let work = try Self.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let file = "\(work)/backup.snap"
        // Nothing listens there: every cleanup attempt fails.
        let deadSink = "http://127.0.0.1:\(try freePort())/cleanup"
        var before: [String: DistributedGc_LeaseInfo] = [:]
        var long: [String] = []
        var pending: [String] = []
        var soon = ""
        var dead = ""

        try await withProcessCluster { cluster in
            let leader = try await cluster.waitForLeader()
            for i in 0..<6 { long.append(try await cluster.create(via: i % 3, object: "long-\(i)", duration: 3600).leaseID) }
            // Less than the 60 s restore grace will be left of it at the restore.
            soon = try await cluster.create(via: leader, object: "soon", duration: 50).leaseID
            for i in 0..<3 {
                pending.append(try await Self.create(cluster, via: leader, object: "gone-\(i)", sink: deadSink, maxRetries: 100, retryDelay: 3600))
            }
            dead = try await Self.create(cluster, via: leader, object: "dead", sink: deadSink, maxRetries: 1, retryDelay: 1)
            for id in pending {
                try await cluster.eventually("\(id) expired and its cleanup failed once", timeout: .seconds(30)) {
                    let lease = try await cluster.get(via: leader, id).lease
                    return lease.state == .expired && lease.cleanupState == .cleanupPending && lease.cleanupAttempts >= 1 ? true : nil
                }
            }
            try await cluster.eventually("\(dead)'s cleanup is dead-lettered", timeout: .seconds(30)) {
                try await cluster.get(via: leader, dead).lease.cleanupState == .cleanupDeadLettered ? true : nil
            }

            let follower = (leader + 1) % 3
            let save = try Self.run("gcctl", ["snapshot", "save", file, "--output", "json"] + Self.connection(cluster, follower))
            try #require(save.status == 0, "gcctl snapshot save: \(save.output)")
            let parsed = try JSONSerialization.jsonObject(with: Data(save.output.utf8)) as? [String: Any]
            let report = try #require(parsed, "\(save.output)")
            #expect((report["index"] as? NSNumber)?.uint64Value ?? 0 > 0)
            #expect((report["active_leases"] as? NSNumber)?.intValue == 7, "\(report)")
            #expect((report["pending_cleanups"] as? NSNumber)?.intValue == 3, "\(report)")
            #expect((report["dead_lettered_cleanups"] as? NSNumber)?.intValue == 1, "\(report)")
            #expect(report["taken_by"] as? String == cluster.nodes[follower].name)
            #expect((report["checksum"] as? String)?.hasPrefix("crc32:") == true)
            for id in long + pending + [soon, dead] { before[id] = try await cluster.get(via: leader, id).lease }
        }
        // The cluster is gone: processes killed, data directories removed.

        let status = try Self.run("gcctl", ["snapshot", "status", file])
        #expect(status.status == 0 && status.output.contains("verified"), "\(status.output)")
        // A damaged file and a used data directory are refused.
        let damaged = "\(work)/damaged.snap"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        bytes[bytes.count / 2] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        let refused = try Self.run("gc-sidecar", ["restore", damaged, "--data-dir", "\(work)/never", "--node-id", "n1"])
        #expect(refused.status != 0 && refused.output.contains("checksum"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: "\(work)/never/raft.sqlite"))
        try FileManager.default.createDirectory(atPath: "\(work)/used", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(work)/used/something", contents: Data())
        let used = try Self.run("gc-sidecar", ["restore", file, "--data-dir", "\(work)/used", "--node-id", "n1"])
        #expect(used.status != 0 && used.output.contains("not empty"), "\(used.output)")

        let restoredAt = hostMilliseconds()
        // One node is seeded; the others start empty and receive its snapshot.
        try await withProcessCluster(environment: ["GC_CLUSTER_STATE": "existing"], beforeStart: { node, peers in
            guard node.name == "n1" else { return }
            let restore = try Self.run("gc-sidecar", ["restore", file, "--data-dir", node.dataDirectory, "--node-id", node.name, "--peers", peers])
            guard restore.status == 0 else { throw ClusterTestFailure("restore of \(node.name) failed: \(restore.output)") }
        }) { cluster in
            let restoredBy = hostMilliseconds()
            let leader = try await cluster.waitForLeader()
            for (id, old) in before {
                let answer = try await cluster.get(via: leader, id)
                #expect(answer.found, "\(id) is in the restored cluster")
                let lease = answer.lease
                #expect(lease.objectID == old.objectID && lease.state == old.state && lease.fencingToken == old.fencingToken, "\(id)")
                #expect(lease.cleanupState == old.cleanupState, "\(id): \(lease.cleanupState) was \(old.cleanupState)")
                #expect(lease.cleanupAttempts == old.cleanupAttempts, "\(id) keeps its attempt count")
            }
            for id in long {
                // The absolute deadline is kept: the remaining time is what it was, less the time that passed.
                #expect(milliseconds(try await cluster.get(via: leader, id).lease.expiresAt) == milliseconds(before[id]!.expiresAt), "\(id)")
            }
            let extended = milliseconds(try await cluster.get(via: leader, soon).lease.expiresAt)
            #expect(extended > milliseconds(before[soon]!.expiresAt), "a lease with less than the grace left is extended")
            #expect(extended >= restoredAt + 60_000 && extended <= restoredBy + 60_000, "to 60 s after the restore: \(extended - restoredAt) ms")

            // Every replica holds the restored state (the two empty ones got it by snapshot).
            for i in cluster.nodes.indices {
                try await cluster.eventually("\(cluster.nodes[i].name) holds every restored lease") { () -> Bool? in
                    for id in before.keys where !(try await cluster.get(via: i, id, stale: true).found) { return nil }
                    return true
                }
                let copy = milliseconds(try await cluster.get(via: i, soon, stale: true).lease.expiresAt)
                #expect(copy == extended, "\(cluster.nodes[i].name) has the same deadline for \(soon)")
            }
            let metrics = try await cluster.leases[leader].getMetrics(DistributedGc_MetricsRequest(), options: ProcessCluster.fast)
            #expect(metrics.activeLeases == 7)
            #expect(metrics.pendingCleanups == 3)
            #expect(metrics.deadLetteredCleanups == 1)
            // The restored cluster takes writes.
            let created = try await cluster.create(via: (leader + 2) % 3, object: "after-restore")
            #expect(try await cluster.get(via: leader, created.leaseID).found)
        }
    }

    @Test("after losing two of three nodes for good, the survivor recovers as a one-member cluster, takes writes, and two fresh members catch up")
    func lostQuorumRecovery() async throws {
        try await withProcessCluster { cluster in
            let leader = try await cluster.waitForLeader()
            var ids: [String] = []
            for i in 0..<10 { ids.append(try await cluster.create(via: leader, object: "kept-\(i)", duration: 3600).leaseID) }
            let survivor = (leader + 1) % 3
            let lost = Set(cluster.nodes.indices).subtracting([survivor])
            // The survivor has applied everything acknowledged so far.
            let last = ids[ids.count - 1]
            try await cluster.eventually("\(cluster.nodes[survivor].name) applied the last write") {
                try await cluster.get(via: survivor, last, stale: true).found ? true : nil
            }
            for i in lost { cluster.nodes[i].kill9() }
            // Without a quorum nothing commits.
            await #expect(throws: RPCError.self) { _ = try await cluster.create(via: survivor, object: "no-quorum") }

            let node = cluster.nodes[survivor]
            node.kill9()
            let peers = cluster.nodes.map { "\($0.name)=127.0.0.1:\($0.raftPort)" }.joined(separator: ",")
            let recover = try Self.run("gc-sidecar", ["recover", "--data-dir", node.dataDirectory, "--node-id", node.name, "--peers", peers])
            try #require(recover.status == 0, "gc-sidecar recover: \(recover.output)")
            #expect(recover.output.contains("single-member cluster"), "\(recover.output)")
            try node.start()
            #expect(try await cluster.waitForLeader(timeout: .seconds(30), excluding: lost) == survivor)
            for id in ids { #expect(try await cluster.get(via: survivor, id).found, "\(id) survives the recovery") }
            let written = try await cluster.eventually("the recovered node takes writes") {
                try await cluster.create(via: survivor, object: "after-recovery").leaseID
            }

            // Two fresh members join the one-member cluster and catch up.
            let fresh = try ["n4", "n5"].map { name in (name: name, client: try freePort(), raft: try freePort(), metrics: try freePort()) }
            let joinPeers = ([("\(node.name)", node.raftPort)] + fresh.map { ($0.name, $0.raft) })
                .map { "\($0.0)=127.0.0.1:\($0.1)" }.joined(separator: ",")
            var joined: [SidecarProcess] = []
            defer { for process in joined { process.kill9() } }
            var slow = ProcessCluster.fast
            slow.timeout = .seconds(60)
            for member in fresh {
                let process = SidecarProcess(
                    name: member.name, clientPort: member.client, raftPort: member.raft, metricsPort: member.metrics,
                    directory: cluster.directory,
                    environment: ["GC_CLUSTER_STATE": "existing", "GC_PEERS": joinPeers]
                        .merging(try cluster.tls?.environment(for: member.name, directory: cluster.directory) ?? [:]) { _, new in new })
                try process.start()
                joined.append(process)
                var add = DistributedGc_AddMemberRequest()
                add.nodeID = member.name
                add.raftAddress = "127.0.0.1:\(member.raft)"
                let membership = try await cluster.admin[survivor].addMember(add, options: slow)
                #expect(membership.voters.contains(member.name), "\(member.name) promoted once caught up: \(membership)")
            }
            // Quorum is now 2 of 3: a write commits with the new members.
            _ = try await cluster.create(via: survivor, object: "with-new-members")
            try await cluster.eventually("n4 and n5 have every lease", timeout: .seconds(30)) {
                let status = try await cluster.status(via: survivor)
                let counts = fresh.map { member in status.nodes.first { $0.nodeID == member.name }?.activeLeases ?? 0 }
                return status.healthy && counts.allSatisfy({ $0 == UInt64(ids.count + 2) }) ? true : nil
            }
            #expect(try await cluster.get(via: survivor, written).found)
        }
    }

    // MARK: Helpers

    static func workDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gc-backup-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A lease on `object` whose cleanup goes to `sink`.
    static func create(_ cluster: ProcessCluster, via i: Int, object: String, sink: String, maxRetries: UInt32, retryDelay: UInt64) async throws -> String {
        var request = DistributedGc_CreateLeaseRequest()
        request.objectID = object
        request.objectType = .databaseRow
        request.serviceID = "svc"
        request.leaseDurationSeconds = 1
        var cleanup = DistributedGc_CleanupConfig()
        cleanup.cleanupHTTPEndpoint = sink
        cleanup.maxRetries = maxRetries
        cleanup.retryDelaySeconds = retryDelay
        request.cleanupConfig = cleanup
        return try await cluster.leases[i].createLease(request, options: ProcessCluster.fast).leaseID
    }

    /// gcctl's flags to reach node `i` (with the operator's certificate when the cluster runs TLS).
    static func connection(_ cluster: ProcessCluster, _ i: Int) throws -> [String] {
        var flags = ["--endpoint", cluster.nodes[i].endpoint]
        if let tls = cluster.tls {
            let cert = try tls.pki.client(tls.clientIdentity)
            flags += ["--cacert", tls.pki.caFile, "--cert", cert.certificateFile, "--key", cert.keyFile]
        }
        return flags
    }

    /// Runs a built product to completion: its exit status and its output (stdout and stderr).
    static func run(_ product: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: product == "gc-sidecar" ? try SidecarBinary.path() : try SidecarBinary.path(of: product))
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
