#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// One-line texts for database errors, for logs, `/readyz` and `gc-sidecar
/// migrate`.
///
/// postgres-nio's `PSQLError` prints as a generic "Database error" (its
/// details may hold query parameters); these texts name what an operator
/// can act on (the server's message and SQLSTATE, a refused or timed-out
/// connection, a TLS failure) and never a password or query parameter.
public enum PostgresFailure {
    /// A short description of `error`.
    public static func describe(_ error: any Error) -> String {
        if let psql = error as? PSQLError {
            return describe(psql)
        }
        if let transaction = error as? PostgresTransactionError,
           let cause = transaction.closureError ?? transaction.commitError ?? transaction.beginError {
            return describe(cause)
        }
        if let setup = error as? DatabaseURL.SetupError {
            return setup.message
        }
        if let migration = error as? PostgresMigrationError {
            return migration.description
        }
        if error is CancellationError {
            return "cancelled"
        }
        return describeTransport(error)
    }

    private static func describe(_ error: PSQLError) -> String {
        if let info = error.serverInfo, let message = info[.message] {
            let state = info[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            let hint = info[.hint].map { "; \($0)" } ?? ""
            return message + state + hint
        }
        switch error.code {
        case .sslUnsupported:
            return "the server does not offer TLS, which the sslmode requires (use sslmode=prefer or disable, or enable ssl on the server)"
        case .authMechanismRequiresPassword:
            return "the server asks for a password and DATABASE_URL has none"
        case .unsupportedAuthMechanism:
            return "the server asks for an authentication method postgres-nio does not support"
        case .serverClosedConnection:
            return "the server closed the connection" + (error.underlying.map { " (\(describeTransport($0)))" } ?? "")
        case .clientClosedConnection:
            return "the connection was closed"
        case .queryCancelled:
            return "the query was cancelled"
        case .poolClosed:
            return "the connection pool is closed"
        default:
            if let underlying = error.underlying {
                return describeTransport(underlying)
            }
            return "\(error.code)"
        }
    }

    /// Connection-level errors from NIO and NIOSSL.
    private static func describeTransport(_ error: any Error) -> String {
        if let connect = error as? NIOConnectionError {
            if let first = connect.connectionErrors.first {
                return "cannot connect to \(connect.host):\(connect.port): \(describeTransport(first.error))"
            }
            if let dns = connect.dnsAAAAError ?? connect.dnsAError {
                return "cannot resolve \(connect.host): \(dns)"
            }
            return "cannot connect to \(connect.host):\(connect.port)"
        }
        if let io = error as? IOError {
            // "Connection refused", not "connection reset (error set): ... (errno: 111)".
            return String(cString: strerror(io.errnoCode))
        }
        if error is ChannelError, case .connectTimeout(let amount) = error as? ChannelError {
            return "no connection within \(amount.nanoseconds / 1_000_000_000) s (connect_timeout)"
        }
        if let ssl = error as? NIOSSLError {
            return "TLS failed: \(ssl)"
        }
        if let ssl = error as? BoringSSLError {
            return "TLS failed: \(ssl)"
        }
        return "\(error)"
    }
}
