import Foundation
import GCProto
import GRPCCore
import Hummingbird
import LeaseFSM
import Logging
import NIOCore
import Server
import Synchronization
import Testing

/// Maps names to addresses without any traffic (the delivery-time check's
/// resolver). Unknown names fail to resolve.
struct MapResolver: EgressResolver {
    let names: [String: [String]]

    func addresses(of host: String, port: Int) async throws -> [IPAddress] {
        guard let list = names[host] else { throw TestFailure("\(host) does not resolve") }
        return list.compactMap { IPAddress($0) }
    }
}

/// Egress refusals, by stage.
final class DenialLog: Sendable {
    private let stages = Mutex<[EgressStage]>([])
    var all: [EgressStage] { stages.withLock { $0 } }
    func record(_ stage: EgressStage) { stages.withLock { $0.append(stage) } }
}

/// A manual monotonic clock for the gRPC client pool's idle times.
final class ManualInstant: Sendable {
    private let base = ContinuousClock.now
    private let offset = Mutex(Duration.zero)
    func now() -> ContinuousClock.Instant { base + offset.withLock { $0 } }
    func advance(_ d: Duration) { offset.withLock { $0 += d } }
}

/// Runs a Hummingbird server with `router` on 127.0.0.1:0 for the duration
/// of `body`, which gets its port.
func withHTTPServer(_ router: Router<BasicRequestContext>, _ body: (Int) async throws -> Void) async throws {
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
        logger: Logger(label: "sink", factory: { _ in SwiftLogNoOpLogHandler() }))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port != 0 else { throw TestFailure("server did not start") }
        do {
            try await body(port)
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
    }
}

/// Counts requests to POST /cleanup and answers 200.
final class HitCounter: Sendable {
    private let hits = Mutex<[String]>([])
    var count: Int { hits.withLock { $0.count } }
    var hosts: [String] { hits.withLock { $0 } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/cleanup") { request, _ -> Response in
            self.hits.withLock { $0.append(request.head.authority ?? "") }
            return Response(status: .ok)
        }
        return router
    }
}

@Suite("Cleanup egress")
struct CleanupEgressTests {
    static let timeout = Duration.seconds(10)

    static func failure(_ result: CleanupAttemptResult) -> (reason: String, permanent: Bool)? {
        if case .failed(let reason, let permanent) = result { return (reason, permanent) }
        return nil
    }

    static func request() throws -> CleanupRequest { try GRPCCleanupTransportTests.sampleRequest() }

    /// Names used below: one rebinding to metadata, one half-bad, one to loopback.
    static func egress(_ log: DenialLog, policy: EgressPolicy = EgressPolicy()) -> CleanupEgress {
        CleanupEgress(
            policy: policy,
            resolver: MapResolver(names: [
                "rebind.test": ["169.254.169.254"],
                "mixed.test": ["127.0.0.1", "::ffff:169.254.169.254"],
                "sink.test": ["127.0.0.1"],
            ]),
            onDenied: { log.record($0) })
    }

    // MARK: Create time

    @Test("a create whose endpoint is a metadata address is INVALID_ARGUMENT saying what to fix, and changes nothing",
          arguments: [("http://169.254.169.254/latest/meta-data", "cleanup_config.cleanup_http_endpoint", "169.254.169.254"),
                      ("http://[::ffff:169.254.169.254]:80/x", "cleanup_config.cleanup_http_endpoint", "[::ffff:169.254.169.254]"),
                      ("http://metadata.google.internal/computeMetadata", "cleanup_config.cleanup_http_endpoint", "metadata.google.internal"),
                      ("http://2852039166/x", "cleanup_config.cleanup_http_endpoint", "2852039166"),
                      ("grpc:169.254.169.254:80", "cleanup_config.cleanup_endpoint", "169.254.169.254"),
                      ("grpc:[fe80::1]:50051", "cleanup_config.cleanup_endpoint", "[fe80::1]")])
    func createDenied(_ endpoint: String, _ field: String, _ host: String) async throws {
        try await withTestNode { node in
            let request = endpoint.hasPrefix("grpc:")
                ? grpcCreateRequest(endpoint: String(endpoint.dropFirst(5)))
                : createRequest(httpEndpoint: endpoint)
            let error = try #require(await rpcError { try await node.client.createLease(request) })
            #expect(error.code == .invalidArgument)
            #expect(error.message.hasPrefix("\(field): cleanup endpoint host \(host) is denied ("), "\(error.message)")
            #expect(error.message.contains("see GC_CLEANUP_ALLOW"))
            var list = DistributedGc_ListLeasesRequest()
            list.states = [.active, .expired, .released]
            #expect(try await node.client.listLeases(list).leases.isEmpty, "nothing was created")
            #expect(node.sidecar.metrics.exposition().contains(#"gc_cleanup_egress_denied_total{stage="create"} 1"#))
        }
    }

    @Test("URLs with credentials are refused at create time, and the credentials are not echoed")
    func credentialsRefused() async throws {
        try await withTestNode { node in
            let error = try #require(await rpcError {
                try await node.client.createLease(createRequest(httpEndpoint: "http://user:hunter2@127.0.0.1:8080/cleanup"))
            })
            #expect(error.code == .invalidArgument)
            #expect(error.message.hasPrefix("cleanup_config.cleanup_http_endpoint: credentials in the URL"), "\(error.message)")
            #expect(!error.message.contains("hunter2"))
        }
    }

    @Test("an endpoint longer than 2048 bytes is refused at create time")
    func tooLong() async throws {
        try await withTestNode { node in
            let long = "http://127.0.0.1:8080/" + String(repeating: "a", count: 2_100)
            let error = try #require(await rpcError { try await node.client.createLease(createRequest(httpEndpoint: long)) })
            #expect(error.code == .invalidArgument)
            #expect(error.message == "cleanup_config.cleanup_http_endpoint: is \(long.utf8.count) bytes; at most 2048 bytes are allowed")
            // At the limit it is fine.
            let fits = "http://127.0.0.1:8080/" + String(repeating: "a", count: 2_048 - 22)
            _ = try await node.client.createLease(createRequest(httpEndpoint: fits))
        }
    }

    @Test("with GC_CLEANUP_ALLOW set, a create outside it is refused; loopback and names it matches are fine")
    func allowlistAtCreate() async throws {
        let policy = try EgressPolicy(allowlist: "*.svc.cluster.local,10.0.0.0/8")
        try await withTestNode(configure: { $0.cleanupEgress = policy }) { node in
            let error = try #require(await rpcError { try await node.client.createLease(createRequest(httpEndpoint: "http://127.0.0.1:8080/cleanup")) })
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("127.0.0.1 is denied (not in GC_CLEANUP_ALLOW)"), "\(error.message)")
            _ = try await node.client.createLease(createRequest(object: "a", httpEndpoint: "http://orders.svc.cluster.local/cleanup"))
            _ = try await node.client.createLease(createRequest(object: "b", httpEndpoint: "http://10.1.2.3:8080/cleanup"))
        }
    }
}
