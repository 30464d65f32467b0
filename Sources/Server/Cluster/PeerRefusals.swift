import Logging
import Raft
import Synchronization

/// Peers' messages this node refused, whether the peer service refused them
/// (they do not decode, name another sender than the batch, or are addressed
/// to another node) or the Raft core did (see ``RefusalReason``).
///
/// Each refusal is counted (`gc_raft_refused_messages_total{reason=…}`);
/// the first of each reason is logged with its context (peer, message,
/// detail), the later ones only counted, so a misbehaving peer cannot flood
/// the log.
public final class PeerRefusals: Sendable {
    /// Refusals made by the peer service before the Raft core sees a message.
    public enum ServiceReason: String, Sendable, CaseIterable {
        /// A message with an unknown type or entry kind (a peer of another version?).
        case undecodable
        /// A message whose `from` is not the batch's sender.
        case senderMismatch = "sender_mismatch"
        /// A forwarded client write from a node that is not a member.
        case forwardFromNonMember = "forward_from_non_member"
        /// A reply to a forwarded write this node is not waiting for from
        /// that peer (late, duplicated, or forged).
        case unexpectedReply = "unexpected_reply"
    }

    private let logger: Logger
    private let metrics: SidecarMetrics?
    private let counts = Mutex<[String: UInt64]>([:])

    public init(logger: Logger, metrics: SidecarMetrics?) {
        self.logger = logger
        self.metrics = metrics
    }

    /// Counts one refusal for `reason` and logs it if it is the first.
    public func record(_ reason: String, peer: String, detail: @autoclosure () -> String) {
        let first = counts.withLock { counts in
            counts[reason, default: 0] += 1
            return counts[reason] == 1
        }
        metrics?.recordRefusedPeerMessage(reason: reason)
        if first {
            logger.warning("refusing a peer's Raft message (logged once per reason; gc_raft_refused_messages_total counts them all)", metadata: [
                "reason": "\(reason)", "peer": "\(peer)", "detail": "\(detail())",
            ])
        }
    }

    func record(_ reason: ServiceReason, peer: String, detail: @autoclosure () -> String) {
        record(reason.rawValue, peer: peer, detail: detail())
    }

    func record(_ refusal: Refusal, peer: String) {
        record(refusal.reason.rawValue, peer: peer, detail: "\(refusal)")
    }

    /// Refusals so far by reason (service and core reasons alike).
    public var byReason: [String: UInt64] { counts.withLock { $0 } }
}
