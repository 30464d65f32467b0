import Testing
@testable import LeaseFSM

@Suite("Snapshots")
struct SnapshotTests {
    /// A state with every kind of lease and job, metadata, cleanup sources and stats.
    static func richState() throws -> Harness {
        var limits = LeaseLimits()
        limits.endedRetentionSeconds = 600
        var h = Harness(limits: limits)
        // Held by two, the ended one named the target (a cleanup source on a live object).
        let shared1 = try h.create(key("shared", .databaseRow), service: "s1",
                                   cleanup: httpCleanup("shared", payload: "{\"id\":1}"), metadata: ["a": "1"])
        _ = try h.create(key("shared", .databaseRow), service: "s2", duration: 600, metadata: ["b": "2", "c": ""])
        try h.release(shared1.id, service: "s1")
        // Jobs: pending after a failure, succeeded, dead-lettered, superseded.
        let failing = try h.makeJob(key("failing"), cleanup: httpCleanup(maxRetries: 3, retryDelaySeconds: 9))
        _ = try h.outcome(failing.id, attempt: 1, .failed(error: "503", retryAfterMilliseconds: 4321, permanent: false))
        let done = try h.makeJob(key("done"), cleanup: CleanupSpec(grpcEndpoint: "cleaner:50051/x", payload: "p"))
        _ = try h.outcome(done.id, attempt: 1, .succeeded)
        let dead = try h.makeJob(key("dead", .temporaryFile))
        _ = try h.outcome(dead.id, attempt: 1, .failed(error: "gone", retryAfterMilliseconds: 0, permanent: true))
        _ = try h.makeJob(key("again", .custom))
        h.advance(seconds: 5)
        _ = try h.create(key("again", .custom), service: "s3")
        // Renewed, expired, and lapsed-but-active leases.
        let renewed = try h.create(key("renewed", .cacheEntry), duration: 30)
        let expiring = try h.create(key("expiring", .websocketSession), duration: 30, cleanup: httpCleanup("ws"))
        h.advance(seconds: 20)
        _ = try h.renew(renewed.id, extend: 100).get()
        h.advance(seconds: 50)
        _ = try h.expire([expiring.id])
        _ = try h.create(key("lapsed"), duration: 30)
        h.advance(seconds: 45)
        _ = try h.create(key("fresh", .unknown), duration: 300)
        return h
    }

    /// Commands to apply after a snapshot; they touch every part of the state.
    static func followUp(_ h: Harness) -> [LeaseCommand] {
        let leases = allLeases(h.fsm)
        var commands: [LeaseCommand] = []
        commands.append(.renew(.init(leaseIDs: leases.map(\.id), serviceID: "svc")))
        commands.append(.renew(.init(leaseIDs: leases.map(\.id), serviceID: "s2", extendSeconds: 60)))
        commands.append(.expire(.init(leaseIDs: leases.map(\.id))))
        for job in 1...6 as ClosedRange<JobID> {
            commands.append(.cleanupOutcome(.init(jobID: job, attempt: 2, result: .failed(
                error: "x", retryAfterMilliseconds: 10, permanent: false))))
            commands.append(.cleanupOutcome(.init(jobID: job, attempt: 1, result: .succeeded)))
        }
        commands.append(.retryDeadLetters(.init(jobIDs: Array(1...8))))
        commands.append(.create(.init(leaseIDSuffix: "aa", object: key("dead", .temporaryFile), serviceID: "s9",
                                      durationSeconds: 0, cleanup: httpCleanup())))
        commands.append(.create(.init(leaseIDSuffix: "bb", object: key("failing"), serviceID: "s9",
                                      durationSeconds: 31)))
        for lease in leases where lease.isActive {
            commands.append(.release(.init(leaseID: lease.id, serviceID: lease.serviceID)))
        }
        commands.append(.expire(.init(leaseIDs: leases.map(\.id))))
        return commands
    }

    @Test("snapshot then restore gives an equal state, with equal queries")
    func roundTrip() throws {
        let h = try Self.richState()
        let restored = try LeaseStateMachine(snapshot: h.fsm.snapshot(), limits: h.limits)
        #expect(restored == h.fsm)
        #expect(Observation(restored) == Observation(h.fsm))
        #expect(try restored.snapshot() == h.fsm.snapshot())
        #expect(restored.appliedIndex == h.fsm.appliedIndex)
        #expect(restored.now == h.fsm.now)
        #expect(restored.stats == h.fsm.stats)
        for lease in allLeases(h.fsm) {
            #expect(restored.isHeld(lease.object) == h.fsm.isHeld(lease.object))
            #expect(restored.cleanupJob(of: lease) == h.fsm.cleanupJob(of: lease))
        }
        // The state really has every kind of thing in it.
        let states = Set(h.fsm.jobs.values.map(\.state))
        #expect(states == [.pending, .succeeded, .deadLettered, .superseded])
        #expect(Set(allLeases(h.fsm).map(\.state)) == [.active, .released, .expired])
        #expect(h.fsm.objects.values.contains { $0.cleanupSource != nil })
    }

