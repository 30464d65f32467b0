import LeaseFSM
import Logging
import PostgresNIO

/// The lease quotas in PostgreSQL mode (`GC_MAX_LEASES`,
/// `GC_MAX_LEASES_PER_SERVICE`), exact under any number of sidecars without
/// one hot row: escrow counters.
///
/// Each scope (`''` for all leases, else a service id) is split into
/// shards, rows of `gc_quota` with an `active` count and a `capacity`; the
/// capacities of a scope add up to its limit, and `active <= capacity`
/// always. A create takes one unit from its shard (`active < capacity`, one
/// row lock); only when that shard is full does it lock every shard of the
/// scope, count them, and hand the free capacity out again, or refuse with
/// the exact count. A transaction picks its shard by its server process id, so
/// concurrent creates rarely wait on each other's counter.
struct PostgresQuota: Sendable {
    /// Shards of the all-leases scope (and of the stats rows).
    static let globalShards = 64
    /// Shards of each service's scope.
    static let serviceShards = 8

    let limits: LeaseLimits

    /// What a reservation found.
    enum Reservation {
        /// The lease counts in shard `shard` (of the all-leases scope;
        /// `shard % serviceShards` in its service's).
        case reserved(shard: Int16)
        /// Over a limit: the counts to show in the refusal.
        case refused(LeaseStateMachine.ActiveLeaseCounts)
    }

    /// The shard a transaction uses, as SQL: its server process's id, which
    /// no other open connection shares, whichever sidecar holds it (pool
    /// connection ids are per sidecar: every sidecar's first connection
    /// would share shard 1, and three sidecars waited on each other's rows).
    static let backendShardSQL = "(pg_backend_pid() % \(globalShards))::smallint"

    /// Counts one more active lease of `service` in `shard` (the
    /// transaction's, ``backendShardSQL``), or says which limit it would cross.
    func reserve(service: String, shard: Int16, on connection: PostgresConnection, logger: Logger) async throws -> Reservation {
        let serviceShard = shard % Int16(Self.serviceShards)
        // Fast path: both units in one statement (service first, then all
        // leases: the order every reservation locks them in).
        var taken = (service: 0, all: 0)
        for row in try await connection.rows(QuotaFastPathSQL.self, { b in
            b.append(service)
            b.append(serviceShard)
            b.append(shard)
        }, logger: logger) {
            let (service, all) = try row.decode((Int32, Int32).self)
            taken = (Int(service), Int(all))
        }
        if taken.service == 1 && taken.all == 1 { return .reserved(shard: shard) }
        if taken.service == 1 {
            // The service's unit is ours; the all-leases shard was full.
            if case .full(let held) = try await take(scope: "", shard: shard, shards: Self.globalShards,
                                                     limit: limits.maxLeases, on: connection, logger: logger) {
                try await give(back: [(service, serviceShard, 1)], on: connection, logger: logger)
                return .refused(.init(total: held, byService: [:]))
            }
            return .reserved(shard: shard)
        }
        if case .full(let held) = try await take(scope: service, shard: serviceShard, shards: Self.serviceShards,
                                                 limit: limits.maxLeasesPerService, on: connection, logger: logger) {
            // The state machine names the cluster's limit first when both are reached.
            var total = 0
            for try await count in try await connection.query(
                "SELECT coalesce(sum(active), 0)::bigint FROM gc_quota WHERE scope = ''", logger: logger).decode(Int64.self) {
                total = Int(count)
            }
            if total >= limits.maxLeases { return .refused(.init(total: total, byService: [:])) }
            return .refused(.init(total: 0, byService: [service: held]))
        }
        if case .full(let held) = try await take(scope: "", shard: shard, shards: Self.globalShards,
                                                 limit: limits.maxLeases, on: connection, logger: logger) {
            try await give(back: [(service, serviceShard, 1)], on: connection, logger: logger)
            return .refused(.init(total: held, byService: [:]))
        }
        return .reserved(shard: shard)
    }

