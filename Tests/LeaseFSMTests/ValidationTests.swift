import Testing
@testable import LeaseFSM

/// Stateless checks of commands: every refusal is INVALID_ARGUMENT naming the
/// field, and changes nothing but the applied index and now.
@Suite("Command validation")
struct ValidationTests {
    static func create(object: String = "obj", service: String = "svc", suffix: String = "abc",
                       duration: UInt64 = 60, metadata: [String: String] = [:],
                       cleanup: CleanupSpec? = nil) -> LeaseCommand {
        .create(.init(leaseIDSuffix: suffix, object: key(object), serviceID: service, durationSeconds: duration,
                      metadata: metadata, cleanup: cleanup))
    }

    func expectInvalid(_ command: LeaseCommand, field: String, limits: LeaseLimits = .defaults,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        var h = Harness(limits: limits)
        // Some state to be left alone.
        let duration = limits.minDurationSeconds
        let held = try h.create(key("held"), duration: duration, cleanup: httpCleanup(), sourceLocation: sourceLocation)
        // A pending cleanup of the object the commands name (a create would supersede it).
        let ended = try h.create(key("obj"), duration: duration, cleanup: httpCleanup(), sourceLocation: sourceLocation)
        try h.release(ended.id, sourceLocation: sourceLocation)
        try #require(h.fsm.pendingCleanupCount == 1, sourceLocation: sourceLocation)
        h.advance(seconds: 1)
        h.expectRefused(command, .invalidArgument, field: field, sourceLocation: sourceLocation)
        #expect(limits.validate(command)?.field == field, sourceLocation: sourceLocation)
        #expect(h.fsm.lease(held.id)?.isActive == true, sourceLocation: sourceLocation)
    }

    func expectValid(_ command: LeaseCommand, limits: LeaseLimits = .defaults,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(limits.validate(command) == nil, sourceLocation: sourceLocation)
        var h = Harness(limits: limits)
        let out = h.apply(command)
        #expect(out.error == nil, "\(String(describing: out.error))", sourceLocation: sourceLocation)
    }

    // MARK: ids

    @Test("object and service ids must be 1 to 256 bytes (UTF-8)")
    func idSizes() throws {
        try expectInvalid(Self.create(object: ""), field: "object_id")
        try expectInvalid(Self.create(service: ""), field: "service_id")
        try expectInvalid(Self.create(object: String(repeating: "x", count: 257)), field: "object_id")
        try expectInvalid(Self.create(service: String(repeating: "x", count: 257)), field: "service_id")
        // 129 characters but 258 bytes: bytes count.
        try expectInvalid(Self.create(object: String(repeating: "é", count: 129)), field: "object_id")
        expectValid(Self.create(object: String(repeating: "x", count: 256), service: String(repeating: "é", count: 128)))
    }

    @Test("the lease id suffix must be 1 to 16 lowercase ASCII hex digits", arguments: [
        "", "0123456789abcdef0", "ABC", "aBc", "xyz", "12-4", " ab", "\u{FF41}", "\u{FF10}1",
    ])
    func badSuffix(_ suffix: String) throws {
        try expectInvalid(Self.create(suffix: suffix), field: "lease_id_suffix")
    }

    @Test("well-formed suffixes are accepted and end up in the id", arguments: ["0", "f", "0123456789abcdef", "deadbeef"])
    func goodSuffix(_ suffix: String) throws {
        var h = Harness()
        let lease = try h.create(suffix: suffix)
        #expect(lease.id.rawValue == "0000000000000001-\(suffix)")
    }

    // MARK: durations

    @Test("create durations outside [min, max] are refused; the bounds themselves are accepted")
    func durationRange() throws {
        try expectInvalid(Self.create(duration: 29), field: "lease_duration_seconds")
        try expectInvalid(Self.create(duration: 3601), field: "lease_duration_seconds")
        try expectInvalid(Self.create(duration: .max), field: "lease_duration_seconds")
        expectValid(Self.create(duration: 30))
        expectValid(Self.create(duration: 3600))
        var limits = LeaseLimits()
        limits.minDurationSeconds = 5
        limits.maxDurationSeconds = 10
        limits.defaultDurationSeconds = 7
        try expectInvalid(Self.create(duration: 11), field: "lease_duration_seconds", limits: limits)
        expectValid(Self.create(duration: 5), limits: limits)
        expectValid(Self.create(duration: 0), limits: limits)
    }

