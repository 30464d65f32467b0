import Raft

/// One node of the cluster as configured: its name (`GC_NODE_ID`), its Raft
/// id and its peer address (`GC_RAFT_PORT`).
public struct ClusterMember: Hashable, Sendable, CustomStringConvertible {
    /// The operator's name for the node, e.g. `n1` or `gc-sidecar-0`.
    public var name: String
    /// The node's peer address.
    public var host: String
    public var port: Int

    public init(name: String, host: String, port: Int) {
        self.name = name
        self.host = host
        self.port = port
    }

    /// The Raft id, derived from the name (see ``nodeID(forName:)``).
    public var id: NodeID { Self.nodeID(forName: name) }

    /// `host:port`.
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var description: String { "\(name)=\(address)" }

    /// The Raft id of the node called `name`: the 64-bit FNV-1a hash of the
    /// name (never 0, which Raft reserves). Every node derives the same ids
    /// from the same names, so GC_PEERS needs no numbers.
    public static func nodeID(forName name: String) -> NodeID {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash == 0 ? 1 : hash
    }

    /// Whether `name` can name a node (`GC_NODE_ID`, `GC_PEERS`, `gcctl
    /// cluster add`): 1 to 128 ASCII letters, digits, '-', '_' or '.'.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// Parses `name=host:port`; the membership context of a configuration
    /// change uses the same form.
    public init?(parsing text: some StringProtocol) {
        guard let equals = text.firstIndex(of: "="), let colon = text.lastIndex(of: ":"), equals < colon else { return nil }
        let name = String(text[..<equals])
        var host = String(text[text.index(after: equals)..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !name.isEmpty, !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        self.init(name: name, host: host, port: port)
    }
}
