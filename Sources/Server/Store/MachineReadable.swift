import LeaseFSM

/// A store that holds the lease state machine in memory and runs queries
/// against it directly (the Raft store, and wrappers around it).
///
/// The client-facing API reads only through ``LeaseReads``, which every
/// `MachineReadable` store answers with one ``read(_:_:)`` each (see
/// `MachineReadable+LeaseReads.swift`). The reaper, the cleanup dispatcher
/// and Raft-only diagnostics still query the machine through ``read(_:_:)``.
public protocol MachineReadable: Sendable {
    /// Runs `query` against the state, at least as fresh as `consistency` asks.
    func read<R: Sendable>(_ consistency: ReadConsistency, _ query: @Sendable (LeaseStateMachine) -> R) async throws -> R
}
