import AsyncHTTPClient
import Foundation
import LeaseFSM
import NIOCore
import NIOHTTP1

/// Delivers cleanups as `POST` requests with a JSON body (async-http-client).
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

    /// One client for the process (like `HTTPClient.shared`, never shut
    /// down), configured never to follow redirects.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.decompression = .disabled
        // A refused connection fails the attempt now (so the next address is
        // tried, or the job backs off) instead of being retried by the pool
        // until the deadline while it holds a dispatch slot.
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Sent as `X-GC-Node`, so a target's logs show which node delivered.
    let nodeName: String?
    let egress: CleanupEgress

    public init(nodeName: String? = nil, egress: CleanupEgress = CleanupEgress()) {
        self.nodeName = nodeName
        self.egress = egress
    }

    struct Answer: Sendable {
        var status: UInt
        var location: String?
        var bodyPrefix: String
    }

    struct Timeout: Error {}

    public func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        guard case .http(let endpoint) = target else {
            return .failed(reason: "not an HTTP target", permanent: true)
        }
        guard let url = CleanupURL(endpoint) else {
            return .failed(reason: "\(CleanupEndpointText.redacted(endpoint)) is not an http:// or https:// URL", permanent: true)
        }
        let shown = url.redacted
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
        let body: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            body = try encoder.encode(request)
        } catch {
            return .failed(reason: "cannot encode the cleanup request: \(error)", permanent: true)
        }
        var http = HTTPClientRequest(url: endpoint)
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        http.headers.add(name: "Idempotency-Key", value: request.idempotencyKey)
        http.headers.add(name: "User-Agent", value: "gc-sidecar/\(SidecarVersion.current)")
        if let nodeName { http.headers.add(name: "X-GC-Node", value: nodeName) }
        http.body = .bytes(ByteBuffer(bytes: body))
        if !url.isHTTPS { http.headers.add(name: "Host", value: url.hostHeader) }

        // https: one request to the name (TLS needs it). http: each checked
        // address in the resolver's order until one answers, as a resolver
        // with several answers would (localhost: ::1, then 127.0.0.1).
        let tries: [String] = url.isHTTPS ? [endpoint] : addresses.map { url.pinned(to: $0) }
        var answer: Answer?
        var lastError: (any Error)?
        for target in tries where answer == nil {
            http.url = target
            do {
                answer = try await Self.exchange(http, within: timeout - (ContinuousClock.now - start))
            } catch is Timeout {
                return .failed(reason: "no answer from \(shown) within \(timeout)", permanent: false)
            } catch let error as HTTPClientError where error == .deadlineExceeded {
                return .failed(reason: "no answer from \(shown) within \(timeout)", permanent: false)
            } catch {
                // Cleanups are idempotent: trying the next address is safe
                // even if this one received the request.
                lastError = error
            }
        }
        guard let answer else {
            return .failed(reason: "request to \(shown) failed: \(lastError.map { "\($0)" } ?? "no address")", permanent: false)
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

    /// Sends `request` and reads the answer (body up to the cap), all within
    /// `limit`: the deadline keeps running while the body streams.
    static func exchange(_ request: HTTPClientRequest, within limit: Duration) async throws -> Answer {
        guard limit > .zero else { throw Timeout() }
        let deadline = NIODeadline.now() + .nanoseconds(limit.nanoseconds)
        return try await withThrowingTaskGroup(of: Answer.self) { group in
            group.addTask {
                let response = try await client.execute(request, deadline: deadline)
                var kept = ByteBuffer()
                var read = 0
                for try await chunk in response.body {
                    read += chunk.readableBytes
                    if kept.readableBytes < 200 {
                        var piece = chunk
                        if let slice = piece.readSlice(length: min(piece.readableBytes, 200 - kept.readableBytes)) {
                            kept.writeImmutableBuffer(slice)
                        }
                    }
                    // Enough: the rest is not waited for (the connection is
                    // dropped rather than drained).
                    if read >= maxResponseBodyBytes { break }
                }
                return Answer(status: response.status.code, location: response.headers.first(name: "location"),
                              bodyPrefix: String(buffer: kept))
            }
            group.addTask {
                try await Task.sleep(for: limit)
                throw Timeout()
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw Timeout() }
            return first
        }
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
