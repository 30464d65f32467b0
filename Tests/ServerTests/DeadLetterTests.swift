import GCProto
import GRPCCore
import LeaseFSM
import Server
import Synchronization
import Testing

/// A cleanup transport whose targets can be taken down and brought back:
/// a target that is down refuses every cleanup (permanently, or as a
/// transient failure); one that is up accepts it.
final class SwitchableTransport: CleanupTransport {
    private let state: Mutex<(down: Set<String>, delivered: [String])>
    let permanent: Bool

    init(down: Set<String> = [], permanent: Bool = true) {
        state = Mutex((down: down, delivered: []))
        self.permanent = permanent
    }

    func setDown(_ endpoint: String, _ down: Bool = true) {
        state.withLock { s in
            if down { s.down.insert(endpoint) } else { s.down.remove(endpoint) }
        }
    }

    /// Endpoints of the cleanups accepted, in order.
    var delivered: [String] { state.withLock { $0.delivered } }

    func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        let endpoint: String
        switch target {
        case .http(let url): endpoint = url
        case .grpc(let address): endpoint = address
        }
        let refused: Bool = state.withLock { s in
            if s.down.contains(endpoint) { return true }
            s.delivered.append(endpoint)
            return false
        }
        if refused { return .failed(reason: "target \(endpoint) refused: object store read-only", permanent: permanent) }
        return .succeeded
    }
}

/// Dead letters and the operator commands, through the gRPC API of a node.
@Suite("Dead letters and operator commands")
struct DeadLetterTests {
    static let e1 = "http://target-1.test/cleanup"
    static let e2 = "http://target-2.test/cleanup"

    func list(_ node: TestNode, cleanupStates: [DistributedGc_CleanupState] = [], endpoint: String = "") async throws -> [String] {
        var request = DistributedGc_ListLeasesRequest()
        request.cleanupStates = cleanupStates
        request.cleanupEndpoint = endpoint
        return try await node.client.listAll(request).leases.map(\.leaseID)
    }

    func info(_ node: TestNode, _ id: String) async throws -> DistributedGc_LeaseInfo {
        try await node.client.getLease(getRequest(id)).lease
    }

    func retry(ids: [String] = [], all: Bool = false, endpoint: String = "") -> DistributedGc_RetryDeadLettersRequest {
        var request = DistributedGc_RetryDeadLettersRequest()
        request.leaseIds = ids
        request.all = all
        request.cleanupEndpoint = endpoint
        return request
    }

    func forceReleaseRequest(_ id: String, reason: String) -> DistributedGc_ForceReleaseLeaseRequest {
        var request = DistributedGc_ForceReleaseLeaseRequest()
        request.leaseID = id
        request.reason = reason
        return request
    }

    // MARK: Listing

    @Test("a permanently failed cleanup is dead-lettered and listed by cleanup state and by endpoint")
    func deadLetterListed() async throws {
        let transport = SwitchableTransport(down: [Self.e1])
        try await withTestNode(transport: transport) { node in
            let a = try await node.client.createLease(createRequest(object: "a", httpEndpoint: Self.e1, maxRetries: 5))
            let b = try await node.client.createLease(createRequest(object: "b", httpEndpoint: Self.e2))
            let c = try await node.client.createLease(createRequest(object: "c", httpEndpoint: Self.e2))
            _ = try await node.client.releaseLease(releaseRequest(a.leaseID))
            _ = try await node.client.releaseLease(releaseRequest(b.leaseID))
            try await node.reapAndDispatch()

            let deadA = try await info(node, a.leaseID)
            #expect(deadA.cleanupState == .cleanupDeadLettered)
            #expect(deadA.cleanupAttempts == 1, "a permanent failure is not retried")
            #expect(deadA.lastCleanupError.contains("read-only"))
            #expect(try await info(node, b.leaseID).cleanupState == .cleanupSucceeded)

            #expect(try await list(node, cleanupStates: [.cleanupDeadLettered]) == [a.leaseID])
            #expect(try await list(node, cleanupStates: [.cleanupDeadLettered], endpoint: Self.e1) == [a.leaseID])
            #expect(try await list(node, cleanupStates: [.cleanupDeadLettered], endpoint: Self.e2).isEmpty)
            #expect(try await list(node, endpoint: Self.e1) == [a.leaseID])
            #expect(try await list(node, endpoint: Self.e2) == [b.leaseID, c.leaseID], "the endpoint filter alone: any state")
            #expect(try await list(node, endpoint: "http://nobody.test/cleanup").isEmpty)
            #expect(try await node.client.healthCheck(DistributedGc_HealthCheckRequest()).deadLetteredCleanups == 1)
        }
    }

