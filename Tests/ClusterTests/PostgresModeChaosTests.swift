import ChaosCheck
import Foundation
import GCProto
import GRPCCore
import Synchronization
import TestPostgres
import Testing

/// Three real `gc-sidecar` processes in PostgreSQL mode over one throwaway
/// PostgreSQL, under the same load as ``RealProcessChaosTests``, while in
/// rounds a sidecar is killed (`kill -9`) and restarted, a sidecar holding
/// cleanup claims is frozen (SIGSTOP) past its claims and thawed once
/// another sidecar took them over (its late outcomes must be refused), and
/// PostgreSQL itself crashes and recovers (`pg_ctl restart -m immediate`;
/// the sidecars must carry on without a restart). The history then goes
/// through the same checkers: no acknowledged lease lost, no cleanup of a
/// held object, every unheld object cleaned or dead-lettered, idempotency
/// keys stable across redeliveries.
@Suite(.serialized) struct PostgresModeChaosTests {
    /// Fault rounds, in turn kill -9, SIGSTOP of a claim holder, database
    /// crash. The CI profile (15: each fault five times) takes about a
    /// minute; `CHAOS_PG_ROUNDS=60` is a longer manual run.
    static let rounds = ProcessInfo.processInfo.environment["CHAOS_PG_ROUNDS"].flatMap(Int.init) ?? 15
    /// The sidecars' `GC_CLEANUP_TIMEOUT` and `GC_CLEANUP_CLAIM_SECONDS`:
    /// short, so a frozen sidecar's claims expire within a few seconds.
    static let cleanupTimeoutSeconds = 2
    static let claimSeconds = 3
    /// How long the sink's `/slow` holds each answer: the delivering
    /// sidecar holds its claim that long, which is when one is frozen.
    static let slowHold: Duration = .milliseconds(1500)

