/// Pending cleanup jobs by endpoint, then by the 100 ms their next attempt
/// is due in. The dispatcher asks for due jobs many times a second while a mass
/// expiry leaves 100,000 pending: this finds them without sorting them all,
/// and without scanning the jobs of an endpoint it cannot send to now.
///
/// Each slot keeps its jobs' exact due times, so the most overdue few hundred
/// are chosen from the index alone: only the jobs actually returned are
/// looked up and copied, not every job of the slots looked at (a slot of a
/// mass expiry holds thousands).
struct PendingJobIndex: Sendable {
    private(set) var count = 0
    /// Endpoint → 100 ms slot (Unix) of `nextAttemptAt` → job id → its
    /// `nextAttemptAt` in milliseconds. Slots are small so that taking the
    /// most overdue few hundred of a mass expiry looks at few more than that.
    static let slotMilliseconds: Int64 = 100
    private var byEndpoint: [String: [Int64: [JobID: Int64]]] = [:]

    mutating func insert(_ job: CleanupJob) {
        let key = Self.slot(of: job.nextAttemptAt)
        if byEndpoint[job.spec.endpoint, default: [:]][key, default: [:]].updateValue(job.nextAttemptAt.milliseconds, forKey: job.id) == nil {
            count += 1
        }
    }

    /// Removes `job`, which must carry the `nextAttemptAt` it was inserted with.
    mutating func remove(_ job: CleanupJob) {
        let endpoint = job.spec.endpoint
        let key = Self.slot(of: job.nextAttemptAt)
        guard byEndpoint[endpoint]?[key]?.removeValue(forKey: job.id) != nil else { return }
        count -= 1
        if byEndpoint[endpoint]?[key]?.isEmpty == true { byEndpoint[endpoint]?[key] = nil }
        if byEndpoint[endpoint]?.isEmpty == true { byEndpoint[endpoint] = nil }
    }

    /// Endpoints with pending jobs.
    var endpoints: Dictionary<String, [Int64: [JobID: Int64]]>.Keys { byEndpoint.keys }

    /// The jobs of `endpoint` due at `time` that `skip` does not name, most
    /// overdue first (ties by id), at most `limit`, as (due time in
    /// milliseconds, id).
    ///
    /// Whole slots are looked at, earliest first, until `limit` candidates
    /// are found: nothing in a later slot can be more overdue than those.
    func mostOverdue(of endpoint: String, asOf time: WallTime, limit: Int,
                     skip: (JobID) -> Bool) -> [(at: Int64, id: JobID)] {
        guard limit > 0, let slots = byEndpoint[endpoint] else { return [] }
        let last = Self.slot(of: time)
        var candidates: [(at: Int64, id: JobID)] = []
        for key in slots.keys.filter({ $0 <= last }).sorted() {
            if candidates.count >= limit { break }
            guard let slot = slots[key] else { continue }
            for (id, at) in slot where at <= time.milliseconds && !skip(id) {
                candidates.append((at, id))
            }
        }
        return candidates.smallest(limit) { ($0.at, $0.id) < ($1.at, $1.id) }
    }

    static func slot(of time: WallTime) -> Int64 {
        LeaseStateMachine.slot(of: time, width: slotMilliseconds)
    }
}
