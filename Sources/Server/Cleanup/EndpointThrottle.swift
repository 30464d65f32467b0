import LeaseFSM
import Synchronization

/// Per-endpoint admission for cleanup requests: a concurrency limit, a
/// token-bucket rate and a circuit breaker (closed → open after N
/// consecutive failures → one half-open probe after the cool-down → closed on
/// its success, open again on its failure).
///
/// An "endpoint" here is an origin (``CleanupEndpointText/origin(_:)``:
/// `scheme://host:port`, `grpc://host:port`): every URL of one host shares
/// its limits, so varying the path or query cannot multiply them. Methods
/// take full endpoints and key them by origin; ``room(now:)``,
/// ``breakers`` and ``Permit/endpoint`` name origins.
///
/// Time is the dispatcher's wall time in milliseconds, passed in, so the
/// chaos harness's simulated clocks drive it like the rest of a node. A
/// clock that steps back only delays refills and probes; it never admits
/// more than the limits.
public final class EndpointThrottle: Sendable {
    /// A breaker's state, for metrics and `gcctl`.
    public enum BreakerState: String, Hashable, Sendable {
        case closed, open, halfOpen = "half-open"
    }

    /// Permission to send one request to `endpoint`; hand it back with
    /// ``finish(_:targetHealthy:)``.
    public struct Permit: Hashable, Sendable {
        public let endpoint: String
        /// The half-open probe: its result decides the breaker.
        let isProbe: Bool
    }

    private struct Endpoint {
        var inFlight = 0
        var tokens: Double
        var refilledAt: Int64
        var consecutiveFailures = 0
        var breaker: BreakerState = .closed
        var openedAt: Int64 = 0
        var probeInFlight = false

        func isIdle(capacity: Double) -> Bool {
            inFlight == 0 && breaker == .closed && consecutiveFailures == 0 && tokens >= capacity
        }
    }

    public let limits: CleanupLimits
    private let endpoints = Mutex<[String: Endpoint]>([:])
    /// The latest time seen; a finishing request opens the breaker as of it.
    private let latest = Mutex<Int64>(0)
    private let onBreakerChange: @Sendable (_ endpoint: String, _ from: BreakerState, _ to: BreakerState) -> Void

    public init(limits: CleanupLimits,
                onBreakerChange: @escaping @Sendable (_ endpoint: String, _ from: BreakerState, _ to: BreakerState) -> Void = { _, _, _ in }) {
        self.limits = limits
        self.onBreakerChange = onBreakerChange
    }

    /// How many requests each endpoint seen so far could take at `now`
    /// (free slots, whole tokens, 1 for a due half-open probe, 0 while its
    /// breaker is open); an endpoint not in the map can take
    /// ``defaultRoom``.
    public func room(now: WallTime) -> [String: Int] {
        let now = observe(now)
        return endpoints.withLock { all in
            var room: [String: Int] = [:]
            for (name, var e) in all {
                refill(&e, now: now)
                if e.isIdle(capacity: capacity) {
                    // Forget endpoints with nothing to remember, so many
                    // distinct URLs do not grow this map for ever.
                    all[name] = nil
                    continue
                }
                room[name] = self.room(e, now: now)
                all[name] = e
            }
            return room
        }
    }

    /// What an endpoint with no history can take: its concurrency, and a
    /// full bucket.
    public var defaultRoom: Int {
        limits.endpointRatePerSecond > 0 ? min(limits.endpointConcurrency, Int(capacity)) : limits.endpointConcurrency
    }

    /// Endpoints that cannot take one more request at `now`.
    public func blockedEndpoints(now: WallTime) -> Set<String> {
        Set(room(now: now).filter { $0.value == 0 }.keys)
    }

    private func room(_ e: Endpoint, now: Int64) -> Int {
        guard admits(e, now: now) else { return 0 }
        if e.breaker != .closed { return 1 }  // the probe
        var room = limits.endpointConcurrency - e.inFlight
        if limits.endpointRatePerSecond > 0 { room = min(room, Int(e.tokens.rounded(.down))) }
        return max(0, room)
    }

    /// Takes a slot and a token for one request to `endpoint`, or nil when it
    /// must wait. After an open breaker's cool-down the first caller gets the
    /// probe permit; the rest wait for its result.
    public func admit(_ endpoint: String, now: WallTime) -> Permit? {
        admit(origin: CleanupEndpointText.origin(endpoint), now: now)
    }