    @Test func killPauseAndDatabaseCrashUnderLoadKeepEveryPromise() async throws {
        let wallStart = ContinuousClock.now
        let postgres = try await TemporaryPostgres.start()
        defer { postgres.remove() }
        let database = "gc_chaos"
        let databaseURL = try await postgres.createDatabase(database)
        let recorder = HistoryRecorder(now: hostMilliseconds)
        let sink = CleanupSink(recorder: recorder, slowHold: Self.slowHold)
        try await sink.run { url in
            let base = String(url.dropLast("cleanup".count))
            // No circuit breaker, as in RealProcessChaosTests: /flaky fails
            // every first attempt and the run must settle in time.
            let environment = [
                "GC_LOG_LEVEL": "warning", "GC_CLEANUP_BREAKER_FAILURES": "0",
                "GC_CLEANUP_TIMEOUT": "\(Self.cleanupTimeoutSeconds)", "GC_CLEANUP_CLAIM_SECONDS": "\(Self.claimSeconds)",
            ]
            try await withPostgresSidecars(databaseURL: databaseURL, environment: environment) { cluster in
                let chaos = Chaos(cluster: cluster, postgres: postgres, database: database)
                let startedAt = hostMilliseconds()
                let workload = ProcessWorkload(cluster: cluster, recorder: recorder,
                                               endpoints: [base + "cleanup", base + "flaky", base + "slow"])
                var log = FaultLog()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<4 { group.addTask { await workload.client(index) } }
                    do {
                        for round in 0..<Self.rounds {
                            try await Task.sleep(for: .milliseconds(1500))
                            try await cluster.waitUntilReady()
                            switch round % 3 {
                            case 0: try await chaos.killAndRestart(round / 3 % cluster.nodes.count, log: &log)
                            case 1: try await chaos.pauseClaimHolder(log: &log)
                            default: try await chaos.crashDatabase(log: &log)
                            }
                        }
                    } catch {
                        workload.stopped.withLock { $0 = true }
                        throw error
                    }
                    workload.stopped.withLock { $0 = true }
                    try await group.waitForAll()
                }
                let healedAt = hostMilliseconds()
                try await cluster.waitUntilReady()
                // Settle: every lease ends (holders stopped renewing) and every
                // cleanup finishes; any sidecar may be asked.
                let settled = try await cluster.eventually("the sidecars to settle", timeout: .seconds(45)) { () -> [DistributedGc_LeaseInfo]? in
                    let leases = try await listAll(cluster, via: 0)
                    let busy = leases.contains { !$0.hasEndedAt || $0.cleanupState == .cleanupPending }
                    return busy ? nil : leases
                }
                // Every sidecar finished what it claimed: none is stuck on a
                // database call that the crash left without an answer.
                _ = try await cluster.eventually("every sidecar to finish its cleanups", timeout: .seconds(30)) { () -> Bool? in
                    var inFlight: [String] = []
                    for i in cluster.nodes.indices {
                        let count = await cluster.metric("gc_cleanup_in_flight", node: i)
                        if count != 0 { inFlight.append("\(cluster.nodes[i].name): \(count.map { "\(Int($0))" } ?? "no answer")") }
                    }
                    if inFlight.isEmpty { return true }
                    throw ClusterTestFailure("cleanups still in flight: \(inFlight.joined(separator: ", "))")
                }
                for lease in workload.known.withLock({ $0 }) {
                    await workload.get(lease.id, object: lease.object, linearizable: true, via: 1, client: -1)
                }
                let final = finalState(settled, deliveries: recorder.deliveries)
                // Leases due after the heal are reaped within 10 s: the reap
                // interval (1 s) with room for a loaded machine.
                let bounds = CheckBounds(clockErrorMs: 50, graceMs: 0, expiryLatencyMs: 10_000, disturbances: [startedAt...healedAt],
                                         deliveriesCarryConfirmation: false)
                let report = HistoryChecker(bounds: bounds).check(
                    operations: recorder.operations, deliveries: recorder.deliveries, leaders: [], final: final,
                    settledAtMs: hostMilliseconds())
                let operations = recorder.operations.filter { $0.client >= 0 }
                let acknowledged = operations.filter { if case .ok = $0.outcome { true } else { false } }.count
                // Calls cut by a fault (UNAVAILABLE from a sidecar whose
                // database connection dropped, deadlines at a frozen one).
                let indeterminate = operations.compactMap { op -> String? in
                    if case .unknown(let why) = op.outcome { return why }
                    return nil
                }
                let causes = Dictionary(grouping: indeterminate, by: { String($0.prefix { $0 != ":" }) })
                    .map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")
                var takenOver = 0.0, refused = 0.0
                for i in cluster.nodes.indices {
                    takenOver += await cluster.metric("gc_pg_claims_taken_over_total", node: i) ?? 0
                    refused += await cluster.metric("gc_pg_outcomes_refused_total", node: i) ?? 0
                }
                print("""
                    postgres-mode chaos: \(ContinuousClock.now - wallStart) wall, \(operations.count) operations (\(acknowledged) ok, \(indeterminate.count) indeterminate: \(causes)), \
                    \(recorder.deliveries.count) cleanup deliveries (\(report.duplicateDeliveries) duplicate successes); \
                    faults: \(log.kills) kill -9, \(log.pauses) SIGSTOP of a claim holder (\(log.refusals) with its late outcomes \
                    refused), \(log.databaseCrashes) PostgreSQL crash (\(log.libraryTraps) sidecar trap in postgres-nio, restarted); since the last restarts: \(Int(takenOver)) claims taken over, \
                    \(Int(refused)) outcomes refused; \(log.events.joined(separator: ", "))
                    """)
                #expect(acknowledged > 40, "the workload made too little progress to mean anything")
                #expect(recorder.deliveries.count > 5, "too few cleanups were delivered to mean anything")
                if Self.rounds >= 2 {
                    #expect(log.refusals > 0, "no SIGSTOP round froze a sidecar whose claims were then taken over: \(log.events)")
                }
                #expect(report.passed, "\(report.violations.prefix(10).map(\.description).joined(separator: "\n"))\n\(cluster.logs())")
            }
        }
    }
}

/// What the fault rounds did, for the summary and the assertions.
private struct FaultLog {
    var events: [String] = []
    var kills = 0
    var pauses = 0
    /// SIGSTOP rounds whose frozen sidecar had its late outcomes refused.
    var refusals = 0
    var databaseCrashes = 0
    /// Sidecars that died of postgres-nio's known trap when the database
    /// crashed, and were started again as a supervisor would.
    var libraryTraps = 0
    /// When each restarted sidecar was started again (host ms): claims in
    /// its name from before are its killed predecessor's.
    var startedAtMs: [String: Int64] = [:]
}

/// The three faults, each checked as it happens.
private struct Chaos {
    let cluster: ProcessCluster
    let postgres: TemporaryPostgres
    let database: String

