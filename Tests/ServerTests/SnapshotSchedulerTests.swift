import LeaseFSM
@testable import Server
import Testing

/// The background half of a snapshot (``SnapshotScheduler/produce(_:index:stager:)``).
@Suite("Snapshot scheduler")
struct SnapshotSchedulerTests {
    @Test("the encoder takes the state out of its handoff, so nothing else keeps the copy alive; a handoff taken twice fails the snapshot instead of encoding an empty state")
    func handoffIsTakenOnce() throws {
        var machine = LeaseStateMachine(limits: .defaults)
        let command = LeaseCommand.create(.init(
            leaseIDSuffix: "a1", object: ObjectKey(type: .databaseRow, id: "row-1"), serviceID: "svc",
            durationSeconds: 60, metadata: [:], cleanup: nil))
        _ = machine.apply(StampedCommand(command, stamp: WallTime(milliseconds: 1_700_000_000_000)), index: 1)
        let handoff = StateHandoff(machine)
        guard case .encoded(let index, let data, let size, let staged, _, _) = SnapshotScheduler.produce(handoff, index: 1, stager: nil) else {
            Issue.record("the first produce should encode the state")
            return
        }
        #expect(index == 1 && staged == nil && size == data.count)
        #expect(try LeaseStateMachine(snapshot: data, limits: .defaults) == machine)
        #expect(handoff.take() == nil, "the encoder took the state")
        guard case .failed(_, let message) = SnapshotScheduler.produce(handoff, index: 1, stager: nil) else {
            Issue.record("a second produce from the same handoff must fail")
            return
        }
        #expect(message.contains("already taken"))
    }

    @Test("a snapshot is due after the threshold of entries, and for a large state after one entry per 16 leases and jobs it holds")
    func intervalScalesWithTheState() {
        let scheduler = SnapshotScheduler(threshold: 10_000)
        #expect(scheduler.interval(stateSize: 0) == 10_000)
        #expect(scheduler.interval(stateSize: 160_000) == 10_000)
        #expect(scheduler.interval(stateSize: 1_000_000) == 62_500)
        #expect(!scheduler.isDue(appliedIndex: 19_999, snapshotIndex: 10_000, stateSize: 100_000))
        #expect(scheduler.isDue(appliedIndex: 20_000, snapshotIndex: 10_000, stateSize: 100_000))
        #expect(!scheduler.isDue(appliedIndex: 72_499, snapshotIndex: 10_000, stateSize: 1_000_000))
        #expect(scheduler.isDue(appliedIndex: 72_500, snapshotIndex: 10_000, stateSize: 1_000_000))
        // The configured threshold stays the floor.
        #expect(SnapshotScheduler(threshold: 100_000).interval(stateSize: 1_000_000) == 100_000)
    }
}
