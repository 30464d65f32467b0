import AsyncHTTPClient
import Foundation
import LeaseFSM
import NIOCore
import NIOHTTP1

/// Delivers cleanups as `POST` requests with a JSON body (async-http-client).
///
/// A 2xx answer is success; any other answer, a timeout or a connection
/// error is a failure to retry. gRPC targets go to ``GRPCCleanupTransport``
/// (see ``RoutingCleanupTransport``).
public struct HTTPCleanupTransport: CleanupTransport {
    let client: HTTPClient
    /// Sent as `X-GC-Node`, so a target's logs show which node delivered.
    let nodeName: String?

    public init(client: HTTPClient = .shared, nodeName: String? = nil) {
        self.client = client
        self.nodeName = nodeName
    }

    public func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        guard case .http(let url) = target else {
            return .failed(reason: "not an HTTP target", permanent: true)
        }
        let body: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            body = try encoder.encode(request)
        } catch {
            return .failed(reason: "cannot encode the cleanup request: \(error)", permanent: true)
        }
        var http = HTTPClientRequest(url: url)
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        http.headers.add(name: "Idempotency-Key", value: request.idempotencyKey)
        http.headers.add(name: "User-Agent", value: "gc-sidecar/\(SidecarVersion.current)")
        if let nodeName { http.headers.add(name: "X-GC-Node", value: nodeName) }
        http.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(http, timeout: .nanoseconds(timeout.nanoseconds))
            let answer = try await response.body.collect(upTo: 4096)
            if (200..<300).contains(response.status.code) { return .succeeded }
            let text = String(buffer: answer).prefix(200)
            return .failed(reason: "HTTP \(response.status.code) from \(url): \(text)", permanent: false)
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return .failed(reason: "no answer from \(url) within \(timeout)", permanent: false)
        } catch {
            return .failed(reason: "request to \(url) failed: \(error)", permanent: false)
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
