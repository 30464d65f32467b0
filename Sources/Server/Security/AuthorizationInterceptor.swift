import GRPCCore

/// Authenticates every call on the client port and checks the permission
/// its method needs (``Permission/required(service:method:)``); per-service
/// checks of lease calls happen in the service, which reads the caller from
/// ``ServerContext/caller``.
public struct AuthorizationInterceptor: ServerInterceptor {
    let authenticator: Authenticator
    let metrics: SidecarMetrics

    public init(authenticator: Authenticator, metrics: SidecarMetrics) {
        self.authenticator = authenticator
        self.metrics = metrics
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor.method
        let permission = Permission.required(service: context.descriptor.service.fullyQualifiedService, method: method)
        let certificate = CertificateNames.ofPeer(context)
        let caller: Caller
        do {
            caller = try authenticator.authenticate(metadata: request.metadata, certificate: certificate)
        } catch {
            if context.descriptor.service.fullyQualifiedService == "grpc.health.v1.Health", method == "Check" || method == "List" {
                // Health probes (kubelet) carry no credentials; the Watch
                // stream, which holds resources, needs them.
                metrics.recordAuthDecision(method: method, decision: "allowed")
                return try await next(request, context)
            }
            metrics.recordAuthDecision(method: method, decision: error.code == .unauthenticated ? "unauthenticated" : "denied")
            authenticator.logDenial(identity: certificate?.callerIdentity ?? context.remotePeer, method: method, reason: error.message)
            return StreamingServerResponse(error: error)
        }
        guard permission.isHeld(by: caller) else {
            metrics.recordAuthDecision(method: method, decision: "denied")
            authenticator.logDenial(identity: caller.identity, method: method, reason: "missing \(permission.rawValue)")
            return StreamingServerResponse(error: .denied(permission, caller))
        }
        metrics.recordAuthDecision(method: method, decision: "allowed")
        var context = context
        context.transportSpecific = AuthenticatedContext(caller: caller, transport: context.transportSpecific)
        return try await next(request, context)
    }
}
