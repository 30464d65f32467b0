import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaseFSM
@testable import Server
import SwiftProtobuf
import Synchronization
import Testing

/// `KeepAlive` against an in-process node: answers are durable renewals,
/// bad items fail alone, and the batcher folds renewals into few entries.
@Suite("KeepAlive stream (in process)", .timeLimit(.minutes(1)))
struct KeepAliveTests {
    @Test("a renewal answered OK over KeepAlive is applied: the lease's expiry, token and count moved")
    func answeredRenewalIsApplied() async throws {
        try await withTestNode { node in
            let created = try await node.client.createLease(createRequest(duration: 60))
            node.clock.advance(seconds: 10)
            let renewedAt = node.clock.now()
            let answers = try await node.client.keepAlive([keepAliveRequest(7, created.leaseID, extend: 90)])
            let answer = try #require(answers[7])
            #expect(answer.leaseID == created.leaseID)
            guard case .renewed(let renewed) = answer.result else {
                Issue.record("not renewed: \(answer)")
                return
            }
            #expect(renewed.newExpiresAt.seconds == renewedAt.milliseconds / 1000 + 90)
            #expect(renewed.fencingToken > created.fencingToken)
            let lease = try await node.client.getLease(getRequest(created.leaseID)).lease
            #expect(lease.expiresAt == renewed.newExpiresAt)
            #expect(lease.fencingToken == renewed.fencingToken)
            #expect(lease.renewalCount == 1)
        }
    }

    @Test("bad renewals get their own error answers and the stream goes on to answer the rest")
    func badItemsFailAlone() async throws {
        try await withTestNode { node in
            let a = try await node.client.createLease(createRequest(object: "a")).leaseID
            let b = try await node.client.createLease(createRequest(object: "b")).leaseID
            let gone = try await node.client.createLease(createRequest(object: "c")).leaseID
            _ = try await node.client.releaseLease(releaseRequest(gone))
            let answers = try await node.client.keepAlive([
                keepAliveRequest(1, a),
                keepAliveRequest(2, "0000000000000999-ff"),
                keepAliveRequest(3, a, service: "svc-b"),
                keepAliveRequest(4, a, service: ""),
                keepAliveRequest(5, a, extend: 1_000_000),
                keepAliveRequest(6, gone),
                keepAliveRequest(7, b),
            ])
            #expect(answers.count == 7)
            #expect(answers[1]?.isRenewed == true)
            #expect(answers[2]?.errorCode == .notFound)
            #expect(answers[3]?.errorCode == .permissionDenied)
            #expect(answers[4]?.errorCode == .invalidArgument)
            #expect(answers[5]?.errorCode == .invalidArgument)
            #expect(answers[6]?.errorCode == .failedPrecondition)
            #expect(answers[7]?.isRenewed == true, "the request after the bad ones was renewed")
            for id: UInt64 in 2...6 {
                guard case .error(let error) = answers[id]?.result else { continue }
                #expect(!error.message.isEmpty, "request \(id) says what to fix")
                #expect(answers[id]?.leaseID == ["", a, "0000000000000999-ff", a, a, a, gone][Int(id)])
            }
            #expect(try await node.client.getLease(getRequest(b)).lease.renewalCount == 1)
            #expect(try await node.client.getLease(getRequest(a)).lease.renewalCount == 1)
        }
    }

