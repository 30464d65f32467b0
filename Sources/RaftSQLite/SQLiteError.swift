import CSQLite

/// An error reported by SQLite, or by the wrapper when it is misused (for example a statement
/// used after its connection was closed).
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The (extended) SQLite result code, e.g. `SQLITE_BUSY` (5) or `SQLITE_IOERR_FSYNC`.
    public let code: Int32
    /// SQLite's error message (`sqlite3_errmsg`) or the wrapper's own explanation.
    public let message: String
    /// What the wrapper was doing when the error happened (an SQL text or an operation name).
    public let context: String

    /// Creates an error from its parts.
    public init(code: Int32, message: String, context: String) {
        self.code = code
        self.message = message
        self.context = context
    }

    /// The primary result code (`code & 0xff`), e.g. `SQLITE_IOERR` for `SQLITE_IOERR_FSYNC`.
    public var primaryCode: Int32 { code & 0xff }

    /// A one-line description: code, SQLite's name for it, message and context.
    public var description: String {
        let name = String(cString: sqlite3_errstr(code))
        return "SQLite error \(code) (\(name)): \(message) [\(context)]"
    }

    /// Builds an error from a connection's current error state.
    static func from(_ db: OpaquePointer?, code: Int32, context: String) -> SQLiteError {
        let message: String
        if let db, let cMessage = sqlite3_errmsg(db) {
            message = String(cString: cMessage)
        } else {
            message = String(cString: sqlite3_errstr(code))
        }
        return SQLiteError(code: code, message: message, context: context)
    }

    /// The error thrown when a connection or statement is used after being closed or finalized.
    static func closed(_ context: String) -> SQLiteError {
        SQLiteError(code: SQLITE_MISUSE, message: "connection or statement is closed", context: context)
    }
}
