import AsyncHTTPClient
import LeaseFSM
import NIOCore
import NIOHTTP1
import Raft
import Synchronization
@testable import Server
import Testing

@Suite("Health endpoints tell the truth")
struct NodeHealthTests {
    @Test("live until the node stops itself; ready only with a leader and a small apply lag")
    func livenessAndReadiness() async {
        let problem = Mutex<String?>(nil)
        let raft = Mutex((leaderKnown: false, commit: UInt64(10), applied: UInt64(10)))
        var health = NodeHealth(problem: { problem.withLock { $0 } }, raft: { raft.withLock { $0 } })
        health.maxApplyLag = 100
        #expect(health.liveness().ok)
        #expect(await !health.readiness().ok, "no leader yet")
        raft.withLock { $0 = (true, 500, 10) }
        let lagging = await health.readiness()
        #expect(!lagging.ok && lagging.reason.contains("490"))
        raft.withLock { $0 = (true, 500, 450) }
        #expect(await health.readiness().ok)
        problem.withLock { $0 = "storage failed: disk full" }
        #expect(!health.liveness().ok && health.liveness().reason.contains("disk full"))
        #expect(await !health.readiness().ok)
    }
}

@Suite("Health endpoints over HTTP")
struct HealthHTTPTests {
    @Test("/healthz and /readyz answer 503 with the reason once a failed write stopped the node")
    func poisonedStoreFailsHealthz() async throws {
        let storage = MemoryStorage()
        let store = try RaftLeaseStore(storage: storage, limits: LeaseLimits(), clock: ManualWallClock(), logger: quietLogger)
        try await store.start()
        _ = try await store.propose(RaftLeaseStoreTests.create("a"), origin: nil)
        let port = Mutex<Int?>(nil)
        let server = try MetricsHTTPServer(host: "127.0.0.1", port: 0, metrics: SidecarMetrics(), logger: quietLogger,
                                           health: NodeHealth(store: store)) { bound in port.withLock { $0 = bound } }
        let http = HTTPClient.shared
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            let deadline = ContinuousClock.now + .seconds(10)
            while port.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            let bound = try #require(port.withLock { $0 })
            func get(_ path: String) async throws -> (Int, String) {
                let response = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(bound)\(path)"), timeout: .seconds(5))
                let body = try await response.body.collect(upTo: 4096)
                return (Int(response.status.code), String(buffer: body))
            }
            #expect(try await get("/healthz").0 == 200)
            #expect(try await get("/readyz").0 == 200)
            await store.withStorage { ($0 as? MemoryStorage)?.failPersists = true }
            _ = try? await store.propose(RaftLeaseStoreTests.create("b"), origin: nil)
            let (code, body) = try await get("/healthz")
            #expect(code == 503)
            #expect(body.contains("could not be written"), "\(body)")
            #expect(try await get("/readyz").0 == 503)
        }
    }
}
