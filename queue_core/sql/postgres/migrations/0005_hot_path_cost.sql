-- The hot paths' cost of migration 0004's counters, translated from the SQLite migration of the
-- same number: the same two changes, for the same reasons.
--
-- 1. No insert trigger. enqueue never sets a status, so every task enters the table queued and
--    the trigger never counted anything the queue inserted; it still cost every inserted row a
--    trigger check. A row inserted already finished by hand is not counted.
-- 2. The update triggers fire on UPDATE OF finished_at_utc (and type), no longer of status, so a
--    claim (queued -> processing) fires nothing. Every statement that moves a task into a final
--    status sets finished_at_utc and every one that moves it out (retry) clears it; the WHEN
--    clauses are 0004's, so the counts are the same. count_finished_task() and the delta rows
--    are unchanged, and so are the delete trigger and ix_task_finished.
-- SQLite's 0005 also spells "status IN (...)" out as ORs in its WHEN clauses, because SQLite
-- fills a temporary b-tree for an IN list of three constants on every trigger run; PostgreSQL
-- tests an IN list as an array, so the WHEN clauses keep it.

DROP TRIGGER IF EXISTS trg_task_finished_count_insert ON task_queue;

CREATE OR REPLACE TRIGGER trg_task_finished_count_enter
AFTER UPDATE OF finished_at_utc, type ON task_queue
FOR EACH ROW
WHEN (NEW.status IN ('completed', 'failed', 'cancelled')
  AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.type IS DISTINCT FROM NEW.type))
EXECUTE FUNCTION count_finished_task('enter');

CREATE OR REPLACE TRIGGER trg_task_finished_count_leave
AFTER UPDATE OF finished_at_utc, type ON task_queue
FOR EACH ROW
WHEN (OLD.status IN ('completed', 'failed', 'cancelled')
  AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.type IS DISTINCT FROM NEW.type))
EXECUTE FUNCTION count_finished_task('leave');
