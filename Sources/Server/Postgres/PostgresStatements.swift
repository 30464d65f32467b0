import LeaseFSM
import Logging
import NIOCore
import PostgresNIO

/// The statements every write runs, prepared once per connection:
/// PostgreSQL parses and plans them once instead of on every call (parsing
/// and planning the write-back was most of the database's CPU per create).
protocol PreparedSQL {
    static var sql: String { get }
}

/// A prepared statement of ``PreparedSQL`` text with its bindings.
struct Prepared<Text: PreparedSQL>: PostgresPreparedStatement {
    typealias Row = PostgresRow
    static var sql: String { Text.sql }
    static var name: String { "gc_" + String(describing: Text.self) }

    var bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

extension PostgresConnection {
    /// Runs a prepared statement and returns its rows.
    func rows<Text: PreparedSQL>(_ text: Text.Type, _ bind: (inout PostgresBindings) throws -> Void,
                                 logger: Logger) async throws -> [PostgresRow] {
        var bindings = PostgresBindings()
        try bind(&bindings)
        var rows: [PostgresRow] = []
        for try await row in try await execute(Prepared<Text>(bindings: bindings), logger: logger) { rows.append(row) }
        return rows
    }
}


/// Locks an object's row and its open job, then draws the command index
/// ($1 type, $2 id, $3 clock offset) with the transaction's counter shard.
/// Rows as ``PostgresLockedRows`` reads them.
enum LockObjectSQL: PreparedSQL {
    static let sql = """
        WITH o AS (SELECT record FROM gc_objects WHERE object_type = $1 AND object_id = $2 FOR UPDATE),
             j AS (SELECT record FROM gc_jobs WHERE object_type = $1 AND object_id = $2 AND state IN (0, 2)
                   ORDER BY id FOR UPDATE)
        SELECT 0::smallint, record, 0::smallint, 0::smallint, $1::integer, $2::text, 0::bigint, 0::bigint FROM o
        UNION ALL SELECT 1::smallint, record, 0::smallint, 0::smallint, 0, NULL::text, 0::bigint, 0::bigint FROM j
        UNION ALL SELECT 9::smallint, NULL::bytea, \(PostgresQuota.backendShardSQL), 0::smallint, 0, NULL::text, nextval('gc_command_index'),
            ((extract(epoch from clock_timestamp()) * 1000)::bigint + $3::bigint)
        """
}

/// Locks leases by id ($1 text[]), in id order, without drawing an index.
enum LockLeasesSQL: PreparedSQL {
    static let sql = """
        SELECT 2::smallint, record, quota_shard, state, object_type, object_id, 0::bigint, 0::bigint FROM gc_leases
        WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE
        """
}

/// A batch's objects ($1 types, $2 ids, in key order) and their open jobs,
/// locked, then $4 command indexes drawn ($3 clock offset).
enum LockObjectsSQL: PreparedSQL {
    static let sql = """
        WITH k AS (SELECT * FROM unnest($1::integer[], $2::text[]) AS k(object_type, object_id)),
             o AS (SELECT g.record, g.object_type, g.object_id FROM gc_objects g
                   JOIN k ON g.object_type = k.object_type AND g.object_id = k.object_id
                   ORDER BY g.object_type, g.object_id FOR UPDATE OF g),
             j AS (SELECT g.record FROM gc_jobs g
                   JOIN k ON g.object_type = k.object_type AND g.object_id = k.object_id
                   WHERE g.state IN (0, 2) ORDER BY g.id FOR UPDATE OF g)
        SELECT 0::smallint, record, 0::smallint, 0::smallint, object_type, object_id, 0::bigint, 0::bigint FROM o
        UNION ALL SELECT 1::smallint, record, 0::smallint, 0::smallint, 0, NULL::text, 0::bigint, 0::bigint FROM j
        UNION ALL SELECT 9::smallint, NULL::bytea, \(PostgresQuota.backendShardSQL), 0::smallint, 0, NULL::text, nextval('gc_command_index'),
            ((extract(epoch from clock_timestamp()) * 1000)::bigint + $3::bigint) FROM generate_series(1, $4::integer)
        """
}

/// The quota units of a batch's creates, all or none: $1 services with $2
/// units each in their shard $3, and $5 units of all leases in shard $4.
/// Answers the services that took theirs and whether all leases' took.
enum QuotaBatchSQL: PreparedSQL {
    static let sql = """
        WITH s AS (UPDATE gc_quota q SET active = q.active + u.n
                   FROM unnest($1::text[], $2::integer[]) AS u(scope, n)
                   WHERE q.scope = u.scope AND q.shard = $3::smallint AND q.active + u.n <= q.capacity RETURNING 1),
             a AS (UPDATE gc_quota SET active = active + $5::integer
                   WHERE scope = '' AND shard = $4::smallint AND active + $5::integer <= capacity
                     AND (SELECT count(*) FROM s) = cardinality($1::text[]) RETURNING 1)
        SELECT (SELECT count(*) FROM s)::integer, (SELECT count(*) FROM a)::integer
        """
}

/// Quota units given back ($1 scopes, $2 shards, $3 counts): the rows are
/// locked first in the order reservations lock them (services, then all
/// leases; each by shard), then updated.
enum QuotaGiveBackSQL: PreparedSQL {
    static let sql = """
        WITH u AS (SELECT * FROM unnest($1::text[], $2::smallint[], $3::bigint[]) AS u(scope, shard, n)),
             l AS MATERIALIZED (SELECT q.scope, q.shard, u.n FROM gc_quota q
                                JOIN u ON q.scope = u.scope AND q.shard = u.shard
                                ORDER BY q.scope = '', q.scope, q.shard FOR UPDATE OF q)
        UPDATE gc_quota q SET active = GREATEST(q.active - l.n, 0) FROM l
        WHERE q.scope = l.scope AND q.shard = l.shard
        """
}

/// Both quota units of a create ($1 service, $2 its shard, $3 the all-leases shard).
enum QuotaFastPathSQL: PreparedSQL {
    static let sql = """
        WITH s AS (UPDATE gc_quota SET active = active + 1
                   WHERE scope = $1 AND shard = $2 AND active < capacity RETURNING 1),
             a AS (UPDATE gc_quota SET active = active + 1
                   WHERE scope = '' AND shard = $3 AND active < capacity AND EXISTS (SELECT 1 FROM s) RETURNING 1)
        SELECT (SELECT count(*) FROM s)::integer, (SELECT count(*) FROM a)::integer
        """
}

/// A command's events, unnumbered ($1 times, $2 records), in their order.
enum InsertEventsSQL: PreparedSQL {
    static let sql = """
        INSERT INTO gc_events (at, record)
        SELECT at, record FROM unnest($1::bigint[], $2::bytea[]) WITH ORDINALITY AS e(at, record, n) ORDER BY n
        """
}

/// The whole write-back of a command and its totals (see
/// ``PostgresLockedRows/write(_:quotaShards:stats:statsShard:)`` for the bindings).
enum WriteBackSQL: PreparedSQL {
    static let sql = """
        WITH lu AS (
            INSERT INTO gc_leases (id, object_type, object_id, service_id, state, expires_at, ended_at, quota_shard, record)
            SELECT id, object_type, object_id, service_id, state, expires_at, NULLIF(ended_at, $38::bigint), quota_shard, record
            FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::smallint[], $6::bigint[], $7::bigint[],
                        $8::smallint[], $9::bytea[])
                 AS u(id, object_type, object_id, service_id, state, expires_at, ended_at, quota_shard, record)
            ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, expires_at = EXCLUDED.expires_at,
                ended_at = EXCLUDED.ended_at, record = EXCLUDED.record
            RETURNING 1),
        ld AS (DELETE FROM gc_leases WHERE id = ANY($10::text[]) RETURNING 1),
        oi AS (
            INSERT INTO gc_objects (object_type, object_id, record)
            SELECT * FROM unnest($11::integer[], $12::text[], $13::bytea[])
            RETURNING 1),
        ou AS (
            UPDATE gc_objects g SET record = u.record
            FROM unnest($14::integer[], $15::text[], $16::bytea[]) AS u(object_type, object_id, record)
            WHERE g.object_type = u.object_type AND g.object_id = u.object_id
            RETURNING 1),
        od AS (
            DELETE FROM gc_objects g USING unnest($17::integer[], $18::text[]) AS k(object_type, object_id)
            WHERE g.object_type = k.object_type AND g.object_id = k.object_id
            RETURNING 1),
        ju AS (
            INSERT INTO gc_jobs (id, object_type, object_id, state, next_attempt_at, endpoint, finished_at, record)
            SELECT id, object_type, object_id, state, next_attempt_at, endpoint, NULLIF(finished_at, $38::bigint), record
            FROM unnest($19::bigint[], $20::integer[], $21::text[], $22::smallint[], $23::bigint[], $24::text[],
                        $25::bigint[], $26::bytea[])
                 AS u(id, object_type, object_id, state, next_attempt_at, endpoint, finished_at, record)
            ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, next_attempt_at = EXCLUDED.next_attempt_at,
                finished_at = EXCLUDED.finished_at, record = EXCLUDED.record,
                claim_token = NULL, claim_owner = NULL, claim_expires_at = NULL
            RETURNING 1),
        jd AS (DELETE FROM gc_jobs WHERE id = ANY($27::bigint[]) RETURNING 1),
        st AS (
            UPDATE gc_stats SET created = created + $28, renewed = renewed + $29, released = released + $30,
                expired = expired + $31, cleanup_attempts = cleanup_attempts + $32,
                cleanup_succeeded = cleanup_succeeded + $33, cleanup_failures = cleanup_failures + $34,
                dead_lettered = dead_lettered + $35
            WHERE shard = $36 AND $37::boolean
            RETURNING 1)
        SELECT 1
        """
}
