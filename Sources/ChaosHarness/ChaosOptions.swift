import Foundation

/// How one chaos run is set up. Defaults are the CI profile's.
public struct ChaosOptions: Sendable {
    public var seed: UInt64
    /// 3 or 5.
    public var nodes = 3
    /// Simulated seconds of workload under faults (settling comes after).
    public var workloadSeconds = 12
    public var faults: [FaultKind] = FaultKind.all
    public var clients = 6
    /// Deliberate bugs (tests of the harness itself).
    public var bugs: InjectedBugs = []
    /// SQLite `synchronous=FULL` (an fsync per commit). Off by default: a
    /// killed in-process node is a process crash, which loses nothing
    /// either way (SQLiteRaftStorageOptions), and CI runs hundreds of runs.
    public var fsync = false
    /// Simulated time of one Raft tick (the heartbeat interval).
    public var millisecondsPerTick: Int64 = 50
    public var electionTicks = 10
    /// Real time between ticks (pacing; Raft's retry sleeps use it too).
    public var realTick: Duration = .milliseconds(2)
    /// Real time a forwarded write or read may wait for a leader.
    public var requestTimeout: Duration = .milliseconds(400)
    /// Small, so snapshots, compaction and InstallSnapshot happen in every run.
    public var snapshotThreshold: UInt64 = 150
    public var graceSeconds: UInt64 = 1
    /// Reaper pass every this many ticks.
    public var reapEveryTicks = 10
    /// Largest clock offset a clock fault applies.
    public var maxClockOffsetMs: Int64 = 800
    /// Simulated seconds the cluster gets after healing to finish all work.
    public var settleSeconds = 60
    /// Where temp directories go.
    public var directory = NSTemporaryDirectory()
    /// Real time after which a run counts as stuck (a liveness failure).
    public var realTimeLimit: Duration = .seconds(120)
    /// Print each fault to stderr as it happens (a stuck run shows where).
    public var trace = false
    /// Keep the SQLite files of a failed run.
    public var keepFailedData = true

    public init(seed: UInt64) {
        self.seed = seed
    }

    /// One election timeout plus the grace: a new leader's wait before reaping.
    var cleanupHoldOff: Duration {
        .milliseconds(Int64(electionTicks) * millisecondsPerTick) + .seconds(Int64(graceSeconds))
    }

    /// Whole milliseconds of a duration.
    var cleanupHoldOffMilliseconds: Int64 { cleanupHoldOff.components.seconds * 1000 + cleanupHoldOff.components.attoseconds / 1_000_000_000_000_000 }

    var workloadTicks: Int { workloadSeconds * 1000 / Int(millisecondsPerTick) }

    /// The command that repeats this run.
    public var reproduction: String {
        var command = "swift run -c release chaos --seed \(seed) --duration \(workloadSeconds) --nodes \(nodes)"
        if Set(faults) != Set(FaultKind.all) { command += " --faults \(faults.map(\.rawValue).joined(separator: ","))" }
        if clients != 6 { command += " --clients \(clients)" }
        if bugs.contains(.followerReaps) { command += " --inject-bug follower-reaps" }
        if bugs.contains(.staleLinearizableReads) { command += " --inject-bug stale-reads" }
        if bugs.contains(.unsyncedAcks) { command += " --inject-bug unsynced-acks" }
        if bugs.contains(.stalledReaper) { command += " --inject-bug stalled-reaper" }
        return command
    }
}
