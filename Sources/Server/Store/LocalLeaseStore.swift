import LeaseFSM
import Synchronization

/// A single-node, in-memory lease store: commands are applied in the order
/// they are proposed, each stamped with the clock's time and given the next
/// log index. The Raft-backed store replaces the log with a replicated one
/// behind the same ``LeaseStore`` boundary.
public final class LocalLeaseStore: LeaseStore {
    private struct State {
        var machine: LeaseStateMachine
        var lastIndex: UInt64 = 0
    }

    public let limits: LeaseLimits
    public let events: EventHub
    private let clock: any WallClock
    private let state: Mutex<State>
    private let onApply: @Sendable (LeaseStateMachine) -> Void

    /// - Parameters:
    ///   - onApply: called after every applied command with the new state
    ///     (under the store's lock: keep it short). Metrics use it.
    public init(limits: LeaseLimits, clock: any WallClock, events: EventHub = EventHub(),
                onApply: @escaping @Sendable (LeaseStateMachine) -> Void = { _ in }) {
        self.limits = limits
        self.clock = clock
        self.events = events
        self.onApply = onApply
        self.state = Mutex(State(machine: LeaseStateMachine(limits: limits)))
    }

    public var mayRunCleanup: Bool { true }

    public func propose(_ command: LeaseCommand) async throws -> CommandResult {
        if let error = limits.validate(command) { throw error }
        let result = state.withLock { s in
            s.lastIndex += 1
            let output = s.machine.apply(StampedCommand(command, stamp: clock.now()), index: s.lastIndex)
            // Published under the lock so subscribers see events in log order.
            events.publish(output.events)
            onApply(s.machine)
            return output.result
        }
        return try result.get()
    }

    public func read<R: Sendable>(_ consistency: ReadConsistency, _ query: @Sendable (LeaseStateMachine) -> R) async throws -> R {
        // The query runs under the lock: copying the machine out instead would
        // make the next write copy every index (copy-on-write).
        state.withLock { query($0.machine) }
    }
}
