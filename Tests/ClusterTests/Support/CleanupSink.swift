import ChaosCheck
import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A local HTTP cleanup target that records every delivery: which object,
/// which node delivered it (`X-GC-Node`), and when. `POST /cleanup`
/// succeeds; `POST /flaky` fails the first attempt (503), then succeeds;
/// `POST /slow` takes the request (recorded on arrival, as done) but holds
/// its answer for `slowHold`, so the delivering sidecar keeps its claim
/// that long. With a recorder, deliveries also go into a chaos history.
final class CleanupSink: Sendable {
    let recorder: HistoryRecorder?
    let slowHold: Duration

    init(recorder: HistoryRecorder? = nil, slowHold: Duration = .seconds(1)) {
        self.recorder = recorder
        self.slowHold = slowHold
    }

    struct Delivery: Sendable {
        var objectID: String
        var node: String
        var idempotencyKey: String
        var at: ContinuousClock.Instant
    }

    private let state = Mutex<[Delivery]>([])

    var deliveries: [Delivery] { state.withLock { $0 } }

    /// Runs the sink on 127.0.0.1:0 for the duration of `body`, passing its URL.
    func run(_ body: (String) async throws -> Void) async throws {
        let router = Router()
        for path in ["cleanup", "flaky", "slow"] {
            router.post(RouterPath(stringLiteral: "/\(path)")) { request, _ -> Response in
                let bytes = try await request.body.collect(upTo: 1 << 20)
                let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
                var headers: [String: String] = [:]
                for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
                let delivery = Delivery(
                    objectID: json["object_id"] as? String ?? "?",
                    node: headers["x-gc-node"] ?? "?",
                    idempotencyKey: headers["idempotency-key"] ?? "?",
                    at: .now)
                self.state.withLock { $0.append(delivery) }
                let attempt = (json["attempt"] as? NSNumber)?.uint32Value ?? 1
                let succeeded = path != "flaky" || attempt > 1
                self.recorder?.deliver { seq, at in
                    ChaosCheck.Delivery(
                        node: delivery.node, object: "\(json["object_type"] as? String ?? "?")/\(delivery.objectID)",
                        incarnation: (json["incarnation"] as? NSNumber)?.uint64Value ?? 0,
                        leaseID: json["lease_id"] as? String ?? "?", idempotencyKey: delivery.idempotencyKey,
                        fencingToken: (json["fencing_token"] as? NSNumber)?.uint64Value ?? 0, attempt: attempt,
                        atMs: at, seq: seq, succeeded: succeeded, confirmation: nil)
                }
                if path == "slow" { try await Task.sleep(for: self.slowHold) }
                return Response(status: succeeded ? .ok : .serviceUnavailable)
            }
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "sink", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port != 0 else { throw ClusterTestFailure("sink did not start") }
            try await body("http://127.0.0.1:\(port)/cleanup")
            group.cancelAll()
        }
    }
}
