import Foundation
import ChaosCheck

/// What one run did and what the checkers found.
public struct RunReport: Sendable {
    public var options: ChaosOptions
    public var schedule: FaultSchedule
    /// The faults as they happened (targets resolved), by tick.
    public var faultLog: [String]
    public var operations: [ClientOperation]
    public var deliveries: Int
    public var duplicateDeliveries: Int
    public var leaderChanges: Int
    public var messagesDropped: Int
    public var messagesDuplicated: Int
    public var messagesDelayed: Int
    public var simulatedMilliseconds: Int64
    public var realDuration: Duration
    public var violations: [Violation]
    public var undecidedLeases: Int
    public var clockErrorMs: Int64
    /// The SQLite files of a failed run, kept for inspection.
    public var dataDirectory: String?
    /// Peers' Raft messages each node refused, by reason (see `PeerRefusals`).
    public var refusals: [String: [String: UInt64]] = [:]

    /// `n1 reason=count,…; n2 …`, or `none`.
    public var refusalSummary: String {
        var parts: [String] = []
        for (node, counts) in refusals.sorted(by: { $0.key < $1.key }) where !counts.isEmpty {
            let list = counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            parts.append("\(node) " + list.joined(separator: ","))
        }
        return parts.isEmpty ? "none" : parts.joined(separator: "; ")
    }

    /// Refusals of `reason` by any node.
    public func refusalCount(_ reason: String) -> UInt64 {
        refusals.values.reduce(0) { $0 + ($1[reason] ?? 0) }
    }

    public var passed: Bool { violations.isEmpty }

    /// Client operations (the final reads excluded), by outcome.
    public var operationCounts: (ok: Int, refused: Int, unknown: Int) {
        var counts = (ok: 0, refused: 0, unknown: 0)
        for op in operations where op.client >= 0 {
            switch op.outcome {
            case .ok: counts.ok += 1
            case .refused: counts.refused += 1
            case .unknown, .pending: counts.unknown += 1
            }
        }
        return counts
    }

    /// Faults injected (leader churn counts its three isolations).
    public var faultsInjected: Int { schedule.faults.reduce(0) { $0 + ($1.kind == .leaderChurn ? 3 : 1) } }

    /// One line for a run among many.
    public var oneLine: String {
        let c = operationCounts
        return "seed \(options.seed): \(passed ? "ok" : "FAILED (\(violations.count) violations)") — \(c.ok + c.refused + c.unknown) ops "
            + "(\(c.ok) ok, \(c.refused) refused, \(c.unknown) unknown), \(faultsInjected) faults, \(leaderChanges) leader changes, "
            + "\(deliveries) cleanup deliveries, \(simulatedMilliseconds / 1000) s simulated in \(seconds(realDuration))"
    }

    /// The full account: schedule, what happened, verdicts, and how to repeat a failure.
    public var text: String {
        var lines = ["chaos run — seed \(options.seed), \(options.nodes) nodes, \(options.clients) clients, \(options.workloadSeconds) s of workload",
                     "fault schedule:", schedule.description, "faults as injected:"]
        lines += faultLog.map { "  \($0)" }
        let c = operationCounts
        lines += [
            "summary:",
            "  operations: \(c.ok + c.refused + c.unknown) (\(c.ok) ok, \(c.refused) refused, \(c.unknown) unknown outcome)",
            "  faults: \(faultsInjected); leader changes: \(leaderChanges); largest clock error: \(clockErrorMs) ms",
            "  messages dropped \(messagesDropped), duplicated \(messagesDuplicated), delayed \(messagesDelayed)",
            "  cleanup deliveries: \(deliveries) (\(duplicateDeliveries) repeated successes, allowed: at-least-once)",
            "  simulated \(simulatedMilliseconds / 1000) s in \(seconds(realDuration))",
            "  peer messages refused: \(refusalSummary)",
            "verdicts:",
        ]
        let broken = Set(violations.map(\.property))
        for property in Violation.Property.allCases {
            lines.append("  \(broken.contains(property) ? "FAIL" : "ok  ") \(property.rawValue)")
        }
        if undecidedLeases > 0 { lines.append("  (\(undecidedLeases) leases too large for the linearizability search: undecided)") }
        if !passed {
            lines.append("violations:")
            lines += violations.prefix(20).map { "  \($0)" }
            if violations.count > 20 { lines.append("  … and \(violations.count - 20) more") }
            lines.append("reproduce: \(options.reproduction)")
            lines.append("  (the seed fixes faults, workload and election timers; thread interleavings vary, so repeat with --repeat 5)")
            if let dataDirectory { lines.append("SQLite files kept in \(dataDirectory)") }
        }
        return lines.joined(separator: "\n")
    }
}

/// `1.23 s`.
func seconds(_ duration: Duration) -> String {
    let (s, atto) = duration.components
    let hundredths = Int64(s) * 100 + atto / 10_000_000_000_000_000
    return "\(hundredths / 100).\(String(format: "%02d", Int(hundredths % 100))) s"
}
