import ArgumentParser

/// `gcctl`: operate a gc-sidecar node or cluster from the command line.
@main
struct GCCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gcctl",
        abstract: "Operate the distributed GC sidecar: leases, cluster, health, metrics and load tests.",
        subcommands: [LeaseCommand.self, DeadLetterCommand.self, ClusterCommand.self, HealthCommand.self, MetricsCommand.self, BenchCommand.self])
}

/// Options every command that talks to a node shares.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "gRPC address of a node, host:port.")
    var endpoint: String = "localhost:50051"

    @Option(name: .long, help: "Output format: table or json.")
    var output: OutputFormat = .table

    @Option(name: .long, help: "Seconds to wait for the node to answer.")
    var timeout: Int = 10
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case json
}
