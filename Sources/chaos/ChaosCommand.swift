import ArgumentParser
import ChaosHarness
import Foundation
import Logging

/// `chaos`: runs seeded chaos scenarios against an in-process cluster and
/// checks every promise (see chaos/README.md).
@main
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Kill, partition and skew in-process gc-sidecar nodes under load; check the history.",
        discussion: """
        Examples:
          chaos --seed 42                       one run, every fault kind
          chaos --seed 42 --faults kill,pause   only these faults
          chaos --runs 200 --seed 1             seeds 1…200 (the CI profile)
          chaos --minutes 30 --duration 30      random seeds for half an hour (soak)
        Fault kinds: \(FaultKind.all.map(\.rawValue).joined(separator: ", "))
        """)

    @Option(help: "Seed of the first run (random if omitted).")
    var seed: UInt64?

    @Option(help: "Simulated seconds of workload under faults per run.")
    var duration = 12

    @Option(help: "Cluster size: 3 or 5.")
    var nodes = 3

    @Option(help: "Comma-separated fault kinds (default: all).")
    var faults: String?

    @Option(help: "Concurrent clients.")
    var clients = 6

    @Option(help: "Runs with consecutive seeds.")
    var runs = 1

    @Option(help: "Keep starting runs (random seeds) until this many minutes have passed.")
    var minutes: Double?

    @Option(name: .customLong("repeat"), help: "Repeat each seed this many times (interleavings vary).")
    var repetitions = 1

    @Option(name: .customLong("inject-bug"), help: "Break the system on purpose: follower-reaps, stale-reads, unsynced-acks or stalled-reaper.")
    var injectBug: [String] = []

    @Flag(help: "fsync every SQLite commit (synchronous=FULL).")
    var fsync = false

    @Flag(help: "Print every run's full report, not only failures'.")
    var verbose = false

    @Flag(help: "Print each fault to stderr as it happens.")
    var trace = false

    func validate() throws {
        guard nodes == 3 || nodes == 5 else { throw ValidationError("--nodes must be 3 or 5") }
        guard duration >= 3 else { throw ValidationError("--duration must be at least 3 (simulated seconds)") }
        _ = try faultKinds()
        _ = try bugs()
    }

    func faultKinds() throws -> [FaultKind] {
        guard let faults else { return FaultKind.all }
        return try faults.split(separator: ",").map { name in
            guard let kind = FaultKind(rawValue: String(name)) else {
                throw ValidationError("unknown fault '\(name)'; choose from \(FaultKind.all.map(\.rawValue).joined(separator: ","))")
            }
            return kind
        }
    }

    func bugs() throws -> InjectedBugs {
        var bugs: InjectedBugs = []
        for name in injectBug {
            switch name {
            case "follower-reaps": bugs.insert(.followerReaps)
            case "stale-reads": bugs.insert(.staleLinearizableReads)
            case "unsynced-acks": bugs.insert(.unsyncedAcks)
            case "stalled-reaper": bugs.insert(.stalledReaper)
            default: throw ValidationError("unknown bug '\(name)'; choose follower-reaps, stale-reads, unsynced-acks or stalled-reaper")
            }
        }
        return bugs
    }

    func run() async throws {
        let kinds = try faultKinds()
        let bugs = try bugs()
        let first = seed ?? UInt64.random(in: 1...UInt64(UInt32.max))
        let began = ContinuousClock.now
        let deadline = minutes.map { began + .seconds($0 * 60) }
        var totals = Totals()
        var index = 0
        while true {
            if let deadline { if ContinuousClock.now >= deadline { break } } else if index >= runs { break }
            let runSeed = deadline == nil ? first &+ UInt64(index) : UInt64.random(in: 1...UInt64(UInt32.max))
            index += 1
            for _ in 0..<repetitions {
                var options = ChaosOptions(seed: runSeed)
                options.nodes = nodes
                options.workloadSeconds = duration
                options.faults = kinds
                options.clients = clients
                options.bugs = bugs
                options.fsync = fsync
                options.trace = trace
                let report = try await ChaosRun(options: options).run()
                totals.add(report)
                if verbose || !report.passed || (runs == 1 && deadline == nil) { print(report.text) } else { print(report.oneLine) }
            }
        }
        print(totals.summary(elapsed: ContinuousClock.now - began))
        if totals.failedSeeds.isEmpty { return }
        print("failed seeds: \(totals.failedSeeds.map(String.init).joined(separator: " "))")
        throw ExitCode(1)
    }
}

struct Totals {
    var runs = 0
    var operations = 0
    var faults = 0
    var leaderChanges = 0
    var deliveries = 0
    var violations = 0
    var failedSeeds: [UInt64] = []

    mutating func add(_ report: RunReport) {
        runs += 1
        let c = report.operationCounts
        operations += c.ok + c.refused + c.unknown
        faults += report.faultsInjected
        leaderChanges += report.leaderChanges
        deliveries += report.deliveries
        violations += report.violations.count
        if !report.passed { failedSeeds.append(report.options.seed) }
    }

    func summary(elapsed: Duration) -> String {
        "\(runs) runs in \(elapsed.components.seconds) s: \(operations) operations, \(faults) faults, \(leaderChanges) leader changes, "
            + "\(deliveries) cleanup deliveries, \(violations) violations in \(failedSeeds.count) runs"
    }
}
