import GCProto
import LeaseFSM
import NIOCore
import SwiftProtobuf

/// The `record` column of `gc_events`: one lease event as the serialized
/// wire message `DistributedGc_LeaseEvent`, the very message `WatchLeases`
/// sends (so a new event kind or field needs no second format).
///
/// Writers (the PostgreSQL lease store) insert each event they produce as
/// one row with no position, in the transaction of the command that
/// produced it (`PostgresEventWriter` does a command's events in one
/// statement):
///
/// ```sql
/// INSERT INTO gc_events (at, record) VALUES ($at, $record)   -- position NULL
/// ```
///
/// with `at` = `event.at.milliseconds` and `record` = ``encodeBuffer(_:)``. The
/// event's own `index` and `position` (the command index and the event's
/// place among that command's events) are kept in the record, but watchers
/// see the row's `position` instead (``decode(_:position:)``), the one
/// total order of events across all sidecars.
public enum PostgresEventRecord {
    /// Why a record could not be read back.
    public struct DecodingError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The bytes to store in `gc_events.record` for `event`. Never fails:
    /// every field of a ``LeaseEvent`` has a wire representation.
    public static func encode(_ event: LeaseEvent) -> [UInt8] {
        // Serializing a message built from plain fields (no Any, no required
        // fields) cannot fail; an empty record would be refused on read.
        (try? DistributedGc_LeaseEvent(event).serializedBytes()) ?? []
    }

    /// ``encode(_:)`` as a buffer, ready to bind as a `bytea` parameter
    /// (bind this, not the `[UInt8]`: postgres-nio binds an array of
    /// `UInt8` as a PostgreSQL array, not as `bytea`).
    public static func encodeBuffer(_ event: LeaseEvent) -> ByteBuffer {
        ByteBuffer(bytes: encode(event))
    }

    /// The event stored in `bytes`, placed in the stream at row `position`:
    /// its ``LeaseEvent/index`` is `position` and its ``LeaseEvent/position``
    /// 0, so ``EventHub/Cursor`` and `WatchLeases`' `after_index` count rows.
    ///
    /// - Throws: ``DecodingError`` for bytes that are not a lease event of a
    ///   kind and object type this build knows.
    public static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes, position: UInt64) throws(DecodingError) -> LeaseEvent {
        let message: DistributedGc_LeaseEvent
        do {
            message = try DistributedGc_LeaseEvent(serializedBytes: Array(bytes))
        } catch {
            throw DecodingError(description: "event at position \(position): not a DistributedGc_LeaseEvent (\(error))")
        }
        guard let kind = LeaseEvent.Kind(rawValue: Int32(clamping: message.kind.rawValue)) else {
            throw DecodingError(description: "event at position \(position): unknown kind \(message.kind.rawValue)")
        }
        guard let type = ObjectType(wire: message.objectType) else {
            throw DecodingError(description: "event at position \(position): unknown object type \(message.objectType.rawValue)")
        }
        return LeaseEvent(
            index: position, position: 0, kind: kind, leaseID: LeaseID(message.leaseID),
            object: ObjectKey(type: type, id: message.objectID), serviceID: message.serviceID,
            incarnation: message.incarnation, fencingToken: message.fencingToken,
            at: WallTime(message.at), expiresAt: message.hasExpiresAt ? WallTime(message.expiresAt) : nil,
            reason: message.reason, attempt: message.attempt)
    }
}

extension WallTime {
    /// The wire timestamp as milliseconds (sub-millisecond digits dropped,
    /// the inverse of `Google_Protobuf_Timestamp.init(_: WallTime)`).
    init(_ t: Google_Protobuf_Timestamp) {
        self.init(milliseconds: t.seconds &* 1000 &+ Int64(t.nanos / 1_000_000))
    }
}
