@testable import Raft

/// Knobs of one simulated run. `swarm` draws them from the seed (TigerBeetle VOPR style) so every
/// run explores a different mix of faults.
struct SimOptions: Sendable, CustomStringConvertible {
    var nodeCount = 3
    var faultTicks = 200
    var livenessTicks = 400
    var maxDelay = 1
    var lossRate = 0.0
    var duplicateRate = 0.0
    var partitionRate = 0.0
    var healRate = 0.2
    var crashRate = 0.0
    var persistFailRate = 0.0
    var skewRate = 0.0
    var proposeRate = 0.3
    var readRate = 0.0
    var transferRate = 0.0
    var confChangeRate = 0.0
    var compactThreshold = 0 // 0 = never compact
    /// After compacting, the core lets go of the snapshot's bytes and reads them back when a
    /// follower needs them (as the SQLite driver does with snapshot files).
    var releaseSnapshotData = false
    var electionTick = 10
    var preVote = true
    var checkQuorum = true
    var maxInflight = 4
    var maxEntriesPerAppend = 4
    var snapshotChunkSize = 16

    static func swarm(_ rng: inout SplitMix64) -> SimOptions {
        var o = SimOptions()
        o.nodeCount = rng.chance(0.6) ? 3 : 5
        o.faultTicks = rng.int(100...220)
        o.maxDelay = rng.int(1...4)
        o.lossRate = Double(rng.int(0...20)) / 100
        o.duplicateRate = Double(rng.int(0...10)) / 100
        o.partitionRate = Double(rng.int(0...5)) / 100
        o.healRate = Double(rng.int(5...30)) / 100
        o.crashRate = Double(rng.int(0...3)) / 100
        o.persistFailRate = rng.chance(0.2) ? 0.002 : 0
        o.skewRate = Double(rng.int(0...10)) / 100
        o.proposeRate = Double(rng.int(10...60)) / 100
        o.readRate = Double(rng.int(0...10)) / 100
        o.transferRate = rng.chance(0.3) ? 0.01 : 0
        o.confChangeRate = rng.chance(0.3) ? 0.02 : 0
        o.compactThreshold = rng.chance(0.5) ? rng.int(3...20) : 0
        // Half the compacting runs, without drawing from the seed (runs stay as they were).
        o.releaseSnapshotData = o.compactThreshold % 2 == 0
        o.preVote = rng.chance(0.8)
        o.checkQuorum = rng.chance(0.8)
        o.maxInflight = rng.int(1...8)
        o.maxEntriesPerAppend = rng.int(1...8)
        o.snapshotChunkSize = rng.int(4...64)
        return o
    }

    var description: String {
        "nodes=\(nodeCount) ticks=\(faultTicks) delay<=\(maxDelay) loss=\(lossRate) dup=\(duplicateRate) "
            + "partition=\(partitionRate) heal=\(healRate) crash=\(crashRate) persistFail=\(persistFailRate) "
            + "skew=\(skewRate) propose=\(proposeRate) read=\(readRate) transfer=\(transferRate) "
            + "conf=\(confChangeRate) compact=\(compactThreshold) release=\(releaseSnapshotData) preVote=\(preVote) checkQuorum=\(checkQuorum) "
            + "inflight=\(maxInflight) batch=\(maxEntriesPerAppend) chunk=\(snapshotChunkSize)"
    }
}
