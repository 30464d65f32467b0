import PropertyBased
import Testing
@testable import LeaseFSM

/// Random command sequences over a small universe of objects, services and
/// lease ids, with the state machine's invariants checked after every step.
///
/// Each random word is one step; `Scenario.step` decodes it into a command
/// (create, renew, batch renew, release, a reaper's expire decision racing a
/// renewal, expire of arbitrary ids, cleanup outcomes with right and wrong
/// attempt numbers, dead-letter retries, time jumps, older stamps, log gaps,
/// and snapshot/restore points). Words shrink toward 0 and lists toward
/// fewer steps, so a failure is reported with a short sequence.
struct Scenario {
    static let objects = [key("o0"), key("o1"), key("o2", .cacheEntry)]
    static let services = ["s0", "s1"]
    static var limits: LeaseLimits {
        var l = LeaseLimits()
        l.minDurationSeconds = 30
        l.maxDurationSeconds = 120
        l.defaultDurationSeconds = 60
        l.cleanupGraceSeconds = 10
        l.endedRetentionSeconds = 300
        l.defaultMaxRetries = 2
        l.maxLeasesPerService = 4
        return l
    }

    var h = Harness(limits: Scenario.limits)
    /// Every lease id ever created, in order (including forgotten ones).
    var created: [LeaseID] = []
    /// Per lease: the stamp and the extension of its last successful grant or renewal.
    var lastGrant: [LeaseID: (stamp: WallTime, seconds: UInt64)] = [:]
    /// Per lease: the fencing token and renewal count seen after the previous step.
    var seenTokens: [LeaseID: (token: UInt64, renewals: UInt32)] = [:]
    /// A machine restored from a snapshot of `h.fsm`, fed the same commands since.
    var twin: Harness?
    var steps = 0
    /// Which outcomes the sequence reached (to show the generator is not vacuous).
    var reached: Set<String> = []

    /// Reads small numbers off a random word.
    struct Dice {
        var word: UInt64
        mutating func roll(_ n: Int) -> Int {
            let v = Int(word % UInt64(n))
            word /= UInt64(n)
            return v
        }
        mutating func pick<T>(_ options: [T]) -> T { options[roll(options.count)] }
    }

    var grace: Int64 { Int64(Self.limits.cleanupGraceSeconds) * 1000 }

    /// A lease id to name: mostly real ones, sometimes a fake one.
    func leaseID(_ d: inout Dice) -> LeaseID {
        let n = d.roll(created.count + 1)
        return n < created.count ? created[n] : LeaseID(String(format16(UInt64(steps + 1000))) + "-fake")
    }