    @Test("renewals arriving while a batch commits are folded into one log entry: 100 renewals, 2 entries")
    func batcherFoldsRenewals() async throws {
        try await withTestNode { node in
            var ids: [String] = []
            for i in 0..<100 {
                ids.append(try await node.client.createLease(createRequest(object: "o\(i)")).leaseID)
            }
            // The same node's store, with renewals entries held at a gate:
            // the first renewal starts a batch (one in flight by default), the
            // other 99 must queue for the next one.
            let gated = GatedStore(node.sidecar.store)
            let service = DistributedGCService(store: gated, clock: node.clock, metrics: node.sidecar.metrics,
                                               nodeID: "gated", logger: quietLogger)
            let before = await node.sidecar.store.appliedState.appliedIndex
            let server = GRPCServer(
                transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext),
                services: [service])
            try await serving(server) { address in
                try await withGRPCClient(
                    transport: .http2NIOPosix(target: .ipv4(address: address.host, port: address.port), transportSecurity: .plaintext)
                ) { connection in
                    let client = DistributedGc_DistributedGCService.Client(wrapping: connection)
                    let requests = ids.enumerated().map { keepAliveRequest(UInt64($0.offset), $0.element) }
                    let streaming = Task { try await client.keepAlive(requests) }
                    let deadline = ContinuousClock.now + .seconds(20)
                    while service.renewals.stats.queued < 99, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(5))
                    }
                    #expect(service.renewals.stats.queued == 99)
                    #expect(service.renewals.stats.inFlight == 1)
                    gated.open()
                    let answers = try await streaming.value
                    #expect(answers.count == 100)
                    #expect(answers.values.allSatisfy { $0.isRenewed })
                }
            }
            let stats = service.renewals.stats
            #expect(stats.renewals == 100)
            #expect(stats.entries == 2)
            let after = await node.sidecar.store.appliedState.appliedIndex
            #expect(after - before == 2, "100 renewals took \(after - before) log entries")
            for id in ids.prefix(5) {
                #expect(try await node.client.getLease(getRequest(id)).lease.renewalCount == 1)
            }
        }
    }

    @Test("a full renewal queue refuses at once (RESOURCE_EXHAUSTED for the stream), and nothing queued is lost")
    func fullQueueRefuses() async throws {
        try await withTestNode { node in
            let id = try await node.client.createLease(createRequest()).leaseID
            let gated = GatedStore(node.sidecar.store)
            let batcher = RenewalBatcher(store: gated, maxBatch: 1, maxInFlight: 1, maxQueued: 1)
            let answered = Mutex<[RenewalBatcher.Outcome]>([])
            let renewal = LeaseCommand.Renewal(leaseID: LeaseID(id), serviceID: "svc-a")
            let record: RenewalBatcher.Completion = { outcome in answered.withLock { $0.append(outcome) } }
            #expect(batcher.submit(renewal, record), "starts the first batch")
            #expect(batcher.submit(renewal, record), "queues for the next")
            #expect(!batcher.submit(renewal, record), "the queue (1) is full")
            gated.open()
            let deadline = ContinuousClock.now + .seconds(20)
            while answered.withLock({ $0.count }) < 2, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            let outcomes = answered.withLock { $0 }
            #expect(outcomes.count == 2)
            #expect(outcomes.allSatisfy { (try? $0.get()) != nil })
            #expect(batcher.stats.entries == 2)
        }
    }

    @Test("a stream's window: past its limit the reader waits, and a written answer lets it read one more")
    func windowBackPressure() async throws {
        let window = KeepAliveWindow<Int>(limit: 3)
        for _ in 0..<3 { try await window.admit() }
        let admitted = Mutex(false)
        let reader = Task {
            try await window.admit()
            admitted.withLock { $0 = true }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !window.readerIsWaiting, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(window.readerIsWaiting, "the fourth request is not read while three are unanswered")
        #expect(!admitted.withLock { $0 })
        window.push(1)
        #expect(await window.next() == [1])
        window.written(1)
        try await reader.value
        #expect(admitted.withLock { $0 })
        // The input ends with three answered of four: the writer waits for
        // the rest, then finishes.
        window.endInput()
        for n in 2...4 { window.push(n) }
        #expect(await window.next() == [2, 3, 4])
        window.written(3)
        #expect(await window.next() == nil)
    }

    @Test("cancelling a stream wakes a reader waiting for a place")
    func cancelWakesReader() async throws {
        let window = KeepAliveWindow<Int>(limit: 1)
        try await window.admit()
        let reader = Task { try await window.admit() }
        let deadline = ContinuousClock.now + .seconds(10)
        while !window.readerIsWaiting, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(1))
        }
        window.cancel()
        await #expect(throws: CancellationError.self) { try await reader.value }
        #expect(await window.next() == nil)
    }
}

/// A store that passes everything to `inner`, except that renewals entries
/// wait until ``open()``.
final class GatedStore: LeaseStore, MachineReadable {
    let inner: any LeaseStore & MachineReadable
    private let waiting = Mutex<[CheckedContinuation<Void, Never>]?>([])

    init(_ inner: any LeaseStore & MachineReadable) {
        self.inner = inner
    }

    /// Lets every held and later renewals entry through.
    func open() {
        let held = waiting.withLock { w in
            defer { w = nil }
            return w ?? []
        }
        for continuation in held { continuation.resume() }
    }

    var limits: LeaseLimits { inner.limits }
    var events: EventHub { inner.events }
    var mayRunCleanup: Bool { inner.mayRunCleanup }
    var healthProblem: String? { inner.healthProblem }
    func confirmLeadership() async -> Bool { await inner.confirmLeadership() }

    func read<R: Sendable>(_ consistency: ReadConsistency, _ query: @Sendable (LeaseStateMachine) -> R) async throws -> R {
        try await inner.read(consistency, query)
    }

    func propose(_ command: LeaseCommand, origin: ClientOrigin?) async throws -> CommandResult {
        if case .renewals = command {
            await withCheckedContinuation { continuation in
                let isOpen = waiting.withLock { w in
                    guard w != nil else { return true }
                    w?.append(continuation)
                    return false
                }
                if isOpen { continuation.resume() }
            }
        }
        return try await inner.propose(command, origin: origin)
    }
}
