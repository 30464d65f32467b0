import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Serves the Prometheus text format at `GET /metrics` (and `GET /healthz`).
public struct MetricsHTTPServer: Service {
    let app: Application<RouterResponder<BasicRequestContext>>

    /// - Parameter onListening: called with the bound port once listening.
    public init(host: String, port: Int, metrics: SidecarMetrics, logger: Logger,
                onListening: @escaping @Sendable (Int) async -> Void = { _ in }) {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            let body = metrics.exposition()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/healthz") { _, _ -> String in "ok\n" }
        var metricsLogger = logger
        metricsLogger[metadataKey: "component"] = "metrics-http"
        app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "gc-sidecar"),
            onServerRunning: { channel in
                await onListening(channel.localAddress?.port ?? port)
            },
            logger: metricsLogger)
    }

    public func run() async throws {
        try await app.run()
    }
}
