import ArgumentParser
import Foundation
import Server

/// The node identity `restore` and `recover` need, as flags that override the `GC_*`
/// environment the node itself runs with (so the same environment file serves both).
struct SeedOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The node's data directory (GC_DATA_DIR).")
    var dataDirectory: String?

    @Option(name: .customLong("node-id"), help: "The node's name (GC_NODE_ID).")
    var nodeID: String?

    @Option(name: .long, help: "The new cluster's voters, name=host:port,... (GC_PEERS).")
    var peers: String?

    @Option(name: .customLong("lease-grace"),
            help: "Seconds every active lease lives at least after the restore (its deadline is kept when later).")
    var leaseGraceSeconds: UInt64 = 60

    /// The node's configuration: the environment with these flags on top.
    func config() throws -> SidecarConfig {
        var environment = ProcessInfo.processInfo.environment
        if let dataDirectory { environment["GC_DATA_DIR"] = dataDirectory }
        if let nodeID { environment["GC_NODE_ID"] = nodeID }
        if let peers { environment["GC_PEERS"] = peers }
        do {
            return try SidecarConfig(environment: environment)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    var grace: Duration { .seconds(Int64(clamping: leaseGraceSeconds)) }
}

/// A restore or recovery that could not be done: `Error: <message>`, exit status 1.
struct SeedFailure: Error, CustomStringConvertible {
    var description: String
}
