import ArgumentParser
import Foundation
import GCClient

/// `gcctl`: operate a gc-sidecar node or cluster from the command line.
@main
struct GCCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gcctl",
        abstract: "Operate the distributed GC sidecar: leases, cluster, health, metrics and load tests.",
        subcommands: [LeaseCommand.self, DeadLetterCommand.self, ClusterCommand.self, HealthCommand.self, MetricsCommand.self, BenchCommand.self, LoadCommand.self, SnapshotCommand.self])
}

/// Options every command that talks to a node shares. TLS options fall
/// back to the environment (`GCCTL_ENDPOINTS`, `GCCTL_CACERT`, `GCCTL_CERT`,
/// `GCCTL_KEY`, `GCCTL_TOKEN`), as etcdctl's do.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "gRPC address of a node, host:port (default: the first of $GCCTL_ENDPOINTS, else localhost:50051).")
    var endpoint: String = ConnectionOptions.environment("GCCTL_ENDPOINTS")?
        .split(separator: ",").first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? "localhost:50051"

    @OptionGroup var tls: TLSOptions

    static func environment(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }

    var security: ClientSecurity { tls.security(forceTLS: endpoint.hasPrefix("https://") || endpoint.hasPrefix("grpcs://")) }

    @Option(name: .long, help: "Output format: table or json.")
    var output: OutputFormat = .table

    @Option(name: .long, help: "Seconds to wait for the node to answer.")
    var timeout: Int = 10
}

/// TLS and credentials, shared by every command that connects (as
/// etcdctl's `--cacert/--cert/--key`), falling back to `GCCTL_*`.
struct TLSOptions: ParsableArguments {
    @Option(name: .long, help: "CA bundle (PEM) the node's certificate must chain to; turns TLS on ($GCCTL_CACERT).")
    var cacert: String? = ConnectionOptions.environment("GCCTL_CACERT")

    @Option(name: .long, help: "Client certificate (PEM) for mutual TLS ($GCCTL_CERT).")
    var cert: String? = ConnectionOptions.environment("GCCTL_CERT")

    @Option(name: .long, help: "Client certificate's private key (PEM) ($GCCTL_KEY).")
    var key: String? = ConnectionOptions.environment("GCCTL_KEY")

    @Option(name: .long, help: "Bearer token, for callers without a certificate; implies TLS ($GCCTL_TOKEN).")
    var token: String? = ConnectionOptions.environment("GCCTL_TOKEN")

    @Flag(name: .long, help: "Use TLS with the system's CA roots (implied by --cacert or --cert).")
    var tls = false

    /// A bearer token turns TLS on too: it is never sent in plaintext.
    func security(forceTLS: Bool = false) -> ClientSecurity {
        ClientSecurity(caFile: cacert, certificateFile: cert, keyFile: key, token: token,
                       useTLS: forceTLS || tls || cacert != nil || cert != nil || token != nil)
    }

    mutating func validate() throws {
        guard (cert == nil) == (key == nil) else {
            throw ValidationError("--cert and --key go together (mutual TLS needs both)")
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case json
}
