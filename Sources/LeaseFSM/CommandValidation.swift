/// Checks of a command that need no state: sizes, formats, ranges.
///
/// The server runs them before proposing (so bad input never reaches the
/// log), and the state machine runs them again when applying (so a command
/// that reached the log by another path still changes nothing).
extension LeaseLimits {
    /// Returns the first problem with `command`, or nil when it is well formed.
    public func validate(_ command: LeaseCommand) -> LeaseError? {
        switch command {
        case .create(let c): validateCreate(c)
        case .renew(let r): validateRenew(r)
        case .release(let r) where r.force:
            Self.checkID(r.leaseID.rawValue, field: "lease_id") ?? Self.checkReason(r.reason)
        case .release(let r):
            Self.checkID(r.leaseID.rawValue, field: "lease_id") ?? Self.checkID(r.serviceID, field: "service_id")
        case .expire(let e):
            e.leaseIDs.isEmpty || e.leaseIDs.count > Self.maxExpireBatch
                ? .invalid("lease_ids", "an expire decision names 1 to \(Self.maxExpireBatch) leases")
                : nil
        case .cleanupOutcome(let o):
            o.attempt == 0 ? .invalid("attempt", "attempts are numbered from 1") : nil
        case .cleanupOutcomes(let outcomes):
            outcomes.isEmpty || outcomes.count > Self.maxOutcomeBatch
                ? .invalid("outcomes", "a batch holds 1 to \(Self.maxOutcomeBatch) outcomes")
                : outcomes.contains { $0.attempt == 0 } ? .invalid("attempt", "attempts are numbered from 1") : nil
        case .retryDeadLetters(let r):
            r.jobIDs.isEmpty ? .invalid("job_ids", "name at least one dead-lettered job") : nil
        case .renewals(let items):
            // Items are checked one by one when applied: a bad item fails alone.
            items.isEmpty || items.count > Self.maxRenewalsPerEntry
                ? .invalid("renewals", "an entry holds 1 to \(Self.maxRenewalsPerEntry) renewals")
                : nil
        }
    }

    /// The duration a create asking for `requested` seconds gets (0 = default).
    public func resolvedDuration(_ requested: UInt64) -> UInt64 {
        requested == 0 ? defaultDurationSeconds : requested
    }

    func checkDuration(_ seconds: UInt64, field: String) -> LeaseError? {
        guard seconds >= minDurationSeconds, seconds <= maxDurationSeconds else {
            return .invalid(field, "\(seconds) s is outside the allowed range [\(minDurationSeconds), \(maxDurationSeconds)] seconds (GC_MIN_LEASE_DURATION, GC_MAX_LEASE_DURATION)")
        }
        return nil
    }

    /// Most cleanup outcomes in one batch command.
    public static let maxOutcomeBatch = 10_000

    /// Most renewals in one ``LeaseCommand/renewals(_:)`` entry.
    public static let maxRenewalsPerEntry = 4_096

    /// Returns the first problem with one renewal, or nil when it is well
    /// formed (the checks of a renew of that one lease).
    public func validate(_ renewal: LeaseCommand.Renewal) -> LeaseError? {
        validateRenew(LeaseCommand.RenewLeases(leaseIDs: [renewal.leaseID], serviceID: renewal.serviceID,
                                               extendSeconds: renewal.extendSeconds))
    }

    /// Most bytes of an operator's reason.
    public static let maxReasonBytes = 512

    static func checkReason(_ reason: String) -> LeaseError? {
        if reason.allSatisfy(\.isWhitespace) {
            return .invalid("reason", "must say why the lease is force-released (it is kept in the audit event)")
        }
        if reason.utf8.count > maxReasonBytes {
            return .invalid("reason", "is \(reason.utf8.count) bytes; at most \(maxReasonBytes) bytes are allowed")
        }
        return nil
    }

    static func checkID(_ value: String, field: String) -> LeaseError? {
        if value.isEmpty { return .invalid(field, "must not be empty") }
        if value.utf8.count > maxIDBytes {
            return .invalid(field, "is \(value.utf8.count) bytes; at most \(maxIDBytes) bytes are allowed")
        }
        return nil
    }

