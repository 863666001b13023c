-- Named statements of the PostgreSQL backend, under `-- name --` headers as in ../queries.sql.
-- Parameters are psycopg's %(name)s placeholders.

-- Schema migrations (queue_core.postgres.schema) --

-- migrations_table --
CREATE TABLE IF NOT EXISTS queue_schema_migrations (
  version     integer PRIMARY KEY,
  name        text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
)

-- migrations_table_exists --
SELECT to_regclass('queue_schema_migrations') IS NOT NULL

-- applied_migrations --
SELECT version, name FROM queue_schema_migrations ORDER BY version

-- record_migration --
INSERT INTO queue_schema_migrations (version, name) VALUES (%(version)s, %(name)s)

-- migration_lock --
-- Held until the transaction ends; advisory locks are per database, so only processes that
-- migrate the same database wait for each other.
SELECT pg_advisory_xact_lock(%(key)s)

-- read_committed --
-- Each statement after the lock wait must see what the previous holder committed.
SET TRANSACTION ISOLATION LEVEL READ COMMITTED

-- present_relations --
-- Tables, views and indexes of the current schema, by kind: r table, v view, i index.
SELECT c.relkind::text, c.relname::text
FROM pg_class AS c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'i')

-- present_triggers --
SELECT t.tgname::text
FROM pg_trigger AS t
WHERE t.tgrelid = to_regclass('task_queue') AND NOT t.tgisinternal

-- stored_generated_columns --
SELECT a.attname::text
FROM pg_attribute AS a
WHERE a.attrelid = to_regclass('task_queue') AND a.attgenerated = 's' AND NOT a.attisdropped

-- present_functions --
SELECT p.proname::text
FROM pg_proc AS p
WHERE p.pronamespace = current_schema()::regnamespace

