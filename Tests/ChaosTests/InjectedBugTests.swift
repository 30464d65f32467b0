import ChaosCheck
import ChaosHarness
import Testing

/// The harness finds bugs when they exist: with an invariant deliberately
/// broken, the checkers report it, and the report names the seed and the
/// command that repeats it.
@Suite struct InjectedBugTests {
    @Test func aFollowerThatReapsIsCaughtDeliveringCleanups() async throws {
        var options = ChaosOptions(seed: 11)
        options.workloadSeconds = 6
        options.faults = [.kill, .partition]
        options.bugs = [.followerReaps]
        options.keepFailedData = false
        let report = try await ChaosRun(options: options).run()
        #expect(report.violations.contains { $0.property == .safeCleanup && $0.message.contains("as a follower") },
                "\(report.text)")
        #expect(report.text.contains("reproduce: swift run -c release chaos --seed 11"))
        #expect(report.text.contains("--inject-bug follower-reaps"))
    }

    @Test func linearizableReadsServedLocallyAreCaught() async throws {
        // Stale answers need a lagging follower, which not every schedule
        // makes; the first seeds that partition often enough are enough.
        var caught: UInt64?
        for seed in UInt64(1)...12 where caught == nil {
            var options = ChaosOptions(seed: seed)
            options.workloadSeconds = 10
            options.faults = [.partition, .isolateLeader, .pause]
            options.bugs = [.staleLinearizableReads]
            options.keepFailedData = false
            let report = try await ChaosRun(options: options).run()
            if report.violations.contains(where: { $0.property == .linearizable }) { caught = seed }
        }
        #expect(caught != nil, "no seed in 1…12 exposed linearizable reads answered from local state")
    }

    @Test func aStalledReaperIsCaughtExpiringLeasesLate() async throws {
        var options = ChaosOptions(seed: 11)
        options.workloadSeconds = 12
        // No faults: nothing excuses a late expiry.
        options.faults = []
        options.bugs = [.stalledReaper]
        options.keepFailedData = false
        let report = try await ChaosRun(options: options).run()
        #expect(report.violations.contains { $0.property == .expiryTiming }, "\(report.text)")
    }

    @Test func theSameSystemWithoutTheBugPasses() async throws {
        var options = ChaosOptions(seed: 11)
        options.workloadSeconds = 6
        options.faults = [.kill, .partition]
        let report = try await ChaosRun(options: options).run()
        #expect(report.passed, "\(report.text)")
    }
}