    @Test("a snapshot holds every lease and object even when the ordered lease index disagrees with the tables",
          arguments: [true, false])
    func snapshotWithADisagreeingIndex(emptied: Bool) throws {
        let h = try Self.richState()
        var broken = h.fsm
        let ordered = Array(broken.indexes.orderedLeaseIDs)
        #expect(ordered.count == h.fsm.leases.count && ordered.count > 2)
        // Emptied, or missing one lease in the middle: the leases written from it would be
        // incomplete, so they are rewritten in sorted order, and the objects sorted too.
        broken.indexes.orderedLeaseIDs = ChunkedArray(emptied ? [] : ordered.enumerated().filter { $0.offset != 1 }.map(\.element))
        let bytes = try broken.snapshot()
        let restored = try LeaseStateMachine(snapshot: bytes, limits: h.limits)
        #expect(restored == h.fsm)
        #expect(Observation(restored) == Observation(h.fsm))
        // Leases come out in the same (sorted) order either way; only the objects' order may differ.
        #expect(try restored.snapshot() == h.fsm.snapshot())
    }

    @Test("an empty state machine round-trips")
    func emptyRoundTrip() throws {
        let fsm = LeaseStateMachine(limits: .defaults)
        let restored = try LeaseStateMachine(snapshot: fsm.snapshot(), limits: .defaults)
        #expect(restored == fsm)
    }

    @Test("a restored machine answers the same further commands exactly as the original")
    func restoredBehavesIdentically() throws {
        var original = try Self.richState()
        var restored = original
        restored.fsm = try LeaseStateMachine(snapshot: original.fsm.snapshot(), limits: original.limits)
        for (step, command) in Self.followUp(original).enumerated() {
            original.advance(seconds: 7)
            restored.advance(seconds: 7)
            let a = original.apply(command)
            let b = restored.apply(command)
            #expect(a == b, "step \(step): \(command)")
            #expect(original.fsm == restored.fsm, "step \(step)")
        }
        #expect(Observation(original.fsm) == Observation(restored.fsm))
        // Long after: retention forgets the same things on both.
        original.advance(seconds: 10_000)
        restored.advance(seconds: 10_000)
        let a = original.apply(.expire(.init(leaseIDs: [LeaseID("x")])))
        let b = restored.apply(.expire(.init(leaseIDs: [LeaseID("x")])))
        #expect(a == b)
        #expect(original.fsm == restored.fsm)
        #expect(Observation(original.fsm) == Observation(restored.fsm))
        #expect(original.fsm.retainedLeaseCount < allLeases(try Self.richState().fsm).count)
    }

    @Test("the restored state machine enforces the limits it is given")
    func limitsFromCaller() throws {
        let h = try Self.richState()
        var other = LeaseLimits()
        other.maxLeasesPerService = 1
        let restored = try LeaseStateMachine(snapshot: h.fsm.snapshot(), limits: other)
        #expect(restored.limits == other)
        #expect(restored != h.fsm)
    }

