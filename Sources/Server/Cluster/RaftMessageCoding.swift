import Foundation
import GCProto
import Raft

/// Conversions between the Raft core's ``Message`` and the peer protocol's
/// `RaftMessage` (proto/raft.proto).
enum RaftMessageCoding {
    static func record(_ m: Message) -> DistributedGc_Raft_RaftMessage {
        var r = DistributedGc_Raft_RaftMessage()
        r.type = UInt32(m.type.rawValue)
        r.from = m.from
        r.to = m.to
        r.term = m.term
        r.logTerm = m.logTerm
        r.index = m.index
        r.entries = m.entries.map { entry in
            var e = DistributedGc_Raft_RaftEntry()
            e.term = entry.term
            e.index = entry.index
            e.kind = UInt32(entry.kind.rawValue)
            e.data = Data(entry.data)
            return e
        }
        r.commit = m.commit
        r.reject = m.reject
        r.rejectHint = m.rejectHint
        r.readSeq = m.readSeq
        r.context = Data(m.context)
        r.isLeadershipTransfer = m.isLeadershipTransfer
        if let chunk = m.snapshot {
            var c = DistributedGc_Raft_SnapshotChunk()
            c.metadata = metadata(chunk.metadata)
            c.offset = chunk.offset
            c.totalSize = chunk.totalSize
            c.data = Data(chunk.data)
            r.snapshot = c
        }
        return r
    }

    /// Decodes a peer's message; nil when it names an unknown type or kind
    /// (a peer of another version), which is dropped like a lost message.
    static func message(_ r: DistributedGc_Raft_RaftMessage) -> Message? {
        guard r.type <= UInt8.max, let type = MessageType(rawValue: UInt8(r.type)) else { return nil }
        var entries: [Entry] = []
        entries.reserveCapacity(r.entries.count)
        for e in r.entries {
            guard e.kind <= UInt8.max, let kind = EntryKind(rawValue: UInt8(e.kind)) else { return nil }
            entries.append(Entry(term: e.term, index: e.index, kind: kind, data: [UInt8](e.data)))
        }
        var snapshot: SnapshotChunk?
        if r.hasSnapshot {
            let c = r.snapshot
            snapshot = SnapshotChunk(metadata: metadata(c.metadata), offset: c.offset, totalSize: c.totalSize, data: [UInt8](c.data))
        }
        return Message(
            type: type, from: r.from, to: r.to, term: r.term, logTerm: r.logTerm, index: r.index,
            entries: entries, commit: r.commit, reject: r.reject, rejectHint: r.rejectHint, readSeq: r.readSeq,
            context: [UInt8](r.context), isLeadershipTransfer: r.isLeadershipTransfer, snapshot: snapshot)
    }

    static func metadata(_ m: SnapshotMetadata) -> DistributedGc_Raft_SnapshotMeta {
        var r = DistributedGc_Raft_SnapshotMeta()
        r.index = m.index
        r.term = m.term
        r.voters = m.conf.voters.sorted()
        r.learners = m.conf.learners.sorted()
        return r
    }

    static func metadata(_ r: DistributedGc_Raft_SnapshotMeta) -> SnapshotMetadata {
        SnapshotMetadata(index: r.index, term: r.term, conf: ConfState(voters: Set(r.voters), learners: Set(r.learners)))
    }

    /// Rough wire size, for batching under the peer's message size limit.
    static func estimatedSize(_ m: Message) -> Int {
        64 + m.context.count + (m.snapshot?.data.count ?? 0) + m.entries.reduce(0) { $0 + 24 + $1.data.count }
    }
}

extension RaftMessageCoding {
    /// One stream batch from `local` carrying `traffic`.
    static func batch(_ traffic: [PeerTraffic], from local: ClusterMember) -> DistributedGc_Raft_MessageBatch {
        var batch = DistributedGc_Raft_MessageBatch()
        batch.fromName = local.name
        batch.fromID = local.id
        for item in traffic {
            switch item {
            case .message(let message):
                batch.messages.append(record(message))
            case .forward(let write):
                var command = DistributedGc_Raft_ForwardedCommand()
                command.id = write.id
                command.command = Data(write.command)
                batch.forwarded.append(command)
            case .reply(let reply):
                var record = DistributedGc_Raft_ForwardedReply()
                record.id = reply.id
                switch reply.outcome {
                case .reply(let bytes): record.reply = Data(bytes)
                case .unavailable(let message): record.unavailable = message
                }
                batch.replies.append(record)
            }
        }
        return batch
    }

    static func write(_ record: DistributedGc_Raft_ForwardedCommand) -> ForwardedWrite {
        ForwardedWrite(id: record.id, command: [UInt8](record.command))
    }

    /// Decodes a leader's reply; nil when it carries no outcome (a peer of
    /// another version).
    static func reply(_ record: DistributedGc_Raft_ForwardedReply) -> ForwardedReply? {
        switch record.outcome {
        case .reply(let bytes): ForwardedReply(id: record.id, outcome: .reply([UInt8](bytes)))
        case .unavailable(let message): ForwardedReply(id: record.id, outcome: .unavailable(String(message.prefix(1024))))
        case nil: nil
        }
    }
}
