import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A local HTTP server standing in for a service's cleanup endpoint: records
/// every POST to /cleanup and answers with scripted status codes (then 200).
final class HTTPSink: Sendable {
    struct Received: Sendable {
        var headers: [String: String]
        var body: [String: any Sendable]
        var rawBody: Data
    }

    private let state: Mutex<(received: [Received], script: [Int])>

    init(script: [Int] = []) {
        state = Mutex((received: [], script: script))
    }

    var received: [Received] { state.withLock { $0.received } }

    /// Runs the sink on 127.0.0.1:0 for the duration of `body`, passing its cleanup URL.
    func run(_ body: (String) async throws -> Void) async throws {
        let router = Router()
        router.post("/cleanup") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            let data = Data(bytes.readableBytesView)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            let sendable = json.mapValues { value -> any Sendable in
                switch value {
                case let n as NSNumber: n.int64Value
                case let s as String: s
                case let d as [String: String]: d
                default: "\(value)"
                }
            }
            let status = self.state.withLock { s in
                s.received.append(Received(headers: headers, body: sendable, rawBody: data))
                return s.script.isEmpty ? 200 : s.script.removeFirst()
            }
            return Response(status: .init(code: status))
        }
        try await withHTTPServer(router) { port in try await body("http://127.0.0.1:\(port)/cleanup") }
    }
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
