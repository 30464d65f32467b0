import Foundation
import GRPCCore

/// A command that could not do what it was asked although its command line
/// was fine: printed as one `Error: ...` line on stderr (no usage text),
/// exiting with ``exitStatus``.
///
/// Exit statuses (documented in `gcctl --help`): 1 when the cluster answered
/// no (not found, permission denied, ...), 2 when no endpoint could serve
/// the call (connection refused, timeout, TLS failure); argument-parser
/// keeps 64 for bad usage.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    var exitStatus: Int32

    /// The cluster answered no.
    static let refusedStatus: Int32 = 1
    /// No endpoint could serve the call.
    static let unreachableStatus: Int32 = 2

    init(_ description: String, exitStatus: Int32 = CommandFailure.refusedStatus) {
        self.description = description
        self.exitStatus = exitStatus
    }

    /// One line for a call's error, with its exit status.
    init(_ error: RPCError, endpoint: String, timeout: Int) {
        switch error.code {
        case .notFound:
            self.init("NOT_FOUND: \(error.message)")
        case .permissionDenied:
            self.init("PERMISSION_DENIED by \(endpoint): \(error.message)")
        case .unauthenticated:
            self.init("UNAUTHENTICATED by \(endpoint): \(error.message) (pass --cert/--key or --token)")
        case .deadlineExceeded:
            self.init("DEADLINE_EXCEEDED: timed out after \(timeout)s waiting for \(endpoint) (raise --timeout, or check the node)",
                      exitStatus: Self.unreachableStatus)
        case .unavailable:
            self.init(Self.unreachable(error, endpoint: endpoint), exitStatus: Self.unreachableStatus)
        default:
            self.init("\(error.code.statusName) from \(endpoint): \(error.message)")
        }
    }

    /// Why `endpoint` could not serve a call that failed `UNAVAILABLE`, in a
    /// few words: connection refused, a TLS failure, or the node's own reason.
    static func unreachable(_ error: RPCError, endpoint: String) -> String {
        let text = Self.flatten(error).lowercased()
        if text.contains("refused") {
            return "\(endpoint): connection refused (is the node running?)"
        }
        if text.contains("wrong_version_number") {
            return "\(endpoint): TLS handshake failed: the port speaks plaintext (drop --tls/--cacert/--cert/--token)"
        }
        if text.contains("ssl") || text.contains("tls") || text.contains("certificate") || text.contains("handshake") {
            return "\(endpoint): TLS failure: \(Self.firstLine(error)) (check --cacert/--cert/--key, or drop TLS for a plaintext port)"
        }
        if text.contains("could not establish a connection") || text.contains("connection") && text.contains("closed") {
            return "\(endpoint): cannot connect: \(Self.firstLine(error)) (plaintext client on a TLS port? pass --cacert)"
        }
        return "\(endpoint): unavailable: \(error.message)"
    }

    /// The error with its causes, on one line.
    private static func flatten(_ error: any Error) -> String {
        var parts = ["\(error)"]
        var cause: (any Error)? = (error as? RPCError)?.cause
        var depth = 0
        while let next = cause, depth < 5 {
            parts.append(String(describing: next))
            cause = (next as? RPCError)?.cause
            depth += 1
        }
        return parts.joined(separator: " | ")
    }

    /// The message and the deepest cause, on one line.
    private static func firstLine(_ error: RPCError) -> String {
        var deepest: (any Error)? = error.cause
        while let next = (deepest as? RPCError)?.cause { deepest = next }
        let why = deepest.map { String(describing: $0) } ?? ""
        let line = why.isEmpty ? error.message : "\(error.message): \(why)"
        return line.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// stderr, unbuffered, for errors and progress (never stdout: that is for
/// results, which scripts parse).
enum Diagnostics {
    static func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
