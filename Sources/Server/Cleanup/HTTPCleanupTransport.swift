import AsyncHTTPClient
import Foundation
import LeaseFSM
import NIOCore
import NIOHTTP1
import Synchronization

/// Delivers cleanups as `POST` requests with a JSON body: `http://` ones on
/// the keep-alive connections of an ``HTTP1ConnectionPool`` (SwiftNIO's
/// HTTP/1.1 codec, one request per connection at a time), `https://` ones
/// through async-http-client.
///
/// A 2xx answer is success; any other answer, a timeout or a connection
/// error is a failed attempt to retry. gRPC targets go to
/// ``GRPCCleanupTransport`` (see ``RoutingCleanupTransport``).
///
/// Egress (README "Cleanup egress"):
/// - The host is resolved here and every address is checked against the
///   ``CleanupEgress`` policy before anything is sent; a denied address is a
///   permanent failure (the job dead-letters with the reason).
/// - `http://` requests then go to the checked address itself (the URL's
///   host is sent as `Host`), so a second resolution cannot differ (DNS
///   rebinding). `https://` requests keep the name, because TLS needs it for
///   SNI and certificate checks: for them the check is check-then-connect,
///   and a name whose DNS answer changes between the two could still slip
///   through (the certificate must then match the name, which limits it).
/// - Redirects are not followed: a 3xx is a failed attempt.
/// - One deadline covers the whole exchange, response body included; at most
///   ``maxResponseBodyBytes`` of the body are read (a larger 2xx is still a
///   success).
public struct HTTPCleanupTransport: CleanupTransport {
    /// Most bytes of a response body read; the rest is not waited for.
    public static let maxResponseBodyBytes = 64 * 1024

    /// One client for the process's `https://` cleanups (like
    /// `HTTPClient.shared`, never shut down), configured never to follow
    /// redirects.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.decompression = .disabled
        // A refused connection fails the attempt now (so the next address is
        // tried, or the job backs off) instead of being retried by the pool
        // until the deadline while it holds a dispatch slot.
        configuration.connectionPool.retryConnectionEstablishment = false
        // HTTP/1.1 keep-alive connections per host. The dispatcher bounds
        // requests per endpoint itself (`GC_CLEANUP_ENDPOINT_CONCURRENCY`,
        // 64 by default); with the client's default of 8 connections the
        // rest queued inside the pool, each waiting a whole round trip per
        // request ahead of it.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connectionsPerHost
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Sent as `User-Agent`.
    static let userAgent = "gc-sidecar/\(SidecarVersion.current)"

    /// Keep-alive connections the client keeps per host.
    static let connectionsPerHost = 32

    /// Parsed cleanup URLs by endpoint (a mass expiry sends thousands of
    /// cleanups to one URL: it is parsed once, not per request).
    static let parsedURLs = ParsedURLCache()

    /// Keep-alive connections for `http://` targets, shared by the
    /// process's transports (like ``client``).
    static let sharedPool = HTTP1ConnectionPool(maxBodyBytes: maxResponseBodyBytes)

    /// Sent as `X-GC-Node`, so a target's logs show which node delivered.
    let nodeName: String?
    let egress: CleanupEgress
    let pool: HTTP1ConnectionPool

    public init(nodeName: String? = nil, egress: CleanupEgress = CleanupEgress()) {
        self.init(nodeName: nodeName, egress: egress, pool: Self.sharedPool)
    }

    init(nodeName: String? = nil, egress: CleanupEgress = CleanupEgress(), pool: HTTP1ConnectionPool) {
        self.nodeName = nodeName
        self.egress = egress
        self.pool = pool
    }

    /// Closes the idle `http://` connections (the pool stays usable).
    public func shutdown() {
        pool.closeIdle()
    }

