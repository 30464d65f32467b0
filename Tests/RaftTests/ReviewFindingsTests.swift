import Testing
@testable import Raft

/// Regression tests for the findings of the adversarial review.
@Suite("ReviewFindings")
struct ReviewFindingsTests {
    /// etcd-io/raft #52: a caught-up follower that was reported unreachable falls back to probe.
    /// The leader then probes it with an empty append whose acknowledgement equals the known match;
    /// that acknowledgement must move the follower back to replicate (etcd: `pr.MaybeUpdate(m.Index)
    /// || (pr.Match == m.Index && pr.State == StateProbe)`). Otherwise the follower stays in probe,
    /// paused, and new entries are withheld from it until the next heartbeat round trip.
    @Test("an idle caught-up follower in probe returns to replicate on an ack equal to its match")
    func probeAckAtMatchResumesReplication() throws {
        let c = Cluster.scenario(voters: 3)
        c.elect(1)
        try c.propose(1, bytes("a"))
        c.stabilize()
        #expect(c.raft(1).status().progress[2]?.state == .replicate)
        #expect(c.raft(2).lastIndex == c.raft(1).lastIndex)

        try c.withRaft(1) { (raft: inout RaftNode) in raft.reportUnreachable(2) }
        #expect(c.raft(1).status().progress[2]?.state == .probe)

        // One heartbeat round: heartbeat -> response -> empty probe append -> ack at match.
        c.tick()
        c.stabilize()
        #expect(c.raft(1).status().progress[2]?.state == .replicate, "the ack of the probe confirms the match")

        // A proposal now reaches node 2 without waiting for another heartbeat.
        try c.propose(1, bytes("b"))
        c.stabilize()
        #expect(c.raft(2).lastIndex == c.raft(1).lastIndex, "node 2 got the new entry at once")
        #expect(c.violations.isEmpty, "\(c.violations)")
    }
}