-- ===== The queue (queue_core.postgres.database): the statements of ../queries.sql =====
-- Same names as the SQLite statements the queue code runs, and the same parameters: the code
-- binds one dict (or tuple) to either. Times are bound as UTC text 'YYYY-MM-DD HH:MM:SS.fff'
-- and cast to timestamptz here (the session's TimeZone is UTC); they come back as the same
-- text, and jsonb as its JSON text, so rows build the same models on both backends.
-- :types and :ids are JSON arrays, as on SQLite (jsonb_array_elements_text for json_each).

-- task_columns --
id, type, payload, priority, compatibility, status, attempts, max_attempts, run_after_utc,
lease_until_utc, reserved_at_utc, processing_started_utc, finished_at_utc, locked_by,
error_message, idempotency_key, created_at_utc, updated_at_utc

-- lease_to_worker --
SET status = 'processing',
    locked_by = %(worker_id)s::text,
    lease_until_utc = %(lease_until)s::timestamptz,
    reserved_at_utc = %(now)s::timestamptz,
    processing_started_utc = %(now)s::timestamptz,
    updated_at_utc = %(now)s::timestamptz,
    attempts = attempts + 1

-- enqueue --
-- Insert one task; on a duplicate idempotency key insert nothing and return no row. A racing
-- insert of the same key waits for the first one's commit, then inserts nothing.
INSERT INTO task_queue (type, priority, payload, compatibility, max_attempts, run_after_utc,
                        idempotency_key, created_at_utc, updated_at_utc)
VALUES (%s, %s, %s::jsonb, %s::jsonb, %s, %s::timestamptz, %s, %s::timestamptz, %s::timestamptz)
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id;

-- task_id_by_idempotency_key --
SELECT id FROM task_queue WHERE idempotency_key = %(idempotency_key)s::text;

-- release_expired_leases --
-- As on SQLite. SKIP LOCKED: two claims releasing at once never wait for each other (or
-- deadlock); each releases the expired leases the other has not locked.
UPDATE task_queue
SET status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
    finished_at_utc = CASE WHEN attempts < max_attempts THEN NULL
        ELSE %(now)s::timestamptz END,
    error_message = CASE WHEN attempts < max_attempts
        THEN 'lease expired at '
             || to_char(lease_until_utc AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')
             || ' while held by ' || locked_by
             || ' (attempt ' || attempts || ' of ' || max_attempts || '); requeued'
        ELSE 'lease expired at '
             || to_char(lease_until_utc AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')
             || ' while held by ' || locked_by
             || ' on the final attempt (' || attempts || ' of ' || max_attempts || ')'
        END,
    locked_by = NULL,
    lease_until_utc = NULL,
    updated_at_utc = %(now)s::timestamptz
WHERE id IN (
    SELECT id FROM task_queue
    WHERE status = 'processing' AND lease_until_utc <= %(now)s::timestamptz
    FOR UPDATE SKIP LOCKED
);

-- complete --
UPDATE task_queue
SET status = 'completed', finished_at_utc = %(now)s::timestamptz,
    updated_at_utc = %(now)s::timestamptz, lease_until_utc = NULL
WHERE id = %(task_id)s AND status = 'processing' AND locked_by = %(worker_id)s::text;

-- fail --
-- As on SQLite; the delay is rounded to milliseconds, as SQLite's strftime('%f') keeps them.
UPDATE task_queue
SET status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
    run_after_utc = CASE WHEN attempts < max_attempts
        THEN %(now)s::timestamptz + make_interval(secs => round((coalesce(%(retry_in)s::float8,
             least(%(backoff_max)s::float8,
                   %(backoff_base)s::float8 * (1::bigint << least(greatest(attempts - 1, 0), 40)::integer))
             * (1 + %(jitter)s::float8)))::numeric, 3)::float8)
        ELSE run_after_utc END,
    finished_at_utc = CASE WHEN attempts < max_attempts THEN NULL
        ELSE %(now)s::timestamptz END,
    locked_by = CASE WHEN attempts < max_attempts THEN NULL ELSE locked_by END,
    lease_until_utc = NULL,
    error_message = %(error)s::text,
    updated_at_utc = %(now)s::timestamptz
WHERE id = %(task_id)s AND status = 'processing' AND locked_by = %(worker_id)s::text
RETURNING {task_columns};

-- extend_lease --
UPDATE task_queue
SET lease_until_utc = %(lease_until)s::timestamptz, updated_at_utc = %(now)s::timestamptz
WHERE id = %(task_id)s AND status = 'processing' AND locked_by = %(worker_id)s::text;

-- task_holder --
SELECT status, locked_by FROM task_queue WHERE id = %(task_id)s;

-- get_task --
SELECT {task_columns} FROM task_queue WHERE id = %(task_id)s;

-- count_by_status --
SELECT status, count(*) FROM task_queue GROUP BY status;

-- upsert_worker --
INSERT INTO workers (worker_id, capabilities, heartbeat_utc)
VALUES (%(worker_id)s::text, %(capabilities)s::jsonb, %(heartbeat)s::timestamptz)
ON CONFLICT (worker_id) DO UPDATE
SET capabilities = excluded.capabilities, heartbeat_utc = excluded.heartbeat_utc;

-- worker_heartbeat --
INSERT INTO workers (worker_id, capabilities, heartbeat_utc)
VALUES (%(worker_id)s::text, '{}', %(heartbeat)s::timestamptz)
ON CONFLICT (worker_id) DO UPDATE SET heartbeat_utc = excluded.heartbeat_utc;

-- get_worker --
SELECT worker_id, capabilities, heartbeat_utc FROM workers WHERE worker_id = %(worker_id)s::text;

-- list_workers --
SELECT worker_id, capabilities, heartbeat_utc FROM workers ORDER BY worker_id;

-- insert_log --
INSERT INTO task_logs (task_id, at_utc, level, message, details)
VALUES (%(task_id)s, %(at)s::timestamptz, %(level)s::text, %(message)s::text, %(details)s::jsonb)
RETURNING log_id;

-- task_logs --
SELECT log_id, task_id, at_utc, level, message, details
FROM task_logs WHERE task_id = %(task_id)s ORDER BY at_utc, log_id;

-- complete_many --
UPDATE task_queue
SET status = 'completed', finished_at_utc = %(now)s::timestamptz,
    updated_at_utc = %(now)s::timestamptz, lease_until_utc = NULL
WHERE status = 'processing' AND locked_by = %(worker_id)s::text
  AND id IN (SELECT jsonb_array_elements_text(%(task_ids)s::jsonb)::bigint)
RETURNING id;

-- extend_leases --
UPDATE task_queue
SET lease_until_utc = %(lease_until)s::timestamptz, updated_at_utc = %(now)s::timestamptz
WHERE status = 'processing' AND locked_by = %(worker_id)s::text
  AND id IN (SELECT jsonb_array_elements_text(%(task_ids)s::jsonb)::bigint)
RETURNING id;

-- release_unstarted --
-- run_after_utc is written unchanged (the task keeps its place in line) so that migration
-- 0007's trigger, which watches that column, wakes idle engines for the released tasks.
UPDATE task_queue
SET status = 'queued',
    run_after_utc = run_after_utc,
    attempts = greatest(attempts - 1, 0),
    locked_by = NULL,
    lease_until_utc = NULL,
    reserved_at_utc = NULL,
    processing_started_utc = NULL,
    updated_at_utc = %(now)s::timestamptz
WHERE status = 'processing' AND locked_by = %(worker_id)s::text
  AND id IN (SELECT jsonb_array_elements_text(%(task_ids)s::jsonb)::bigint)
RETURNING id;

-- next_due_queued --
SELECT min(run_after_utc) FROM task_queue
WHERE status = 'queued'
  AND (%(types)s::jsonb IS NULL
       OR type IN (SELECT jsonb_array_elements_text(%(types)s::jsonb)))
  AND (region IS NULL OR region = %(region)s::text);

-- next_lease_expiry --
SELECT min(lease_until_utc) FROM task_queue WHERE status = 'processing';

-- live_counts --
-- Live tasks per status and type; ix_task_type_status serves it.
SELECT status, type, count(*) FROM task_queue
WHERE status IN ('queued', 'processing')
GROUP BY status, type;

-- finished_counts --
-- The totals of migration 0004's delta rows.
SELECT status, type, n FROM finished_task_totals;

-- due_now --
SELECT count(*), min(run_after_utc) FROM task_queue
WHERE status = 'queued' AND run_after_utc <= %(now)s::timestamptz;

-- leases --
SELECT count(*), count(*) FILTER (WHERE lease_until_utc <= %(now)s::timestamptz)
FROM task_queue
WHERE status = 'processing';

-- finished_since --
SELECT status, count(*) FROM task_queue
WHERE status IN ('completed', 'failed', 'cancelled')
  AND finished_at_utc >= %(since)s::timestamptz
GROUP BY status;

-- stale_workers --
SELECT worker_id, capabilities, heartbeat_utc FROM workers
WHERE heartbeat_utc < %(threshold)s::timestamptz ORDER BY heartbeat_utc, worker_id;

-- worker_count --
SELECT count(*) FROM workers;

-- list_tasks --
SELECT {task_columns}
FROM task_queue
WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
ORDER BY id DESC LIMIT %(limit)s;

-- retry_task --
-- As SQLite's: a task cancelled while it ran is due when its kept lease would have ended
-- (GREATEST skips a NULL lease).
UPDATE task_queue
SET status = 'queued', attempts = 0,
    run_after_utc = GREATEST(%(now)s::timestamptz, lease_until_utc),
    finished_at_utc = NULL, locked_by = NULL, lease_until_utc = NULL,
    updated_at_utc = %(now)s::timestamptz
WHERE id = %(task_id)s AND status IN ('failed', 'cancelled')
RETURNING {task_columns};

-- retry_failed_batch --
UPDATE task_queue
SET status = 'queued', attempts = 0, run_after_utc = %(now)s::timestamptz,
    finished_at_utc = NULL, locked_by = NULL, lease_until_utc = NULL,
    updated_at_utc = %(now)s::timestamptz
WHERE id IN (
    SELECT id FROM task_queue
    WHERE status = 'failed' AND (%(type)s::text IS NULL OR type = %(type)s::text)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING id;

-- cancel_task --
-- Keeps lease_until_utc, as SQLite's does (retry_task waits for it).
UPDATE task_queue
SET status = 'cancelled', finished_at_utc = %(now)s::timestamptz,
    updated_at_utc = %(now)s::timestamptz,
    error_message = CASE WHEN status = 'processing'
        THEN 'cancelled while held by ' || locked_by ELSE error_message END
WHERE id = %(task_id)s AND status IN ('queued', 'processing')
RETURNING {task_columns};

-- task_status --
SELECT status FROM task_queue WHERE id = %(task_id)s;

-- prune_count --
SELECT count(*) FROM task_queue
WHERE status = %(status)s::text AND finished_at_utc < %(cutoff)s::timestamptz;

-- prune_candidates --
SELECT id FROM task_queue
WHERE status = %(status)s::text AND finished_at_utc < %(cutoff)s::timestamptz
ORDER BY finished_at_utc
LIMIT %(limit)s;

-- prune_logs --
DELETE FROM task_logs
WHERE task_id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb)::bigint);

-- prune_tasks --
DELETE FROM task_queue WHERE id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb)::bigint);

