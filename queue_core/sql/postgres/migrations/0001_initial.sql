-- The schema of the specification, translated from the SQLite migration of the same number.
-- Types are PostgreSQL's own, not loosened:
-- * integers are bigint: SQLite's INTEGER holds 64 bits, and the queue accepts any 64-bit
--   priority or max_attempts;
-- * ids are identity columns (a sequence never hands out an id twice, like AUTOINCREMENT);
-- * times are timestamptz (SQLite keeps UTC text), defaulting to now(), the transaction's time;
-- * payload, compatibility, capabilities and details are jsonb, so the server rejects text
--   that is not JSON (SQLite stores any text there);
-- * region and format are STORED generated columns (PostgreSQL 15 has no VIRTUAL ones), so
--   indexing them reads jsonb once per write, not once per lookup. ->> yields text, like the
--   TEXT affinity of SQLite's columns; a JSON true becomes 'true' where SQLite gives '1' (the
--   queue only accepts text regions).
-- The SQLite schema has no CHECK constraints (status is kept valid by the code), so none is
-- added here: both backends accept the same rows. The foreign key is the same.

CREATE TABLE IF NOT EXISTS task_queue (
  id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type               text NOT NULL,
  priority           bigint NOT NULL DEFAULT 100,
  payload            jsonb NOT NULL,
  compatibility      jsonb NOT NULL DEFAULT '{}',

  status             text NOT NULL DEFAULT 'queued',
  attempts           bigint NOT NULL DEFAULT 0,
  max_attempts       bigint NOT NULL DEFAULT 5,

  run_after_utc      timestamptz NOT NULL DEFAULT now(),
  lease_until_utc    timestamptz,
  reserved_at_utc    timestamptz,
  processing_started_utc timestamptz,
  finished_at_utc    timestamptz,

  locked_by          text,
  error_message      text,
  idempotency_key    text,

  created_at_utc     timestamptz NOT NULL DEFAULT now(),
  updated_at_utc     timestamptz NOT NULL DEFAULT now(),

  -- region: from compatibility (worker matching), format: from payload (task data)
  region             text GENERATED ALWAYS AS (compatibility ->> 'region') STORED,
  format             text GENERATED ALWAYS AS (payload ->> 'format') STORED
);

CREATE INDEX IF NOT EXISTS ix_task_status_prio_time
  ON task_queue (status, priority, run_after_utc, id);

CREATE INDEX IF NOT EXISTS ix_task_type_status
  ON task_queue (type, status);

CREATE INDEX IF NOT EXISTS ix_task_region
  ON task_queue (region);

CREATE INDEX IF NOT EXISTS ix_task_format
  ON task_queue (format);

CREATE UNIQUE INDEX IF NOT EXISTS uq_task_idempotency
  ON task_queue (idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS workers (
  worker_id      text PRIMARY KEY,
  capabilities   jsonb NOT NULL,
  heartbeat_utc  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS task_logs (
  log_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id    bigint NOT NULL,
  at_utc     timestamptz NOT NULL DEFAULT now(),
  level      text NOT NULL,
  message    text,
  details    jsonb,
  -- NO ACTION, as in SQLite: a task with logs cannot be deleted before its logs.
  CONSTRAINT task_logs_task_id_fkey FOREIGN KEY (task_id) REFERENCES task_queue (id)
);

-- Also the index the foreign key needs (PostgreSQL does not index referencing columns itself).
CREATE INDEX IF NOT EXISTS ix_logs_task
  ON task_logs (task_id, at_utc);