    func format16(_ v: UInt64) -> String {
        let hex = String(v, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    func owner(of id: LeaseID) -> String? { h.fsm.lease(id)?.serviceID }

    mutating func step(_ word: UInt64) {
        steps += 1
        var d = Dice(word: word)
        let kind = d.roll(20)
        let dt: Int64 = d.pick([0, 0, 1, 3, 7])
        h.advance(seconds: dt)
        switch kind {
        case 0...3:
            let retries = UInt32(d.roll(3))
            let cleanup: CleanupSpec? = d.pick([
                nil, httpCleanup(maxRetries: retries), CleanupSpec(grpcEndpoint: "c:1", maxRetries: 1),
                CleanupSpec(maxRetries: 3),
            ])
            let object = d.pick(Self.objects)
            let service = d.pick(Self.services)
            let duration: UInt64 = d.pick([0, 30, 45, 120])
            run(h.createCommand(object, service: service, duration: duration, cleanup: cleanup))
        case 4...6:
            let id = leaseID(&d)
            let wrong = d.roll(4) == 0
            let other = d.pick(Self.services)
            let service = wrong ? other : (owner(of: id) ?? "s0")
            let extend: UInt64 = d.pick([0, 30, 60])
            run(.renew(.init(leaseIDs: [id], serviceID: service, extendSeconds: extend)))
        case 7:
            let count = d.roll(4)
            let ids = (0...count).map { _ in leaseID(&d) }
            let service = d.pick(Self.services)
            run(.renew(.init(leaseIDs: ids, serviceID: service)))
        case 8...9:
            let id = leaseID(&d)
            let wrong = d.roll(5) == 0
            let other = d.pick(Self.services)
            let service = wrong ? other : (owner(of: id) ?? "s1")
            run(.release(.init(leaseID: id, serviceID: service)))
        case 10...11:
            // The reaper decides with its own clock, possibly ahead of now; a
            // renewal may be committed between the decision and its commit.
            let ahead: Int64 = d.pick([0, 15, 40, 90, 150])
            let decidedAt = h.clock.plus(seconds: ahead)
            let limit = d.pick([1, 2, 100])
            var ids = h.fsm.expirableLeases(asOf: decidedAt, limit: limit)
            if d.roll(3) == 0 { ids.append(leaseID(&d)) }
            if !ids.isEmpty, d.roll(2) == 0 {
                let n = d.roll(ids.count)
                let racer = ids[n]
                run(.renew(.init(leaseIDs: [racer], serviceID: owner(of: racer) ?? "s0")))
            }
            if !ids.isEmpty {
                h.clock = max(h.clock, decidedAt)
                run(.expire(.init(leaseIDs: ids)))
            }
        case 12:
            let count = d.roll(3)
            run(.expire(.init(leaseIDs: (0...count).map { _ in leaseID(&d) })))
        case 13...14:
            let jobID = JobID(d.roll(Int(h.fsm.jobSequence) + 1) + 1)
            let next = (h.fsm.job(jobID)?.attempts ?? 0) + 1
            let attempt = max(1, d.pick([next, next, next, next - 1, next + 1]))
            let result: LeaseCommand.CleanupOutcome.Result = d.pick([
                .succeeded, .failed(error: "e", retryAfterMilliseconds: 1000, permanent: false),
                .failed(error: "e", retryAfterMilliseconds: 30_000, permanent: false),
                .failed(error: "gone", retryAfterMilliseconds: 0, permanent: true),
            ])
            run(.cleanupOutcome(.init(jobID: jobID, attempt: attempt, result: result)))
        case 15:
            var ids = h.fsm.deadLetteredJobs.map(\.id).filter { _ in d.roll(3) != 0 }
            let extra = JobID(d.roll(Int(h.fsm.jobSequence) + 2) + 1)
            ids.append(extra)
            run(.retryDeadLetters(.init(jobIDs: ids)))
        case 16:
            let jump: Int64 = d.pick([20, 60, 200, 400])
            h.advance(seconds: jump)
            let id = leaseID(&d)
            run(.expire(.init(leaseIDs: [id])))
        case 17:
            // A leader whose clock is behind: now must not go back.
            let back: Int64 = d.pick([1, 30, 100])
            let older = h.clock.plus(seconds: -back)
            let isCreate = d.roll(2) == 0
            let object = d.pick(Self.objects)
            let service = d.pick(Self.services)
            let id = leaseID(&d)
            let command = isCreate
                ? h.createCommand(object, service: service, duration: 30)
                : LeaseCommand.renew(.init(leaseIDs: [id], serviceID: owner(of: id) ?? service))
            run(command, stamp: older)
        case 18:
            let next = h.nextIndex + UInt64(1 + d.roll(3))
            h.skip(to: next)
            twin?.skip(to: next)
            check(nil)
        default:
            let restored = try? LeaseStateMachine(snapshot: h.fsm.snapshot(), limits: h.limits)
            #expect(restored == h.fsm, "snapshot → restore differs at step \(steps)")
            if let restored {
                #expect(Observation(restored) == Observation(h.fsm))
                var copy = h
                copy.fsm = restored
                twin = copy
                reached.insert("snapshot")
            }
        }
    }

    mutating func run(_ command: LeaseCommand, stamp: WallTime? = nil) {
        let before = h.fsm
        let stamp = stamp ?? h.clock
        let out = h.apply(command, stamp: stamp)
        if var t = twin {
            let twinOut = t.apply(command, stamp: stamp)
            #expect(twinOut == out, "restored machine answered differently at step \(steps): \(command)")
            twin = t
        }
        check((command, out, before, stamp))
    }

    /// Checks every invariant after a step.
    mutating func check(
        _ applied: (command: LeaseCommand, out: ApplyOutput, before: LeaseStateMachine, stamp: WallTime)?
    ) {
        let fsm = h.fsm
        let leases = allLeases(fsm)

        // (1) No open cleanup job (pending or dead-lettered, so none scheduled
        // or due) for an object while a lease on it is active.
        for job in fsm.jobs.values where job.isOpen {
            #expect(!fsm.isHeld(job.object), "job \(job.id) open on held \(job.object) at step \(steps)")
        }
        for job in fsm.dueCleanupJobs(asOf: fsm.now.plus(seconds: 100_000), limit: .max) {
            #expect(!fsm.isHeld(job.object))
            #expect(job.attempts <= job.spec.maxRetries)
        }
        for object in Self.objects {
            #expect(fsm.isHeld(object) == leases.contains { $0.object == object && $0.isActive })
        }
        for lease in leases where lease.isActive {
            #expect(lease.incarnation <= lease.createdIndex)
            #expect(leases.filter { $0.isActive && $0.object == lease.object }.allSatisfy {
                $0.incarnation == lease.incarnation
            }, "active leases of one object disagree on its incarnation")
        }

        // (2) Fencing tokens strictly increase with each grant or renewal.
        for lease in fsm.leases.values {
            if let seen = seenTokens[lease.id] {
                if lease.renewalCount > seen.renewals {
                    #expect(lease.fencingToken > seen.token, "token of \(lease.id) did not increase")
                } else {
                    #expect(lease.fencingToken == seen.token, "token of \(lease.id) changed without a renewal")
                }
            } else {
                #expect(lease.fencingToken == lease.createdIndex)
            }
            seenTokens[lease.id] = (lease.fencingToken, lease.renewalCount)
        }

        // (3) The restored twin stays equal.
        if let twin {
            #expect(twin.fsm == fsm, "restored machine diverged at step \(steps)")
        }

        // (4) The active count agrees with a full list.
        let active = leases.filter(\.isActive)
        #expect(fsm.activeLeaseCount == active.count)
        #expect(fsm.activeLeasesByService == Dictionary(grouping: active, by: \.serviceID).mapValues(\.count))
        #expect(fsm.activeLeasesByType == Dictionary(grouping: active, by: \.object.type).mapValues(\.count))
        #expect(fsm.pendingCleanupCount == fsm.jobs.values.filter { $0.state == .pending }.count)
        #expect(fsm.deadLetteredCleanupCount == fsm.jobs.values.filter { $0.state == .deadLettered }.count)

        guard let (command, out, before, stamp) = applied else { return }
        #expect(fsm.now == max(before.now, stamp), "now is not the largest stamp")
        #expect(out.events.enumerated().allSatisfy { $0.element.position == UInt32($0.offset) })
        #expect(out.events.allSatisfy { $0.index == h.index })
        if let error = out.error {
            reached.insert("refused \(error.code)")
            var expected = before
            expected.appliedIndex = fsm.appliedIndex
            expected.now = fsm.now
            expected.forgetRetiredForTests()
            #expect(fsm == expected, "a refused command changed the state at step \(steps)")
            #expect(out.events.isEmpty)
        }

        for event in out.events { reached.insert("\(event.kind)") }
        if case .success(.renewed(let outcomes)) = out.result {
            for o in outcomes { reached.insert("renew " + (o.error.map { "\($0.code)" } ?? "ok")) }
        }
        if case .success(.cleanupRecorded(nil)) = out.result { reached.insert("stale outcome") }
        if case .success(.expired(let ids)) = out.result, case .expire(let e) = command,
           Set(e.leaseIDs).contains(where: { before.lease($0)?.isActive == true && !ids.contains($0) }) {
            reached.insert("active lease spared")
        }

        // Track grants for invariant (5).
        switch out.result {
        case .success(.created(let lease)):
            created.append(lease.id)
            lastGrant[lease.id] = (stamp, lease.durationSeconds)
        case .success(.renewed(let outcomes)):
            guard case .renew(let r) = command else { break }
            for o in outcomes {
                if let lease = o.lease {
                    #expect(lease.fencingToken == h.index)
                    lastGrant[o.leaseID] = (stamp, r.extendSeconds == 0 ? lease.durationSeconds : r.extendSeconds)
                }
            }
        case .success(.expired(let ids)):
            // (5) A lease renewed at t for d is never expired before t + d + grace.
            for id in ids {
                guard let grant = lastGrant[id] else {
                    Issue.record("expired a lease never granted: \(id)")
                    continue
                }
                let earliest = grant.stamp.plus(ms: Int64(grant.seconds) * 1000 + grace)
                #expect(fsm.now >= earliest, "\(id) expired at \(fsm.now), before \(earliest)")
                #expect(before.lease(id)?.isActive == true)
            }
            guard case .expire(let e) = command else { break }
            // Every eligible named lease did expire.
            for id in Set(e.leaseIDs) where !ids.contains(id) {
                if let lease = before.lease(id), lease.isActive {
                    #expect(lease.expiresAt.plus(ms: grace) > fsm.now, "\(id) was eligible but not expired")
                }
            }
        default:
            break
        }
    }

