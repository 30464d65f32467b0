import GRPCCore
import Prometheus
import Synchronization

/// Counts every call on the client port by method and status code
/// (`gc_grpc_server_handled_total{grpc_service,grpc_method,grpc_code}`) and
/// times it (`gc_grpc_server_handling_seconds{grpc_service,grpc_method}`,
/// from the call's start until its status is known: the last message of a
/// stream).
///
/// Install it first (outermost), so calls that a later interceptor refuses
/// are counted with their refusal's code. The label set is bounded: methods
/// are those the server registered (unknown ones never reach interceptors),
/// codes are the 17 of gRPC. Per call it costs two lock-protected lookups
/// and one closure (the wrapped response producer).
public struct GRPCMetricsInterceptor: ServerInterceptor {
    let metrics: GRPCServerMetrics

    /// Records into `metrics`' registry.
    public init(metrics: SidecarMetrics) {
        self.metrics = metrics.grpc
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let start = ContinuousClock.now
        let series = metrics.series(for: context.descriptor)
        var response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            series.finish(code: GRPCServerMetrics.code(of: error), since: start)
            throw error
        }
        switch response.accepted {
        case .failure(let error):
            series.finish(code: error.code.rawValue, since: start)
        case .success(var contents):
            let producer = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await producer(writer)
                    series.finish(code: 0, since: start)
                    return trailers
                } catch {
                    series.finish(code: GRPCServerMetrics.code(of: error), since: start)
                    throw error
                }
            }
            response.accepted = .success(contents)
        }
        return response
    }
}

/// The gRPC server families of one node's registry.
final class GRPCServerMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let methods = Mutex<[MethodDescriptor: MethodSeries]>([:])

    static let handledHelp = "gRPC calls completed on the client port, by service, method and status code."
    static let latencyHelp = "gRPC call duration on the client port until its status, by service and method."

    /// gRPC status names by code, as other Prometheus gRPC exporters spell them.
    static let codeNames = [
        "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
        "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
        "Internal", "Unavailable", "DataLoss", "Unauthenticated",
    ]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// The series of one method, made on its first call.
    func series(for method: MethodDescriptor) -> MethodSeries {
        methods.withLock { methods in
            if let series = methods[method] { return series }
            let series = MethodSeries(registry: registry, service: method.service.fullyQualifiedService, method: method.method)
            methods[method] = series
            return series
        }
    }

    /// The status code a thrown error ends a call with (as the server would
    /// send it): an `RPCError`'s or an `RPCErrorConvertible`'s own code,
    /// `Canceled` for a cancellation, else `Unknown`.
    static func code(of error: any Error) -> Int {
        if let error = error as? RPCError { return error.code.rawValue }
        if let error = error as? any RPCErrorConvertible { return error.rpcErrorCode.rawValue }
        if error is CancellationError { return 1 }
        return 2
    }

    /// One method's latency histogram and its counters by code.
    final class MethodSeries: Sendable {
        private let registry: PrometheusCollectorRegistry
        private let labels: [(String, String)]
        private let latency: DurationHistogram
        /// Indexed by code; `OK` made at once, the others on first use.
        private let handled: Mutex<[Counter?]>

        init(registry: PrometheusCollectorRegistry, service: String, method: String) {
            self.registry = registry
            labels = [("grpc_service", service), ("grpc_method", method)]
            latency = registry.durationHistogram(
                "gc_grpc_server_handling_seconds", labels: labels, buckets: SidecarMetrics.durationBuckets,
                help: GRPCServerMetrics.latencyHelp)
            var counters = [Counter?](repeating: nil, count: GRPCServerMetrics.codeNames.count)
            counters[0] = registry.counter(
                "gc_grpc_server_handled_total", labels: labels + [("grpc_code", "OK")], help: GRPCServerMetrics.handledHelp)
            handled = Mutex(counters)
        }

        /// The call ended with `code` (out-of-range codes count as `Unknown`).
        func finish(code: Int, since start: ContinuousClock.Instant) {
            latency.record(ContinuousClock.now - start)
            let index = GRPCServerMetrics.codeNames.indices.contains(code) ? code : 2
            handled.withLock { counters in
                if let counter = counters[index] { return counter }
                let counter = registry.counter(
                    "gc_grpc_server_handled_total",
                    labels: labels + [("grpc_code", GRPCServerMetrics.codeNames[index])],
                    help: GRPCServerMetrics.handledHelp)
                counters[index] = counter
                return counter
            }.increment()
        }
    }
}
