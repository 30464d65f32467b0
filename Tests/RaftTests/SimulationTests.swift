import Testing
@testable import Raft

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Randomized deterministic simulation (TigerBeetle VOPR / FoundationDB style). Every run is
/// reproducible from its seed: set `RAFT_SIM_SEED` to replay one, `RAFT_SIM_RUNS` for a long
/// manual profile (e.g. `RAFT_SIM_RUNS=100000 swift test --filter Simulation`).
@Suite("Simulation")
struct SimulationTests {
    static let shards = 8
    static let ciRunsPerShard = 250

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }

    static var runsPerShard: Int {
        if let text = environment("RAFT_SIM_RUNS"), let total = Int(text) {
            return max(1, total / shards)
        }
        return ciRunsPerShard
    }

    static var baseSeed: UInt64 {
        environment("RAFT_SIM_BASE_SEED").flatMap { UInt64($0) } ?? 0x5AF3_7E57
    }

    @Test("seeded runs with faults (CI profile: 8 x 250 runs)", arguments: 0..<shards)
    func seededRuns(shard: Int) async {
        if Self.environment("RAFT_SIM_SEED") != nil { return }
        var failures: [String] = []
        var totalTicks = 0
        var totalCommitted = 0
        var totals = Cluster.Stats()
        var elections = 0
        for run in 0..<Self.runsPerShard {
            // CPU-bound: let other suites' tasks (the real-process cluster
            // tests' clients, timers) run between runs instead of starving
            // them of the cooperative pool for the whole shard.
            await Task.yield()
            let seed = Self.baseSeed &+ UInt64(run * Self.shards + shard)
            let outcome = Simulation(seed: seed).run()
            totalTicks += outcome.ticks
            totalCommitted += outcome.committed
            elections += outcome.elections
            totals.snapshotsInstalled += outcome.stats.snapshotsInstalled
            totals.confChangesApplied += outcome.stats.confChangesApplied
            totals.readStates += outcome.stats.readStates
            totals.timeoutNowSent += outcome.stats.timeoutNowSent
            totals.crashes += outcome.stats.crashes
            totals.persistFailures += outcome.stats.persistFailures
            if !outcome.violations.isEmpty {
                failures.append("\(outcome.description)\n  " + outcome.violations.prefix(5).joined(separator: "\n  "))
                if failures.count >= 3 { break }
            }
        }
        #expect(failures.isEmpty, "simulation failures (replay with RAFT_SIM_SEED=<seed>):\n\(failures.joined(separator: "\n"))")
        #expect(totalCommitted > Self.runsPerShard, "runs committed almost nothing (\(totalCommitted) entries)")
        // The faults must actually bite: every feature is exercised across a shard.
        if Self.runsPerShard >= 100 {
            #expect(totals.snapshotsInstalled > 0 && totals.confChangesApplied > 0 && totals.readStates > 0)
            #expect(totals.timeoutNowSent > 0 && totals.crashes > 0 && totals.persistFailures > 0)
        }
        print("sim shard \(shard): \(Self.runsPerShard) runs, \(totalTicks) ticks, \(totalCommitted) committed, \(elections) leaders, \(totals)")
    }

    @Test("replay one seed from RAFT_SIM_SEED")
    func replay() {
        guard let text = Self.environment("RAFT_SIM_SEED"), let seed = UInt64(text) else { return }
        let outcome = Simulation(seed: seed).run()
        print(outcome.description)
        print(outcome.finalState)
        #expect(outcome.violations.isEmpty, "\(outcome.violations.joined(separator: "\n"))")
    }

    @Test("a run is reproducible from its seed")
    func reproducible() {
        for seed: UInt64 in [1, 42, 7_777] {
            let a = Simulation(seed: seed).run()
            let b = Simulation(seed: seed).run()
            #expect(a.ticks == b.ticks && a.committed == b.committed && a.violations == b.violations, "seed \(seed)")
        }
    }
}
