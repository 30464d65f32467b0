import ArgumentParser
import GCProto

/// `gcctl health`: is the node up, and what does it hold.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health", abstract: "Show a node's health; exits 1 when it reports unhealthy.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let options = connection.callOptions
        let response = try await NodeConnection.with(connection) {
            try await $0.healthCheck(DistributedGc_HealthCheckRequest(), options: options)
        }
        try Printer(format: connection.output).print(response) {
            [["healthy", "\(response.healthy)"], ["node", response.nodeID], ["version", response.version],
             ["started", format(response.uptime)], ["active leases", "\(response.activeLeases)"],
             ["expired leases", "\(response.expiredLeases)"], ["pending cleanups", "\(response.pendingCleanups)"],
             ["dead-lettered cleanups", "\(response.deadLetteredCleanups)"], ["applied index", "\(response.appliedIndex)"]]
        }
        if !response.healthy { throw ExitCode(1) }
    }
}

/// `gcctl metrics`: the counters of GetMetrics.
struct MetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "metrics", abstract: "Show a node's lease and cleanup counters.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let options = connection.callOptions
        let response = try await NodeConnection.with(connection) {
            try await $0.getMetrics(DistributedGc_MetricsRequest(), options: options)
        }
        try Printer(format: connection.output).print(response) {
            var rows = [
                ["leases created", "\(response.totalLeasesCreated)"], ["leases renewed", "\(response.totalLeasesRenewed)"],
                ["leases expired", "\(response.totalLeasesExpired)"], ["leases released", "\(response.totalLeasesReleased)"],
                ["active leases", "\(response.activeLeases)"], ["cleanup operations", "\(response.totalCleanupOperations)"],
                ["cleanup failures", "\(response.failedCleanupOperations)"], ["cleanups succeeded", "\(response.succeededCleanups)"],
                ["cleanups pending", "\(response.pendingCleanups)"], ["cleanups dead-lettered", "\(response.deadLetteredCleanups)"],
            ]
            for (service, count) in response.leasesByService.sorted(by: { $0.key < $1.key }) {
                rows.append(["service \(service)", "\(count)"])
            }
            for (type, count) in response.leasesByType.sorted(by: { $0.key < $1.key }) {
                rows.append(["type \(type)", "\(count)"])
            }
            return rows
        }
    }
}
