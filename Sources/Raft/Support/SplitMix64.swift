/// A tiny, fast, seedable pseudo-random generator (Steele, Lea and Flood, "Fast splittable
/// pseudorandom number generators", 2014).
///
/// The Raft core never reads global randomness: every randomized election timeout is drawn from a
/// generator handed to ``RaftNode/init(config:state:random:)``, so a whole cluster replays exactly
/// from one seed.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    private var state: UInt64

    /// Creates a generator whose whole output sequence is determined by `seed`.
    public init(seed: UInt64) {
        self.state = seed
    }

    /// Returns the next 64 pseudo-random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
