/// The PostgreSQL schema of `GC_STORAGE_BACKEND=postgres`, as numbered
/// migrations (DESIGN.md, "PostgreSQL mode").
///
/// Every migration is applied once, in order, inside one transaction that
/// holds ``advisoryLockKey``, so sidecars that start together apply it once.
/// Append new migrations; never edit an applied one.
///
/// Layout: the lease state is the state machine's own records (the
/// `record` columns, encoded by LeaseFSM's snapshot codec), one row per
/// lease, object, cleanup job and client session, with the columns that
/// queries select on beside them. Times are Unix milliseconds from the
/// database's clock.
public enum PostgresSchema {
    /// One step of the schema.
    public struct Migration: Sendable {
        public var version: Int
        public var description: String
        public var sql: [String]
    }

    /// `pg_advisory_xact_lock` key that serializes migrations ("gc-migr").
    public static let advisoryLockKey: Int64 = 0x6763_2D6D_6967_72

    /// The newest schema this binary knows.
    public static var currentVersion: Int { migrations.last?.version ?? 0 }

    public static let migrations: [Migration] = [
        Migration(version: 1, description: "leases, objects, cleanup jobs, sessions, quotas, stats, events, sidecars", sql: [
            """
            CREATE TABLE gc_leases (
                id text COLLATE "C" PRIMARY KEY,  -- byte order = LeaseID order = creation order
                object_type integer NOT NULL,
                object_id text NOT NULL,
                service_id text NOT NULL,
                state smallint NOT NULL,          -- 0 active, 1 expired, 2 released
                expires_at bigint NOT NULL,
                ended_at bigint,
                quota_shard smallint NOT NULL,    -- the gc_quota shard that counts it while active
                record bytea NOT NULL             -- LeaseFSM's lease record
            )
            """,
            "CREATE INDEX gc_leases_expiring ON gc_leases (expires_at) WHERE state = 0",
            "CREATE INDEX gc_leases_object ON gc_leases (object_type, object_id)",
            "CREATE INDEX gc_leases_service ON gc_leases (service_id, id)",
            "CREATE INDEX gc_leases_ended ON gc_leases (ended_at) WHERE state <> 0",
            """
            CREATE TABLE gc_objects (
                object_type integer NOT NULL,
                object_id text NOT NULL,
                record bytea NOT NULL,            -- incarnation, active leases, cleanup source
                PRIMARY KEY (object_type, object_id)
            )
            """,
            """
            CREATE TABLE gc_jobs (
                id bigint PRIMARY KEY,
                object_type integer NOT NULL,
                object_id text NOT NULL,
                state smallint NOT NULL,          -- 0 pending, 1 succeeded, 2 dead-lettered, 3 superseded
                next_attempt_at bigint NOT NULL,
                endpoint text NOT NULL,
                finished_at bigint,
                claim_token uuid,                 -- the sidecar delivery that holds it
                claim_owner text,
                claim_expires_at bigint,
                record bytea NOT NULL             -- LeaseFSM's job record
            )
            """,
            "CREATE INDEX gc_jobs_due ON gc_jobs (next_attempt_at) WHERE state = 0",
            "CREATE INDEX gc_jobs_open ON gc_jobs (object_type, object_id) WHERE state IN (0, 2)",
            "CREATE INDEX gc_jobs_dead ON gc_jobs (endpoint, id) WHERE state = 2",
            "CREATE INDEX gc_jobs_finished ON gc_jobs (finished_at) WHERE state IN (1, 3)",
            """
            CREATE TABLE gc_sessions (
                client_id text PRIMARY KEY,
                last_active bigint NOT NULL,
                record bytea NOT NULL             -- LeaseFSM's client session record
            )
            """,
            "CREATE INDEX gc_sessions_idle ON gc_sessions (last_active)",
            """
            CREATE TABLE gc_quota (
                scope text NOT NULL,              -- '' for all leases, else a service id
                shard smallint NOT NULL,
                active bigint NOT NULL,
                capacity bigint NOT NULL,         -- escrow: active <= capacity, capacities sum to the limit
                PRIMARY KEY (scope, shard)
            )
            """,
            """
            CREATE TABLE gc_stats (
                shard smallint PRIMARY KEY,
                created bigint NOT NULL DEFAULT 0,
                renewed bigint NOT NULL DEFAULT 0,
                released bigint NOT NULL DEFAULT 0,
                expired bigint NOT NULL DEFAULT 0,
                cleanup_attempts bigint NOT NULL DEFAULT 0,
                cleanup_succeeded bigint NOT NULL DEFAULT 0,
                cleanup_failures bigint NOT NULL DEFAULT 0,
                dead_lettered bigint NOT NULL DEFAULT 0
            )
            """,
            "INSERT INTO gc_stats (shard) SELECT generate_series(0, 63)",
            // The state machine's "log index": one per command, drawn after the
            // command's rows are locked, so per object it only grows. Lease ids,
            // incarnations and fencing tokens come from it.
            "CREATE SEQUENCE gc_command_index START 1",
            // Events are written with no position; the sequencer numbers them in
            // commit order, so a watcher reading by position never skips one.
            """
            CREATE TABLE gc_events (
                id bigserial PRIMARY KEY,
                position bigint UNIQUE,
                at bigint NOT NULL,
                record bytea NOT NULL             -- LeaseFSM's event record
            )
            """,
            "CREATE INDEX gc_events_unsequenced ON gc_events (id) WHERE position IS NULL",
            "CREATE SEQUENCE gc_event_position START 1",
            """
            CREATE TABLE gc_sidecars (
                name text PRIMARY KEY,
                address text NOT NULL,
                version text NOT NULL,
                started_at bigint NOT NULL,
                last_seen bigint NOT NULL,
                claims integer NOT NULL DEFAULT 0
            )
            """,
        ]),
    ]
}
