import Prometheus

/// Counters of the security layer, registered in the node's registry.
extension SidecarMetrics {
    /// One authorization decision on the client port
    /// (`gc_auth_decisions_total{method,decision}`, decision =
    /// allowed|denied|unauthenticated).
    public func recordAuthDecision(method: String, decision: String) {
        registry.counter(
            "gc_auth_decisions_total", labels: [("method", method), ("decision", decision)],
            help: "Authorization decisions on the client port by method and outcome."
        ).increment()
    }

    /// A peer connection or call refused because its certificate does not
    /// name the member it claims to be (`gc_peer_auth_refused_total{reason}`).
    public func recordPeerAuthRefused(reason: String) {
        registry.counter(
            "gc_peer_auth_refused_total", labels: [("reason", reason)],
            help: "Peer-port calls refused: certificate not naming the claimed member, or not a member."
        ).increment()
    }

    /// A certificate or policy reload (`gc_security_reloads_total{what,result}`).
    public func recordSecurityReload(what: String, ok: Bool) {
        registry.counter(
            "gc_security_reloads_total", labels: [("what", what), ("result", ok ? "ok" : "failed")],
            help: "Reloads of certificates and the authorization policy (SIGHUP)."
        ).increment()
    }
}
