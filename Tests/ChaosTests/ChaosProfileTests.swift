import ChaosCheck
import ChaosHarness
import Foundation
import Testing

/// The CI profile: many short seeded runs of the in-process cluster under
/// every fault kind, each checked for every property. `CHAOS_RUNS` and
/// `CHAOS_DURATION` lengthen it (the long profile is `swift run chaos`).
@Suite(.serialized) struct ChaosProfileTests {
    static let environment = ProcessInfo.processInfo.environment
    /// Fixed seeds (the same every CI run) …
    static let fixedSeeds = UInt64(environment["CHAOS_RUNS"].flatMap(Int.init) ?? 200)
    /// … plus a few new ones each time, printed so a failure can be repeated.
    static let randomSeeds = 8
    static let duration = environment["CHAOS_DURATION"].flatMap(Int.init) ?? 10

    /// Runs `seeds`, two at a time (the machine has two cores), and returns
    /// the failed reports.
    static func runAll(_ seeds: [UInt64], configure: @escaping @Sendable (inout ChaosOptions) -> Void = { _ in }) async throws -> [RunReport] {
        try await withThrowingTaskGroup(of: RunReport.self) { group in
            var failed: [RunReport] = []
            var next = seeds.makeIterator()
            func add() {
                guard let seed = next.next() else { return }
                group.addTask {
                    var options = ChaosOptions(seed: seed)
                    options.workloadSeconds = duration
                    configure(&options)
                    return try await ChaosRun(options: options).run()
                }
            }
            add()
            add()
            while let report = try await group.next() {
                if !report.passed { failed.append(report) }
                add()
            }
            return failed
        }
    }

    @Test func fixedSeedsKeepEveryPromise() async throws {
        let failed = try await Self.runAll(Array(1...Self.fixedSeeds))
        for report in failed { Issue.record("\(report.text)") }
        #expect(failed.isEmpty, "failed seeds: \(failed.map(\.options.seed))")
    }

    @Test func newSeedsKeepEveryPromise() async throws {
        let seeds = (0..<Self.randomSeeds).map { _ in UInt64.random(in: 1_000_000...UInt64(UInt32.max)) }
        print("chaos: random seeds this run: \(seeds.map(String.init).joined(separator: " "))")
        let failed = try await Self.runAll(seeds)
        for report in failed { Issue.record("\(report.text)") }
        #expect(failed.isEmpty, "failed seeds: \(failed.map(\.options.seed))")
    }

    @Test func fiveNodeClustersKeepEveryPromise() async throws {
        let failed = try await Self.runAll(Array(1...10)) { $0.nodes = 5 }
        for report in failed { Issue.record("\(report.text)") }
        #expect(failed.isEmpty, "failed seeds: \(failed.map(\.options.seed))")
    }
}