    @Test("garbage bytes are rejected", arguments: [[0xff, 0xff, 0xff], [0x0a, 0x05, 0x01], [0x08]] as [[UInt8]])
    func garbageRejected(_ bytes: [UInt8]) {
        #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try LeaseStateMachine(snapshot: bytes, limits: .defaults)
        }
    }

    @Test("bytes without a version (an empty message) are rejected")
    func missingVersionRejected() {
        #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try LeaseStateMachine(snapshot: [], limits: .defaults)
        }
    }

    @Test("a protobuf (format 1) snapshot of a newer version is rejected")
    func newerVersionRejected() throws {
        let h = try Self.richState()
        // Field 1 (version) = 2, appended: the last value of a scalar field wins.
        let newer = try h.fsm.protobufSnapshot() + [0x08, LeaseStateMachine.snapshotVersion.asByte + 1]
        let error = #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try LeaseStateMachine(snapshot: newer, limits: h.limits)
        }
        #expect(error?.message.contains("version") == true)
        // The same append with the current version still decodes.
        let same = try h.fsm.protobufSnapshot() + [0x08, LeaseStateMachine.snapshotVersion.asByte]
        #expect(try LeaseStateMachine(snapshot: same, limits: h.limits) == h.fsm)
    }

    @Test("a protobuf (format 1) snapshot written by an older version restores to an equal state")
    func formatOneStillRestores() throws {
        let h = try Self.richState()
        let old = try h.fsm.protobufSnapshot()
        #expect(old.first == 0x08, "format 1 starts with its version field")
        let restored = try LeaseStateMachine(snapshot: old, limits: h.limits)
        #expect(restored == h.fsm)
        #expect(Observation(restored) == Observation(h.fsm))
        // Re-snapshotting writes format 2 with the same content.
        #expect(try restored.snapshot() == h.fsm.snapshot())
    }

    @Test("snapshots are written in the binary format 2")
    func writesFormatTwo() throws {
        let bytes = try Self.richState().fsm.snapshot()
        #expect(Array(bytes.prefix(5)) == [0x00, 0x47, 0x43, 0x53, 2])
    }

    @Test("a binary snapshot of a newer format is rejected")
    func newerFormatRejected() throws {
        var bytes = try Self.richState().fsm.snapshot()
        bytes[4] = 3
        let error = #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try LeaseStateMachine(snapshot: bytes, limits: .defaults)
        }
        #expect(error?.message.contains("format 3") == true)
    }

    @Test("every truncation of a binary snapshot, and trailing bytes, are rejected")
    func truncationRejected() throws {
        let bytes = try Self.richState().fsm.snapshot()
        for length in stride(from: 4, to: bytes.count, by: max(1, bytes.count / 300)) {
            #expect(throws: LeaseStateMachine.DecodingError.self, "prefix of \(length) bytes") {
                _ = try LeaseStateMachine(snapshot: Array(bytes.prefix(length)), limits: .defaults)
            }
        }
        #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try LeaseStateMachine(snapshot: bytes + [0], limits: .defaults)
        }
    }

    @Test("a snapshot decoded in two halves at once (leases, and what follows them) restores the same state")
    func parallelDecodeRoundTrip() throws {
        let h = try Self.richState()
        let bytes = try h.fsm.snapshot()
        let restored = try LeaseStateMachine(binarySnapshot: bytes, limits: h.limits, parallelFrom: 0)
        #expect(restored == h.fsm)
        #expect(Observation(restored) == Observation(h.fsm))
        #expect(try restored.snapshot() == bytes)
    }

    @Test("every truncation, and trailing bytes, are rejected when decoded in two halves too")
    func parallelDecodeRejectsTruncation() throws {
        let bytes = try Self.richState().fsm.snapshot()
        for length in stride(from: 4, to: bytes.count, by: max(1, bytes.count / 300)) {
            #expect(throws: LeaseStateMachine.DecodingError.self, "prefix of \(length) bytes") {
                _ = try LeaseStateMachine(binarySnapshot: Array(bytes.prefix(length)), limits: .defaults, parallelFrom: 0)
            }
        }
        #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try LeaseStateMachine(binarySnapshot: bytes + [0], limits: .defaults, parallelFrom: 0)
        }
    }

    @Test("skipping a lease record (to split the decode) stops exactly where decoding it does")
    func skipLeaseMatchesDecode() throws {
        let h = try Self.richState()
        let bytes = try h.fsm.snapshot()
        let leases = try bytes.withSnapshotReader(at: SnapshotCodec.magic.count) { r throws(LeaseStateMachine.DecodingError) in
            _ = try SnapshotHeader(&r)
            let count = try r.count(minimumSize: 100)
            var seen: [Lease] = []
            for _ in 0..<count {
                var skipped = r
                try skipped.skipLease()
                seen.append(try r.lease())
                #expect(skipped.position == r.position, "lease \(seen.last?.id.rawValue ?? "")")
            }
            return seen
        }
        #expect(leases.count == allLeases(h.fsm).count)
        // The state has leases with metadata, a cleanup target, and ended ones.
        #expect(leases.contains { !$0.metadata.isEmpty } && leases.contains { $0.cleanup != nil } && leases.contains { !$0.isActive })
    }

    @Test("a huge record count in damaged bytes is refused before anything is reserved")
    func hugeCountRejected() throws {
        let empty = try LeaseStateMachine(limits: .defaults).snapshot()
        var bytes = empty
        // The lease count follows the 5-byte prefix and 11 header integers.
        let countOffset = 5 + 11 * 8
        for i in 0..<8 { bytes[countOffset + i] = 0xFF }
        let error = #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try LeaseStateMachine(snapshot: bytes, limits: .defaults)
        }
        #expect(error?.message.contains("count") == true)
    }

    @Test("equal states give equal snapshot bytes whatever the order of their history")
    func deterministicBytes() throws {
        var a = Harness()
        var b = Harness()
        // The same final state, reached with the dictionaries filled in different orders.
        _ = try a.create(key("x"), metadata: ["k1": "1", "k2": "2", "k3": "3"], suffix: "1")
        _ = try a.create(key("y"), suffix: "2")
        _ = try b.create(key("x"), metadata: ["k3": "3", "k1": "1", "k2": "2"], suffix: "1")
        _ = try b.create(key("y"), suffix: "2")
        #expect(try a.fsm.snapshot() == b.fsm.snapshot())
    }
}

extension UInt32 {
    var asByte: UInt8 { UInt8(self) }
}
