import Testing
@testable import LeaseFSM

@Suite("Command encoding")
struct CommandEncodingTests {
    static let commands: [StampedCommand] = [
        StampedCommand(.create(.init(
            leaseIDSuffix: "0123456789abcdef", object: key("row-1", .databaseRow), serviceID: "orders",
            durationSeconds: 120, metadata: ["a": "1", "é": "ü", "empty": ""],
            cleanup: CleanupSpec(httpEndpoint: "https://o:1/c", grpcEndpoint: "o:2", payload: "{\"x\":1}",
                                 maxRetries: 4, retryDelaySeconds: 6))), stamp: t0),
        StampedCommand(.create(.init(
            leaseIDSuffix: "a", object: key("", .unknown), serviceID: "", durationSeconds: 0)), stamp: .zero),
        StampedCommand(.create(.init(
            leaseIDSuffix: "b", object: key("f", .custom), serviceID: "s", durationSeconds: 1,
            cleanup: CleanupSpec())), stamp: WallTime(milliseconds: -5)),
        StampedCommand(.renew(.init(leaseIDs: [LeaseID("x"), LeaseID("y"), LeaseID("x")], serviceID: "s",
                                    extendSeconds: 77)), stamp: WallTime(milliseconds: .max)),
        StampedCommand(.renew(.init(leaseIDs: [], serviceID: "")), stamp: WallTime(milliseconds: .min)),
        StampedCommand(.release(.init(leaseID: LeaseID("0000000000000001-a"), serviceID: "svc")), stamp: t0),
        StampedCommand(.expire(.init(leaseIDs: [LeaseID("b"), LeaseID("a")])), stamp: t0),
        StampedCommand(.cleanupOutcome(.init(jobID: 42, attempt: 3, result: .succeeded)), stamp: t0),
        StampedCommand(.cleanupOutcome(.init(jobID: .max, attempt: 1, result: .failed(
            error: "503 Service Unavailable", retryAfterMilliseconds: 12_345, permanent: false))), stamp: t0),
        StampedCommand(.cleanupOutcome(.init(jobID: 1, attempt: .max, result: .failed(
            error: "", retryAfterMilliseconds: -1, permanent: true))), stamp: t0),
        StampedCommand(.cleanupOutcome(.init(jobID: 1, attempt: 2, result: .failed(
            error: "", retryAfterMilliseconds: 0, permanent: false))), stamp: t0),
        StampedCommand(.retryDeadLetters(.init(jobIDs: [3, 1, 2, 1])), stamp: t0),
        StampedCommand(.cleanupOutcomes([
            .init(jobID: 7, attempt: 1, result: .succeeded),
            .init(jobID: 9, attempt: 4, result: .failed(error: "timeout", retryAfterMilliseconds: 800, permanent: false)),
        ]), stamp: t0),
        StampedCommand(.release(.forced(LeaseID("0000000000000001-a"), reason: "holder decommissioned")), stamp: t0),
        StampedCommand(.renewals([
            .init(leaseID: LeaseID("0000000000000001-a"), serviceID: "svc", extendSeconds: 30),
            .init(leaseID: LeaseID("0000000000000002-b"), serviceID: "other"),
        ]), stamp: t0),
    ]

    @Test("every command kind survives encoded() and init(decoding:) unchanged", arguments: commands)
    func roundTrip(_ command: StampedCommand) throws {
        let bytes = command.encoded()
        #expect(!bytes.isEmpty)
        let decoded = try StampedCommand(decoding: bytes)
        #expect(decoded == command)
        #expect(decoded.encoded() == bytes)
    }

    @Test("the commands above cover every command kind")
    func coversAllKinds() {
        var kinds = Set<String>()
        for c in Self.commands {
            switch c.command {
            case .create: kinds.insert("create")
            case .renew: kinds.insert("renew")
            case .release: kinds.insert("release")
            case .expire: kinds.insert("expire")
            case .cleanupOutcome: kinds.insert("outcome")
            case .retryDeadLetters: kinds.insert("retry")
            case .cleanupOutcomes: kinds.insert("outcomes")
            case .renewals: kinds.insert("renewals")
            }
        }
        #expect(kinds.count == 8)
    }

    @Test("a decoded command applies exactly as the original")
    func decodedApplies() throws {
        var a = Harness()
        var b = Harness()
        let create = StampedCommand(a.createCommand(key("x"), cleanup: httpCleanup(), metadata: ["k": "v"]),
                                    stamp: t0.plus(seconds: 3))
        let outA = a.fsm.apply(create, index: 1)
        let outB = b.fsm.apply(try StampedCommand(decoding: create.encoded()), index: 1)
        #expect(outA == outB)
        #expect(a.fsm == b.fsm)
    }

    @Test("encoding is deterministic for maps")
    func deterministic() {
        func make(_ metadata: [String: String]) -> StampedCommand {
            StampedCommand(.create(.init(leaseIDSuffix: "a", object: key("x"), serviceID: "s", durationSeconds: 60,
                                         metadata: metadata)), stamp: t0)
        }
        var m1: [String: String] = [:]
        var m2: [String: String] = [:]
        for i in 0..<50 { m1["k\(i)"] = "\(i)" }
        for i in (0..<50).reversed() { m2["k\(i)"] = "\(i)" }
        #expect(make(m1).encoded() == make(m2).encoded())
    }

    @Test("garbage bytes are rejected", arguments: [[0xff, 0xff], [0x08], [0x52, 0x10, 0x01]] as [[UInt8]])
    func garbage(_ bytes: [UInt8]) {
        #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try StampedCommand(decoding: bytes)
        }
    }

    @Test("a record without version, or of a newer version, is rejected")
    func versions() throws {
        let bytes = Self.commands[0].encoded()
        #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try StampedCommand(decoding: [])
        }
        let newer = bytes + [0x08, UInt8(StampedCommand.encodingVersion) + 1]
        let error = #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try StampedCommand(decoding: newer)
        }
        #expect(error?.message.contains("version") == true)
        #expect(try StampedCommand(decoding: bytes + [0x08, UInt8(StampedCommand.encodingVersion)]) == Self.commands[0])
    }

    @Test("a versioned record without a command body is rejected")
    func noBody() {
        let error = #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try StampedCommand(decoding: [0x08, 0x01, 0x10, 0x05])
        }
        #expect(error?.message.contains("no body") == true)
    }

    @Test("a create naming an unknown object type is rejected")
    func unknownObjectType() {
        // version 1; create (field 10) { object (field 2) { type (field 1) = 99 } }
        let bytes: [UInt8] = [0x08, 0x01, 0x52, 0x04, 0x12, 0x02, 0x08, 99]
        #expect(throws: LeaseStateMachine.DecodingError.self) {
            _ = try StampedCommand(decoding: bytes)
        }
    }
}
