import ArgumentParser
import Server

/// `gc-sidecar recover`: lost-quorum recovery (``ForceNewCluster``), like etcd's
/// `--force-new-cluster`. Run on one stopped survivor; start it, then `gcctl cluster add` new
/// members.
struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Turn a stopped survivor's data into a new single-member cluster (after losing quorum).",
        discussion: """
            Only when a majority of voters is lost for good. Stop the survivor with the longest log, run this with \
            its identity, start it again (it elects itself), then add fresh members with `gcctl cluster add`. Its \
            whole log is kept; writes it never received are lost. The old database is moved into the data \
            directory's pre-recovery-<time>/ folder. Never restart the lost members with their old data.
            """)

    @OptionGroup var seed: SeedOptions

    func run() async throws {
        let config = try seed.config()
        let summary: ForceNewCluster.Summary
        do {
            summary = try ForceNewCluster.recover(config: config, grace: seed.grace)
        } catch {
            throw SeedFailure(description: error.description)
        }
        print("""
            recovered \(config.nodeID) in \(config.dataDirectory) as a single-member cluster
              log               kept through index \(summary.lastIndex) (known committed: \(summary.commitIndex))
              term              \(summary.term)
              old voters        \(summary.previousVoters.joined(separator: ", "))
              leases            \(summary.activeLeases) active (\(summary.leasesExtended) given the recovery grace)
              cleanups          \(summary.pendingCleanups) pending, \(summary.deadLetteredCleanups) dead-lettered
              old database      \(summary.movedAside)
            start \(config.nodeID), then add members with `gcctl cluster add NAME HOST:PORT`.
            """)
    }
}
