import GCProto
import Synchronization

/// Numbers this client's writes (Raft dissertation §6.3), so the cluster
/// applies each at most once however often it is retried.
final class ClientSession: Sendable {
    private struct State {
        var next: UInt64 = 1
        var inFlight: Set<UInt64> = []
    }

    let clientID: String
    private let state = Mutex(State())

    init() {
        let high = UInt64.random(in: .min ... .max), low = UInt64.random(in: .min ... .max)
        clientID = "gcclient/" + String(high, radix: 16) + String(low, radix: 16)
    }

    /// Opens the next write; pass its origin with every attempt, then ``close(_:)``.
    func open() -> UInt64 {
        state.withLock { s in
            defer { s.next += 1 }
            s.inFlight.insert(s.next)
            return s.next
        }
    }

    /// The write has its answer (or was given up on).
    func close(_ sequence: UInt64) {
        _ = state.withLock { $0.inFlight.remove(sequence) }
    }

    func origin(_ sequence: UInt64) -> DistributedGc_RequestOrigin {
        var origin = DistributedGc_RequestOrigin()
        origin.clientID = clientID
        origin.sequence = sequence
        origin.firstUnacknowledged = state.withLock { $0.inFlight.min() } ?? sequence
        return origin
    }
}
