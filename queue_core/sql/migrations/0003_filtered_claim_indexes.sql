-- Filtered claims. A claim for some task types, or for a region, used to walk
-- ix_task_status_prio_time in claim order and test every queued task against the filter, so a
-- rare type, or a region that matched nothing, cost a scan of the whole backlog (35-53 ms at
-- 200k queued tasks, all under the write lock).
-- Every claim filters on region: a worker's region matches tasks of that region and tasks with
-- no region, and a worker without a region matches only tasks with no region. So a claim is one
-- seek per (type, region) pair into one of these indexes, which start with the filter's
-- equality columns and then follow the claim order (priority, run_after_utc, id): "region = ?"
-- and "region IS NULL" for a claim of any type, the same per type for a claim of some types.
-- They are partial: only queued tasks are in them, so finished tasks cost nothing.
CREATE INDEX IF NOT EXISTS ix_task_queued_region
  ON task_queue (region, priority, run_after_utc, id)
  WHERE status = 'queued';

CREATE INDEX IF NOT EXISTS ix_task_queued_type_region
  ON task_queue (type, region, priority, run_after_utc, id)
  WHERE status = 'queued';
