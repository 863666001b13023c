-- The hot paths' cost of migration 0004's counters (finished_task_counts), cut without changing
-- what they count.
--
-- Why they cost more than 0004 expected. A trigger's WHEN clause is not checked before the
-- trigger runs: SQLite runs a sub-program for every row the statement touches, and the WHEN is
-- its first step. Worse, a statement on a table with a trigger for it opens a statement journal
-- inside a transaction, so every page it changes is first copied aside. So:
-- - the INSERT trigger ran for every enqueued task (with the temporary b-tree below), and in
--   enqueue_many's transaction each row's insert journaled its pages: 1.65x the CPU
--   instructions per batch of 100 (callgrind: 17.8M against 10.8M; `python -m bench
--   index-cost` measures the time);
-- - the UPDATE OF status triggers ran for every claim (a claim sets status to 'processing'),
--   with a statement journal too, since the claim runs in its own transaction;
-- - "status IN ('completed', 'failed', 'cancelled')" in a WHEN: SQLite compares an IN list of
--   more than two constants through a temporary b-tree it fills first, and in a trigger it
--   fills it anew every time the trigger runs, so each trigger run created one.
--
-- What changes:
-- 1. No insert trigger. enqueue never sets a status: every task enters the table queued, which
--    is not a final status, so the trigger never counted anything the queue itself inserted.
--    A row inserted already finished by hand is not counted; `python -m queue_core check`
--    (maintenance.integrity_check) reports any difference between the counters and the rows.
-- 2. The update triggers fire on UPDATE OF finished_at_utc (and type), no longer of status.
--    Every statement that moves a task into a final status (complete, the last fail, the
--    release of a lease on its last attempt, cancel) sets finished_at_utc, and every one that
--    moves it out (retry) clears it; a claim and the release of unstarted tasks move tasks
--    between live statuses only and do not touch it, so they fire nothing. The WHEN clauses
--    test what 0004's tested, old and new status and type, so the counts are the same. A test
--    holds every statement of queries.sql to that rule.
-- 3. Every WHEN spells the final statuses out as "status = 'completed' OR ...": the same test
--    without the temporary b-tree (8 % of a claim+complete's CPU instructions; prune deletes
--    go through the delete trigger, which is rewritten the same way and otherwise unchanged).
-- ix_task_finished is unchanged.

DROP TRIGGER IF EXISTS trg_task_finished_count_insert;
DROP TRIGGER IF EXISTS trg_task_finished_count_enter;
DROP TRIGGER IF EXISTS trg_task_finished_count_leave;
DROP TRIGGER IF EXISTS trg_task_finished_count_delete;

CREATE TRIGGER trg_task_finished_count_enter
AFTER UPDATE OF finished_at_utc, type ON task_queue
WHEN (new.status = 'completed' OR new.status = 'failed' OR new.status = 'cancelled')
  AND (old.status IS NOT new.status OR old.type IS NOT new.type)
BEGIN
  INSERT INTO finished_task_counts (type, status, n) VALUES (new.type, new.status, 1)
  ON CONFLICT (type, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER trg_task_finished_count_leave
AFTER UPDATE OF finished_at_utc, type ON task_queue
WHEN (old.status = 'completed' OR old.status = 'failed' OR old.status = 'cancelled')
  AND (old.status IS NOT new.status OR old.type IS NOT new.type)
BEGIN
  UPDATE finished_task_counts SET n = n - 1 WHERE type = old.type AND status = old.status;
END;

CREATE TRIGGER trg_task_finished_count_delete
AFTER DELETE ON task_queue
WHEN old.status = 'completed' OR old.status = 'failed' OR old.status = 'cancelled'
BEGIN
  UPDATE finished_task_counts SET n = n - 1 WHERE type = old.type AND status = old.status;
END;
