import GCProto
import LeaseFSM
import SwiftProtobuf

/// A lease event as `gc_events.record` holds it: the wire message
/// `DistributedGc_LeaseEvent`. (Placeholder until the event tail lands.)
enum PostgresEventRecord {
    static func encode(_ event: LeaseEvent) -> [UInt8] {
        (try? DistributedGc_LeaseEvent(event).serializedBytes()) ?? []
    }
}
