import Histogram

/// Latencies and outcomes of one kind of operation.
///
/// Each worker records into its own copy; the copies are merged when the run
/// ends, so recording needs no lock.
struct OperationStats: Sendable {
    /// Latencies of successful operations, in microseconds.
    var latency = OperationStats.makeHistogram()
    var succeeded = 0
    /// Failed operations by gRPC status code name ("UNAVAILABLE", ...).
    var errors: [String: Int] = [:]
    /// The first message seen for each code in `errors`.
    var errorMessages: [String: String] = [:]
    /// Leases created, renewed or read by the successful operations (a batch
    /// renewal counts each lease it renewed).
    var items = 0
    /// Leases of successful batch renewals that failed on their own, by code.
    var itemErrors: [String: Int] = [:]

    var failed: Int { errors.values.reduce(0, +) }
    var total: Int { succeeded + failed }

    /// 1 µs to 60 s at 3 significant digits, growing if a call takes longer,
    /// so merging never traps. All histograms share this layout, as `add`
    /// requires.
    static func makeHistogram() -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        return histogram
    }

    mutating func record(_ outcome: OperationOutcome, microseconds: UInt64) {
        switch outcome {
        case .succeeded(let count, let failures):
            succeeded += 1
            items += count
            latency.record(microseconds)
            for code in failures { itemErrors[code, default: 0] += 1 }
        case .failed(let code, let message):
            errors[code, default: 0] += 1
            if errorMessages[code] == nil { errorMessages[code] = message }
        }
    }

    mutating func merge(_ other: OperationStats) {
        latency.add(other.latency)
        succeeded += other.succeeded
        items += other.items
        errors.merge(other.errors, uniquingKeysWith: +)
        errorMessages.merge(other.errorMessages) { mine, _ in mine }
        itemErrors.merge(other.itemErrors, uniquingKeysWith: +)
    }
}

/// Everything one worker (or, merged, the whole run) recorded, per operation.
struct BenchStats: Sendable {
    var byOperation: [BenchOperation: OperationStats] = [:]

    mutating func record(_ operation: BenchOperation, _ outcome: OperationOutcome, microseconds: UInt64) {
        byOperation[operation, default: OperationStats()].record(outcome, microseconds: microseconds)
    }

    mutating func merge(_ other: BenchStats) {
        for (operation, stats) in other.byOperation {
            byOperation[operation, default: OperationStats()].merge(stats)
        }
    }

    /// All operations together.
    var overall: OperationStats {
        var all = OperationStats()
        for stats in byOperation.values { all.merge(stats) }
        return all
    }
}