    /// Whether `text` is 1 to `maxDigits` of `0-9a-f`. Checked on the UTF-8
    /// bytes: `Character.isUppercase` builds an uppercased copy of each
    /// character, and every node checks every create (1.5 % of a create's
    /// CPU in a 3-node profile).
    static func isLowercaseHex(_ text: String, maxDigits: Int) -> Bool {
        let utf8 = text.utf8
        return !utf8.isEmpty && utf8.count <= maxDigits
            && utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    private func validateCreate(_ c: LeaseCommand.CreateLease) -> LeaseError? {
        if let e = Self.checkID(c.object.id, field: "object_id") ?? Self.checkID(c.serviceID, field: "service_id") {
            return e
        }
        if !Self.isLowercaseHex(c.leaseIDSuffix, maxDigits: 16) {
            return .invalid("lease_id_suffix", "must be 1 to 16 lowercase hex digits")
        }
        if let e = checkDuration(resolvedDuration(c.durationSeconds), field: "lease_duration_seconds") { return e }
        if c.metadata.count > Self.maxMetadataEntries {
            return .invalid("metadata", "has \(c.metadata.count) entries; at most \(Self.maxMetadataEntries) are allowed")
        }
        var bytes = 0
        for (key, value) in c.metadata {
            if key.isEmpty { return .invalid("metadata", "keys must not be empty") }
            bytes += key.utf8.count + value.utf8.count
        }
        if bytes > Self.maxMetadataBytes {
            return .invalid("metadata", "is \(bytes) bytes of keys and values; at most \(Self.maxMetadataBytes) bytes are allowed")
        }
        if let spec = c.cleanup { return validateCleanup(spec) }
        return nil
    }

    private func validateCleanup(_ spec: CleanupSpec) -> LeaseError? {
        if !spec.httpEndpoint.isEmpty && !EndpointSyntax.isHTTPURL(spec.httpEndpoint) {
            return .invalid("cleanup_config.cleanup_http_endpoint", "'\(spec.httpEndpoint.prefix(100))' is not an http:// or https:// URL with a host (e.g. http://orders:8080/cleanup)")
        }
        if !spec.grpcEndpoint.isEmpty && !EndpointSyntax.isGRPCTarget(spec.grpcEndpoint) {
            return .invalid("cleanup_config.cleanup_endpoint", "'\(spec.grpcEndpoint.prefix(100))' is not a gRPC target of the form host:port or host:port/path (e.g. orders:50051)")
        }
        if spec.payload.utf8.count > Self.maxPayloadBytes {
            return .invalid("cleanup_config.cleanup_payload", "is \(spec.payload.utf8.count) bytes; at most \(Self.maxPayloadBytes) bytes are allowed")
        }
        if spec.maxRetries > Self.maxRetriesCap {
            return .invalid("cleanup_config.max_retries", "\(spec.maxRetries) is more than the allowed \(Self.maxRetriesCap)")
        }
        if spec.retryDelaySeconds > Self.maxRetryDelaySeconds {
            return .invalid("cleanup_config.retry_delay_seconds", "\(spec.retryDelaySeconds) s is more than the allowed \(Self.maxRetryDelaySeconds) s")
        }
        if spec.target == nil && (!spec.payload.isEmpty) {
            return .invalid("cleanup_config", "a cleanup payload needs cleanup_http_endpoint or cleanup_endpoint to be set")
        }
        return nil
    }

    private func validateRenew(_ r: LeaseCommand.RenewLeases) -> LeaseError? {
        if let e = Self.checkID(r.serviceID, field: "service_id") { return e }
        if r.leaseIDs.isEmpty { return .invalid("lease_ids", "name at least one lease") }
        if r.leaseIDs.count > Self.maxBatchRenew {
            return .invalid("lease_ids", "names \(r.leaseIDs.count) leases; at most \(Self.maxBatchRenew) per call are allowed")
        }
        for id in r.leaseIDs {
            if let e = Self.checkID(id.rawValue, field: "lease_id") { return e }
        }
        if r.extendSeconds != 0, let e = checkDuration(r.extendSeconds, field: "extend_duration_seconds") { return e }
        return nil
    }
}
