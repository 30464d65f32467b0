import ArgumentParser
import Server

/// `gc-sidecar restore FILE`: seeds a new node's data directory from a `gcctl snapshot save`
/// file (``SnapshotRestore``), like `etcdutl snapshot restore`. Run on one node of the new
/// cluster before its first start; the others join it empty.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Seed a new node's (empty) data directory from a snapshot file.",
        discussion: """
            Run it on ONE node of the new cluster with that node's identity (--node-id, --data-dir) and the new \
            cluster's voters (--peers), then start it as usual; start the other voters with empty data directories \
            and GC_CLUSTER_STATE=existing: they receive the state from it. The file's checksum is verified; a data \
            directory that holds anything is refused. Leases keep their deadlines, but none expires sooner than \
            --lease-grace seconds (default 60) after the restore, so start the cluster right away; pending and \
            dead-lettered cleanups are kept.
            """)

    @Argument(help: "A snapshot file written by `gcctl snapshot save`.")
    var file: String

    @OptionGroup var seed: SeedOptions

    func run() async throws {
        let config = try seed.config()
        let summary: SnapshotRestore.Summary
        do {
            summary = try SnapshotRestore.restore(file: file, config: config, grace: seed.grace)
        } catch {
            throw SeedFailure(description: error.description)
        }
        print("""
            restored \(file) into \(summary.dataDirectory)
              index             \(summary.index)
              checksum          \(summary.checksum) (verified)
              leases            \(summary.activeLeases) active (\(summary.leasesExtended) given the restore grace, \(summary.leasesKept) kept their deadline), \(summary.retainedLeases) retained in all
              cleanups          \(summary.pendingCleanups) pending, \(summary.deadLetteredCleanups) dead-lettered
              voters            \(summary.voters.joined(separator: ", "))
            start this node now, and the other voters with empty data directories and GC_CLUSTER_STATE=existing.
            """)
    }
}
