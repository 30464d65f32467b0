import LeaseFSM
import Synchronization

/// The last few minutes of the cluster's lease totals, sampled by the node
/// at a fixed interval into a ring buffer, from which the status page draws
/// its expiry and cleanup rate charts.
///
/// The totals are the replicated ``LeaseStats`` (cluster-wide, the same on
/// every node once applied), so every node draws the same rates.
public final class RateHistory: Sendable {
    /// One sample: the totals as of `at`.
    public struct Sample: Hashable, Sendable {
        public var at: WallTime
        public var stats: LeaseStats

        public init(at: WallTime, stats: LeaseStats) {
            self.at = at
            self.stats = stats
        }
    }

    /// Events per second between two consecutive samples, ending at `at`.
    public struct Rates: Hashable, Sendable, Codable {
        /// Milliseconds since 1970 of the later sample.
        public var at: Int64
        public var created: Double
        public var expired: Double
        public var released: Double
        public var cleanupSucceeded: Double
        public var cleanupFailed: Double
        public var deadLettered: Double
    }

    /// Samples kept, at most (the oldest is dropped first).
    public let capacity: Int
    private let samples: Mutex<[Sample]>

    /// - Parameter capacity: samples kept (at least 2); with a 5-second
    ///   interval the default keeps 10 minutes.
    public init(capacity: Int = 121) {
        self.capacity = max(2, capacity)
        self.samples = Mutex([])
    }

    /// Records the totals as of `at`. A sample not later than the last one
    /// replaces it (a clock that steps back must not make negative spans).
    public func record(_ sample: Sample) {
        samples.withLock { all in
            if let last = all.last, sample.at <= last.at {
                all[all.count - 1] = Sample(at: last.at, stats: sample.stats)
                return
            }
            all.append(sample)
            if all.count > capacity { all.removeFirst(all.count - capacity) }
        }
    }

    /// The samples held, oldest first.
    public var recorded: [Sample] { samples.withLock { $0 } }

    /// The rate over each span between consecutive samples, oldest first
    /// (one fewer than the samples). A total that went down (a restore from
    /// an older snapshot) counts as 0 for that span.
    public var rates: [Rates] {
        let all = recorded
        guard all.count >= 2 else { return [] }
        return zip(all, all.dropFirst()).map { before, after in
            let seconds = Double(after.at.milliseconds - before.at.milliseconds) / 1000
            func rate(_ key: KeyPath<LeaseStats, UInt64>) -> Double {
                let now = after.stats[keyPath: key], then = before.stats[keyPath: key]
                return now > then && seconds > 0 ? Double(now - then) / seconds : 0
            }
            return Rates(at: after.at.milliseconds, created: rate(\.created), expired: rate(\.expired),
                         released: rate(\.released), cleanupSucceeded: rate(\.cleanupSucceeded),
                         cleanupFailed: rate(\.cleanupFailures), deadLettered: rate(\.deadLettered))
        }
    }
}