    /// `kill -9` of sidecar `victim`, restarted a second later.
    func killAndRestart(_ victim: Int, log: inout FaultLog) async throws {
        let node = cluster.nodes[victim]
        log.events.append("kill -9 \(node.name)")
        log.kills += 1
        node.kill9()
        try await Task.sleep(for: .seconds(1))
        log.startedAtMs[node.name] = hostMilliseconds()
        try node.start()
    }

    /// Freezes (SIGSTOP) a sidecar that holds claims on `/slow` jobs, keeps
    /// it frozen for longer than a claim and until another sidecar has taken
    /// one of those jobs over, thaws it (SIGCONT) and expects its late
    /// outcome to be refused: its `gc_pg_outcomes_refused_total` rises.
    ///
    /// Claims are seen in `gc_jobs` and can end between the look and the
    /// signal, so a sidecar found holding none once frozen is thawed and
    /// another looked for (for up to 20 s). A takeover is a new owner on a
    /// job that did not change since (same `next_attempt_at`): a job whose
    /// outcome the frozen sidecar had just committed (its COMMIT was on the
    /// wire) is claimed again for its next attempt, which is no takeover.
    func pauseClaimHolder(log: inout FaultLog) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            var refusedBefore: [Double] = []
            for i in cluster.nodes.indices {
                refusedBefore.append(await cluster.metric("gc_pg_outcomes_refused_total", node: i) ?? 0)
            }
            // Claims of the running processes (not of a killed predecessor).
            let claims = try await liveSlowClaims(log: log)
            guard let owner = claims.first?.owner, let victim = cluster.index(of: owner) else {
                try await Task.sleep(for: .milliseconds(50))
                continue
            }
            let node = cluster.nodes[victim]
            node.pause()
            let held = try await liveSlowClaims(log: log).filter { $0.owner == owner }
            guard !held.isEmpty else {
                node.resume()
                continue
            }
            log.pauses += 1
            let frozenAt = ContinuousClock.now
            // Frozen until one of its jobs, unchanged, is claimed by another
            // sidecar: its claim expired (GC_CLEANUP_CLAIM_SECONDS) and was
            // taken over. Given up once none is left to take over.
            var takenOverBy: String?
            var stillHeld = held.count
            let takeoverDeadline = ContinuousClock.now + .seconds(PostgresModeChaosTests.claimSeconds + 15)
            while takenOverBy == nil, stillHeld > 0, ContinuousClock.now < takeoverDeadline {
                let current = try await rows("""
                    SELECT id, next_attempt_at, COALESCE(claim_owner, '') FROM gc_jobs
                    WHERE state = 0 AND id IN (\(held.map(\.job).joined(separator: ",")))
                    """)
                let unchanged = current.filter { row in row.count == 3 && held.contains { $0.job == row[0] && $0.nextAttemptAt == row[1] } }
                takenOverBy = unchanged.first { $0[2] != "" && $0[2] != owner }?[2]
                stillHeld = unchanged.filter { $0[2] == owner }.count
                if takenOverBy == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            if takenOverBy != nil {
                // Frozen for longer than a whole claim, not only past the
                // end of the ones it held.
                try await Task.sleep(until: frozenAt + .seconds(PostgresModeChaosTests.claimSeconds) + .milliseconds(100))
            }
            node.resume()
            let frozenFor = ContinuousClock.now - frozenAt
            guard let takenOverBy else {
                // Its outcomes were being recorded when it froze (the rows
                // stay locked, so nobody may take them): none is stale.
                log.events.append("SIGSTOP \(node.name) \(frozenFor): none of its \(held.count) claims was taken over")
                continue
            }
            let refused: Double
            do {
                refused = try await cluster.eventually("\(node.name)'s late outcomes to be refused", timeout: .seconds(30)) { () -> Double? in
                    guard let now = await cluster.metric("gc_pg_outcomes_refused_total", node: victim), now > refusedBefore[victim] else { return nil }
                    return now - refusedBefore[victim]
                }
            } catch {
                let jobs = try await rows("""
                    SELECT id, state, next_attempt_at, claim_owner, claim_token, claim_expires_at FROM gc_jobs
                    WHERE id IN (\(held.map(\.job).joined(separator: ",")))
                    """)
                let inFlight = await cluster.metric("gc_cleanup_in_flight", node: victim)
                let claimed = await cluster.metric("gc_pg_claims_total", node: victim)
                throw ClusterTestFailure("""
                    \(node.name) (\(inFlight.map { "\(Int($0))" } ?? "?") cleanups in flight, \(claimed.map { "\(Int($0))" } ?? "?") claimed \
                    since its start), frozen \(frozenFor) holding claims on \(held.map { "job \($0.job) (next attempt \($0.nextAttemptAt))" }), \
                    one of them taken over by \(takenOverBy), had no late outcome refused within 30 s; those jobs now \
                    (id, state, next attempt, claim owner, token, expiry): \(jobs); \(error)
                    """)
            }
            log.refusals += 1
            log.events.append("SIGSTOP \(node.name) \(frozenFor) holding \(held.count) claims, taken over by \(takenOverBy), \(Int(refused)) outcomes refused")
            return
        }
        log.events.append("SIGSTOP: no claim holder on /slow had a claim taken over within 20 s")
    }

    /// `pg_ctl restart -m immediate` mid-load: every sidecar must read from
    /// the database again, as the same process (its pool reconnects).
    func crashDatabase(log: inout FaultLog) async throws {
        let pids = cluster.nodes.map(\.pid)
        log.events.append("PostgreSQL restart -m immediate")
        log.databaseCrashes += 1
        try await postgres.restartImmediately()
        var trapped: Set<Int> = []
        for i in cluster.nodes.indices {
            _ = try await cluster.eventually("\(cluster.nodes[i].name) to read from the database after its crash", timeout: .seconds(30)) { () -> Bool? in
                if !cluster.nodes[i].isRunning, !trapped.contains(i) {
                    // Any exit but postgres-nio's known trap fails the test.
                    let tail = cluster.nodes[i].logTail(400)
                    guard Self.isKnownLibraryTrap(tail) else {
                        throw ClusterTestFailure("\(cluster.nodes[i].name) exited over the database crash:\n\(cluster.nodes[i].logTail(60))")
                    }
                    print("postgres-mode chaos: \(cluster.nodes[i].name) trapped in postgres-nio when the database crashed; started again, as its supervisor would")
                    trapped.insert(i)
                    log.startedAtMs[cluster.nodes[i].name] = hostMilliseconds()
                    try cluster.nodes[i].start()
                }
                var request = DistributedGc_ListLeasesRequest()
                request.limit = 1
                _ = try await cluster.leases[i].listLeases(request, options: ProcessCluster.fast)
                return true
            }
        }
        log.libraryTraps += trapped.count
        log.events.append(contentsOf: trapped.sorted().map { "\(cluster.nodes[$0].name) trapped in postgres-nio, restarted" })
        let survivors = cluster.nodes.indices.filter { !trapped.contains($0) }
        #expect(survivors.map { cluster.nodes[$0].pid } == survivors.map { pids[$0] } && cluster.nodes.allSatisfy(\.isRunning),
                "a sidecar exited over the database crash\n\(cluster.logs())")
    }

    /// postgres-nio 1.33.2's precondition in `RowStreamStateMachine` when the
    /// server closes a connection while a result waits on backpressure (no
    /// fixed release is available here): DESIGN.md, "PostgreSQL mode",
    /// known issue. Only this exit is forgiven, and counted.
    static func isKnownLibraryTrap(_ log: String) -> Bool {
        log.contains("RowStreamStateMachine")
    }

    /// The database's clock in Unix milliseconds, as the sidecars write it.
    static let now = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

    /// Live claims on pending `/slow` jobs made by the sidecar processes
    /// running now, newest claim first.
    private func liveSlowClaims(log: FaultLog) async throws -> [(owner: String, job: String, nextAttemptAt: String)] {
        let claimMs = PostgresModeChaosTests.claimSeconds * 1000
        return try await rows("""
            SELECT claim_owner, id, claim_expires_at - \(claimMs), next_attempt_at FROM gc_jobs
            WHERE state = 0 AND endpoint LIKE '%/slow' AND claim_owner IS NOT NULL AND claim_expires_at > \(Self.now)
            ORDER BY claim_expires_at DESC
            """).compactMap { row in
            guard row.count == 4, let claimedAt = Int64(row[2]), claimedAt > log.startedAtMs[row[0]] ?? 0 else { return nil }
            return (row[0], row[1], row[3])
        }
    }

    /// Rows of `query` in the chaos database, as their fields.
    private func rows(_ query: String) async throws -> [[String]] {
        try await postgres.psql(query, database: database)
            .split(separator: "\n").filter { !$0.isEmpty }.map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
    }

}
