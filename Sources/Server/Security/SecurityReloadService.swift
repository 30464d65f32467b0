import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads certificates, keys and the authorization policy on SIGHUP,
/// without dropping a connection: new handshakes use the new certificate,
/// established connections keep theirs.
struct SecurityReloadService: Service {
    let security: NodeSecurity
    let metrics: SidecarMetrics
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            logger.notice("SIGHUP: reloading certificates and the authorization policy")
            security.reload(logger: logger, metrics: metrics)
        }
    }
}
