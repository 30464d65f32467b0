import ArgumentParser
import Foundation
import GCClient
import Server

/// `gcctl`: operate a gc-sidecar node or cluster from the command line.
@main
struct GCCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gcctl",
        abstract: "Operate the distributed GC sidecar: leases, cluster, health, metrics and load tests.",
        discussion: """
            ENDPOINTS
              Commands go to the nodes of --endpoints (a comma list), else --endpoint, else \
            $GCCTL_ENDPOINTS, else localhost:50051. They are tried in order: a node that refuses \
            the connection or answers UNAVAILABLE (down, no leader, shutting down) hands the call \
            to the next one, as etcdctl does.

            OUTPUT
              -w/--write-out table|json (aliases -o/--output). Results go to stdout; errors and progress \
            (on a terminal, or with --progress) go to stderr, never into JSON output.

            EXIT STATUS
              0   success
              1   the cluster answered no: not found, permission denied, failed precondition, \
            unhealthy node or cluster, a renewal refused
              2   no endpoint could serve the call: connection refused, timeout, TLS failure
              64  bad usage (unknown flag, missing or invalid argument)
              130 interrupted (Ctrl-C), e.g. ending `lease watch`

            SHELL COMPLETION
              gcctl --generate-completion-script bash|zsh|fish
            """,
        version: SidecarVersion.current,
        subcommands: [LeaseCommand.self, DeadLetterCommand.self, ClusterCommand.self, HealthCommand.self, MetricsCommand.self, SnapshotCommand.self, BenchCommand.self, LoadCommand.self])

    /// Like argument-parser's own entry point, except that a ``CommandFailure``
    /// prints one line on stderr (no usage text: the command line was fine) and
    /// exits with its own status (1 or 2, see the EXIT STATUS above).
    static func main() async {
        do {
            var command = try await asyncParseAsRoot(nil)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            Diagnostics.write("Error: \(failure.description)")
            Foundation.exit(failure.exitStatus)
        } catch {
            exit(withError: error)
        }
    }
}

/// Options every command that talks to a node shares. The endpoints and the
/// TLS options fall back to the environment (`GCCTL_ENDPOINTS`,
/// `GCCTL_CACERT`, `GCCTL_CERT`, `GCCTL_KEY`, `GCCTL_TOKEN`), as etcdctl's do.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "gRPC address of one node, host:port (see --endpoints).")
    var endpoint: String?

    @Option(name: .long, help: ArgumentHelp(
        "Comma-separated node addresses, tried in order with fail-over (default: $GCCTL_ENDPOINTS, else localhost:50051).",
        valueName: "host:port,..."))
    var endpoints: String?

    @OptionGroup var tls: TLSOptions

    @Option(name: [.customShort("w"), .customLong("write-out"), .customShort("o"), .customLong("output")], help: "Output format: table or json.")
    var output: OutputFormat = .table

    @Option(name: .long, help: "Seconds to wait for a node to answer.")
    var timeout: Int = 10

    @Flag(name: .long, help: "Show progress on stderr even when it is not a terminal.")
    var progress = false

    static func environment(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }

    /// The nodes to try, in order: --endpoints, else --endpoint, else
    /// $GCCTL_ENDPOINTS, else localhost:50051.
    var endpointList: [String] {
        let text = endpoints ?? endpoint ?? Self.environment("GCCTL_ENDPOINTS") ?? "localhost:50051"
        let list = Self.split(text)
        return list.isEmpty ? ["localhost:50051"] : list
    }

    /// "a, b,,c" -> ["a", "b", "c"].
    static func split(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func security(for endpoint: String) -> ClientSecurity {
        tls.security(forceTLS: endpoint.hasPrefix("https://") || endpoint.hasPrefix("grpcs://"))
    }

    func validate() throws {
        if endpoints != nil && endpoint != nil { throw ValidationError("give --endpoint or --endpoints, not both") }
        if let endpoints, Self.split(endpoints).isEmpty { throw ValidationError("--endpoints must name at least one host:port") }
        for endpoint in endpointList { _ = try NodeConnection.parseEndpoint(endpoint) }
        guard timeout > 0 else { throw ValidationError("--timeout must be at least 1 second") }
    }

    /// Progress lines on stderr for this command (a terminal, or --progress).
    var progressReporter: ProgressReporter { ProgressReporter(enabled: progress || ProgressReporter.stderrIsTerminal) }
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
