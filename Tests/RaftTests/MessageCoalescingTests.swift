import Testing
@testable import Raft

/// The messages of one `Ready` that say, to one peer, what one message could
/// are folded: appends that continue each other, and accepting answers.
@Suite("Message coalescing")
struct MessageCoalescingTests {
    static func append(to peer: NodeID, term: UInt64 = 2, prev: (index: UInt64, term: UInt64), _ indexes: ClosedRange<UInt64>?,
                       commit: UInt64, entryTerm: UInt64 = 2, bytes: Int = 1) -> Message {
        let entries = (indexes.map(Array.init) ?? []).map { Entry(term: entryTerm, index: $0, data: Array(repeating: 7, count: bytes)) }
        return Message(type: .append, from: 1, to: peer, term: term, logTerm: prev.term, index: prev.index, entries: entries, commit: commit)
    }

    static func ack(_ index: UInt64, from peer: NodeID = 2, reject: Bool = false) -> Message {
        Message(type: .appendResponse, from: peer, to: 1, term: 2, index: index, reject: reject, rejectHint: reject ? index - 1 : 0)
    }

    @Test("appends to one follower that continue each other become one, with every entry and the later commit index")
    func continuingAppendsFold() {
        let messages = [
            Self.append(to: 2, prev: (10, 2), 11...11, commit: 10),
            Self.append(to: 2, prev: (11, 2), 12...13, commit: 10),
            Self.append(to: 2, prev: (13, 2), nil, commit: 12),  // only moves the commit index
            Self.append(to: 2, prev: (13, 2), 14...14, commit: 12),
        ]
        let out = RaftNode.coalesced(messages, maxEntries: 64, maxBytes: 1 << 20)
        #expect(out.count == 1)
        #expect(out.first?.index == 10 && out.first?.logTerm == 2)
        #expect(out.first?.entries.map(\.index) == [11, 12, 13, 14])
        #expect(out.first?.commit == 12)
    }

    @Test("appends are kept apart across a gap, a term change, another message between them, or past the size bounds")
    func appendsThatCannotFold() {
        let gap = [Self.append(to: 2, prev: (10, 2), 11...11, commit: 10), Self.append(to: 2, prev: (12, 2), 13...13, commit: 10)]
        #expect(RaftNode.coalesced(gap, maxEntries: 64, maxBytes: 1 << 20).count == 2)
        let otherTerm = [Self.append(to: 2, prev: (10, 1), 11...11, commit: 10, entryTerm: 1),
                         Self.append(to: 2, term: 3, prev: (11, 1), 12...12, commit: 10, entryTerm: 3)]
        #expect(RaftNode.coalesced(otherTerm, maxEntries: 64, maxBytes: 1 << 20).count == 2)
        let heartbeatBetween = [Self.append(to: 2, prev: (10, 2), 11...11, commit: 10),
                                Message(type: .heartbeat, from: 1, to: 2, term: 2, commit: 10),
                                Self.append(to: 2, prev: (11, 2), 12...12, commit: 10)]
        #expect(RaftNode.coalesced(heartbeatBetween, maxEntries: 64, maxBytes: 1 << 20).map(\.type) == [.append, .heartbeat, .append])
        let many = (11...20).map { Self.append(to: 2, prev: ($0 - 1, 2), $0...$0, commit: 10) }
        #expect(RaftNode.coalesced(many, maxEntries: 4, maxBytes: 1 << 20).map(\.entries.count) == [4, 4, 2])
        let large = (11...14).map { Self.append(to: 2, prev: ($0 - 1, 2), $0...$0, commit: 10, bytes: 100) }
        #expect(RaftNode.coalesced(large, maxEntries: 64, maxBytes: 250).map(\.entries.count) == [2, 2])
    }

    @Test("messages to different peers fold per peer and keep each peer's order")
    func perPeer() {
        let messages = [
            Self.append(to: 2, prev: (10, 2), 11...11, commit: 10),
            Self.append(to: 3, prev: (8, 2), 9...11, commit: 10),
            Self.append(to: 2, prev: (11, 2), 12...12, commit: 10),
            Message(type: .heartbeat, from: 1, to: 3, term: 2, commit: 10),
            Self.append(to: 3, prev: (11, 2), 12...12, commit: 10),
        ]
        let out = RaftNode.coalesced(messages, maxEntries: 64, maxBytes: 1 << 20)
        #expect(out.filter { $0.to == 2 }.map { $0.entries.map(\.index) } == [[11, 12]])
        #expect(out.filter { $0.to == 3 }.map(\.type) == [.append, .heartbeat, .append])
        #expect(out.filter { $0.to == 3 }.map { $0.entries.map(\.index) } == [[9, 10, 11], [], [12]])
    }

    @Test("accepting answers to the leader keep the highest index; refusals are never folded")
    func answers() {
        let out = RaftNode.coalesced([Self.ack(5), Self.ack(7), Self.ack(6), Self.ack(9, reject: true), Self.ack(10), Self.ack(12)],
                                     maxEntries: 64, maxBytes: 1 << 20)
        #expect(out.map(\.index) == [7, 9, 12])
        #expect(out.map(\.reject) == [false, true, false])
    }

    @Test("a leader's Ready carries one append per follower for a burst of proposals, and every node applies them all")
    func burstOfProposals() throws {
        // A window of 16 appends in flight and up to 16 entries an append:
        // all 10 proposals go out at once and fit one message.
        let c = Cluster.scenario(voters: 3) { $0.maxInflight = 16; $0.maxEntriesPerAppend = 16 }
        c.elect(1)
        c.stabilize()
        let payloads = (0..<10).map { bytes("p\($0)") }
        for p in payloads { try c.propose(1, p) }
        c.processReadys()
        for peer: NodeID in [2, 3] {
            let appends = c.pendingMessages.filter { $0.to == peer && $0.type == .append }
            #expect(appends.count == 1, "to \(peer): \(appends.map(\.entries.count))")
            #expect(appends.first?.entries.count == 10)
        }
        c.stabilize()
        for id in c.ids {
            #expect(c.appliedData(id) == payloads)
        }
        #expect(c.violations.isEmpty, "\(c.violations)")
    }
}
