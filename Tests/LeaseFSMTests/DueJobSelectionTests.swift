import Testing
@testable import LeaseFSM

/// The dispatcher's claim reads the most overdue jobs many times a second
/// while a mass expiry leaves thousands pending in each 100 ms slot of the
/// index; they are chosen from the index (ids and due times) and only the
/// returned jobs are copied. These pin that the choice is the same as
/// sorting every pending job would give.
@Suite("Due job selection")
struct DueJobSelectionTests {
    /// What sorting every pending job gives: due at `time`, not excluded,
    /// most overdue first then by id, at most `limit`.
    static func bruteForce(_ jobs: [CleanupJob], asOf time: WallTime, limit: Int, excluded: Set<JobID>) -> [JobID] {
        jobs.filter { $0.nextAttemptAt <= time && !excluded.contains($0.id) }
            .sorted { ($0.nextAttemptAt, $0.id) < ($1.nextAttemptAt, $1.id) }
            .prefix(limit).map(\.id)
    }

    @Test("many jobs over many slots: most overdue first, excluded ones passed over, a cut inside a slot respected")
    func mostOverdueFromTheIndex() throws {
        var h = Harness()
        var made: [CleanupJob] = []
        for i in 0..<300 {
            made.append(try h.makeJob(key("m\(i)")))
            h.advance(ms: 7)  // 300 jobs over about 21 slots, several per slot
        }
        // Push a few early jobs later (a failed attempt): most overdue first
        // is then no longer id order.
        h.advance(seconds: 1)
        let retried = made.prefix(5).map(\.id)
        _ = h.apply(.cleanupOutcomes(retried.map { .init(jobID: $0, attempt: 1, result: .failed(error: "503", retryAfterMilliseconds: 50, permanent: false)) }))
        let jobs = made.compactMap { h.fsm.job($0.id) }
        #expect(jobs.count == 300)

        let excluded = Set(made[10..<40].map(\.id))
        // A cut 3 ms into a slot: jobs due later within that slot are not due.
        for asOf in [t0.plus(ms: 1_003), t0.plus(ms: 2_103), h.clock.plus(seconds: 10)] {
            for limit in [1, 32, 100, 1_000] {
                let expected = Self.bruteForce(jobs, asOf: asOf, limit: limit, excluded: excluded)
                #expect(h.fsm.dueCleanupJobs(asOf: asOf, limit: limit, excluding: excluded).map(\.id) == expected,
                        "as of \(asOf), limit \(limit)")
                #expect(h.fsm.dueCleanupJobs(asOf: asOf, limit: limit, skip: { excluded.contains($0.id) }).map(\.id) == expected,
                        "as of \(asOf), limit \(limit), skipping by job")
            }
        }
        let late = h.fsm.dueCleanupJobs(asOf: h.clock.plus(seconds: 10), limit: 1_000, excluding: [])
        #expect(Array(late.suffix(5).map(\.id)) == retried, "the retried jobs are due last now")
    }
}
