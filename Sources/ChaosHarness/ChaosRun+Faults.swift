import Foundation
import Logging
import Raft
import Server
import Synchronization

/// The faults of a run: injecting each one, undoing it, healing everything.
extension ChaosRun {

    func log(_ line: String) {
        let tick = state.withLock { s in
            s.faultLog.append("tick \(s.tick): \(line)")
            return s.tick
        }
        if options.trace { FileHandle.standardError.write(Data("seed \(seed) tick \(tick): \(line)\n".utf8)) }
        logger.info("\(line)", metadata: ["tick": "\(tick)"])
    }

    /// Runs the schedule: each fault starts at its tick and is undone after
    /// its duration.
    func drive(_ schedule: FaultSchedule) async {
        for fault in schedule.faults {
            let now = state.withLock { $0.tick }
            if fault.startTick > now { await sleep(ticks: fault.startTick - now) }
            if workloadStopped { return }
            let began = time.now()
            await inject(fault)
            let ended = time.now()
            state.withLock { $0.disturbances.append(began...ended) }
        }
    }

    private func pick(_ target: FaultTarget) async -> ChaosNode {
        let leader = await currentLeader()
        switch target {
        case .leader:
            if let leader { return leader }
        case .follower:
            let followers = nodes.filter { $0 !== leader && $0.isUp }
            if let node = state.withLock({ s in followers.randomElement(using: &s.random) }) { return node }
        case .any:
            break
        }
        return state.withLock { s in nodes[Int.random(in: 0..<nodes.count, using: &s.random)] }
    }

    private func others(than names: Set<String>) -> [String] { nodes.map(\.name).filter { !names.contains($0) } }

    private func cutBetween(_ a: [String], _ b: [String]) {
        for x in a { for y in b { fabric.cut(from: x, to: y); fabric.cut(from: y, to: x) } }
    }

    private func trackClock(_ offset: Int64) {
        state.withLock { s in
            s.maxAheadMs = max(s.maxAheadMs, offset)
            s.maxBehindMs = max(s.maxBehindMs, -offset)
        }
    }

