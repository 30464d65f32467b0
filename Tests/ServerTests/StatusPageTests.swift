import Foundation
import GCProto
import LeaseFSM
@testable import Server
import Testing

@Suite("Status page model")
struct StatusPageTests {
    static func stats(expired: UInt64 = 0, succeeded: UInt64 = 0, failed: UInt64 = 0) -> LeaseStats {
        var stats = LeaseStats()
        stats.expired = expired
        stats.cleanupSucceeded = succeeded
        stats.cleanupFailures = failed
        return stats
    }

    @Test("rates are the totals' growth per second between consecutive samples")
    func ratesPerSecond() {
        let history = RateHistory(capacity: 10)
        history.record(.init(at: WallTime(milliseconds: 10_000), stats: Self.stats(expired: 100, succeeded: 10)))
        history.record(.init(at: WallTime(milliseconds: 15_000), stats: Self.stats(expired: 150, succeeded: 10, failed: 5)))
        history.record(.init(at: WallTime(milliseconds: 17_000), stats: Self.stats(expired: 150, succeeded: 30, failed: 5)))
        let rates = history.rates
        #expect(rates.map(\.at) == [15_000, 17_000])
        #expect(rates.map(\.expired) == [10, 0])
        #expect(rates.map(\.cleanupSucceeded) == [0, 10])
        #expect(rates.map(\.cleanupFailed) == [1, 0])
    }

    @Test("the ring keeps the newest samples; a clock stepping back replaces the last one; a shrinking total is no negative rate")
    func ringBufferBounds() {
        let history = RateHistory(capacity: 3)
        for second in 1...5 {
            history.record(.init(at: WallTime(seconds: Int64(second)), stats: Self.stats(expired: UInt64(second))))
        }
        #expect(history.recorded.map(\.at.milliseconds) == [3_000, 4_000, 5_000])
        history.record(.init(at: WallTime(seconds: 4), stats: Self.stats(expired: 9)))
        #expect(history.recorded.map(\.at.milliseconds) == [3_000, 4_000, 5_000], "no sample goes back in time")
        #expect(history.recorded.last?.stats.expired == 9)
        history.record(.init(at: WallTime(seconds: 6), stats: Self.stats(expired: 2)))
        #expect(history.rates.last?.expired == 0)
        #expect(RateHistory().rates.isEmpty)
    }

    @Test("an event's SSE id names the cursor just after it; anything else is no cursor")
    func eventIDRoundTrip() {
        #expect(StatusPage.cursor(afterEventID: "42.3") == EventHub.Cursor(index: 42, position: 3))
        #expect(StatusPage.cursor(afterEventID: "42") == nil)
        #expect(StatusPage.cursor(afterEventID: "x.1") == nil)
        #expect(StatusPage.cursor(afterEventID: "1.2.3") == nil)
    }

    static func page(_ node: TestNode) -> StatusPage {
        StatusPage(store: node.sidecar.store, admin: node.sidecar.admin, dispatcher: node.sidecar.dispatcher,
                   security: node.sidecar.security, logger: quietLogger)
    }

    @Test("without an authorization policy anyone may retry; the snapshot counts leases by service and type")
    func openNodeSnapshot() async throws {
        try await withTestNode { node in
            _ = try await node.client.createLease(createRequest(object: "b1", type: .blobStorage, service: "uploads"))
            let page = Self.page(node)
            let anyone = try page.authorizeRetry(authorization: nil, certificate: nil)
            #expect(anyone == "anonymous")
            let snapshot = await page.snapshot()
            #expect(snapshot.security.retryRequires == "none")
            #expect(snapshot.cluster.leader == snapshot.node)
            #expect(snapshot.leases.active == 1)
            #expect(snapshot.leases.byService.map(\.name) == ["uploads"])
            #expect(snapshot.leases.byType.map(\.name) == ["BLOB_STORAGE"])
            #expect(snapshot.leases.consistency == "linearizable")
            #expect(snapshot.deadLetters.total == 0)
            await #expect(throws: StatusPage.RetryRefusal.self) {
                try await page.retryDeadLetters(leaseIDs: ["0000000000000002-00000000"], all: false, by: "anonymous")
            }
            let retried = try await page.retryDeadLetters(leaseIDs: [], all: true, by: "anonymous")
            #expect(retried == [])
        }
    }

    @Test("with an authorization policy only an operator may retry: no credentials 401, a non-operator 403")
    func retryNeedsAnOperator() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ui-policy-\(UUID().uuidString).yaml").path
        try """
            identities:
              ops: { roles: [operator] }
              orders: { services: [orders] }
            tokens:
              - { identity: ops, sha256: "\(Authenticator.sha256Hex("ops-secret"))" }
              - { identity: orders, sha256: "\(Authenticator.sha256Hex("orders-secret"))" }
            """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await withTestNode(configure: { $0.security.authPolicyFile = path }) { node in
            // The harness's client must have started connecting before the body ends.
            _ = try? await node.client.healthCheck(DistributedGc_HealthCheckRequest())
            let page = Self.page(node)
            #expect(page.retryRequirement == "operator token")
            #expect(throws: StatusPage.RetryRefusal.self) { try page.authorizeRetry(authorization: nil, certificate: nil) }
            do throws(StatusPage.RetryRefusal) {
                _ = try page.authorizeRetry(authorization: nil, certificate: nil)
            } catch {
                #expect(error.status == 401)
            }
            do throws(StatusPage.RetryRefusal) {
                _ = try page.authorizeRetry(authorization: "Bearer orders-secret", certificate: nil)
                Issue.record("a non-operator was allowed to retry")
            } catch {
                #expect(error.status == 403)
            }
            do throws(StatusPage.RetryRefusal) {
                _ = try page.authorizeRetry(authorization: "Bearer guessed", certificate: nil)
                Issue.record("an unknown token was allowed to retry")
            } catch {
                #expect(error.status == 401)
            }
            let byToken = try page.authorizeRetry(authorization: "Bearer ops-secret", certificate: nil)
            #expect(byToken == "ops")
            let byCertificate = try page.authorizeRetry(authorization: nil, certificate: CertificateNames(commonName: "ops"))
            #expect(byCertificate == "ops")
        }
    }
}
