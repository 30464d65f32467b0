/// The clock that a node's waits read and sleep by: forwarding and ReadIndex
/// retries, membership catch-up and leadership transfer, the Raft ticker.
///
/// Production uses ``continuous``; a test or the chaos harness passes any
/// other `Clock` (a manual or virtual one), so no wait in those paths is tied
/// to real time. Times are durations since the source was made (monotonic).
public struct TimeSource: Sendable {
    private let elapsedNow: @Sendable () -> Duration
    private let sleeper: @Sendable (Duration) async throws -> Void

    /// Reads and sleeps by `clock`.
    public init<C: Clock>(_ clock: C) where C.Duration == Duration {
        let origin = clock.now
        elapsedNow = { origin.duration(to: clock.now) }
        sleeper = { try await clock.sleep(for: $0) }
    }

    /// Real, monotonic time (`ContinuousClock`).
    public static let continuous = TimeSource(ContinuousClock())

    /// Time since this source was made.
    public var now: Duration { elapsedNow() }

    /// Suspends for `duration` of this source's time; throws when cancelled.
    public func sleep(for duration: Duration) async throws {
        try await sleeper(duration)
    }

    /// A point `timeout` from now.
    public func deadline(after timeout: Duration) -> Deadline {
        Deadline(source: self, at: now + timeout)
    }

    /// A point in a ``TimeSource``'s time.
    public struct Deadline: Sendable {
        let source: TimeSource
        let at: Duration

        /// Whether the point has passed.
        public var hasPassed: Bool { source.now >= at }

        /// Time left until the point (negative once passed).
        public var remaining: Duration { at - source.now }
    }
}
