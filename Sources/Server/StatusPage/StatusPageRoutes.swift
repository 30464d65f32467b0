import Foundation
import HTTPTypes
import Hummingbird
import LeaseFSM
import NIOCore
import NIOSSL
import ServiceLifecycle
import SwiftASN1
import X509

/// The metrics port's request context: Hummingbird's basic one plus the
/// connection, so the status page can read a client certificate.
public struct MetricsRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection the request came on.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// The status page's routes on the metrics port:
///
/// - `GET /ui`: the page (static HTML and JS, no external resources);
/// - `GET /ui/api/status`: a ``StatusSnapshot`` as JSON;
/// - `GET /ui/api/events`: lease events as server-sent events (`data:` one
///   ``StatusEvent`` JSON per event; `: ping` comments keep it open);
/// - `POST /ui/api/dead-letters/retry`: `{"leaseIds": [...]}` or
///   `{"all": true}`, JSON only (a cross-site form cannot send it); with an
///   authorization policy, only for an operator (bearer token or the metrics
///   port's client certificate).
extension StatusPage {
    /// Adds the routes above to `router`.
    public func register(on router: Router<MetricsRequestContext>) {
        router.get("/ui") { _, _ -> Response in
            Response(status: .ok, headers: Self.pageHeaders, body: .init(byteBuffer: ByteBuffer(string: StatusPageHTML.page)))
        }
        router.get("/ui/api/status") { _, _ -> Response in
            Self.json(await self.snapshot())
        }
        router.get("/ui/api/events") { request, _ -> Response in
            let after = Self.lastEventID.flatMap { request.headers[$0] }.flatMap(Self.cursor(afterEventID:))
            return await self.eventStream(after: after)
        }
        router.post("/ui/api/dead-letters/retry") { request, context -> Response in
            try await self.retry(request, context)
        }
    }

    /// The header a reconnecting `EventSource` names its last event in
    /// (a valid token, so never nil).
    static let lastEventID = HTTPField.Name("Last-Event-ID")

    static let pageHeaders: HTTPFields = [
        .contentType: "text/html; charset=utf-8",
        .cacheControl: "no-store",
        .contentSecurityPolicy: "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    ]

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    struct Problem: Encodable {
        var error: String
    }

    struct RetryRequest: Decodable {
        var leaseIds: [String]?
        var all: Bool?
    }

    struct RetryAnswer: Encodable {
        var retried: [String]
        var by: String
    }

    func retry(_ request: Request, _ context: MetricsRequestContext) async throws -> Response {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
            return Self.json(Problem(error: "send the retry as Content-Type: application/json"), status: .unsupportedMediaType)
        }
        do {
            let certificate = await Self.clientCertificate(of: context.channel)
            let identity = try authorizeRetry(authorization: request.headers[.authorization], certificate: certificate)
            var request = request
            let body = try await request.collectBody(upTo: 256 << 10)
            guard let parsed = try? JSONDecoder().decode(RetryRequest.self, from: Data(body.readableBytesView)) else {
                return Self.json(Problem(error: "expected {\"leaseIds\": [...]} or {\"all\": true}"), status: .badRequest)
            }
            let retried = try await retryDeadLetters(leaseIDs: parsed.leaseIds ?? [], all: parsed.all ?? false, by: identity)
            return Self.json(RetryAnswer(retried: retried, by: identity))
        } catch let refusal as RetryRefusal {
            var response = Self.json(Problem(error: refusal.message), status: .init(code: refusal.status))
            if refusal.status == 401 { response.headers[.wwwAuthenticate] = "Bearer" }
            return response
        }
    }

    /// The verified client certificate of `channel`'s TLS connection, if any.
    static func clientCertificate(of channel: any Channel) async -> CertificateNames? {
        let der: [UInt8]? = try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: NIOSSLHandler.self).peerCertificate?.toDERBytes()
        }.get()
        guard let der, let certificate = try? Certificate(derEncoded: der) else { return nil }
        return CertificateNames(certificate)
    }

    /// Server-sent events of every lease event applied here from now on.
    func eventStream(after: EventHub.Cursor?) async -> Response {
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-store"]
        let events: AsyncThrowingStream<LeaseEvent, any Error>
        do {
            events = try await self.events(after: after)
        } catch {
            // EventSource retries on its own; `retry:` spaces the attempts.
            let body = "retry: 5000\nevent: unavailable\ndata: {\"error\": \"\(error)\"}\n\n"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        return Response(status: .ok, headers: headers, body: .init { writer in
            // Events and keep-alive pings merged into one stream of chunks,
            // so a closed browser is noticed even when nothing happens. A
            // browser that falls 1,000 chunks behind loses the oldest: this
            // is a display tail (WatchLeases is the lossless one).
            let (chunks, sink) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1_000))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let feed = Task {
                do {
                    for try await event in events {
                        let data = (try? encoder.encode(Self.view(of: event))) ?? Data()
                        sink.yield("id: \(Self.eventID(event))\ndata: \(String(decoding: data, as: UTF8.self))\n\n")
                    }
                    sink.yield("event: closed\ndata: {}\n\n")
                } catch {
                    sink.yield("event: closed\ndata: {\"error\": \"\(String(describing: error).replacingOccurrences(of: "\"", with: "'"))\"}\n\n")
                }
                sink.finish()
            }
            let ping = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(10))
                    sink.yield(": ping\n\n")
                }
            }
            defer {
                feed.cancel()
                ping.cancel()
            }
            try await writer.write(ByteBuffer(string: "retry: 3000\n: connected\n\n"))
            for await chunk in chunks {
                try await writer.write(ByteBuffer(string: chunk))
            }
            try await writer.finish(nil)
        })
    }
}

/// Samples ``StatusPage/history`` every ``StatusPage/sampleInterval`` until
/// the node shuts down.
public struct StatusPageSampler: Service {
    let page: StatusPage

    public init(page: StatusPage) {
        self.page = page
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await page.sample()
                try? await Task.sleep(for: page.sampleInterval)
            }
        }
    }
}
