-- Migration 0006's requeue trigger, off the hot paths. It fired on UPDATE OF status, which
-- every claim (queued -> processing) and every completion (processing -> completed) writes. Its
-- WHEN clause kept those from calling the function, but PostgreSQL prepares a trigger's WHEN
-- clause once per statement that writes one of the trigger's columns (it rebuilds the
-- expression from its stored text), and the queue's claims and completions are one-row
-- statements: the clause cost about 6 us of server CPU per claim+complete, more than a trigger
-- that called its function for every row and tested the statuses there (about 3 us).
--
-- PostgreSQL skips a trigger before looking at its WHEN clause when the statement writes none
-- of its columns. The trigger now watches run_after_utc and error_message: no claim, lease
-- renewal or completion writes them, and every statement of the queue that puts a task back in
-- 'queued' writes one: a failure with attempts left (fail: both), the release of an expired
-- lease (error_message), a retry (retry_task and retry_failed_batch: run_after_utc), and the
-- release of claimed tasks a stopping engine never started (release_unstarted writes
-- run_after_utc unchanged for this). The WHEN clause and the function are 0006's, so a task
-- that enters 'queued' still notifies once per transaction. A hand-written UPDATE that sets
-- only status = 'queued' now notifies nobody; engines find its task at their next safety poll
-- (within a second).
--
-- The SQLite migration of the same number changes nothing.

CREATE OR REPLACE TRIGGER trg_task_notify_requeue
AFTER UPDATE OF run_after_utc, error_message ON task_queue
FOR EACH ROW
WHEN (NEW.status = 'queued' AND OLD.status IS DISTINCT FROM 'queued')
EXECUTE FUNCTION notify_queued_task();
