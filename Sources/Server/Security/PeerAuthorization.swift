import GRPCCore
import Logging
import Synchronization

/// Checks, on the peer port, that the verified certificate of the caller
/// names the member it claims to be (a DNS SAN or the CN equals the
/// member's `GC_PEERS` name). Off (everything passes) when peer TLS is off.
public struct PeerAuthorization: Sendable {
    let enabled: Bool
    let logger: Logger
    let metrics: SidecarMetrics?
    /// The names of the current members, this node included.
    let memberNames: @Sendable () -> Set<String>
    private let logged = LoggedOnce()

    public init(enabled: Bool, logger: Logger, metrics: SidecarMetrics?, memberNames: @escaping @Sendable () -> Set<String>) {
        self.enabled = enabled
        self.logger = logger
        self.metrics = metrics
        self.memberNames = memberNames
    }

    /// Refuses a peer that claims to be member `name` (and Raft id `id`)
    /// unless its certificate names it.
    public func check(claimedName name: String, claimedID id: UInt64? = nil, _ context: ServerContext) throws(RPCError) {
        guard enabled else { return }
        let names = CertificateNames.ofPeer(context)
        guard let names, names.names(member: name), memberNames().contains(name),
              id.map({ $0 == ClusterMember.nodeID(forName: name) }) ?? true
        else {
            let reason = names == nil ? "no-certificate" : (memberNames().contains(name) ? "wrong-name" : "not-a-member")
            refuse(reason, "peer claiming to be '\(name)' refused: its certificate names \(names.map(Self.describe) ?? "nothing") (\(context.remotePeer))")
            throw RPCError(code: .permissionDenied, message: "this peer certificate does not name member '\(name)'")
        }
    }

    /// Refuses a caller whose certificate names no current member.
    public func checkIsMember(_ context: ServerContext) throws(RPCError) {
        guard enabled else { return }
        let names = CertificateNames.ofPeer(context)
        let members = memberNames()
        guard let names, members.contains(where: { names.names(member: $0) }) else {
            refuse("not-a-member", "peer call refused: its certificate names \(names.map(Self.describe) ?? "nothing"), no member (\(context.remotePeer))")
            throw RPCError(code: .permissionDenied, message: "this peer certificate names no member of the cluster")
        }
    }

    private func refuse(_ reason: String, _ message: String) {
        metrics?.recordPeerAuthRefused(reason: reason)
        if logged.first(message) { logger.warning("\(message) (logged once)") }
    }

    static func describe(_ names: CertificateNames) -> String {
        "DNS \(names.dnsNames), CN \(names.commonName ?? "-")"
    }
}

/// Remembers which messages were logged, to log each once (bounded).
final class LoggedOnce: Sendable {
    private let seen = Mutex<Set<String>>([])

    func first(_ key: String) -> Bool {
        seen.withLock { set in
            guard set.count < 1_000 else { return false }
            return set.insert(key).inserted
        }
    }
}