    @Test("a 0 duration is checked as the default it resolves to")
    func defaultDurationChecked() throws {
        var limits = LeaseLimits()
        limits.defaultDurationSeconds = 10  // below the minimum of 30
        try expectInvalid(Self.create(duration: 0), field: "lease_duration_seconds", limits: limits)
    }

    // MARK: metadata

    @Test("metadata: at most 64 entries, 16 KiB of keys and values, no empty key")
    func metadataLimits() throws {
        let sixtyFour = Dictionary(uniqueKeysWithValues: (0..<64).map { ("k\($0)", "v") })
        expectValid(Self.create(metadata: sixtyFour))
        var sixtyFive = sixtyFour
        sixtyFive["k64"] = "v"
        try expectInvalid(Self.create(metadata: sixtyFive), field: "metadata")
        // key 1 byte + value 16383 bytes = 16384: the limit itself.
        expectValid(Self.create(metadata: ["k": String(repeating: "v", count: 16 * 1024 - 1)]))
        try expectInvalid(Self.create(metadata: ["k": String(repeating: "v", count: 16 * 1024)]), field: "metadata")
        try expectInvalid(Self.create(metadata: ["kk": String(repeating: "v", count: 8 * 1024),
                                                 "ll": String(repeating: "v", count: 8 * 1024)]), field: "metadata")
        try expectInvalid(Self.create(metadata: ["": "v"]), field: "metadata")
        expectValid(Self.create(metadata: ["k": ""]))
    }

    // MARK: cleanup config

    @Test("cleanup payload: at most 64 KiB, and only with an endpoint")
    func payload() throws {
        expectValid(Self.create(cleanup: httpCleanup(payload: String(repeating: "p", count: 64 * 1024))))
        try expectInvalid(Self.create(cleanup: httpCleanup(payload: String(repeating: "p", count: 64 * 1024 + 1))),
                          field: "cleanup_config.cleanup_payload")
        try expectInvalid(Self.create(cleanup: CleanupSpec(payload: "orphan")), field: "cleanup_config")
    }

    @Test("cleanup max_retries at most 100 and retry_delay at most 86400 s")
    func retryLimits() throws {
        expectValid(Self.create(cleanup: httpCleanup(maxRetries: 100, retryDelaySeconds: 86_400)))
        try expectInvalid(Self.create(cleanup: httpCleanup(maxRetries: 101)), field: "cleanup_config.max_retries")
        try expectInvalid(Self.create(cleanup: httpCleanup(retryDelaySeconds: 86_401)),
                          field: "cleanup_config.retry_delay_seconds")
    }

    static let goodHTTP = [
        "http://orders:8080/cleanup", "https://orders.example.com", "HTTPS://Orders.Example.com/x",
        "http://user:pw@host:1/x?y=1#z", "http://[::1]:8080/cleanup", "http://[::1]", "http://10.0.0.1",
        "https://host:65535", "http://my_host", "http://host?x", "http://host#frag",
    ]
    static let badHTTP = [
        "ftp://orders/x", "orders:8080", "http://", "https://", "http:///path", "http://host:0",
        "http://host:65536", "http://host:123456", "http://host:abc", "http://host:", "http://host:80:90",
        "http://ho st/", "http://host/a b", "http://[::1", "http://[::1]x", "http://[::1]:", "http://hö.st",
        "http://:8080", "//host", "http:/host",
    ]
    static let goodGRPC = [
        "orders:50051", "orders:50051/anything", "10.0.0.1:1", "[::1]:50051", "my_host.internal:443/a/b",
        "h:65535",
    ]
    static let badGRPC = [
        "orders", "orders:", ":50051", "orders:0", "orders:70000", "http://orders:50051", "orders:50051 ",
        "[::1]", "[::1]:", "a:b:c", "orders:5x", "dns:///orders:50051", "ör:1", "/x",
    ]

