import ArgumentParser
import Foundation
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2

/// `gcctl cluster`: the members, their roles and progress; membership and
/// leadership changes.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Show and change the cluster: status, add, remove, transfer-leader.",
        subcommands: [ClusterStatusCommand.self, ClusterAddCommand.self, ClusterRemoveCommand.self, ClusterTransferCommand.self])
}

/// `gcctl cluster status`: one row per member, like `etcdctl endpoint status -w table`.
struct ClusterStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every member (asked through one node); exits 1 when the cluster has no leader or no quorum.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let options = connection.callOptions
        let response = try await NodeConnection.withCluster(connection) {
            try await $0.getClusterStatus(DistributedGc_ClusterStatusRequest(), options: options)
        }
        switch connection.output {
        case .json:
            try Printer(format: .json).print(response) { [] }
        case .table where response.backend == "postgres":
            print(BoxTable.render(Self.sidecarRows(response)), terminator: "")
            let db = response.database
            let reach = db.reachable ? "reachable" : "UNREACHABLE (\(db.error))"
            print("database \(db.url): \(reach), PostgreSQL \(db.serverVersion.isEmpty ? "?" : db.serverVersion), size \(Self.byteCount(db.sizeBytes)), schema v\(db.schemaVersion), pool \(db.poolSize) connections per sidecar")
            print("postgres mode \(response.healthy ? "healthy" : "UNHEALTHY"): \(response.sidecars.count) live sidecar(s), answered by \(response.answeredBy)")
            let security = response.security.isEmpty ? "unknown" : response.security
            print("client port security on \(response.answeredBy): \(security)")
        case .table:
            print(BoxTable.render(Self.rows(response)), terminator: "")
            let summary = response.healthy ? "healthy" : "UNHEALTHY"
            print("cluster \(summary): leader \(response.leaderID.isEmpty ? "none" : response.leaderID), answered by \(response.answeredBy)")
            // An older node leaves the field empty.
            let security = response.security.isEmpty ? "unknown" : response.security
            print("client port security on \(response.answeredBy): \(security)\(security == "insecure" ? " (no authorization: any caller may release any lease; see README, Security)" : "")")
        }
        if !response.healthy { throw ExitCode(1) }
    }

    static func rows(_ response: DistributedGc_ClusterStatusResponse) -> [[String]] {
        var rows = [["NODE", "ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED", "LAST INDEX", "MATCH", "LAG", "LAST CONTACT",
                     "SNAPSHOT", "DB SIZE", "LEASES", "HEALTHY"]]
        for node in response.nodes {
            guard node.reachable else {
                rows.append([node.nodeID, node.raftAddress, "unreachable", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                             "false (\(node.error.prefix(60)))"])
                continue
            }
            let isLeader = node.role == "leader"
            rows.append([
                node.nodeID, node.raftAddress, node.membership == "learner" ? "\(node.role) (learner)" : node.role,
                "\(node.term)", "\(node.commitIndex)", "\(node.appliedIndex)", "\(node.lastLogIndex)",
                isLeader ? "-" : "\(node.matchIndex)", isLeader ? "-" : "\(node.replicationLag)",
                isLeader ? "-" : (node.lastContactMillis < 0 ? "unknown" : "\(node.lastContactMillis) ms"),
                "\(node.snapshotIndex)", byteCount(node.dbSizeBytes), "\(node.activeLeases)",
                node.healthy ? "true" : "false (\(node.healthProblem))",
            ])
        }
        return rows
    }

    /// PostgreSQL mode: one row per live sidecar (from its heartbeat).
    static func sidecarRows(_ response: DistributedGc_ClusterStatusResponse) -> [[String]] {
        var rows = [["SIDECAR", "ADDRESS", "VERSION", "UP SINCE (UTC)", "LAST SEEN", "CLAIMS"]]
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for sidecar in response.sidecars {
            let started = Date(timeIntervalSince1970: Double(sidecar.startedAtMillis) / 1000)
            rows.append([
                sidecar.name, sidecar.address, sidecar.version,
                ISO8601DateFormatter().string(from: started),
                "\(max(0, now - sidecar.lastSeenMillis)) ms ago", "\(sidecar.claims)",
            ])
        }
        return rows
    }

    static func byteCount(_ bytes: UInt64) -> String {
        if bytes == 0 { return "-" }
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// `gcctl cluster add`: adds a node (learner first, promoted once caught up).
struct ClusterAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a node: it joins as a learner and is promoted to voter once it has caught up.",
        discussion: "Start the new node first with GC_CLUSTER_STATE=existing and GC_PEERS listing the cluster and itself.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The new node's GC_NODE_ID.") var nodeID: String
    @Argument(help: "The new node's peer address, host:port (its GC_RAFT_PORT).") var raftAddress: String
    @Flag(help: "Leave it a learner (replicates, does not vote).") var learner = false

    func run() async throws {
        var request = DistributedGc_AddMemberRequest()
        request.nodeID = nodeID
        request.raftAddress = raftAddress
        request.asLearner = learner
        var options = connection.callOptions
        options.timeout = .seconds(max(connection.timeout, 90))
        let (call, callOptions, statusOptions) = (request, options, connection.callOptions)
        let progress = connection.progressReporter
        let response = try await NodeConnection.withCluster(connection) { client in
            try await withThrowingTaskGroup(of: DistributedGc_MembershipResponse?.self) { group in
                group.addTask { try await client.addMember(call, options: callOptions) }
                if progress.enabled {
                    group.addTask {
                        await Self.reportCatchUp(of: call.nodeID, client: client, options: statusOptions, progress: progress)
                        return nil
                    }
                }
                // The add's answer ends the catch-up reports.
                while let next = try await group.next() {
                    if let response = next {
                        group.cancelAll()
                        return response
                    }
                }
                throw CommandFailure("AddMember ended without an answer")
            }
        }
        progress.finish()
        try printMembership(response, format: connection.output)
    }

    /// Every second until cancelled: how far the new node has caught up
    /// (its match index against the leader's commit index).
    static func reportCatchUp(
        of nodeID: String, client: DistributedGc_ClusterService.Client<HTTP2ClientTransport.Posix>,
        options: CallOptions, progress: ProgressReporter
    ) async {
        let started = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard !Task.isCancelled else { return }
            let elapsed = (ContinuousClock.now - started).components.seconds
            guard let status = try? await client.getClusterStatus(DistributedGc_ClusterStatusRequest(), options: options) else {
                progress.update("cluster add \(nodeID): waiting (\(elapsed)s; status unavailable)")
                continue
            }
            let commit = status.nodes.first { $0.nodeID == status.leaderID }?.commitIndex ?? 0
            if let node = status.nodes.first(where: { $0.nodeID == nodeID }) {
                progress.update("cluster add \(nodeID): catching up, match \(node.matchIndex) of commit \(commit) (lag \(node.replicationLag), \(elapsed)s)")
            } else {
                progress.update("cluster add \(nodeID): joining (\(elapsed)s)")
            }
        }
    }
}

