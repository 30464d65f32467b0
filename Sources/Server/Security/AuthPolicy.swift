import Foundation
import Yams

/// Who may do what on the client port (`GC_AUTH_POLICY_FILE`, YAML or JSON):
///
/// ```yaml
/// identities:
///   "orders":  { services: ["orders", "orders-batch"] }  # its own services' leases
///   "ops":     { roles: ["operator"] }                   # everything
///   "grafana": { roles: ["reader"] }                     # read every service
/// tokens:
///   - { identity: "orders", sha256: "<hex of SHA-256 of the token>" }
/// ```
///
/// An identity is a client certificate's first URI SAN (else its common
/// name), or the identity a bearer token maps to. Only tokens' SHA-256
/// hashes are stored.
public struct AuthPolicy: Hashable, Sendable {
    /// What one identity may do.
    public struct Grant: Hashable, Sendable {
        /// Services whose leases it may create, renew, release and read.
        public var services: Set<String>
        public var roles: Set<Role>

        public init(services: Set<String> = [], roles: Set<Role> = []) {
            self.services = services
            self.roles = roles
        }
    }

    public enum Role: String, Hashable, Sendable, CaseIterable {
        /// Everything: every service's leases, `ClusterService`,
        /// `ForceReleaseLease`, `RetryDeadLetters`.
        case `operator`
        /// Reads of every service: get, list, watch, health, metrics,
        /// cluster status.
        case reader
    }

    public var identities: [String: Grant]
    /// Lowercase hex SHA-256 of a token → the identity it authenticates.
    public var tokenHashes: [String: String]

    public init(identities: [String: Grant] = [:], tokenHashes: [String: String] = [:]) {
        self.identities = identities
        self.tokenHashes = tokenHashes
    }

    /// Reads and checks the policy file at `path`.
    public static func load(path: String) throws(AuthPolicyError) -> AuthPolicy {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw AuthPolicyError(path: path, problem: "cannot be read")
        }
        return try parse(text, path: path)
    }

    /// Parses a policy (YAML, of which JSON is a subset). Unknown roles,
    /// malformed hashes and tokens of unknown identities are errors, so a
    /// typo never grants more than the author meant.
    public static func parse(_ text: String, path: String = "GC_AUTH_POLICY_FILE") throws(AuthPolicyError) -> AuthPolicy {
        let file: PolicyFile
        do {
            file = try YAMLDecoder().decode(PolicyFile.self, from: text)
        } catch {
            throw AuthPolicyError(path: path, problem: "is not a policy (identities: {name: {services: [...], roles: [...]}}, tokens: [{identity, sha256}]): \(error)")
        }
        var policy = AuthPolicy()
        for (name, entry) in file.identities ?? [:] {
            guard !name.isEmpty else { throw AuthPolicyError(path: path, problem: "names an empty identity") }
            var grant = Grant(services: Set(entry.services ?? []))
            for role in entry.roles ?? [] {
                guard let r = Role(rawValue: role) else {
                    throw AuthPolicyError(path: path, problem: "identity '\(name)': unknown role '\(role)' (known: operator, reader)")
                }
                grant.roles.insert(r)
            }
            if let unknown = entry.unknownKeys.first {
                throw AuthPolicyError(path: path, problem: "identity '\(name)': unknown key '\(unknown)' (known: services, roles)")
            }
            policy.identities[name] = grant
        }
        for token in file.tokens ?? [] {
            let hash = token.sha256.lowercased()
            guard hash.utf8.count == 64, hash.allSatisfy({ $0.isHexDigit }) else {
                throw AuthPolicyError(path: path, problem: "token of '\(token.identity)': sha256 must be 64 hex digits (sha256sum of the token)")
            }
            guard policy.identities[token.identity] != nil else {
                throw AuthPolicyError(path: path, problem: "a token names identity '\(token.identity)', which is not under identities")
            }
            guard policy.tokenHashes.updateValue(token.identity, forKey: hash) == nil else {
                throw AuthPolicyError(path: path, problem: "the same token hash is listed twice")
            }
        }
        return policy
    }

    private struct PolicyFile: Decodable {
        var identities: [String: Entry]?
        var tokens: [Token]?
    }

    private struct Entry: Decodable {
        var services: [String]?
        var roles: [String]?
        var unknownKeys: [String] = []

        enum CodingKeys: String, CodingKey { case services, roles }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            services = try c.decodeIfPresent([String].self, forKey: .services)
            roles = try c.decodeIfPresent([String].self, forKey: .roles)
            let any = try decoder.container(keyedBy: AnyKey.self)
            unknownKeys = any.allKeys.map(\.stringValue).filter { CodingKeys(rawValue: $0) == nil }.sorted()
        }
    }

    private struct Token: Decodable {
        var identity: String
        var sha256: String
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// A policy file that cannot be used: the path and what to fix.
public struct AuthPolicyError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var problem: String
    public var description: String { "authorization policy \(path) \(problem)" }
}
