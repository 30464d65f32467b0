import Raft

/// A kind of fault the harness injects (`--faults` takes these names).
public enum FaultKind: String, CaseIterable, Sendable, Hashable {
    /// Kill a node (leader or follower), restart it from its SQLite file later.
    case kill
    /// Split the nodes into a minority and a majority.
    case partition
    /// A node can send but not receive, or receive but not send.
    case oneWay = "one-way"
    /// Cut the leader off from everyone.
    case isolateLeader = "isolate-leader"
    /// Two halves that only a bridge node connects (3 nodes: one missing link).
    case bridge
    /// Each node reaches only its ring neighbours (majority rings; 5 nodes).
    case ring
    /// Drop, duplicate, delay and reorder messages; lose forwarded answers.
    case lossy
    /// One node's clock runs ahead or behind.
    case clockSkew = "clock-skew"
    /// One node's clock jumps forward or backward, and back at the end.
    case clockJump = "clock-jump"
    /// One node's fsyncs are slow.
    case slowDisk = "slow-disk"
    /// One node's fsyncs fail (it stops acknowledging; restarted at the end).
    case failDisk = "fail-disk"
    /// Stop a node (SIGSTOP analogue) and resume it later.
    case pause
    /// Isolate the leader, heal, three times in a row (successive elections).
    case leaderChurn = "leader-churn"

    /// Every kind, in the order the CLI lists them.
    public static var all: [FaultKind] { allCases }
}

/// Which node a fault hits; resolved when the fault starts.
public enum FaultTarget: String, Sendable, Hashable {
    case leader, follower, any
}

/// One fault of a schedule: what, whom, from which tick and for how long.
public struct ScheduledFault: Sendable, Hashable, CustomStringConvertible {
    public var kind: FaultKind
    public var target: FaultTarget
    public var startTick: Int
    public var durationTicks: Int
    /// Kind-specific size: clock offset in ms, fsync delay in µs, a
    /// direction or split choice.
    public var magnitude: Int64

    public var description: String {
        var text = "tick \(startTick)–\(startTick + durationTicks): \(kind.rawValue)"
        switch kind {
        case .kill, .oneWay, .pause, .clockSkew, .clockJump, .slowDisk, .failDisk: text += " (\(target.rawValue))"
        default: break
        }
        switch kind {
        case .clockSkew, .clockJump: text += " \(magnitude > 0 ? "+" : "")\(magnitude) ms"
        case .slowDisk: text += " \(magnitude) µs per fsync"
        case .oneWay: text += magnitude == 0 ? " cannot receive" : " cannot send"
        default: break
        }
        return text
    }
}

/// A run's fault schedule, drawn from its seed: faults one after another
/// with quiet gaps between them, after a warm-up that elects a leader.
public struct FaultSchedule: Sendable, CustomStringConvertible {
    public var faults: [ScheduledFault]

    public init(seed: UInt64, kinds: [FaultKind], nodes: Int, workloadTicks: Int, maxClockErrorMs: Int64) {
        var random = Raft.SplitMix64(seed: seed ^ 0xFA17_5EED)
        var faults: [ScheduledFault] = []
        let usable = kinds.filter { $0 != .ring || nodes >= 5 }
        var tick = 20
        let targets: [FaultTarget] = [.leader, .follower, .any]
        while let kind = usable.randomElement(using: &random) {
            tick += Int.random(in: 5...25, using: &random)
            var duration = Int.random(in: 15...60, using: &random)
            if kind == .leaderChurn { duration = 90 }
            guard tick + duration < workloadTicks - 10 else { break }
            let target = targets[Int.random(in: 0..<targets.count, using: &random)]
            let magnitude: Int64
            switch kind {
            case .clockSkew, .clockJump:
                let size = Int64.random(in: maxClockErrorMs / 4...maxClockErrorMs, using: &random)
                magnitude = Bool.random(using: &random) ? size : -size
            case .slowDisk: magnitude = Int64.random(in: 1_000...6_000, using: &random)
            default: magnitude = Int64.random(in: 0...1, using: &random)
            }
            faults.append(ScheduledFault(kind: kind, target: target, startTick: tick, durationTicks: duration, magnitude: magnitude))
            tick += duration
        }
        self.faults = faults
    }

    public var description: String {
        faults.isEmpty ? "  (no faults)" : faults.map { "  \($0)" }.joined(separator: "\n")
    }
}