    /// Checks made once at the end of a sequence.
    func finish() {
        if let twin {
            #expect(Observation(twin.fsm) == Observation(h.fsm))
            #expect((try? twin.fsm.snapshot()) == (try? h.fsm.snapshot()) && (try? h.fsm.snapshot()) != nil)
        }
        // Paging with any limit yields every lease once, in order.
        let all = allLeases(h.fsm).map(\.id)
        for limit in [1, 3] {
            var seen: [LeaseID] = []
            var after: LeaseID?
            repeat {
                let page = h.fsm.listLeases(.init(), after: after, limit: limit)
                seen += page.leases.map(\.id)
                after = page.next
            } while after != nil && seen.count <= all.count
            #expect(seen == all)
        }
    }
}

extension LeaseStateMachine {
    /// What a refused command may still do: forget what retention lets go.
    mutating func forgetRetiredForTests() {
        // Re-apply nothing but the time: a refused command at the same index
        // forgets exactly what any command moving `now` there forgets.
        let cutoff = now.adding(milliseconds: -limits.endedRetentionSeconds.saturatingMilliseconds)
        for (id, lease) in leases where lease.endedAt.map({ $0 <= cutoff }) == true {
            leases[id] = nil
        }
        for (id, job) in jobs where job.finishedAt.map({ $0 <= cutoff }) == true {
            jobs[id] = nil
        }
    }
}

