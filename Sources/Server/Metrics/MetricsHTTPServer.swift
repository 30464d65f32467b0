import Hummingbird
import HummingbirdTLS
import Logging
import NIOCertificateReloading
import NIOCore
import NIOSSL
import ServiceLifecycle

/// Serves the Prometheus text format at `GET /metrics`, and the node's
/// health at `GET /healthz` (live) and `GET /readyz` (ready): 200 with `ok`,
/// or 503 with what is wrong. HTTPS when a certificate is given, requiring a
/// client certificate when `clientCA` is set too.
public struct MetricsHTTPServer: Service {
    let run: @Sendable () async throws -> Void

    /// - Parameters:
    ///   - tls: the certificate to serve HTTPS with (reloaded on SIGHUP).
    ///   - health: answers `/healthz` and `/readyz` (without it, both say ok).
    ///   - statusPage: serves the live status page at `/ui` (without it, none).
    ///   - onListening: called with the bound port once listening.
    /// - Throws: when the TLS configuration cannot be built.
    public init(host: String, port: Int, metrics: SidecarMetrics, logger: Logger,
                tls: ReloadableCertificate? = nil, clientCA: String? = nil, health: NodeHealth? = nil,
                statusPage: StatusPage? = nil,
                onListening: @escaping @Sendable (Int) async -> Void = { _ in }) throws {
        let router = Router(context: MetricsRequestContext.self)
        router.get("/metrics") { _, _ -> Response in
            let body = await metrics.scrape()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/healthz") { _, _ -> Response in
            Self.answer(health?.liveness() ?? .init(ok: true, reason: "ok"))
        }
        router.get("/readyz") { _, _ -> Response in
            Self.answer(await health?.readiness() ?? .init(ok: true, reason: "ok"))
        }
        statusPage?.register(on: router)  // GET /ui and /ui/api/… (Sources/Server/StatusPage)
        var metricsLogger = logger
        metricsLogger[metadataKey: "component"] = "metrics-http"
        let configuration = ApplicationConfiguration(address: .hostname(host, port: port), serverName: "gc-sidecar")
        let onRunning: @Sendable (any Channel) async -> Void = { channel in
            await onListening(channel.localAddress?.port ?? port)
        }
        if let tls {
            var tlsConfiguration = try TLSConfiguration.makeServerConfiguration(certificateReloader: tls)
            tlsConfiguration.minimumTLSVersion = .tlsv12
            if let clientCA {
                tlsConfiguration.trustRoots = .file(clientCA)
                tlsConfiguration.certificateVerification = .noHostnameVerification
            }
            let app = Application(
                router: router, server: try .tls(.http1(), tlsConfiguration: tlsConfiguration),
                configuration: configuration, onServerRunning: onRunning, logger: metricsLogger)
            run = { try await app.run() }
        } else {
            let app = Application(router: router, configuration: configuration, onServerRunning: onRunning, logger: metricsLogger)
            run = { try await app.run() }
        }
    }

    static func answer(_ report: NodeHealth.Report) -> Response {
        Response(
            status: report.ok ? .ok : .serviceUnavailable,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: report.reason + "\n")))
    }

    public func run() async throws {
        try await run()
    }
}
