/// Pending cleanup jobs by endpoint, then by the 100 ms their next attempt
/// is due in. The dispatcher asks for due jobs many times a second while a mass
/// expiry leaves 100,000 pending: this finds them without sorting them all,
/// and without scanning the jobs of an endpoint it cannot send to now.
struct PendingJobIndex: Sendable {
    private(set) var count = 0
    /// Endpoint → 100 ms slot (Unix) of `nextAttemptAt` → job ids. Slots are
    /// small so that taking the most overdue few hundred of a mass expiry
    /// looks at few more than that.
    static let slotMilliseconds: Int64 = 100
    private var byEndpoint: [String: [Int64: Set<JobID>]] = [:]

    mutating func insert(_ job: CleanupJob) {
        let key = Self.slot(of: job.nextAttemptAt)
        if byEndpoint[job.spec.endpoint, default: [:]][key, default: []].insert(job.id).inserted { count += 1 }
    }

    /// Removes `job`, which must carry the `nextAttemptAt` it was inserted with.
    mutating func remove(_ job: CleanupJob) {
        let endpoint = job.spec.endpoint
        let key = Self.slot(of: job.nextAttemptAt)
        guard byEndpoint[endpoint]?[key]?.remove(job.id) != nil else { return }
        count -= 1
        if byEndpoint[endpoint]?[key]?.isEmpty == true { byEndpoint[endpoint]?[key] = nil }
        if byEndpoint[endpoint]?.isEmpty == true { byEndpoint[endpoint] = nil }
    }

    /// Endpoints with pending jobs.
    var endpoints: Dictionary<String, [Int64: Set<JobID>]>.Keys { byEndpoint.keys }

    /// `endpoint`'s slots at or before the one of `time`, earliest first
    /// (callers check each job's exact time).
    func dueBuckets(of endpoint: String, asOf time: WallTime) -> [Set<JobID>] {
        guard let slots = byEndpoint[endpoint] else { return [] }
        let last = Self.slot(of: time)
        return slots.keys.filter { $0 <= last }.sorted().compactMap { slots[$0] }
    }

    static func slot(of time: WallTime) -> Int64 {
        LeaseStateMachine.slot(of: time, width: slotMilliseconds)
    }
}
