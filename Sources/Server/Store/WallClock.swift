import Foundation
import LeaseFSM
import Synchronization

/// The source of wall-clock time for stamping commands and for the reaper's
/// and dispatcher's "now". Injected so tests control time exactly.
public protocol WallClock: Sendable {
    func now() -> WallTime
}

/// The system's real-time clock.
public struct SystemWallClock: WallClock {
    public init() {}

    public func now() -> WallTime {
        WallTime(milliseconds: Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)))
    }
}

/// A clock that only moves when told to (tests).
public final class ManualWallClock: WallClock {
    private let current: Mutex<WallTime>

    public init(_ start: WallTime = WallTime(seconds: 1_800_000_000)) {
        current = Mutex(start)
    }

    public func now() -> WallTime { current.withLock { $0 } }

    /// Moves the clock forward by `seconds`.
    public func advance(seconds: Int64) {
        current.withLock { $0 = $0.adding(milliseconds: seconds * 1000) }
    }

    public func advance(milliseconds: Int64) {
        current.withLock { $0 = $0.adding(milliseconds: milliseconds) }
    }
}
