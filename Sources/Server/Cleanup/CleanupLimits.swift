/// How hard cleanups may hit their targets (DESIGN.md "Cleanup delivery").
///
/// A mass expiry (a service dying with 100,000 leases) must clean every
/// orphan without flooding anyone, and one dead target must not slow the
/// cleanups of the others.
public struct CleanupLimits: Hashable, Sendable {
    /// Requests in flight at once, all endpoints together
    /// (`GC_CLEANUP_MAX_CONCURRENCY`).
    public var maxConcurrency: Int
    /// Requests in flight at once to one endpoint
    /// (`GC_CLEANUP_ENDPOINT_CONCURRENCY`).
    public var endpointConcurrency: Int
    /// Requests per second to one endpoint, a token bucket holding one
    /// second's worth (`GC_CLEANUP_ENDPOINT_RATE`); 0 means no limit.
    public var endpointRatePerSecond: Double
    /// Consecutive failed attempts to one endpoint that open its circuit
    /// breaker (`GC_CLEANUP_BREAKER_FAILURES`); 0 disables the breaker.
    public var breakerFailures: Int
    /// How long an open breaker holds the endpoint's cleanups before one
    /// probe is let through (`GC_CLEANUP_BREAKER_COOLDOWN_MS`).
    public var breakerCooldownMilliseconds: Int64

    public init(maxConcurrency: Int = 256, endpointConcurrency: Int = 64, endpointRatePerSecond: Double = 1_000,
                breakerFailures: Int = 5, breakerCooldownMilliseconds: Int64 = 10_000) {
        self.maxConcurrency = max(1, maxConcurrency)
        self.endpointConcurrency = max(1, endpointConcurrency)
        self.endpointRatePerSecond = max(0, endpointRatePerSecond)
        self.breakerFailures = max(0, breakerFailures)
        self.breakerCooldownMilliseconds = max(0, breakerCooldownMilliseconds)
    }

    /// No limit but the global concurrency, no breaker (tests, the chaos harness).
    public static func unlimited(maxConcurrency: Int) -> CleanupLimits {
        CleanupLimits(maxConcurrency: maxConcurrency, endpointConcurrency: maxConcurrency, endpointRatePerSecond: 0,
                      breakerFailures: 0)
    }
}
