import GCProto
import LeaseFSM
import Logging
import NIOCore
import PostgresNIO

/// Writes a command's lease events into `gc_events`, unnumbered: the
/// sequencer gives them their positions in commit order.
enum PostgresEventWriter {
    static func insert(_ events: [LeaseEvent], on connection: PostgresConnection, logger: Logger) async throws {
        guard !events.isEmpty else { return }
        let ats = events.map(\.at.milliseconds)
        let records = events.map { ByteBuffer(bytes: PostgresEventRecord.encode($0)) }
        _ = try await connection.rows(InsertEventsSQL.self, { b in
            try b.append(ats)
            try b.append(records)
        }, logger: logger)
    }
}