    /// Uncounts leases that ended: `(service, shard)` as reserved. One
    /// statement, whatever the number (a batch of releases ends leases of
    /// many services), locking the rows in the order reservations do.
    func release(_ ended: [(service: String, shard: Int16)], on connection: PostgresConnection, logger: Logger) async throws {
        guard !ended.isEmpty else { return }
        var counts: [ScopeShard: Int64] = [:]
        for (service, shard) in ended {
            counts[ScopeShard(scope: service, shard: shard % Int16(Self.serviceShards)), default: 0] += 1
            counts[ScopeShard(scope: "", shard: shard), default: 0] += 1
        }
        let rows = Array(counts)
        _ = try await connection.rows(QuotaGiveBackSQL.self, { b in
            b.append(rows.map(\.key.scope))
            b.append(rows.map(\.key.shard))
            b.append(rows.map(\.value))
        }, logger: logger)
    }

    /// Makes every scope re-divide its capacity at its next create, so a
    /// changed limit takes effect (called at start-up).
    static func resetCapacities(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.execute("UPDATE gc_quota SET capacity = active WHERE capacity <> active", logger: logger)
    }

    private struct ScopeShard: Hashable {
        var scope: String
        var shard: Int16
    }

    private enum Take {
        case taken
        case full(held: Int)
    }

    private func take(scope: String, shard: Int16, shards: Int, limit: Int, on connection: PostgresConnection,
                      logger: Logger) async throws -> Take {
        let fast = try await connection.query("""
            UPDATE gc_quota SET active = active + 1
            WHERE scope = \(scope) AND shard = \(shard) AND active < capacity RETURNING active
            """, logger: logger)
        for try await _ in fast { return .taken }
        // The shard is full (or the scope is new): count the whole scope
        // under its locks and divide what is free again.
        try await connection.execute("""
            INSERT INTO gc_quota (scope, shard, active, capacity)
            SELECT \(scope), g, 0, 0 FROM generate_series(0, \(shards - 1)) AS g
            ON CONFLICT DO NOTHING
            """, logger: logger)
        var rows: [(shard: Int16, active: Int64)] = []
        for try await (s, active) in try await connection.query("""
            SELECT shard, active FROM gc_quota WHERE scope = \(scope) ORDER BY shard FOR UPDATE
            """, logger: logger).decode((Int16, Int64).self) {
            rows.append((s, active))
        }
        let total = rows.reduce(0) { $0 + $1.active }
        guard total < Int64(limit) else { return .full(held: Int(total)) }
        let free = Int64(limit) - total - 1  // after this create
        let each = free / Int64(rows.count), extra = free % Int64(rows.count)
        var shardList: [Int16] = [], capacities: [Int64] = []
        for (i, row) in rows.enumerated() {
            let mine: Int64 = row.shard == shard ? 1 : 0
            shardList.append(row.shard)
            capacities.append(row.active + mine + each + (Int64(i) < extra ? 1 : 0))
        }
        try await connection.execute("""
            UPDATE gc_quota q SET capacity = c.capacity, active = q.active + CASE WHEN q.shard = \(shard) THEN 1 ELSE 0 END
            FROM unnest(\(shardList)::smallint[], \(capacities)::bigint[]) AS c(shard, capacity)
            WHERE q.scope = \(scope) AND q.shard = c.shard
            """, logger: logger)
        return .taken
    }

    private func give(back counts: [(scope: String, shard: Int16, count: Int64)], on connection: PostgresConnection,
                      logger: Logger) async throws {
        for (scope, shard, count) in counts {
            try await connection.execute("""
                UPDATE gc_quota SET active = GREATEST(active - \(count), 0) WHERE scope = \(scope) AND shard = \(shard)
                """, logger: logger)
        }
    }
}

extension PostgresQuota {
    /// The units of a batch's new leases (`counts` per service), all in one
    /// statement on the transaction's `shard`, or none: false when any shard
    /// lacks room, and the caller applies the batch's commands one by one
    /// (``reserve(service:on:logger:)`` redivides capacity or refuses exactly).
    func reserveAll(_ counts: [String: Int], shard: Int16, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let services = counts.keys.sorted()
        let total = counts.values.reduce(0, +)
        for row in try await connection.rows(QuotaBatchSQL.self, { b in
            b.append(services)
            b.append(services.map { Int32(clamping: counts[$0] ?? 0) })
            b.append(shard % Int16(Self.serviceShards))
            b.append(shard)
            b.append(Int32(clamping: total))
        }, logger: logger) {
            let (tookServices, tookAll) = try row.decode((Int32, Int32).self)
            if Int(tookServices) == services.count && tookAll == 1 { return true }
        }
        return false
    }
}
