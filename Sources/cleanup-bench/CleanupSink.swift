import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import Hummingbird
import Logging
import Synchronization

/// Counts cleanup deliveries (HTTP POST /cleanup, or gRPC
/// `CleanupHandler/Cleanup`): how many, distinct idempotency keys, first and
/// last arrival.
final class DeliveryCounter: Sendable {
    struct Snapshot: Sendable {
        var deliveries = 0
        var distinctKeys = 0
        var first: ContinuousClock.Instant?
        var last: ContinuousClock.Instant?
    }

    private let state = Mutex<(snapshot: Snapshot, keys: Set<String>)>((Snapshot(), []))

    func record(key: String) {
        let now = ContinuousClock.now
        state.withLock { s in
            s.snapshot.deliveries += 1
            if s.keys.insert(key).inserted { s.snapshot.distinctKeys += 1 }
            if s.snapshot.first == nil { s.snapshot.first = now }
            s.snapshot.last = now
        }
    }

    var snapshot: Snapshot { state.withLock { $0.snapshot } }
}

struct GRPCSinkService: DistributedGc_CleanupHandler.SimpleServiceProtocol {
    let counter: DeliveryCounter

    func cleanup(request: DistributedGc_CleanupRequest, context: ServerContext) async throws -> DistributedGc_CleanupResponse {
        counter.record(key: request.idempotencyKey)
        return DistributedGc_CleanupResponse()
    }
}

enum SinkKind: String, CaseIterable, Sendable {
    case http, grpc
}

/// Runs a sink of `kind` on 127.0.0.1 for the duration of `body`, passing
/// the endpoint to put in `CleanupConfig`.
func withSink(_ kind: SinkKind, counter: DeliveryCounter, _ body: (String) async throws -> Void) async throws {
    switch kind {
    case .http:
        let router = Router()
        router.post("/cleanup") { request, _ -> Response in
            var key = ""
            for field in request.headers where field.name.canonicalName == "idempotency-key" { key = field.value }
            counter.record(key: key)
            return Response(status: .ok)
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "sink", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port != 0 else { throw BenchFailure("HTTP sink did not start") }
            try await body("http://127.0.0.1:\(port)/cleanup")
            group.cancelAll()
        }
    case .grpc:
        let server = GRPCServer(
            transport: HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext),
            services: [GRPCSinkService(counter: counter)])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            guard let address = try await server.listeningAddress?.ipv4 else { throw BenchFailure("gRPC sink did not start") }
            defer { server.beginGracefulShutdown() }
            try await body("127.0.0.1:\(address.port)")
        }
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