    @Test("valid HTTP endpoints are accepted", arguments: goodHTTP)
    func validHTTP(_ url: String) {
        #expect(EndpointSyntax.isHTTPURL(url))
        expectValid(Self.create(cleanup: CleanupSpec(httpEndpoint: url)))
    }

    @Test("malformed HTTP endpoints are refused naming cleanup_http_endpoint", arguments: badHTTP)
    func invalidHTTP(_ url: String) throws {
        #expect(!EndpointSyntax.isHTTPURL(url))
        try expectInvalid(Self.create(cleanup: CleanupSpec(httpEndpoint: url)),
                          field: "cleanup_config.cleanup_http_endpoint")
    }

    @Test("valid gRPC targets are accepted", arguments: goodGRPC)
    func validGRPC(_ target: String) {
        #expect(EndpointSyntax.isGRPCTarget(target))
        expectValid(Self.create(cleanup: CleanupSpec(grpcEndpoint: target)))
    }

    @Test("malformed gRPC targets are refused naming cleanup_endpoint", arguments: badGRPC)
    func invalidGRPC(_ target: String) throws {
        #expect(!EndpointSyntax.isGRPCTarget(target))
        try expectInvalid(Self.create(cleanup: CleanupSpec(grpcEndpoint: target)),
                          field: "cleanup_config.cleanup_endpoint")
    }

    @Test("both endpoints are checked even though HTTP wins")
    func bothChecked() throws {
        try expectInvalid(Self.create(cleanup: CleanupSpec(httpEndpoint: "http://ok:1", grpcEndpoint: "bad")),
                          field: "cleanup_config.cleanup_endpoint")
        try expectInvalid(Self.create(cleanup: CleanupSpec(httpEndpoint: "bad", grpcEndpoint: "ok:1")),
                          field: "cleanup_config.cleanup_http_endpoint")
    }

    // MARK: other commands

    @Test("renew: service id, 1 to 1000 non-empty lease ids, extension 0 or within [min, max]")
    func renewValidation() throws {
        func renew(_ ids: [String], service: String = "svc", extend: UInt64 = 0) -> LeaseCommand {
            .renew(.init(leaseIDs: ids.map(LeaseID.init), serviceID: service, extendSeconds: extend))
        }
        try expectInvalid(renew(["a"], service: ""), field: "service_id")
        try expectInvalid(renew([]), field: "lease_ids")
        try expectInvalid(renew((0...1000).map { "id\($0)" }), field: "lease_ids")
        expectValid(renew((0..<1000).map { "id\($0)" }))
        try expectInvalid(renew(["a", ""]), field: "lease_id")
        try expectInvalid(renew([String(repeating: "a", count: 257)]), field: "lease_id")
        try expectInvalid(renew(["a"], extend: 29), field: "extend_duration_seconds")
        try expectInvalid(renew(["a"], extend: 3601), field: "extend_duration_seconds")
        expectValid(renew(["a"], extend: 30))
        expectValid(renew(["a"], extend: 3600))
    }

    @Test("release: non-empty lease id and service id")
    func releaseValidation() throws {
        try expectInvalid(.release(.init(leaseID: LeaseID(""), serviceID: "svc")), field: "lease_id")
        try expectInvalid(.release(.init(leaseID: LeaseID("a"), serviceID: "")), field: "service_id")
        try expectInvalid(.release(.init(leaseID: LeaseID(String(repeating: "a", count: 257)), serviceID: "s")),
                          field: "lease_id")
    }

    @Test("expire: 1 to 10000 lease ids")
    func expireValidation() throws {
        try expectInvalid(.expire(.init(leaseIDs: [])), field: "lease_ids")
        try expectInvalid(.expire(.init(leaseIDs: (0...10_000).map { LeaseID("x\($0)") })), field: "lease_ids")
        #expect(LeaseLimits.defaults.validate(.expire(.init(leaseIDs: (0..<10_000).map { LeaseID("x\($0)") }))) == nil)
    }

    @Test("cleanup outcomes number attempts from 1; retries name at least one job")
    func cleanupValidation() throws {
        try expectInvalid(.cleanupOutcome(.init(jobID: 1, attempt: 0, result: .succeeded)), field: "attempt")
        try expectInvalid(.retryDeadLetters(.init(jobIDs: [])), field: "job_ids")
    }
}
