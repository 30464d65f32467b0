import Logging
import LeaseFSM
import Raft
import Server
import Testing

/// A leader cut off from the others may still believe it leads for up to an
/// election timeout. It must not deliver a cleanup in that window: the
/// dispatcher confirms leadership with a quorum first.
@Suite("Cleanup from a deposed leader")
struct DeposedLeaderTests {
    @Test("a cut-off leader with a due cleanup job delivers nothing, even while it still thinks it leads")
    func cutOffLeaderDoesNotDeliver() async throws {
        let cluster = InMemoryCluster(names: ["a", "b", "c"])
        try await cluster.run { _ in
            let leader = try await cluster.waitForLeader()
            let created = try await leader.propose(.create(.init(
                leaseIDSuffix: "1", object: ObjectKey(type: .temporaryFile, id: "tmp-1"), serviceID: "svc",
                durationSeconds: 30, metadata: [:],
                cleanup: CleanupSpec(httpEndpoint: "http://cleaner/x", grpcEndpoint: "", payload: "", maxRetries: 3, retryDelaySeconds: 5))))
            guard case .created = created else { throw TestFailure("not created") }
            cluster.clock.advance(seconds: 61)  // past expiry and the 30 s grace
            let reaper = Reaper(store: leader, logger: quietLogger)
            try await reaper.reapOnce(now: cluster.clock.now())
            let due = try await leader.read(.linearizable) { $0.dueCleanupJobs(asOf: cluster.clock.now(), limit: 10) }
            #expect(due.count == 1, "the job is due on the leader")

            // Cut the leader off and freeze Raft's clock: it still believes it leads.
            cluster.setTicking(false)
            cluster.isolate(leader.cluster.local.id)
            let recording = RecordingTransport()
            let dispatcher = CleanupDispatcher(
                store: leader, transport: recording, timeout: .seconds(5), limits: CleanupLimits(maxConcurrency: 4),
                metrics: SidecarMetrics(), logger: quietLogger, seed: 1)
            #expect(leader.mayRunCleanup, "before the quorum check the gate alone would let it deliver")
            let attempt = Task { try await dispatcher.dispatchDue(now: cluster.clock.now()) }
            cluster.setTicking(true)
            let attempts = try await attempt.value
            #expect(attempts == 0)
            #expect(recording.requests.isEmpty, "the cut-off leader delivered \(recording.requests.count) cleanup(s)")
        }
    }
}
