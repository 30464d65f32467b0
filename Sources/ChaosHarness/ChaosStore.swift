import ChaosCheck
import LeaseFSM
import Raft
import Server
import Synchronization

/// A node's ``RaftLeaseStore`` as its clients, reaper and dispatcher see it:
/// calls wait while the node is paused, leadership checks are recorded for
/// the cleanup-safety checker, and injected bugs take effect here.
final class ChaosStore: LeaseStore, MachineReadable {
    let inner: RaftLeaseStore
    let node: String
    let bugs: InjectedBugs
    let recorder: HistoryRecorder
    let fabric: Fabric
    /// The latest leadership check that passed on this node.
    let lastConfirmation = Mutex<Delivery.Confirmation?>(nil)

    init(inner: RaftLeaseStore, node: String, bugs: InjectedBugs, recorder: HistoryRecorder, fabric: Fabric) {
        self.inner = inner
        self.node = node
        self.bugs = bugs
        self.recorder = recorder
        self.fabric = fabric
    }

    var limits: LeaseLimits { inner.limits }
    var events: EventHub { inner.events }
    var healthProblem: String? { inner.healthProblem }

    var mayRunCleanup: Bool {
        if bugs.contains(.followerReaps) { return true }
        return inner.mayRunCleanup
    }

    /// A paused process serves nothing: its calls wait (bounded polling).
    func waitWhilePaused() async throws {
        while fabric.isPaused(node) {
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    func propose(_ command: LeaseCommand, origin: ClientOrigin?) async throws -> CommandResult {
        try await waitWhilePaused()
        return try await inner.propose(command, origin: origin)
    }

    func read<R: Sendable>(_ consistency: ReadConsistency, _ query: @Sendable (LeaseStateMachine) -> R) async throws -> R {
        try await waitWhilePaused()
        if bugs.contains(.staleLinearizableReads) { return try await inner.read(.stale, query) }
        return try await inner.read(consistency, query)
    }

    func confirmLeadership() async -> Bool {
        let start = recorder.nextSeq()
        let status = await inner.status()
        let confirmed = bugs.contains(.followerReaps) ? true : await inner.confirmLeadership()
        if confirmed {
            lastConfirmation.withLock {
                $0 = Delivery.Confirmation(startSeq: start, wasLeader: status.role == .leader, term: status.term)
            }
        }
        return confirmed
    }
}