    public func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        guard case .http(let endpoint) = target else {
            return .failed(reason: "not an HTTP target", permanent: true)
        }
        guard let url = Self.parsedURLs.url(endpoint) else {
            return .failed(reason: "\(CleanupEndpointText.redacted(endpoint)) is not an http:// or https:// URL", permanent: true)
        }
        // Only for messages: not built for the requests that succeed.
        var shown: String { url.redacted }
        if url.hasCredentials {
            // Only leases created before credentials were refused get here.
            return .failed(reason: "cleanup URL \(shown) carries credentials (user:password@), which are not sent; recreate the lease without them", permanent: true)
        }
        let start = ContinuousClock.now
        let addresses: [IPAddress]
        switch await egress.resolve(host: url.host, port: url.port, within: timeout) {
        case .allowed(let checked): addresses = checked
        case .denied(let denial): return .failed(reason: "\(denial)", permanent: true)
        case .unresolved(let why): return .failed(reason: "request to \(shown) failed: \(why)", permanent: false)
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(7)
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Idempotency-Key", value: request.idempotencyKey)
        headers.add(name: "User-Agent", value: Self.userAgent)
        if let nodeName { headers.add(name: "X-GC-Node", value: nodeName) }
        let body = request.jsonBody()
        let answer: CleanupAnswer
        let remaining = { timeout - (ContinuousClock.now - start) }
        if url.isHTTPS {
            // One request to the name (TLS needs it), through async-http-client.
            switch await Self.exchangeTLS(endpoint, headers: headers, body: body, within: remaining()) {
            case .answered(let a): answer = a
            case .timedOut: return .failed(reason: "no answer from \(shown) within \(timeout)", permanent: false)
            case .failed(let error): return .failed(reason: "request to \(shown) failed: \(error)", permanent: false)
            }
        } else {
            // Each checked address in the resolver's order until one answers,
            // as a resolver with several answers would (localhost: ::1, then
            // 127.0.0.1), on the pool's keep-alive connections.
            headers.add(name: "Host", value: url.hostHeader)
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: url.requestTarget, headers: headers)
            let deadline = NIODeadline.now() + .nanoseconds(remaining().nanoseconds)
            var found: CleanupAnswer?
            var lastError: (any Error)?
            for address in addresses where found == nil {
                do {
                    found = try await pool.exchange(with: .init(address: address, port: url.port), head: head, body: body, deadline: deadline)
                } catch is HTTP1ExchangeTimeout {
                    return .failed(reason: "no answer from \(shown) within \(timeout)", permanent: false)
                } catch {
                    // Cleanups are idempotent: trying the next address is
                    // safe even if this one received the request.
                    lastError = error
                }
            }
            guard let found else {
                return .failed(reason: "request to \(shown) failed: \(lastError.map { "\($0)" } ?? "no address")", permanent: false)
            }
            answer = found
        }
        switch answer.status {
        case 200..<300:
            return .succeeded
        case 300..<400:
            let location = answer.location.map { CleanupEndpointText.redacted($0) } ?? "(no Location)"
            return .failed(reason: "HTTP \(answer.status) from \(shown): redirect to \(location) not followed; point the cleanup endpoint at the final URL", permanent: false)
        default:
            return .failed(reason: "HTTP \(answer.status) from \(shown): \(answer.bodyPrefix)", permanent: false)
        }
    }

    enum TLSOutcome {
        case answered(CleanupAnswer)
        case timedOut
        case failed(any Error)
    }

    /// Sends an `https://` cleanup through async-http-client and reads the
    /// answer (body up to the cap), all within `limit`: the deadline keeps
    /// running while the body streams. The whole exchange runs on NIO's
    /// event loop with a small delegate and this task waits once, for its
    /// result. Cancelling the calling task cancels the request.
    static func exchangeTLS(_ endpoint: String, headers: HTTPHeaders, body: ByteBuffer, within limit: Duration) async -> TLSOutcome {
        guard limit > .zero else { return .timedOut }
        let deadline = NIODeadline.now() + .nanoseconds(limit.nanoseconds)
        let collector = AnswerCollector()
        do {
            let request = try HTTPClient.Request(url: endpoint, method: .POST, headers: headers, body: .byteBuffer(body))
            let task = client.execute(request: request, delegate: collector, deadline: deadline)
            return .answered(try await withTaskCancellationHandler {
                try await task.get()
            } onCancel: {
                task.cancel()
            })
        } catch is AnswerCollector.EnoughRead {
            // The cap was reached: the head and the excerpt are the answer
            // (the connection is dropped rather than drained).
            return .answered(collector.answer)
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return .timedOut
        } catch {
            return .failed(error)
        }
    }
}

/// Collects what ``HTTPCleanupTransport`` needs from an async-http-client
/// response (``CleanupAnswerExcerpt``); it stops the exchange once
/// ``HTTPCleanupTransport/maxResponseBodyBytes`` were read.
///
/// The client calls a delegate on its request's event loop, one callback at
/// a time; the lock makes that `Sendable` without relying on it.
final class AnswerCollector: HTTPClientResponseDelegate {
    typealias Response = CleanupAnswer

    /// Thrown (as the failed future of a body part) once enough was read.
    struct EnoughRead: Error {}

    private let excerpt = Mutex(CleanupAnswerExcerpt())

    var answer: Response { excerpt.withLock { $0.answer(reusable: false) } }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        excerpt.withLock { $0.head(head) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let enough = excerpt.withLock { $0.body(buffer, maxBodyBytes: HTTPCleanupTransport.maxResponseBodyBytes) }
        return enough ? task.eventLoop.makeFailedFuture(EnoughRead()) : task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
        answer
    }
}

/// Parsed ``CleanupURL``s by endpoint text, at most ``maxEntries`` (then
/// cleared). Parsing is pure, so a cached answer is the answer.
final class ParsedURLCache: Sendable {
    static let maxEntries = 1024
    private let entries = Mutex<[String: CleanupURL?]>([:])

    /// `CleanupURL(endpoint)`, parsed once per endpoint.
    func url(_ endpoint: String) -> CleanupURL? {
        if let cached = entries.withLock({ $0[endpoint] }) { return cached }
        let parsed = CleanupURL(endpoint)
        entries.withLock { all in
            if all.count >= Self.maxEntries { all.removeAll(keepingCapacity: true) }
            all[endpoint] = .some(parsed)
        }
        return parsed
    }
}

/// Sends each cleanup to the transport for its target's kind.
public struct RoutingCleanupTransport: CleanupTransport {
    let http: any CleanupTransport
    let grpc: any CleanupTransport

    public init(http: any CleanupTransport = HTTPCleanupTransport(), grpc: any CleanupTransport = GRPCCleanupTransport()) {
        self.http = http
        self.grpc = grpc
    }

    public func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        switch target {
        case .http: await http.deliver(request, to: target, timeout: timeout)
        case .grpc: await grpc.deliver(request, to: target, timeout: timeout)
        }
    }

    public func shutdown() {
        http.shutdown()
        grpc.shutdown()
    }
}
