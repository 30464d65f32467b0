import ChaosCheck
import ChaosHarness
import Testing

/// The harness finds bugs when they exist: with an invariant deliberately
/// broken, the checkers report it, and the report names the seed and the
/// command that repeats it. (`unsynced-acks` is the exception: it breaks
/// Raft's own assumption, and what is checked is that the nodes refuse and
/// report it instead of spinning.)
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

    /// Storage that acknowledges before it is durable (`unsynced-acks`) makes a killed node
    /// forget entries it acknowledged. That can lose acknowledged writes by definition, so the
    /// outcome's data is not checked here. What is checked: the Raft core no longer livelocks on
    /// the log that went backwards (the leader used to answer the forgetful follower's
    /// rejection with the same probe at once, forever, without a tick), and the nodes refuse and
    /// report it: the follower refuses heartbeats committing beyond its log
    /// (`commit_beyond_log`), the leader refuses rejections below the acknowledged index
    /// (`reject_below_match`).
    @Test func unsyncedAcksAreRefusedAndReportedNotSpunOn() async throws {
        var reported: [UInt64] = []
        for seed in UInt64(1)...12 where reported.isEmpty {
            var options = ChaosOptions(seed: seed)
            options.workloadSeconds = 8
            options.settleSeconds = 20
            options.faults = [.kill]
            options.bugs = [.unsyncedAcks]
            options.keepFailedData = false
            options.realTimeLimit = .seconds(90)
            let report = try await ChaosRun(options: options).run()
            #expect(!report.violations.contains { $0.message.contains("did not finish within") || $0.message.contains("still waited for an answer") },
                    "seed \(seed) got stuck: \(report.text)")
            print("unsynced-acks seed \(seed): refused \(report.refusalSummary); \(report.oneLine); "
                + "violations (allowed here): \(report.violations.prefix(3).map { "\($0)".prefix(160) })")
            if report.refusalCount("commit_beyond_log") + report.refusalCount("reject_below_match") > 0 {
                reported.append(seed)
                #expect(report.text.contains("peer messages refused:"))
            }
        }
        #expect(!reported.isEmpty, "no seed in 1…12 had a node refuse and report a log that went backwards")
    }

    @Test func theSameSystemWithoutTheBugPasses() async throws {
        var options = ChaosOptions(seed: 11)
        options.workloadSeconds = 6
        options.faults = [.kill, .partition]
        let report = try await ChaosRun(options: options).run()
        #expect(report.passed, "\(report.text)")
    }
}
