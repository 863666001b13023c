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

-- ==== Waking idle worker engines (LISTEN/NOTIFY; the triggers are migration 0007) ====

-- listen_queued_tasks --
-- On the watch's own autocommit connection: the triggers of 0007 notify this channel when a
-- task enters 'queued'.
LISTEN prismq_task_queue
