import LeaseFSM
import Server
import Synchronization

/// A cleanup transport that records every request and answers from a script
/// (then succeeds).
final class RecordingTransport: CleanupTransport {
    private let state: Mutex<(requests: [CleanupRequest], script: [CleanupAttemptResult])>

    init(script: [CleanupAttemptResult] = []) {
        state = Mutex((requests: [], script: script))
    }

    var requests: [CleanupRequest] { state.withLock { $0.requests } }

    func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult {
        state.withLock { s in
            s.requests.append(request)
            return s.script.isEmpty ? .succeeded : s.script.removeFirst()
        }
    }
}
