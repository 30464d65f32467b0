import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import SwiftProtobuf

/// A server transport that answers a chosen set of unary methods straight
/// off the wrapped transport's streams and hands every other stream to the
/// `GRPCServer` that listens on it.
///
/// GRPCCore's per-call machinery (the router, the RPC executor, the
/// interceptor chain and the type-erased request and response sequences
/// around each message) costs more CPU than the rest of a replicated create
/// on this stack (BENCHMARKS.md, "A direct path for unary calls"). A direct
/// route does the same steps without those layers, and keeps the same
/// contract: the same authorization decision (``AuthorizationInterceptor``'s),
/// the same call metrics (``GRPCMetricsInterceptor``'s), the same statuses
/// for a malformed stream or message, and the same service code.
///
/// A unary handler here never sees a deadline: like GRPCCore, which only
/// cancels ``ServerContext/cancellation`` when one passes, and the routed
/// handlers do not look at it.
public struct DirectUnaryTransport<Inner: ServerTransport>: ServerTransport {
    public typealias Bytes = Inner.Bytes

    /// The transport that accepts connections and streams.
    public let inner: Inner
    /// Each route with its method's metric series, looked up once.
    let routes: [MethodDescriptor: (route: DirectUnaryRoute<Bytes>, series: GRPCServerMetrics.MethodSeries)]
    let authorization: AuthorizationInterceptor?

    /// Serves `routes` directly, counted in `metrics` and checked by
    /// `authorization` (nil when authorization is off) as the server's
    /// interceptors would, and hands every other method to the server.
    init(inner: Inner, routes: [MethodDescriptor: DirectUnaryRoute<Bytes>], metrics: SidecarMetrics, authorization: AuthorizationInterceptor?) {
        self.inner = inner
        self.routes = Dictionary(uniqueKeysWithValues: routes.map { method, route in
            (method, (route, metrics.grpc.series(for: method)))
        })
        self.authorization = authorization
    }

    public func configure(context: GRPCServerContext) {
        inner.configure(context: context)
    }

    public func beginGracefulShutdown() {
        inner.beginGracefulShutdown()
    }

    public func listen(
        streamHandler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void
    ) async throws {
        let routes = self.routes
        try await inner.listen { stream, context in
            if let (route, series) = routes[stream.descriptor] {
                await serve(stream, context, route, series)
            } else {
                await streamHandler(stream, context)
            }
        }
    }

    /// One unary call: metadata, exactly one message, then the end of the
    /// request stream; answered with metadata, the response and an OK
    /// status, or with a non-OK status alone. The statuses and messages for
    /// a malformed stream are GRPCCore's.
    func serve(_ stream: RPCStream<Inbound, Outbound>, _ context: ServerContext, _ route: DirectUnaryRoute<Bytes>, _ series: GRPCServerMetrics.MethodSeries) async {
        var inbound = stream.inbound.makeAsyncIterator()
        let metadata: Metadata
        do {
            guard case .metadata(let first)? = try await inbound.next() else {
                try? await stream.outbound.write(.status(Status(
                    code: .internalError, message: "Invalid inbound server stream; expected request metadata first."), [:]))
                await stream.outbound.finish()
                return
            }
            metadata = first
        } catch {
            try? await stream.outbound.write(.status(Status(
                code: .unknown, message: "Inbound server stream threw error when reading metadata."), [:]))
            await stream.outbound.finish()
            return
        }
        let start = ContinuousClock.now
        let code: Int
        do {
            var context = context
            if let authorization {
                context = try authorization.authorize(metadata: metadata, context: context).get()
            }
            guard case .message(let request)? = try await inbound.next() else {
                throw RPCError(code: .internalError, message: "Empty stream.")
            }
            guard try await inbound.next() == nil else {
                throw RPCError(code: .internalError, message: "Too many messages.")
            }
            let response = try await route.serve(request, context)
            try await stream.outbound.write(.metadata([:]))
            try await stream.outbound.write(.message(response))
            code = 0
            try? await stream.outbound.write(.status(Status(code: .ok, message: ""), [:]))
        } catch {
            let error = Self.rpcError(error)
            code = error.code.rawValue
            try? await stream.outbound.write(.status(Status(code: Status.Code(error.code), message: error.message), error.metadata))
        }
        await stream.outbound.finish()
        series.finish(code: code, since: start)
    }

    /// The status a thrown error ends a call with, as GRPCCore would send it.
    static func rpcError(_ error: any Error) -> RPCError {
        if let error = error as? RPCError { return error }
        if let error = error as? any RPCErrorConvertible { return RPCError(error) }
        return RPCError(code: .unknown, message: "Service method threw an unknown error.", cause: error)
    }
}

/// One unary method a ``DirectUnaryTransport`` serves itself: decodes the
/// request bytes, runs the handler, encodes the response.
struct DirectUnaryRoute<Bytes: GRPCContiguousBytes & Sendable>: Sendable {
    let serve: @Sendable (Bytes, ServerContext) async throws -> Bytes

    /// A route that decodes `Input` and encodes `Output` as protobuf, with
    /// GRPCProtobuf's coders (so a malformed request gets their status).
    init<Input: SwiftProtobuf.Message, Output: SwiftProtobuf.Message>(
        _ handler: @escaping @Sendable (Input, ServerContext) async throws -> Output
    ) {
        serve = { bytes, context in
            let request = try ProtobufDeserializer<Input>().deserialize(bytes)
            let response = try await handler(request, context)
            return try ProtobufSerializer<Output>().serialize(response)
        }
    }
}
