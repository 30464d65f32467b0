import ChaosCheck
import LeaseFSM
import Server
import Synchronization

/// The cleanup targets of a run, in process. The endpoint's path says how
/// the target behaves; every request is recorded in the history.
///
/// - `ok`: succeeds.
/// - `flaky`: fails the first attempt, then succeeds.
/// - `timeout`: the first attempt times out after the target acted (so the
///   cleanup is delivered again), then succeeds.
/// - `broken`: fails permanently (dead-letters at once).
struct CleanupSink: CleanupTransport {
    static let behaviours = ["ok", "flaky", "timeout", "broken"]

    let node: String
    let recorder: HistoryRecorder
    let store: ChaosStore
    /// Whether the sending incarnation of the node is still alive.
    let isAlive: @Sendable () -> Bool

    static func endpoint(_ behaviour: String) -> String { "http://sink.chaos/\(behaviour)" }

    func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        // A paused node's request goes out when it resumes (possibly after
        // it was deposed: the incarnation in the request is the target's
        // guard); a killed node's never does.
        try? await store.waitWhilePaused()
        guard isAlive() else { return .failed(reason: "the sending node died", permanent: false) }
        let behaviour: String
        switch target {
        case .http(let url): behaviour = String(url.split(separator: "/").last ?? "ok")
        case .grpc: behaviour = "broken"
        }
        let result: CleanupAttemptResult
        switch behaviour {
        case "ok": result = .succeeded
        case "flaky": result = request.attempt == 1 ? .failed(reason: "HTTP 503 from the target", permanent: false) : .succeeded
        case "timeout": result = request.attempt == 1 ? .failed(reason: "timed out", permanent: false) : .succeeded
        default: result = .failed(reason: "HTTP 400 from the target", permanent: true)
        }
        let confirmation = store.lastConfirmation.withLock { $0 }
        recorder.deliver { seq, at in
            Delivery(node: node, object: "\(request.objectType)/\(request.objectID)", incarnation: request.incarnation,
                     leaseID: request.leaseID, idempotencyKey: request.idempotencyKey, fencingToken: request.fencingToken,
                     attempt: request.attempt, atMs: at, seq: seq, succeeded: result == .succeeded, confirmation: confirmation)
        }
        return result
    }
}
