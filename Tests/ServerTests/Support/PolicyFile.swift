import Foundation
@testable import Server

/// Writes `policy` (an authorization policy, YAML) to a temporary file,
/// runs `body` with its path, then removes the file.
func withPolicyFile<R>(_ policy: String, _ body: (String) async throws -> R) async throws -> R {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString).yaml").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try policy.write(toFile: path, atomically: true, encoding: .utf8)
    return try await body(path)
}

/// A policy with one identity, `a`, holding service `a` and no role, whose
/// bearer token is "token-a".
let oneServicePolicy = """
    identities:
      a: { services: [a] }
    tokens:
      - { identity: a, sha256: \(Authenticator.sha256Hex("token-a")) }
    """
