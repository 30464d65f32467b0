import Testing
@testable import Raft

/// Unit tests of the core's internal building blocks.
@Suite("LogAndProgress")
struct LogAndProgressTests {
    func log(terms: [UInt64], snapshotIndex: UInt64 = 0, snapshotTerm: UInt64 = 0) -> RaftLog {
        let entries = terms.enumerated().map { Entry(term: $0.element, index: snapshotIndex + 1 + UInt64($0.offset)) }
        return RaftLog(
            snapshot: SnapshotMetadata(index: snapshotIndex, term: snapshotTerm),
            entries: entries, committed: 0, bootstrapConf: ConfState(voters: [1])
        )
    }

    @Test("findConflictByTerm skips a whole term")
    func conflictByTerm() {
        let l = log(terms: [1, 1, 2, 2, 2, 5, 5])
        #expect(l.findConflictByTerm(index: 7, term: 3) == (5, 2))
        #expect(l.findConflictByTerm(index: 7, term: 5) == (7, 5))
        #expect(l.findConflictByTerm(index: 4, term: 1) == (2, 1))
        #expect(l.findConflictByTerm(index: 3, term: 0) == (0, 0))
        let compacted = log(terms: [3, 3], snapshotIndex: 10, snapshotTerm: 3)
        #expect(compacted.findConflictByTerm(index: 12, term: 2) == (9, 0), "unknown below the snapshot")
    }

    @Test("maybeAppend truncates only the conflicting suffix and never moves commit backwards")
    func maybeAppend() {
        var l = log(terms: [1, 1, 1, 1])
        l.commit(to: 2)
        _ = l.takeUnstable()
        let result = l.maybeAppend(prevIndex: 2, prevTerm: 1, leaderCommit: 3, entries: [Entry(term: 1, index: 3), Entry(term: 2, index: 4), Entry(term: 2, index: 5)])
        #expect(result == .appended(lastNew: 5))
        #expect(l.committed == 3)
        #expect((1...5).map { l.term(at: $0) } == [1, 1, 1, 2, 2])
        let unstable = l.takeUnstable()
        #expect(unstable.map(\.index) == [4, 5], "only the rewritten suffix is persisted again")
        let mismatch = l.maybeAppend(prevIndex: 5, prevTerm: 1, leaderCommit: 5, entries: [])
        #expect(mismatch == .mismatch, "mismatching previous entry")
        let heartbeatLike = l.maybeAppend(prevIndex: 1, prevTerm: 1, leaderCommit: 1, entries: [])
        #expect(heartbeatLike == .appended(lastNew: 1))
        #expect(l.committed == 3)
        // Entries that would rewrite committed ones are refused, and change nothing.
        let before = l.entries
        let rewrite = l.maybeAppend(prevIndex: 3, prevTerm: 1, leaderCommit: 5, entries: [Entry(term: 9, index: 2)])
        guard case .refused = rewrite else { Issue.record("rewriting committed entries was not refused: \(rewrite)"); return }
        #expect(l.entries == before && l.committed == 3)
    }

    @Test("up-to-date comparison follows §5.4.1")
    func upToDate() {
        let l = log(terms: [1, 2, 2])
        #expect(l.isUpToDate(lastIndex: 1, lastTerm: 3))
        #expect(l.isUpToDate(lastIndex: 3, lastTerm: 2))
        #expect(!l.isUpToDate(lastIndex: 2, lastTerm: 2))
        #expect(!l.isUpToDate(lastIndex: 9, lastTerm: 1))
    }

    @Test("configuration follows appended entries and reverts on truncation")
    func configurationOnAppend() {
        var l = log(terms: [1])
        let change = ConfChange(type: .addVoter, nodeID: 2, resultingConf: ConfState(voters: [1, 2]))
        _ = l.maybeAppend(prevIndex: 1, prevTerm: 1, leaderCommit: 1, entries: [Entry(term: 1, index: 2, kind: .configChange, data: change.encoded())])
        #expect(l.conf.voters == [1, 2])
        #expect(l.lastConfIndex == 2)
        _ = l.maybeAppend(prevIndex: 1, prevTerm: 1, leaderCommit: 1, entries: [Entry(term: 2, index: 2)])
        #expect(l.conf.voters == [1], "truncated configuration entry is reverted")
    }

    @Test("inflight window: bounded, freed by acknowledgement")
    func inflights() {
        var w = Inflights(capacity: 3)
        w.add(2)
        w.add(5)
        w.add(9)
        #expect(w.isFull)
        w.freeLE(5)
        #expect(w.count == 1)
        w.freeFirstOne()
        #expect(w.count == 0)
    }

    @Test("progress: probe pauses after one append; replicate pipelines; stale rejections ignored")
    func progressStates() {
        var p = Progress(next: 5, isLearner: false, maxInflight: 2)
        p.sentAppend(lastIndex: 6)
        #expect(p.isPaused, "probe waits for an answer")
        let updated = p.maybeUpdate(6)
        #expect(updated)
        p.becomeReplicate()
        #expect(p.next == 7)
        p.sentAppend(lastIndex: 8)
        #expect(!p.isPaused)
        p.sentAppend(lastIndex: 10)
        #expect(p.isPaused, "window of 2 is full")
        let stale = p.maybeDecrTo(rejected: 5, matchHint: 0)
        #expect(!stale, "rejection below match is stale")
        let decreased = p.maybeDecrTo(rejected: 8, matchHint: 7)
        #expect(decreased)
        #expect(p.next == 7)
    }
}
