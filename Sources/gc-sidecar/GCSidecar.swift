import ArgumentParser
import Server

/// `gc-sidecar`: one node of the cluster. With no subcommand it runs the node
/// (``Serve``), configured from flags, `GC_*` variables and an optional YAML
/// file, exactly as `gc-sidecar serve` does.
///
/// Each subcommand lives in its own file; a new one (e.g. `migrate`)
/// is added to `subcommands` here.
@main
struct GCSidecar: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc-sidecar",
        abstract: "A node of the Raft-replicated, lease-based garbage collector.",
        discussion: """
            With no subcommand, runs the node (gc-sidecar serve). Settings come from
            flags, GC_* environment variables and an optional YAML file, in that order
            of precedence; `gc-sidecar serve --help` lists them all.
            """,
        version: SidecarVersion.current,
        subcommands: [Serve.self, ConfigCommand.self, RestoreCommand.self, RecoverCommand.self, MigrateCommand.self],
        defaultSubcommand: Serve.self
    )
}
