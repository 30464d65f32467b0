/// Exponential backoff with jitter between cleanup attempts.
///
/// After failed attempt `n` (1-based) the next waits
/// `base × 2^(n-1)`, capped at ``maxDelaySeconds``, stretched by a random
/// factor in `[1, 1 + jitter]`: never sooner than the lease asked for, and
/// spread so that many jobs failing together do not retry together.
public struct RetryPolicy: Hashable, Sendable {
    public var maxDelaySeconds: UInt64 = 3600
    public var jitter = 0.25

    public init() {}

    /// The delay in milliseconds after failed attempt `attempt`.
    public func delayMilliseconds(afterAttempt attempt: UInt32, baseSeconds: UInt64,
                                  using rng: inout some RandomNumberGenerator) -> Int64 {
        let exponent = min(max(Int(attempt) - 1, 0), 40)
        let raw = Double(max(baseSeconds, 1)) * Double(UInt64(1) << UInt64(exponent))
        let capped = min(raw, Double(maxDelaySeconds))
        let factor = 1 + Double.random(in: 0...jitter, using: &rng)
        return Int64(capped * factor * 1000)
    }
}
