-- Operations (retention, stats, cancel).
--
-- 1. finished_task_counts: how many tasks of each type sit in each final status (completed,
--    failed, cancelled). Counting those rows would cost time in proportion to the whole history
--    (63-136 ms at 1M rows); the triggers below keep the totals instead. They fire only when a
--    task enters or leaves a final status, so enqueue and claim pay nothing; complete and a final
--    fail pay one small upsert. Live statuses (queued, processing) are still counted from the
--    index, so stats cost grows with the live queue, not with history.
-- 2. ix_task_finished: finished tasks by finish time, for retention (delete the oldest first)
--    and for "completions and failures over the last N minutes".
-- 3. 'cancelled' is a new final status. status has no CHECK constraint, so no table rebuild is
--    needed; claim only takes 'queued' rows, so cancelled tasks are never handed out.

CREATE TABLE IF NOT EXISTS finished_task_counts (
  type    TEXT NOT NULL,
  status  TEXT NOT NULL,
  n       INTEGER NOT NULL,
  PRIMARY KEY (type, status)
) WITHOUT ROWID;

INSERT INTO finished_task_counts (type, status, n)
SELECT type, status, count(*) FROM task_queue
WHERE status IN ('completed', 'failed', 'cancelled')
GROUP BY type, status;

CREATE TRIGGER IF NOT EXISTS trg_task_finished_count_insert
AFTER INSERT ON task_queue
WHEN new.status IN ('completed', 'failed', 'cancelled')
BEGIN
  INSERT INTO finished_task_counts (type, status, n) VALUES (new.type, new.status, 1)
  ON CONFLICT (type, status) DO UPDATE SET n = n + 1;
END;

-- Two update triggers, so that each transition runs one statement: a task entering a final
-- status (complete, the last fail, cancel) and a task leaving one (retry).
CREATE TRIGGER IF NOT EXISTS trg_task_finished_count_enter
AFTER UPDATE OF status, type ON task_queue
WHEN new.status IN ('completed', 'failed', 'cancelled')
  AND (old.status IS NOT new.status OR old.type IS NOT new.type)
BEGIN
  INSERT INTO finished_task_counts (type, status, n) VALUES (new.type, new.status, 1)
  ON CONFLICT (type, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS trg_task_finished_count_leave
AFTER UPDATE OF status, type ON task_queue
WHEN old.status IN ('completed', 'failed', 'cancelled')
  AND (old.status IS NOT new.status OR old.type IS NOT new.type)
BEGIN
  UPDATE finished_task_counts SET n = n - 1 WHERE type = old.type AND status = old.status;
END;

CREATE TRIGGER IF NOT EXISTS trg_task_finished_count_delete
AFTER DELETE ON task_queue
WHEN old.status IN ('completed', 'failed', 'cancelled')
BEGIN
  UPDATE finished_task_counts SET n = n - 1 WHERE type = old.type AND status = old.status;
END;

CREATE INDEX IF NOT EXISTS ix_task_finished
  ON task_queue (status, finished_at_utc)
  WHERE finished_at_utc IS NOT NULL;