    /// Applies `fault`, waits its duration, and undoes it.
    private func inject(_ fault: ScheduledFault) async {
        let duration = fault.durationTicks
        switch fault.kind {
        case .kill:
            let node = await pick(fault.target)
            log("kill \(node.name) (\(fault.target.rawValue))")
            await node.kill(fabric)
            await sleep(ticks: duration)
            await restart(node)
        case .partition:
            let shuffled = state.withLock { s in nodes.map(\.name).shuffled(using: &s.random) }
            let minority = Array(shuffled.prefix((nodes.count - 1) / 2))
            log("partition \(minority) | \(others(than: Set(minority)))")
            cutBetween(minority, others(than: Set(minority)))
            await sleep(ticks: duration)
            heal("partition")
        case .oneWay:
            let node = await pick(fault.target)
            if fault.magnitude == 0 {
                log("\(node.name) stops receiving (one-way)")
                for other in others(than: [node.name]) { fabric.cut(from: other, to: node.name) }
            } else {
                log("\(node.name) stops sending (one-way)")
                for other in others(than: [node.name]) { fabric.cut(from: node.name, to: other) }
            }
            await sleep(ticks: duration)
            heal("one-way")
        case .isolateLeader:
            let node = await pick(.leader)
            log("isolate leader \(node.name)")
            cutBetween([node.name], others(than: [node.name]))
            await sleep(ticks: duration)
            heal("isolation")
        case .bridge:
            let shuffled = state.withLock { s in nodes.map(\.name).shuffled(using: &s.random) }
            let half = (shuffled.count - 1) / 2
            let left = Array(shuffled.prefix(half)), bridge = shuffled[half], right = Array(shuffled.suffix(from: half + 1))
            log("bridge: \(left) – \(bridge) – \(right)")
            cutBetween(left, right)
            await sleep(ticks: duration)
            heal("bridge")
        case .ring:
            let ring = state.withLock { s in nodes.map(\.name).shuffled(using: &s.random) }
            log("majority ring \(ring)")
            for (i, a) in ring.enumerated() {
                for (j, b) in ring.enumerated() where i != j {
                    let distance = min((i - j + ring.count) % ring.count, (j - i + ring.count) % ring.count)
                    if distance > 1 { fabric.cut(from: a, to: b) }
                }
            }
            await sleep(ticks: duration)
            heal("ring")
        case .lossy:
            log("lossy network: drop 15%, duplicate 15%, delay/reorder 25%, lose 20% of forwarded answers")
            fabric.setLoss(Fabric.Loss(drop: 0.15, duplicate: 0.15, delay: 0.25, loseReply: 0.2))
            await sleep(ticks: duration)
            fabric.setLoss(Fabric.Loss())
            log("network clean")
        case .clockSkew:
            let node = await pick(fault.target)
            log("\(node.name)'s clock drifts to \(fault.magnitude) ms over \(duration) ticks")
            for step in 1...duration {
                let offset = fault.magnitude * Int64(step) / Int64(duration)
                trackClock(offset)
                node.clock.offsetMilliseconds = offset
                await sleep(ticks: 1)
            }
            node.clock.offsetMilliseconds = 0
            log("\(node.name)'s clock corrected")
        case .clockJump:
            let node = await pick(fault.target)
            log("\(node.name)'s clock jumps \(fault.magnitude) ms")
            trackClock(fault.magnitude)
            node.clock.offsetMilliseconds = fault.magnitude
            await sleep(ticks: duration)
            node.clock.offsetMilliseconds = 0
            log("\(node.name)'s clock jumps back")
        case .slowDisk:
            let node = await pick(fault.target)
            log("\(node.name)'s fsyncs take \(fault.magnitude) µs")
            node.disk.state.withLock { $0.slowMicroseconds = UInt32(fault.magnitude) }
            await sleep(ticks: duration)
            node.disk.state.withLock { $0.slowMicroseconds = 0 }
            log("\(node.name)'s disk is fast again")
        case .failDisk:
            let node = await pick(fault.target)
            log("\(node.name)'s fsyncs fail")
            node.disk.state.withLock { $0.failing = true }
            await sleep(ticks: duration)
            node.disk.state.withLock { $0.failing = false }
            await node.kill(fabric, reason: "restarted after its disk failed")
            await restart(node)
        case .pause:
            let node = await pick(fault.target)
            log("pause \(node.name) (\(fault.target.rawValue))")
            fabric.pause(node.name)
            await sleep(ticks: duration)
            fabric.resume(node.name)
            log("resume \(node.name)")
        case .leaderChurn:
            for round in 1...3 {
                let node = await pick(.leader)
                log("leader churn \(round)/3: isolate \(node.name)")
                cutBetween([node.name], others(than: [node.name]))
                await sleep(ticks: duration / 6)
                heal("leader churn \(round)/3")
                await sleep(ticks: duration / 6)
            }
        }
    }

    private func heal(_ what: String) {
        fabric.healLinks()
        log("healed \(what)")
    }

    private func restart(_ node: ChaosNode) async {
        guard !node.isUp else { return }
        do {
            try await node.start(run: self)
            log("restarted \(node.name)")
        } catch {
            log("could not restart \(node.name): \(error)")
        }
    }

    /// Ends every fault: links, loss, pauses, clocks, disks, dead nodes.
    func healEverything() async {
        fabric.healLinks()
        fabric.setLoss(Fabric.Loss())
        fabric.flushDelayed()
        for node in nodes {
            fabric.resume(node.name)
            node.clock.offsetMilliseconds = 0
            let failing = node.disk.state.withLock { s -> Bool in
                defer { s = DiskFaults.State() }
                return s.failing
            }
            if failing { await node.kill(fabric, reason: "restarted after its disk failed") }
            await restart(node)
        }
        log("healed everything")
    }
}
