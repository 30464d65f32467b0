import Foundation
import Histogram

/// What `gcctl bench` prints: the run's settings, throughput, errors and
/// latency percentiles, overall and per operation.
struct BenchReport: Codable, Sendable {
    /// Latency percentiles of successful operations, in milliseconds.
    struct Latency: Codable, Sendable {
        var p50: Double
        var p90: Double
        var p99: Double
        var p999: Double
        var max: Double
        var mean: Double
    }

    /// Figures of one operation kind (or of all of them together).
    struct Figures: Codable, Sendable {
        var operation: String
        var totalOps: Int
        var succeededOps: Int
        var failedOps: Int
        /// Failed operations by gRPC status code name.
        var errors: [String: Int]
        /// The first message seen for each code in `errors`.
        var errorExamples: [String: String]
        /// Successful operations per second of the measured window.
        var opsPerSecond: Double
        /// Leases created, renewed or read per second (differs from
        /// `opsPerSecond` for batch renewals only).
        var leasesPerSecond: Double
        /// Leases of successful batch renewals that failed on their own, by code.
        var leaseErrors: [String: Int]
        /// Nil when no operation succeeded.
        var latencyMs: Latency?
    }

    var workload: String
    var endpoints: [String]
    var concurrency: Int
    var connectionsPerEndpoint: Int
    var warmupSeconds: Double
    var durationSeconds: Double
    /// From the start of the measured window to the last recorded completion.
    var elapsedSeconds: Double
    var serviceID: String
    /// Object ids of this run's leases start with this.
    var objectIDPrefix: String
    /// Leases of the pre-created pool (0 for `create`).
    var poolSize: Int
    var poolCreateErrors: [String: Int]
    var batchSize: Int?
    var overall: Figures
    /// One entry per operation kind issued, in a fixed order.
    var operations: [Figures]

    init(settings: Settings, pool: BenchRunner.Pool?, stats: BenchStats, elapsed: Duration) {
        let seconds = elapsed.seconds
        workload = settings.workload.rawValue
        endpoints = settings.endpoints
        concurrency = settings.concurrency
        connectionsPerEndpoint = settings.connectionsPerEndpoint
        warmupSeconds = settings.warmupSeconds
        durationSeconds = settings.durationSeconds
        elapsedSeconds = seconds
        serviceID = settings.serviceID
        objectIDPrefix = settings.objectIDPrefix
        poolSize = pool?.leaseIDs.count ?? 0
        poolCreateErrors = pool?.failures.errors ?? [:]
        batchSize = settings.workload == .batchRenew ? settings.batchSize : nil
        overall = Figures(operation: "all", stats: stats.overall, seconds: seconds)
        operations = stats.byOperation.keys.sorted().compactMap { operation in
            stats.byOperation[operation].map { Figures(operation: operation.rawValue, stats: $0, seconds: seconds) }
        }
    }

    /// The command-line settings a report repeats.
    struct Settings: Sendable {
        var workload: BenchWorkload
        var endpoints: [String]
        var concurrency: Int
        var connectionsPerEndpoint: Int
        var warmupSeconds: Double
        var durationSeconds: Double
        var serviceID: String
        var objectIDPrefix: String
        var batchSize: Int
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// A key/value summary, then one row per operation kind.
    func table() -> String {
        let printer = Printer(format: .table)
        var summary: [[String]] = [
            ["workload", workload + (batchSize.map { " (\($0) leases per call)" } ?? "")],
            ["endpoints", endpoints.joined(separator: ", ")],
            ["concurrency", "\(concurrency) workers over \(connectionsPerEndpoint * endpoints.count) connections"],
            ["duration", "\(Self.number(durationSeconds)) s measured (\(Self.number(elapsedSeconds)) s elapsed) after \(Self.number(warmupSeconds)) s warmup"],
        ]
        if workload != BenchWorkload.create.rawValue {
            let failed = poolCreateErrors.isEmpty ? "" : ", \(Self.describe(poolCreateErrors)) failed"
            summary.append(["lease pool", "\(poolSize) leases\(failed)"])
        }
        summary += [
            ["leases", "service \(serviceID), object ids \(objectIDPrefix)*"],
            ["ops", "\(overall.totalOps) (\(overall.succeededOps) ok, \(overall.failedOps) failed)"],
            ["ops/s", Self.number(overall.opsPerSecond) + (batchSize == nil ? "" : " (\(Self.number(overall.leasesPerSecond)) leases/s)")],
            ["errors", overall.errors.isEmpty ? "none" : Self.describe(overall.errors)],
        ]
        for code in overall.errorExamples.keys.sorted() {
            summary.append(["  \(code)", overall.errorExamples[code] ?? ""])
        }
        if !overall.leaseErrors.isEmpty {
            summary.append(["lease errors", Self.describe(overall.leaseErrors)])
        }
        var rows = [["OPERATION", "OPS", "OK/S", "ERRORS", "P50 MS", "P90 MS", "P99 MS", "P99.9 MS", "MAX MS"]]
        for figures in operations.count > 1 ? operations + [overall] : operations {
            let latency = figures.latencyMs.map { [$0.p50, $0.p90, $0.p99, $0.p999, $0.max].map(Self.milliseconds) }
            rows.append([figures.operation, "\(figures.totalOps)", Self.number(figures.opsPerSecond), "\(figures.failedOps)"]
                + (latency ?? Array(repeating: "-", count: 5)))
        }
        return printer.render(summary) + "\n" + printer.render(rows)
    }

    /// "UNAVAILABLE 12, NOT_FOUND 3", largest first.
    static func describe(_ counts: [String: Int]) -> String {
        counts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    static func number(_ value: Double) -> String {
        String(format: value >= 100 ? "%.0f" : "%.2f", value)
    }

    static func milliseconds(_ value: Double) -> String {
        String(format: value >= 100 ? "%.1f" : "%.3f", value)
    }
}

extension BenchReport.Figures {
    init(operation: String, stats: OperationStats, seconds: Double) {
        self.operation = operation
        totalOps = stats.total
        succeededOps = stats.succeeded
        failedOps = stats.failed
        errors = stats.errors
        errorExamples = stats.errorMessages
        opsPerSecond = seconds > 0 ? Double(stats.succeeded) / seconds : 0
        leasesPerSecond = seconds > 0 ? Double(stats.items) / seconds : 0
        leaseErrors = stats.itemErrors
        latencyMs = stats.succeeded > 0 ? BenchReport.Latency(stats.latency) : nil
    }
}

extension BenchReport.Latency {
    /// Percentiles of a histogram of microseconds, in milliseconds.
    init(_ histogram: Histogram<UInt64>) {
        func ms(_ microseconds: UInt64) -> Double { Double(microseconds) / 1000 }
        p50 = ms(histogram.valueAtPercentile(50))
        p90 = ms(histogram.valueAtPercentile(90))
        p99 = ms(histogram.valueAtPercentile(99))
        p999 = ms(histogram.valueAtPercentile(99.9))
        max = ms(histogram.maxRecorded)
        mean = histogram.mean / 1000
    }
}
