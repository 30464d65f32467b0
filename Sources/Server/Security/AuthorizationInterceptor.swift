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
        switch authorize(metadata: request.metadata, context: context) {
        case .success(let context): return try await next(request, context)
        case .failure(let error): return StreamingServerResponse(error: error)
        }
    }

    /// The call's context with its authenticated caller attached, or the
    /// status that refuses it; every decision is counted and every refusal
    /// logged. ``DirectUnaryTransport`` calls this for the calls it serves
    /// itself, so both paths decide alike.
    func authorize(metadata: Metadata, context: ServerContext) -> Result<ServerContext, RPCError> {
        let method = context.descriptor.method
        let permission = Permission.required(service: context.descriptor.service.fullyQualifiedService, method: method)
        let certificate = CertificateNames.ofPeer(context)
        let caller: Caller
        do {
            caller = try authenticator.authenticate(metadata: metadata, certificate: certificate)
        } catch {
            if context.descriptor.service.fullyQualifiedService == "grpc.health.v1.Health", method == "Check" || method == "List" {
                // Health probes (kubelet) carry no credentials; the Watch
                // stream, which holds resources, needs them.
                metrics.recordAuthDecision(method: method, decision: "allowed")
                return .success(context)
            }
            metrics.recordAuthDecision(method: method, decision: error.code == .unauthenticated ? "unauthenticated" : "denied")
            authenticator.logDenial(identity: certificate?.callerIdentity ?? context.remotePeer, method: method, reason: error.message)
            return .failure(error)
        }
        guard permission.isHeld(by: caller) else {
            metrics.recordAuthDecision(method: method, decision: "denied")
            authenticator.logDenial(identity: caller.identity, method: method, reason: "missing \(permission.rawValue)")
            return .failure(.denied(permission, caller))
        }
        metrics.recordAuthDecision(method: method, decision: "allowed")
        var context = context
        context.transportSpecific = AuthenticatedContext(caller: caller, transport: context.transportSpecific)
        return .success(context)
    }
}
