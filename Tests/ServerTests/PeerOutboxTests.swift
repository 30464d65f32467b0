import GCProto
import Raft
@testable import Server
import Testing

/// The per-peer outbox never blocks the sender, drops beyond its bound, and
/// hands out batches under a byte limit in order.
@Suite("Peer outbox")
struct PeerOutboxTests {
    static func heartbeat(_ term: UInt64) -> Message {
        Message(type: .heartbeat, from: 1, to: 2, term: term)
    }

    static func append(bytes: Int) -> Message {
        Message(type: .append, from: 1, to: 2, term: 1, entries: [Entry(term: 1, index: 1, data: Array(repeating: 7, count: bytes))])
    }

    @Test("beyond its limit it drops and says how many; what it kept comes out in order")
    func dropsBeyondLimit() async {
        let outbox = PeerOutbox(limit: 3)
        #expect(outbox.add((1...5).map { PeerTraffic.message(Self.heartbeat($0)) }) == 2)
        #expect(outbox.add([.message(Self.heartbeat(6))]) == 1, "still full")
        let batch = await outbox.next(maxBytes: 1 << 20)
        #expect(batch?.map(Self.term) == [1, 2, 3])
    }

    @Test("batches stay under the byte limit, but always carry at least one message")
    func batchesRespectByteLimit() async {
        let outbox = PeerOutbox()
        outbox.add([.message(Self.append(bytes: 1000)), .message(Self.append(bytes: 1000)), .message(Self.append(bytes: 5000))])
        #expect(await outbox.next(maxBytes: 2500)?.count == 2)
        #expect(await outbox.next(maxBytes: 2500)?.count == 1, "one message larger than the limit still goes")
    }

    @Test("a waiting reader wakes for new messages, and gets nil once closed")
    func wakesAndCloses() async {
        let outbox = PeerOutbox()
        let reader = Task { await outbox.next(maxBytes: 1 << 20) }
        outbox.add([.message(Self.heartbeat(9))])
        #expect(await reader.value?.map(Self.term) == [9])
        let closed = Task { await outbox.next(maxBytes: 1 << 20) }
        outbox.close()
        #expect(await closed.value == nil)
        #expect(outbox.add([.message(Self.heartbeat(10))]) == 1, "a closed outbox takes nothing")
    }
}

@Suite("Raft message wire coding")
struct RaftMessageCodingTests {
    @Test("every field, entries and snapshot chunks survive the peer protocol's encoding")
    func roundTrip() throws {
        let chunk = SnapshotChunk(metadata: SnapshotMetadata(index: 90, term: 3, conf: ConfState(voters: [1, 2, 3], learners: [4])),
                                  offset: 65_536, totalSize: 200_000, data: [1, 2, 3])
        let messages = [
            Message(type: .append, from: 1, to: 2, term: 5, logTerm: 4, index: 10,
                    entries: [Entry(term: 5, index: 11, kind: .normal, data: [9, 9]), Entry(term: 5, index: 12, kind: .configChange, data: [1])],
                    commit: 9),
            Message(type: .appendResponse, from: 2, to: 1, term: 5, logTerm: 3, index: 10, reject: true, rejectHint: 7),
            Message(type: .heartbeat, from: 1, to: 3, term: 5, commit: 12, readSeq: 44),
            Message(type: .readIndex, from: 3, to: 1, term: 5, context: [0, 1, 2, 255]),
            Message(type: .vote, from: 3, to: 1, term: 6, logTerm: 5, index: 12, isLeadershipTransfer: true),
            Message(type: .snapshot, from: 1, to: 4, term: 5, snapshot: chunk),
        ]
        for message in messages {
            #expect(RaftMessageCoding.message(RaftMessageCoding.record(message)) == message)
        }
    }

    @Test("a message of an unknown type or entry kind is dropped, not guessed at")
    func unknownKindsAreDropped() {
        var unknownType = RaftMessageCoding.record(Message(type: .heartbeat, from: 1, to: 2, term: 1))
        unknownType.type = 200
        #expect(RaftMessageCoding.message(unknownType) == nil)
        var unknownKind = RaftMessageCoding.record(Message(type: .append, from: 1, to: 2, term: 1, entries: [Entry(term: 1, index: 1)]))
        unknownKind.entries[0].kind = 77
        #expect(RaftMessageCoding.message(unknownKind) == nil)
    }
}

extension PeerOutboxTests {
    static func term(_ item: PeerTraffic) -> UInt64? {
        if case .message(let message) = item { message.term } else { nil }
    }

    @Test("forwarded writes and replies go in the same batch as Raft messages, in order, and decode as sent")
    func forwardsShareTheStreamBatch() async throws {
        let outbox = PeerOutbox()
        outbox.add([
            .message(Self.heartbeat(1)),
            .forward(ForwardedWrite(id: 7, command: [1, 2, 3])),
            .reply(ForwardedReply(id: 9, outcome: .unavailable("not the leader"))),
            .reply(ForwardedReply(id: 10, outcome: .reply([4, 5]))),
        ])
        let taken = try #require(await outbox.next(maxBytes: 1 << 20))
        #expect(taken.count == 4, "one batch for all of it")
        let batch = RaftMessageCoding.batch(taken, from: ClusterMember(name: "n2", host: "127.0.0.1", port: 1))
        #expect(batch.messages.count == 1)
        #expect(batch.forwarded.map(RaftMessageCoding.write) == [ForwardedWrite(id: 7, command: [1, 2, 3])])
        #expect(batch.replies.compactMap(RaftMessageCoding.reply) == [
            ForwardedReply(id: 9, outcome: .unavailable("not the leader")), ForwardedReply(id: 10, outcome: .reply([4, 5])),
        ])
        var empty = DistributedGc_Raft_ForwardedReply()
        empty.id = 11
        #expect(RaftMessageCoding.reply(empty) == nil, "a reply without an outcome is refused, not guessed at")
    }
}