    @Test("a cleanup that exhausts max_retries is dead-lettered and listed")
    func retriesExhaustedDeadLetter() async throws {
        let transport = SwitchableTransport(down: [Self.e1], permanent: false)
        try await withTestNode(transport: transport) { node in
            let a = try await node.client.createLease(createRequest(object: "a", httpEndpoint: Self.e1, maxRetries: 1, retryDelay: 1))
            _ = try await node.client.releaseLease(releaseRequest(a.leaseID))
            try await node.reapAndDispatch()
            #expect(try await info(node, a.leaseID).cleanupState == .cleanupPending, "one retry left")
            for _ in 0..<5 {
                node.clock.advance(seconds: 10)
                try await node.reapAndDispatch()
            }
            let dead = try await info(node, a.leaseID)
            #expect(dead.cleanupState == .cleanupDeadLettered)
            #expect(dead.cleanupAttempts == 2, "1 + max_retries attempts")
            #expect(try await list(node, cleanupStates: [.cleanupDeadLettered], endpoint: Self.e1) == [a.leaseID])
        }
    }

    // MARK: RetryDeadLetters

    @Test("RetryDeadLetters of a lease after its target recovers cleans it, and CLEANUP_RETRIED is in the event stream")
    func retryByLeaseAfterRecovery() async throws {
        let transport = SwitchableTransport(down: [Self.e1])
        try await withTestNode(transport: transport) { node in
            let a = try await node.client.createLease(createRequest(object: "a", httpEndpoint: Self.e1))
            _ = try await node.client.releaseLease(releaseRequest(a.leaseID))
            try await node.reapAndDispatch()
            #expect(try await info(node, a.leaseID).cleanupState == .cleanupDeadLettered)

            transport.setDown(Self.e1, false)
            let response = try await node.client.retryDeadLetters(retry(ids: [a.leaseID]))
            #expect(response.leaseIds == [a.leaseID])
            let queued = try await info(node, a.leaseID)
            #expect(queued.cleanupState == .cleanupPending)
            #expect(queued.cleanupAttempts == 0, "a fresh retry budget")

            try await node.reapAndDispatch()
            let cleaned = try await info(node, a.leaseID)
            #expect(cleaned.cleanupState == .cleanupSucceeded)
            #expect(transport.delivered == [Self.e1])
            #expect(try await list(node, cleanupStates: [.cleanupDeadLettered]).isEmpty)

            let sentinel = try await node.client.createLease(createRequest(object: "sentinel", httpEndpoint: nil))
            let events = try await node.client.watchEvents(afterIndex: a.fencingToken, stopAt: sentinel.leaseID)
            let kinds = events.filter { $0.leaseID == a.leaseID }.map(\.kind)
            #expect(kinds == [.released, .cleanupDeadLettered, .cleanupRetried, .cleanupSucceeded])
            let retried = try #require(events.first { $0.kind == .cleanupRetried })
            #expect(retried.reason.contains("read-only"), "the event says what failed before: \(retried.reason)")
        }
    }

    @Test("RetryDeadLetters(all, cleanup_endpoint) retries only that endpoint's dead letters")
    func retryAllOfOneEndpoint() async throws {
        let transport = SwitchableTransport(down: [Self.e1, Self.e2])
        try await withTestNode(transport: transport) { node in
            let a = try await node.client.createLease(createRequest(object: "a", httpEndpoint: Self.e1))
            let a2 = try await node.client.createLease(createRequest(object: "a2", httpEndpoint: Self.e1))
            let b = try await node.client.createLease(createRequest(object: "b", httpEndpoint: Self.e2))
            for id in [a.leaseID, a2.leaseID, b.leaseID] { _ = try await node.client.releaseLease(releaseRequest(id)) }
            try await node.reapAndDispatch()
            let dead = try await list(node, cleanupStates: [.cleanupDeadLettered])
            #expect(Set(dead) == [a.leaseID, a2.leaseID, b.leaseID])

            transport.setDown(Self.e1, false)
            transport.setDown(Self.e2, false)
            let response = try await node.client.retryDeadLetters(retry(all: true, endpoint: Self.e1))
            #expect(Set(response.leaseIds) == [a.leaseID, a2.leaseID])
            #expect(response.remaining == 0)
            #expect(try await info(node, b.leaseID).cleanupState == .cleanupDeadLettered, "another endpoint's dead letter is untouched")

            try await node.reapAndDispatch()
            #expect(try await info(node, a.leaseID).cleanupState == .cleanupSucceeded)
            #expect(try await info(node, a2.leaseID).cleanupState == .cleanupSucceeded)
            #expect(try await info(node, b.leaseID).cleanupState == .cleanupDeadLettered)
            #expect(transport.delivered == [Self.e1, Self.e1])
            #expect(try await list(node, cleanupStates: [.cleanupDeadLettered]) == [b.leaseID])
        }
    }