/// `gcctl cluster remove`: removes a node from the membership.
struct ClusterRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a node from the cluster.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The node's GC_NODE_ID.") var nodeID: String

    func run() async throws {
        var request = DistributedGc_RemoveMemberRequest()
        request.nodeID = nodeID
        let options = connection.callOptions
        let call = request
        let response = try await NodeConnection.withCluster(connection) { try await $0.removeMember(call, options: options) }
        try printMembership(response, format: connection.output)
    }
}

/// `gcctl cluster transfer-leader`: hands leadership to another voter.
struct ClusterTransferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer-leader", abstract: "Move leadership to another voter (default: the most caught-up one).")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The voter to lead next.") var nodeID: String?

    func run() async throws {
        var request = DistributedGc_TransferLeadershipRequest()
        request.targetNodeID = nodeID ?? ""
        let options = connection.callOptions
        let call = request
        let response = try await NodeConnection.withCluster(connection) { try await $0.transferLeadership(call, options: options) }
        try Printer(format: connection.output).print(response) { [["leader", response.leaderID]] }
    }
}

private func printMembership(_ response: DistributedGc_MembershipResponse, format: OutputFormat) throws {
    try Printer(format: format).print(response) {
        [["voters", response.voters.joined(separator: ", ")], ["learners", response.learners.joined(separator: ", ")]]
    }
}

/// A table with borders, as `etcdctl -w table` prints.
enum BoxTable {
    static func render(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        var widths = Array(repeating: 0, count: columns)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        let rule = "+" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "+") + "+\n"
        var out = rule
        for (r, row) in rows.enumerated() {
            out += "|" + (0..<columns).map { i in
                let cell = i < row.count ? row[i] : ""
                return " " + cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) + " "
            }.joined(separator: "|") + "|\n"
            if r == 0 { out += rule }
        }
        return out + rule
    }
}
