import GRPCCore
import GRPCNIOTransportHTTP2

/// How a client reaches a node securely: TLS (server verified against
/// `caFile`, or the system's roots), an optional client certificate (mTLS),
/// and an optional bearer token sent as `authorization: Bearer …`.
public struct ClientSecurity: Sendable, Hashable {
    /// PEM CA bundle the node's certificate must chain to (nil: system roots).
    public var caFile: String?
    /// PEM client certificate chain and key, for mutual TLS.
    public var certificateFile: String?
    public var keyFile: String?
    /// The name the node's certificate must carry, when it differs from the
    /// host dialled (nil: the host).
    public var serverName: String?
    /// Bearer token, for clients without a certificate.
    public var token: String?
    /// Use TLS (true when any file is given).
    public var useTLS: Bool

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
                serverName: String? = nil, token: String? = nil, useTLS: Bool? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.token = token
        // A token is never sent in plaintext unless the caller insists.
        self.useTLS = useTLS ?? (caFile != nil || certificateFile != nil || token != nil)
    }

    /// Plaintext, no credentials.
    public static let plaintext = ClientSecurity()

    /// The transport security for a connection.
    /// - Throws: ``GCClientError/invalidEndpoint(_:)`` when only one of the
    ///   certificate and key is given.
    public func transportSecurity() throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        guard useTLS else { return .plaintext }
        guard (certificateFile == nil) == (keyFile == nil) else {
            throw GCClientError.invalidEndpoint("a client certificate needs its key (and the key its certificate)")
        }
        return .tls(.init(
            certificateChain: certificateFile.map { [.file(path: $0, format: .pem)] } ?? [],
            privateKey: keyFile.map { .file(path: $0, format: .pem) },
            serverCertificateVerification: .fullVerification,
            trustRoots: caFile.map { .certificates([.file(path: $0, format: .pem)]) } ?? .systemDefault))
    }

    /// Interceptors that add the credentials to every call.
    public var interceptors: [any ClientInterceptor] {
        token.map { [BearerTokenInterceptor(token: $0)] } ?? []
    }
}

/// Adds `authorization: Bearer <token>` to every call.
public struct BearerTokenInterceptor: ClientInterceptor {
    let header: String

    public init(token: String) { header = "Bearer " + token }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        request.metadata.replaceOrAddString(header, forKey: "authorization")
        return try await next(request, context)
    }
}

/// The gRPC target for `host:port`: an IP literal is dialled as an address
/// (TLS sends no server name for it, and verifies the certificate's IP SAN),
/// any other host through DNS.
public func resolvableTarget(host: String, port: Int) -> any ResolvableTarget {
    if host.split(separator: ".").count == 4, host.allSatisfy({ $0.isNumber || $0 == "." }) {
        return .ipv4(address: host, port: port)
    }
    if host.contains(":") { return .ipv6(address: host, port: port) }
    return .dns(host: host, port: port)
}