    @Test("naming a lease without a dead letter is FAILED_PRECONDITION and retries nothing")
    func retryWithoutDeadLetterRefused() async throws {
        let transport = SwitchableTransport(down: [Self.e1])
        try await withTestNode(transport: transport) { node in
            let dead = try await node.client.createLease(createRequest(object: "dead", httpEndpoint: Self.e1))
            let active = try await node.client.createLease(createRequest(object: "active", httpEndpoint: Self.e2))
            _ = try await node.client.releaseLease(releaseRequest(dead.leaseID))
            try await node.reapAndDispatch()
            transport.setDown(Self.e1, false)

            let error = await rpcError { try await node.client.retryDeadLetters(retry(ids: [dead.leaseID, active.leaseID])) }
            #expect(error?.code == .failedPrecondition)
            #expect(error?.message.contains(active.leaseID) == true, "\(error?.message ?? "")")
            #expect(try await info(node, dead.leaseID).cleanupState == .cleanupDeadLettered, "nothing was retried")
            try await node.reapAndDispatch()
            #expect(transport.delivered.isEmpty)

            let unknown = await rpcError { try await node.client.retryDeadLetters(retry(ids: ["00000000000000ff-00000000"])) }
            #expect(unknown?.code == .notFound)
        }
    }

    @Test("an empty RetryDeadLetters request is INVALID_ARGUMENT, as are lease ids together with all")
    func retryBadRequests() async throws {
        try await withTestNode { node in
            let empty = await rpcError { try await node.client.retryDeadLetters(DistributedGc_RetryDeadLettersRequest()) }
            #expect(empty?.code == .invalidArgument)
            #expect(empty?.message.contains("lease_ids") == true)
            let both = await rpcError { try await node.client.retryDeadLetters(retry(ids: ["00000000000000ff-00000000"], all: true)) }
            #expect(both?.code == .invalidArgument)
        }
    }

    // MARK: ForceReleaseLease

    @Test("ForceReleaseLease ends another service's active lease, with the operator's reason in the RELEASED event")
    func forceReleaseOfAnotherServicesLease() async throws {
        let transport = RecordingTransport()
        try await withTestNode(transport: transport) { node in
            let held = try await node.client.createLease(createRequest(object: "stuck", service: "svc-b", duration: 600))
            let response = try await node.client.forceReleaseLease(forceReleaseRequest(held.leaseID, reason: "holder pod gone for 2 days"))
            #expect(response.lease.leaseID == held.leaseID)
            #expect(response.lease.state == .released)
            #expect(response.lease.serviceID == "svc-b")
            #expect(response.lease.hasEndedAt)
            let after = try await info(node, held.leaseID)
            #expect(after.state == .released)
            #expect(after.cleanupState == .cleanupPending, "it was the object's last lease: its cleanup is scheduled")

            try await node.reapAndDispatch()
            #expect(transport.requests.map(\.leaseID) == [held.leaseID])

            let sentinel = try await node.client.createLease(createRequest(object: "sentinel", httpEndpoint: nil))
            let events = try await node.client.watchEvents(afterIndex: held.fencingToken, stopAt: sentinel.leaseID)
            let released = try #require(events.first { $0.leaseID == held.leaseID && $0.kind == .released })
            #expect(released.reason.contains("force-released by operator"), "\(released.reason)")
            #expect(released.reason.contains("holder pod gone for 2 days"), "\(released.reason)")
        }
    }

    @Test("ForceReleaseLease without a reason is INVALID_ARGUMENT and changes nothing")
    func forceReleaseNeedsReason() async throws {
        try await withTestNode { node in
            let held = try await node.client.createLease(createRequest(service: "svc-b"))
            for reason in ["", "   "] {
                let error = await rpcError { try await node.client.forceReleaseLease(forceReleaseRequest(held.leaseID, reason: reason)) }
                #expect(error?.code == .invalidArgument, "reason '\(reason)'")
                #expect(error?.message.contains("reason") == true)
            }
            #expect(try await info(node, held.leaseID).state == .active)
        }
    }

    @Test("ForceReleaseLease of a lease that already ended is FAILED_PRECONDITION; of an unknown one NOT_FOUND")
    func forceReleaseEnded() async throws {
        try await withTestNode { node in
            let held = try await node.client.createLease(createRequest())
            _ = try await node.client.releaseLease(releaseRequest(held.leaseID))
            let error = await rpcError { try await node.client.forceReleaseLease(forceReleaseRequest(held.leaseID, reason: "cleanup")) }
            #expect(error?.code == .failedPrecondition)
            let unknown = await rpcError { try await node.client.forceReleaseLease(forceReleaseRequest("00000000000000ff-00000000", reason: "cleanup")) }
            #expect(unknown?.code == .notFound)
        }
    }
}