-- ===== The claim (queue_core.postgres.claiming) =====
-- One statement picks and leases: the CTE locks the first :limit due tasks that match, in the
-- strategy's order, skipping rows other claims hold locked (FOR UPDATE SKIP LOCKED), and the
-- UPDATE leases exactly those. A row another claim leased and committed meanwhile no longer
-- matches status = 'queued' when it is locked, so no task is leased twice. :types is a text
-- array or NULL (any type); a task without a region matches every worker. /*order*/ is
-- replaced by the strategy's ORDER BY list (queue_core.postgres.claiming).
-- The region rule is written coalesce(region = :region, region IS NULL), not
-- "region IS NULL OR region = :region": the same truth, but without statistics (a burst of
-- enqueues before autovacuum analyzes the table) the planner guesses IS NULL matches 0.5% of
-- rows and sorts every due task instead of walking ix_task_status_prio_time in claim order
-- (4.5 ms rather than 0.2 ms per claim at 10,000 queued, measured).

-- claim_in_order --
WITH picked AS (
    SELECT id FROM task_queue
    WHERE status = 'queued' AND run_after_utc <= %(now)s::timestamptz
      AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
      AND coalesce(region = %(region)s::text, region IS NULL)
    ORDER BY /*order*/
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE task_queue
{lease_to_worker}
WHERE id IN (SELECT id FROM picked)
RETURNING {task_columns};

-- claim_bands --
-- A part of the statements below, not a statement: the distinct priorities ("bands") of the
-- matching queued tasks, by a loose index scan of ix_task_status_prio_time (the next band is the
-- least priority above the last one: one index descent each), so the cost grows with the number
-- of bands, not with the backlog.
WITH RECURSIVE bands(p) AS (
    SELECT (SELECT min(priority) FROM task_queue
            WHERE status = 'queued'
              AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
              AND coalesce(region = %(region)s::text, region IS NULL))
    UNION ALL
    SELECT (SELECT min(priority) FROM task_queue
            WHERE status = 'queued' AND priority > bands.p
              AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
              AND coalesce(region = %(region)s::text, region IS NULL))
    FROM bands WHERE bands.p IS NOT NULL
)

-- claim_by_arrival --
-- fifo and lifo in one statement: in each band the :limit due tasks that arrived first (or
-- last: /*order*/ is "run_after_utc, id" or "run_after_utc DESC, id DESC"), each band one seek
-- into ix_task_status_prio_time, locked unless another claim holds them; of those the first
-- :limit in arrival order are leased. Sorting every due task instead costs time in proportion
-- to the backlog (15 ms for 20,000). The heads of a band that are locked but not leased are
-- let go when the statement ends.
{claim_bands},
picked AS (
    SELECT heads.id FROM bands, LATERAL (
        SELECT id, run_after_utc FROM task_queue
        WHERE status = 'queued' AND priority = bands.p
          AND run_after_utc <= %(now)s::timestamptz
          AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
          AND coalesce(region = %(region)s::text, region IS NULL)
        ORDER BY /*order*/
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS heads
    WHERE bands.p IS NOT NULL
    ORDER BY /*order*/
    LIMIT %(limit)s
)
UPDATE task_queue
{lease_to_worker}
WHERE id IN (SELECT id FROM picked)
RETURNING {task_columns};

-- claim_band_heads --
-- weighted_random's look: for each priority band with due matching tasks, its :limit oldest
-- (run_after_utc, id), read as claim_by_arrival does but without locking. The band is then
-- drawn in Python with the queue's random source, as on SQLite, and claim_by_ids leases the
-- pick.
{claim_bands}
SELECT heads.priority, heads.run_after_utc, heads.id
FROM bands, LATERAL (
    SELECT priority, run_after_utc, id FROM task_queue
    WHERE status = 'queued' AND priority = bands.p
      AND run_after_utc <= %(now)s::timestamptz
      AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
      AND coalesce(region = %(region)s::text, region IS NULL)
    ORDER BY run_after_utc, id
    LIMIT %(limit)s
) AS heads
WHERE bands.p IS NOT NULL;

-- claim_by_ids --
-- Leases those of the picked tasks that are still queued and due, skipping any another claim
-- holds locked. :ids is a bigint array.
WITH picked AS (
    SELECT id FROM task_queue
    WHERE id = ANY(%(ids)s::bigint[]) AND status = 'queued'
      AND run_after_utc <= %(now)s::timestamptz
    FOR UPDATE SKIP LOCKED
)
UPDATE task_queue
{lease_to_worker}
WHERE id IN (SELECT id FROM picked)
RETURNING {task_columns};

-- ===== Connections (queue_core.postgres.database) =====

-- session_settings --
-- Every connection: times read and written in UTC, ISO dates, and a bound on row-lock waits
-- (a statement that waits longer fails with 55P03, raised as QueueBusyError).
SELECT set_config('TimeZone', 'UTC', false),
       set_config('DateStyle', 'ISO, YMD', false),
       set_config('lock_timeout', %(lock_timeout)s, false);

-- change_token --
-- The server's current snapshot: it changes whenever a transaction that writes starts or ends.
SELECT pg_current_snapshot()::text;

-- ==== Waking idle worker engines (LISTEN/NOTIFY; the triggers are migrations 0006 and 0007) ====

-- listen_queued_tasks --
-- On the watch's own autocommit connection: the triggers of 0006 and 0007 notify this channel
-- when a task enters 'queued'.
LISTEN prismq_task_queue
