import Raft
import Synchronization

/// What peers' streams delivered and the store has not taken yet.
///
/// Each peer stream hands its decoded batches here without waiting for the
/// store; one pump task moves everything queued meanwhile into the store in
/// one call (``RaftLeaseStore/receive(_:)-(_)``), so while the store is busy
/// (persisting a `Ready`, say) the traffic of every peer piles up and is then
/// handled together: the forwarded writes of all followers share the next
/// drain's group commit, as concurrent client calls do. Order per peer is
/// kept. Bounded: a stream whose batch finds the inbox over its limit waits
/// until the pump took it.
final class PeerInbox: Sendable {
    private struct State {
        var queued: [(from: NodeID, traffic: [PeerTraffic])] = []
        var itemCount = 0
        var pumping = false
        var waitingForRoom: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let store: RaftLeaseStore
    /// Where the pump runs: the node's event loop, so the store's turn
    /// happens on the thread the peers' bytes arrived on; nil for the pool.
    private let executor: (any TaskExecutor)?
    let limit: Int

    init(store: RaftLeaseStore, executor: (any TaskExecutor)? = nil, limit: Int = 16_384) {
        self.store = store
        self.executor = executor
        self.limit = limit
    }

    /// Queues `traffic` from `sender`; returns once it is queued (waiting
    /// only while the inbox is over its limit).
    func deliver(_ traffic: [PeerTraffic], from sender: NodeID) async {
        let (startPump, full) = state.withLock { s -> (Bool, Bool) in
            s.queued.append((sender, traffic))
            s.itemCount += traffic.count
            let start = !s.pumping
            s.pumping = true
            return (start, s.itemCount > limit)
        }
        if startPump { Task(executorPreference: executor) { await self.pump() } }
        if full {
            await withCheckedContinuation { continuation in
                let roomNow = state.withLock { s -> Bool in
                    if s.itemCount <= limit { return true }
                    s.waitingForRoom.append(continuation)
                    return false
                }
                if roomNow { continuation.resume() }
            }
        }
    }

    private func pump() async {
        while true {
            let (batch, waiters) = state.withLock { s -> ([(from: NodeID, traffic: [PeerTraffic])], [CheckedContinuation<Void, Never>]) in
                if s.queued.isEmpty { s.pumping = false }
                defer {
                    s.queued.removeAll(keepingCapacity: true)
                    s.itemCount = 0
                    s.waitingForRoom.removeAll()
                }
                return (s.queued, s.waitingForRoom)
            }
            for waiter in waiters { waiter.resume() }
            guard !batch.isEmpty else { return }
            await store.receive(batch)
        }
    }
}
