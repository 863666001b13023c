-- Operations (retention, stats, cancel), translated from the SQLite migration of the same number.
--
-- 1. Finished-task counters. SQLite keeps one row per (type, status) and its triggers add or
--    subtract 1 in place; there a single writer makes that free. PostgreSQL has concurrent
--    writers: one counter row per type would serialise every completion of that type on its
--    row lock until commit, and two transactions finishing tasks of two types in opposite
--    orders would deadlock. So the intent (stats never count history) is kept with delta rows:
--    the triggers only INSERT (+1 when a task enters a final status, -1 when it leaves one),
--    which never waits for another writer. A (type, status) total is the sum of its rows
--    (view finished_task_totals); fold_finished_task_counts() folds them into one row each and
--    is meant to run now and then (retention, stats), concurrently with writers.
--    As in SQLite, the triggers fire only when a task enters or leaves a final status, so
--    enqueue and claim pay nothing (the WHEN clause is checked without calling the function).
-- 2. ix_task_finished: finished tasks by finish time, for retention and recent throughput.
-- 3. 'cancelled' is a new final status. status has no CHECK constraint (as in SQLite), so
--    there is nothing to alter.

CREATE TABLE IF NOT EXISTS finished_task_counts (
  type    text NOT NULL,
  status  text NOT NULL,
  n       bigint NOT NULL
);

INSERT INTO finished_task_counts (type, status, n)
SELECT type, status, count(*) FROM task_queue
WHERE status IN ('completed', 'failed', 'cancelled')
GROUP BY type, status;

CREATE OR REPLACE VIEW finished_task_totals AS
SELECT type, status, sum(n)::bigint AS n
FROM finished_task_counts
GROUP BY type, status
HAVING sum(n) <> 0;

-- TG_ARGV[0] says which row to count: 'enter' adds the new row, 'leave' removes the old one.
CREATE OR REPLACE FUNCTION count_finished_task() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_ARGV[0] = 'enter' THEN
    INSERT INTO finished_task_counts (type, status, n) VALUES (NEW.type, NEW.status, 1);
  ELSE
    INSERT INTO finished_task_counts (type, status, n) VALUES (OLD.type, OLD.status, -1);
  END IF;
  RETURN NULL;  -- an AFTER trigger's result is ignored
END;
$$;

-- Folds the delta rows into one row per (type, status), dropping totals of zero, and returns
-- how many rows it removed. Rows inserted by writers meanwhile are not in its snapshot, so
-- they are neither deleted nor counted twice; a concurrent fold skips the rows this one took.
CREATE OR REPLACE FUNCTION fold_finished_task_counts() RETURNS bigint
LANGUAGE sql AS $$
  WITH taken AS (
    DELETE FROM finished_task_counts RETURNING type, status, n
  ), folded AS (
    INSERT INTO finished_task_counts (type, status, n)
    SELECT type, status, sum(n) FROM taken GROUP BY type, status HAVING sum(n) <> 0
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM taken) - (SELECT count(*) FROM folded);
$$;

CREATE OR REPLACE TRIGGER trg_task_finished_count_insert
AFTER INSERT ON task_queue
FOR EACH ROW
WHEN (NEW.status IN ('completed', 'failed', 'cancelled'))
EXECUTE FUNCTION count_finished_task('enter');

-- Two update triggers, as in SQLite: a task entering a final status (complete, the last fail,
-- cancel) and a task leaving one (retry).
CREATE OR REPLACE TRIGGER trg_task_finished_count_enter
AFTER UPDATE OF status, type ON task_queue
FOR EACH ROW
WHEN (NEW.status IN ('completed', 'failed', 'cancelled')
  AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.type IS DISTINCT FROM NEW.type))
EXECUTE FUNCTION count_finished_task('enter');

CREATE OR REPLACE TRIGGER trg_task_finished_count_leave
AFTER UPDATE OF status, type ON task_queue
FOR EACH ROW
WHEN (OLD.status IN ('completed', 'failed', 'cancelled')
  AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.type IS DISTINCT FROM NEW.type))
EXECUTE FUNCTION count_finished_task('leave');

CREATE OR REPLACE TRIGGER trg_task_finished_count_delete
AFTER DELETE ON task_queue
FOR EACH ROW
WHEN (OLD.status IN ('completed', 'failed', 'cancelled'))
EXECUTE FUNCTION count_finished_task('leave');

CREATE INDEX IF NOT EXISTS ix_task_finished
  ON task_queue (status, finished_at_utc)
  WHERE finished_at_utc IS NOT NULL;
