import Crypto
import GRPCCore
import Logging
import Synchronization

/// Authenticates client-port callers against the authorization policy, which
/// ``reload()`` (SIGHUP) reads again.
///
/// A caller is the identity of its bearer token (`authorization: Bearer …`,
/// looked up by SHA-256), or else of its verified client certificate (first
/// URI SAN, else common name).
public final class Authenticator: Sendable {
    public let policyFile: String
    private let policy: Mutex<AuthPolicy>
    private let logger: Logger
    /// Identities denied so far (each is logged once, not per call).
    private let loggedDenials = Mutex<Set<String>>([])

    public init(policyFile: String, logger: Logger) throws(AuthPolicyError) {
        self.policyFile = policyFile
        self.policy = Mutex(try AuthPolicy.load(path: policyFile))
        self.logger = logger
    }

    /// For tests: a fixed policy.
    public init(policy: AuthPolicy, logger: Logger) {
        self.policyFile = ""
        self.policy = Mutex(policy)
        self.logger = logger
    }

    public var currentPolicy: AuthPolicy { policy.withLock { $0 } }

    /// Reads the policy file again; on error the old policy stays in force.
    public func reload() throws(AuthPolicyError) {
        let new = try AuthPolicy.load(path: policyFile)
        policy.withLock { $0 = new }
        loggedDenials.withLock { $0.removeAll() }
    }

    /// The caller of a request with `metadata` on a connection whose client
    /// certificate is `certificate`.
    /// - Throws: `UNAUTHENTICATED` when neither names a known identity,
    ///   `PERMISSION_DENIED` when a certified identity has no grants.
    public func authenticate(metadata: Metadata, certificate: CertificateNames?) throws(RPCError) -> Caller {
        let policy = self.policy.withLock { $0 }
        if let header = metadata["authorization"].first(where: { _ in true }) {
            let value: String
            switch header {
            case .string(let s): value = s
            case .binary: throw RPCError(code: .unauthenticated, message: "authorization: expected 'Bearer <token>'")
            }
            guard value.count > 7, value.prefix(7).lowercased() == "bearer " else {
                throw RPCError(code: .unauthenticated, message: "authorization: expected 'Bearer <token>'")
            }
            let hash = Self.sha256Hex(String(value.dropFirst(7)).trimmingWhitespace())
            guard let identity = policy.tokenHashes[hash], let grant = policy.identities[identity] else {
                throw RPCError(code: .unauthenticated, message: "the bearer token is not known to this cluster's authorization policy")
            }
            return Caller(identity: identity, grant: grant)
        }
        guard let identity = certificate?.callerIdentity else {
            throw RPCError(code: .unauthenticated, message: "no credentials: present a client certificate (mTLS) or an 'authorization: Bearer <token>' header")
        }
        guard let grant = policy.identities[identity] else {
            throw RPCError(code: .permissionDenied, message: "identity '\(identity)' has no grants in the authorization policy (GC_AUTH_POLICY_FILE)")
        }
        return Caller(identity: identity, grant: grant)
    }

    /// Logs a denial once per identity and reason (until the next reload).
    func logDenial(identity: String, method: String, reason: String) {
        let key = identity + "\u{0}" + method
        let first = loggedDenials.withLock { set in
            guard set.count < 10_000 else { return false }
            return set.insert(key).inserted
        }
        if first {
            logger.warning("call refused by the authorization policy (logged once per identity and method)",
                           metadata: ["identity": "\(identity)", "method": "\(method)", "reason": "\(reason)"])
        }
    }

    static func sha256Hex(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
