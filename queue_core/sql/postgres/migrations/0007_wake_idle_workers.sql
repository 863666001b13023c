-- Wake idle worker engines: every statement that puts tasks in 'queued' sends a NOTIFY on the
-- channel prismq_task_queue, delivered when its transaction commits. An idle engine LISTENs on
-- its own connection and claims when one arrives, instead of polling the server; it keeps a
-- slow timed poll as a safety net (a notification sent while a listener reconnects is lost).
--
-- PostgreSQL folds identical notifications of one transaction into one, so a batch enqueue, or
-- a transaction that retries many tasks, still sends a single notification. Inserts notify
-- once per statement; an update notifies only for a row that enters 'queued' (a retry, a
-- release, a requeue), checked by the WHEN clause without calling the function, so claims,
-- completions and lease renewals pay nothing. The payload is empty: a woken engine runs its
-- own claim with its own filters.
--
-- The SQLite migration of the same number changes nothing: SQLite engines notice any commit
-- through PRAGMA data_version.

CREATE OR REPLACE FUNCTION notify_queued_task() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('prismq_task_queue', '');
  RETURN NULL;  -- an AFTER trigger's result is ignored
END;
$$;

CREATE OR REPLACE TRIGGER trg_task_notify_insert
AFTER INSERT ON task_queue
FOR EACH STATEMENT
EXECUTE FUNCTION notify_queued_task();

CREATE OR REPLACE TRIGGER trg_task_notify_requeue
AFTER UPDATE OF status ON task_queue
FOR EACH ROW
WHEN (NEW.status = 'queued' AND OLD.status IS DISTINCT FROM 'queued')
EXECUTE FUNCTION notify_queued_task();
