import Logging
import PostgresNIO

extension PostgresConnection {
    /// Runs a statement whose rows are not needed, and waits for it to
    /// finish: postgres-nio reports a statement's error while its rows are
    /// read, so a statement whose rows nobody reads would let its failure
    /// surface at the next statement of the transaction (as "current
    /// transaction is aborted"), or not at all.
    func execute(_ query: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }
}
