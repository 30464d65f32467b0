import LeaseFSM
import Server
import Synchronization

/// The run's true time: it moves only when the harness ticks, so every
/// timing in a history (and every lease duration) is in this time, however
/// fast or slow the machine runs.
public final class VirtualTime: Sendable {
    /// Where the run's time began (Unix ms).
    public let start: Int64
    private let milliseconds: Mutex<Int64>

    public init(start: Int64 = 1_800_000_000_000) {
        self.start = start
        milliseconds = Mutex(start)
    }

    public func now() -> Int64 { milliseconds.withLock { $0 } }

    func advance(by delta: Int64) {
        milliseconds.withLock { $0 += delta }
    }
}

/// One node's wall clock: true time plus an offset the harness skews and
/// jumps. It keeps running while the node is paused, like a real clock.
final class NodeClock: WallClock {
    let time: VirtualTime
    private let offset = Mutex<Int64>(0)

    init(time: VirtualTime) {
        self.time = time
    }

    func now() -> WallTime { WallTime(milliseconds: time.now() + offset.withLock { $0 }) }

    var offsetMilliseconds: Int64 {
        get { offset.withLock { $0 } }
        set { offset.withLock { $0 = newValue } }
    }
}
