/// A membership change as stored in a ``EntryKind/configChange`` entry.
///
/// The entry carries the change *and* the complete resulting membership, so a node adopts it
/// without knowing the previous configuration (a node joining with an empty log learns the full
/// cluster from the first configuration entry it receives).
public struct ConfChange: Sendable, Hashable {
    public var type: ConfChangeType
    public var nodeID: NodeID
    /// Opaque application data (for example the new node's address).
    public var context: [UInt8]
    /// The membership after the change. Filled by the leader when it appends the entry.
    public var resultingConf: ConfState

    public init(type: ConfChangeType, nodeID: NodeID, context: [UInt8] = [], resultingConf: ConfState = ConfState()) {
        self.type = type
        self.nodeID = nodeID
        self.context = context
        self.resultingConf = resultingConf
    }

    private static let formatVersion: UInt8 = 1

    /// Compact little-endian encoding used as the entry's `data`.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(Self.formatVersion)
        writer.write(type.rawValue)
        writer.write(nodeID)
        writer.write(UInt32(resultingConf.voters.count))
        for voter in resultingConf.voters.sorted() { writer.write(voter) }
        writer.write(UInt32(resultingConf.learners.count))
        for learner in resultingConf.learners.sorted() { writer.write(learner) }
        writer.write(bytes: context)
        return writer.bytes
    }

    /// Decodes ``encoded()`` output.
    public static func decode(_ bytes: [UInt8]) throws(RaftError) -> ConfChange {
        var reader = ByteReader(bytes)
        guard reader.readUInt8() == formatVersion,
              let rawType = reader.readUInt8(), let type = ConfChangeType(rawValue: rawType),
              let nodeID = reader.readUInt64(),
              let voters = readIDs(&reader),
              let learners = readIDs(&reader),
              let context = reader.readBytes(),
              reader.isAtEnd
        else { throw .malformedConfChange }
        return ConfChange(type: type, nodeID: nodeID, context: context, resultingConf: ConfState(voters: voters, learners: learners))
    }

    private static func readIDs(_ reader: inout ByteReader) -> Set<NodeID>? {
        guard let count = reader.readUInt32(), count <= 1 << 16 else { return nil }
        var ids = Set<NodeID>()
        for _ in 0..<count {
            guard let id = reader.readUInt64() else { return nil }
            ids.insert(id)
        }
        return ids
    }

    /// Computes the membership that results from applying this change to `conf`.
    func applied(to conf: ConfState) throws(RaftError) -> ConfState {
        guard nodeID != 0 else { throw .invalidConfChange("node id 0 is reserved") }
        var next = conf
        switch type {
        case .addLearner:
            guard !conf.voters.contains(nodeID), !conf.learners.contains(nodeID) else {
                throw .invalidConfChange("node \(nodeID) is already a member")
            }
            next.learners.insert(nodeID)
        case .promote:
            guard conf.learners.contains(nodeID) else {
                throw .invalidConfChange("node \(nodeID) is not a learner")
            }
            next.learners.remove(nodeID)
            next.voters.insert(nodeID)
        case .addVoter:
            guard !conf.voters.contains(nodeID) else {
                throw .invalidConfChange("node \(nodeID) is already a voter")
            }
            next.learners.remove(nodeID)
            next.voters.insert(nodeID)
        case .removeNode:
            guard conf.voters.contains(nodeID) || conf.learners.contains(nodeID) else {
                throw .invalidConfChange("node \(nodeID) is not a member")
            }
            next.voters.remove(nodeID)
            next.learners.remove(nodeID)
            guard !next.voters.isEmpty else { throw .invalidConfChange("cannot remove the last voter") }
        }
        return next
    }
}
