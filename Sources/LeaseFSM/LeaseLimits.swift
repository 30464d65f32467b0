/// The rules the state machine enforces on every command.
///
/// These must be identical on every node of a cluster, since they decide what
/// a replicated command does. Defaults are the original product's (docs/original-product.md).
public struct LeaseLimits: Hashable, Sendable {
    /// Shortest lease a client may ask for (`GC_MIN_LEASE_DURATION`, default 30 s).
    public var minDurationSeconds: UInt64 = 30
    /// Longest lease a client may ask for (`GC_MAX_LEASE_DURATION`, default 3600 s).
    public var maxDurationSeconds: UInt64 = 3600
    /// Duration used when a create asks for 0 (`GC_DEFAULT_LEASE_DURATION`, default 300 s).
    public var defaultDurationSeconds: UInt64 = 300
    /// Active leases one service may hold (`GC_MAX_LEASES_PER_SERVICE`, default 10,000).
    public var maxLeasesPerService: Int = 10_000
    /// Active leases of all services together (`GC_MAX_LEASES`, default 1,000,000).
    public var maxLeases: Int = 1_000_000
    /// Cleanup retries when a lease asks for 0 (`GC_CLEANUP_MAX_RETRIES`, default 3).
    public var defaultMaxRetries: UInt32 = 3
    /// Base retry delay when a lease asks for 0 (`GC_CLEANUP_RETRY_DELAY`, default 5 s).
    public var defaultRetryDelaySeconds: UInt64 = 5
    /// How long after `expires_at` a lease may be reaped (`GC_CLEANUP_GRACE_PERIOD`, default 30 s).
    public var cleanupGraceSeconds: UInt64 = 30
    /// How long ended leases and finished cleanup jobs stay visible before they
    /// are forgotten (`GC_ENDED_LEASE_RETENTION`, default 3600 s). Dead-lettered
    /// jobs are never forgotten automatically.
    public var endedRetentionSeconds: UInt64 = 3600

    // Fixed input limits (API contract, see README "Limits").
    public static let maxIDBytes = 256
    public static let maxMetadataEntries = 64
    public static let maxMetadataBytes = 16 * 1024
    public static let maxPayloadBytes = 64 * 1024
    public static let maxRetriesCap: UInt32 = 100
    public static let maxRetryDelaySeconds: UInt64 = 86_400
    public static let maxBatchRenew = 1_000
    public static let maxExpireBatch = 10_000

    public init() {}

    public static let defaults = LeaseLimits()
}

extension UInt64 {
    /// These seconds in milliseconds, capped so that negating and adding the
    /// result to a ``WallTime`` cannot overflow (a huge configured retention or
    /// grace means "never", not a trap on every node).
    var saturatingMilliseconds: Int64 {
        self > UInt64(Int64.max / 1000) ? Int64.max / 1000 * 1000 : Int64(self) * 1000
    }
}
