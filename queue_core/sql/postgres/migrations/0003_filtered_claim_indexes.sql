-- Filtered claims, translated from the SQLite migration of the same number. A claim for some
-- task types, or for a region, is one seek per (type, region) pair: these indexes start with
-- the filter's equality columns and then follow the claim order (priority, run_after_utc, id).
-- A worker's region matches tasks of that region and tasks with no region: "region = $1" and
-- "region IS NULL" can both use them (btree indexes hold NULLs in PostgreSQL as in SQLite).
-- They are partial: only queued tasks are in them, so finished tasks cost nothing.
CREATE INDEX IF NOT EXISTS ix_task_queued_region
  ON task_queue (region, priority, run_after_utc, id)
  WHERE status = 'queued';

CREATE INDEX IF NOT EXISTS ix_task_queued_type_region
  ON task_queue (type, region, priority, run_after_utc, id)
  WHERE status = 'queued';