    /// ``admit(_:now:)`` for an endpoint already reduced to its origin
    /// (``CleanupEndpointText/origin(_:)``), for callers admitting many jobs
    /// of few endpoints.
    func admit(origin endpoint: String, now: WallTime) -> Permit? {
        let now = observe(now)
        var change: (BreakerState, BreakerState)?
        let permit: Permit? = endpoints.withLock { all in
            var e = all[endpoint] ?? Endpoint(tokens: capacity, refilledAt: now)
            refill(&e, now: now)
            defer { all[endpoint] = e }
            guard admits(e, now: now) else { return nil }
            var isProbe = false
            if e.breaker == .open {
                e.breaker = .halfOpen
                change = (.open, .halfOpen)
            }
            if e.breaker == .halfOpen {
                e.probeInFlight = true
                isProbe = true
            }
            e.inFlight += 1
            if limits.endpointRatePerSecond > 0 { e.tokens -= 1 }
            return Permit(endpoint: endpoint, isProbe: isProbe)
        }
        if let change { onBreakerChange(endpoint, change.0, change.1) }
        return permit
    }

    /// Returns `permit`. `targetHealthy` is whether the target answered
    /// sensibly: true for success and for answers that say the request
    /// itself was wrong (they dead-letter, but the target is up); false for
    /// no answer, timeouts and server errors, which count toward the breaker.
    public func finish(_ permit: Permit, targetHealthy: Bool) {
        let now = latest.withLock { $0 }
        let change: (BreakerState, BreakerState)? = endpoints.withLock { all in
            guard var e = all[permit.endpoint] else { return nil }
            defer { all[permit.endpoint] = e }
            e.inFlight = max(0, e.inFlight - 1)
            if permit.isProbe { e.probeInFlight = false }
            if targetHealthy {
                e.consecutiveFailures = 0
                if e.breaker != .closed {
                    defer { e.breaker = .closed }
                    return (e.breaker, .closed)
                }
                return nil
            }
            e.consecutiveFailures += 1
            let trips = limits.breakerFailures > 0 && e.consecutiveFailures >= limits.breakerFailures
            if (permit.isProbe || trips) && e.breaker != .open {
                defer { e.breaker = .open }
                e.openedAt = now
                return (e.breaker, .open)
            }
            if e.breaker == .open { e.openedAt = max(e.openedAt, now) }
            return nil
        }
        if let change { onBreakerChange(permit.endpoint, change.0, change.1) }
    }

    /// Hands back a permit that was not used (nothing was sent): its slot and
    /// its token are returned, the breaker is untouched.
    public func cancel(_ permit: Permit) {
        endpoints.withLock { all in
            guard var e = all[permit.endpoint] else { return }
            e.inFlight = max(0, e.inFlight - 1)
            if permit.isProbe { e.probeInFlight = false }
            if limits.endpointRatePerSecond > 0 { e.tokens = min(capacity, e.tokens + 1) }
            all[permit.endpoint] = e
        }
    }

    /// The breaker state of each origin seen so far.
    public var breakers: [String: BreakerState] {
        endpoints.withLock { $0.mapValues(\.breaker) }
    }

    /// Requests in flight to `endpoint`'s origin.
    public func inFlight(_ endpoint: String) -> Int {
        let origin = CleanupEndpointText.origin(endpoint)
        return endpoints.withLock { $0[origin]?.inFlight ?? 0 }
    }

    /// The breaker state of `endpoint`'s origin (closed when never seen).
    public func breaker(_ endpoint: String) -> BreakerState {
        let origin = CleanupEndpointText.origin(endpoint)
        return endpoints.withLock { $0[origin]?.breaker ?? .closed }
    }

    private func observe(_ now: WallTime) -> Int64 {
        latest.withLock { latest in
            latest = max(latest, now.milliseconds)
            return latest
        }
    }

    /// Tokens a bucket holds: one second's worth, and at least one request.
    private var capacity: Double { max(1, limits.endpointRatePerSecond) }

    private func refill(_ e: inout Endpoint, now: Int64) {
        let rate = limits.endpointRatePerSecond
        guard rate > 0 else { return }
        let elapsed = max(0, now - e.refilledAt)
        e.tokens = min(capacity, e.tokens + rate * Double(elapsed) / 1000)
        e.refilledAt = max(e.refilledAt, now)
    }

    private func admits(_ e: Endpoint, now: Int64) -> Bool {
        guard e.inFlight < limits.endpointConcurrency else { return false }
        if limits.endpointRatePerSecond > 0 && e.tokens < 1 { return false }
        switch e.breaker {
        case .closed: return true
        case .open: return now >= e.openedAt + limits.breakerCooldownMilliseconds
        case .halfOpen: return !e.probeInFlight
        }
    }
}