@Suite("Invariants under random command sequences")
struct InvariantPropertyTests {
    static let sequences = Gen<UInt64>.value(in: 0...UInt64.max).array(of: 1...80)

    @Test("no cleanup on a held object, tokens increase, snapshots restore, counts agree, no early expiry")
    func invariantsHold() async {
        await propertyCheck(count: 150, input: Self.sequences) { words in
            var scenario = Scenario()
            for word in words {
                scenario.step(word)
            }
            scenario.finish()
        }
    }

    @Test("sequences rich in reaper races and time jumps keep the invariants")
    func reaperHeavy() async {
        // Bias the step kinds toward creates (0...3), renewals (4...6) and reaper decisions (10...11).
        let kinds: [UInt64] = [0, 1, 2, 4, 5, 10, 11, 10, 16, 13, 19]
        let words = zip(Gen<Int>.int(in: 0...(kinds.count - 1)), Gen<UInt64>.value(in: 0...(UInt64.max / 40)))
            .map { kinds[$0] + 20 * $1 }
            .array(of: 10...80)
        await propertyCheck(count: 100, input: words) { words in
            var scenario = Scenario()
            for word in words {
                scenario.step(word)
            }
            scenario.finish()
        }
    }

    @Test("the random sequences reach every kind of outcome")
    func generatorCoverage() {
        var reached: Set<String> = []
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            // SplitMix64: a fixed, reproducible stream of words.
            seed &+= 0x9E37_79B9_7F4A_7C15
            var z = seed
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for _ in 0..<40 {
            var scenario = Scenario()
            for _ in 0..<80 { scenario.step(next()) }
            scenario.finish()
            reached.formUnion(scenario.reached)
        }
        let wanted: Set<String> = [
            "created", "renewed", "released", "expired", "cleanupSucceeded", "cleanupFailed", "cleanupDeadLettered",
            "cleanupSuperseded", "cleanupRetried", "renew ok", "renew NOT_FOUND", "renew PERMISSION_DENIED",
            "renew FAILED_PRECONDITION", "refused NOT_FOUND", "refused PERMISSION_DENIED",
            "refused FAILED_PRECONDITION", "refused RESOURCE_EXHAUSTED", "stale outcome", "snapshot",
            "active lease spared",
        ]
        #expect(wanted.subtracting(reached).isEmpty, "never reached: \(wanted.subtracting(reached).sorted())")
    }

    @Test("a renewal at t for d protects the lease from any expire decision before t + d + grace")
    func renewalProtects() async {
        let input = zip(
            Gen<UInt64>.value(in: 30...120),  // created for
            Gen<Int64>.value(in: 0...200_000),  // renewed this many ms later
            Gen<UInt64>.value(in: 0...120),  // extension (0 = own duration; < 30 is refused)
            Gen<Int64>.value(in: 0...400_000)  // expire decision applied this many ms after the renewal
        )
        await propertyCheck(count: 300, input: input) { duration, renewAfter, extend, expireAfter in
            var h = Harness(limits: Scenario.limits)
            guard let lease = try? h.create(duration: duration) else {
                Issue.record("create refused")
                return
            }
            let renewedAt = t0.plus(ms: renewAfter)
            let out = h.apply(.renew(.init(leaseIDs: [lease.id], serviceID: "svc", extendSeconds: extend)),
                              stamp: renewedAt)
            let grace: Int64 = 10_000
            var protectedUntil = t0.plus(ms: Int64(duration) * 1000 + grace)
            if let renewed = out.renewOutcomes?.first?.lease {
                let d = extend == 0 ? duration : extend
                #expect(renewed.expiresAt == renewedAt.plus(ms: Int64(d) * 1000))
                protectedUntil = renewedAt.plus(ms: Int64(d) * 1000 + grace)
            } else {
                // Refused: a bad extension, or the lease had lapsed.
                #expect((1..<30).contains(extend) || renewedAt >= lease.expiresAt)
            }
            let decision = renewedAt.plus(ms: expireAfter)
            let expired = (try? h.expire([lease.id], stamp: decision)) ?? []
            #expect(expired == (decision >= protectedUntil ? [lease.id] : []))
        }
    }
}
