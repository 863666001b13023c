-- Every statement the queue runs, by name.
-- Parameters are named (:now, :worker_id), so a value used twice is bound once. The two enqueue
-- statements are the exception: positional (?) there, because executemany binds a batch of
-- tuples measurably faster than a batch of dicts (named took 1.14-1.19x as long per task in
-- `python -m bench.param_style`; single claim and complete showed no measurable difference).
-- Timestamps are bound as UTC text 'YYYY-MM-DD HH:MM:SS.fff' from one clock (queue_core.timestamps).
--
-- {name} includes the entry `name` (a list, not a statement) into a statement when the file is
-- loaded; queue_core.sql.parse_queries refuses an unknown name.

-- task_columns --
-- The stored (not generated) columns of task_queue, one per field of models.Task, in the order
-- of its fields; Task.from_row reads these (a test holds the two together).
id, type, payload, priority, compatibility, status, attempts, max_attempts, run_after_utc,
lease_until_utc, reserved_at_utc, processing_started_utc, finished_at_utc, locked_by,
error_message, idempotency_key, created_at_utc, updated_at_utc

-- lease_to_worker --
-- The SET clause of every claim: leased to :worker_id until :lease_until, reserved and started
-- :now, one more attempt. Included by claim, claim_by_ids and claim_in_order.
SET status = 'processing',
    locked_by = :worker_id,
    lease_until_utc = :lease_until,
    reserved_at_utc = :now,
    processing_started_utc = :now,
    updated_at_utc = :now,
    attempts = attempts + 1

-- enqueue --
-- Insert one task; on a duplicate idempotency key insert nothing and return no row.
-- The conflict target repeats the partial index's WHERE, or SQLite refuses to match it.
INSERT INTO task_queue (type, priority, payload, compatibility, max_attempts, run_after_utc,
                        idempotency_key, created_at_utc, updated_at_utc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id;

-- enqueue_batch --
-- The same insert for executemany, which cannot return rows.
INSERT INTO task_queue (type, priority, payload, compatibility, max_attempts, run_after_utc,
                        idempotency_key, created_at_utc, updated_at_utc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);

-- task_id_by_idempotency_key --
SELECT id FROM task_queue WHERE idempotency_key = :idempotency_key;

-- last_insert_rowid --
SELECT last_insert_rowid();

-- release_expired_leases --
-- Tasks whose worker let the lease run out go back to the queue while attempts
-- remain; on the last attempt they fail for good. The partial index of leased tasks (migration
-- 0002) means only expired leases are visited, however many tasks are in flight; without
-- statistics the planner would pick the status index and scan every leased task instead.
UPDATE task_queue INDEXED BY ix_task_lease_expiry
SET status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
    finished_at_utc = CASE WHEN attempts < max_attempts THEN NULL ELSE :now END,
    error_message = CASE WHEN attempts < max_attempts
        THEN 'lease expired at ' || lease_until_utc || ' while held by ' || locked_by
             || ' (attempt ' || attempts || ' of ' || max_attempts || '); requeued'
        ELSE 'lease expired at ' || lease_until_utc || ' while held by ' || locked_by
             || ' on the final attempt (' || attempts || ' of ' || max_attempts || ')'
        END,
    locked_by = NULL,
    lease_until_utc = NULL,
    updated_at_utc = :now
WHERE status = 'processing' AND lease_until_utc <= :now;

-- claim --
-- The claim as one statement. :types is a JSON array of type names, or NULL for any type;
-- :region is a region or NULL.
-- Leases the first `limit` due tasks in order priority, run_after_utc, id, walking
-- ix_task_status_prio_time in order and stopping after `limit` matches. A task with no region
-- matches every worker; a task with a region matches only a worker asking for that region.
-- The walk tests every queued task it passes against the filters, so a filter that matches
-- little scans the backlog under the write lock: TaskQueue.claim uses the statements of the
-- "claim:" section below instead. This one stays as the bare-sqlite3 baseline of the harness.
UPDATE task_queue
{lease_to_worker}
WHERE id IN (
    SELECT id FROM task_queue
    WHERE status = 'queued'
      AND run_after_utc <= :now
      AND (:types IS NULL OR type IN (SELECT value FROM json_each(:types)))
      AND (region IS NULL OR region = :region)
    ORDER BY priority, run_after_utc, id
    LIMIT :limit
)
RETURNING {task_columns};

-- complete --
-- Fenced: only the lease holder can complete. locked_by stays as a record of who finished the
-- task.
UPDATE task_queue
SET status = 'completed', finished_at_utc = :now, updated_at_utc = :now, lease_until_utc = NULL
WHERE id = :task_id AND status = 'processing' AND locked_by = :worker_id;

-- fail --
-- Requeues with exponential backoff plus jitter while attempts remain (:retry_in, seconds or
-- NULL, overrides the backoff); otherwise fails for good. :jitter is a fraction of the delay.
UPDATE task_queue
SET status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
    run_after_utc = CASE WHEN attempts < max_attempts
        THEN strftime('%Y-%m-%d %H:%M:%f', :now, printf('%+.3f seconds', coalesce(:retry_in,
             min(:backoff_max, :backoff_base * (1 << min(max(attempts - 1, 0), 40)))
             * (1 + :jitter))))
        ELSE run_after_utc END,
    finished_at_utc = CASE WHEN attempts < max_attempts THEN NULL ELSE :now END,
    locked_by = CASE WHEN attempts < max_attempts THEN NULL ELSE locked_by END,
    lease_until_utc = NULL,
    error_message = :error,
    updated_at_utc = :now
WHERE id = :task_id AND status = 'processing' AND locked_by = :worker_id
RETURNING {task_columns};

-- extend_lease --
-- Fenced like complete.
UPDATE task_queue
SET lease_until_utc = :lease_until, updated_at_utc = :now
WHERE id = :task_id AND status = 'processing' AND locked_by = :worker_id;

-- task_holder --
-- Why a fenced call matched nothing: the task's status and current holder.
SELECT status, locked_by FROM task_queue WHERE id = :task_id;

-- get_task --
SELECT {task_columns} FROM task_queue WHERE id = :task_id;

-- count_by_status --
SELECT status, count(*) FROM task_queue GROUP BY status;

-- upsert_worker --
INSERT INTO workers (worker_id, capabilities, heartbeat_utc)
VALUES (:worker_id, :capabilities, :heartbeat)
ON CONFLICT (worker_id) DO UPDATE
SET capabilities = excluded.capabilities, heartbeat_utc = excluded.heartbeat_utc;

-- worker_heartbeat --
-- A worker not registered yet is added with no capabilities.
INSERT INTO workers (worker_id, capabilities, heartbeat_utc) VALUES (:worker_id, '{}', :heartbeat)
ON CONFLICT (worker_id) DO UPDATE SET heartbeat_utc = excluded.heartbeat_utc;

-- get_worker --
SELECT worker_id, capabilities, heartbeat_utc FROM workers WHERE worker_id = :worker_id;

-- list_workers --
SELECT worker_id, capabilities, heartbeat_utc FROM workers ORDER BY worker_id;

-- insert_log --
-- The foreign key refuses an unknown task.
INSERT INTO task_logs (task_id, at_utc, level, message, details)
VALUES (:task_id, :at, :level, :message, :details)
RETURNING log_id;

-- task_logs --
SELECT log_id, task_id, at_utc, level, message, details
FROM task_logs WHERE task_id = :task_id ORDER BY at_utc, log_id;

-- ===== Worker engine (issue #9): batched statements of one engine's single writer =====

-- complete_many --
-- Fenced like complete, per task; :task_ids is a JSON array. Returns the ids it completed, so
-- the caller learns which leases were lost without a second query.
UPDATE task_queue
SET status = 'completed', finished_at_utc = :now, updated_at_utc = :now, lease_until_utc = NULL
WHERE status = 'processing' AND locked_by = :worker_id
  AND id IN (SELECT value FROM json_each(:task_ids))
RETURNING id;

-- extend_leases --
-- One statement renews every lease an engine holds; returns the ids still held.
UPDATE task_queue
SET lease_until_utc = :lease_until, updated_at_utc = :now
WHERE status = 'processing' AND locked_by = :worker_id
  AND id IN (SELECT value FROM json_each(:task_ids))
RETURNING id;

-- release_unstarted --
-- Claimed tasks that no handler ever started go back to the queue as if never claimed: the
-- attempt the claim counted is given back, and run_after_utc is kept so they are next in line.
UPDATE task_queue
SET status = 'queued',
    attempts = max(attempts - 1, 0),
    locked_by = NULL,
    lease_until_utc = NULL,
    reserved_at_utc = NULL,
    processing_started_utc = NULL,
    updated_at_utc = :now
WHERE status = 'processing' AND locked_by = :worker_id
  AND id IN (SELECT value FROM json_each(:task_ids))
RETURNING id;

-- next_lease_expiry --
-- When the first lease held by anyone runs out (a claim then releases it); the partial index of
-- leased tasks makes this one index probe.
SELECT min(lease_until_utc) FROM task_queue INDEXED BY ix_task_lease_expiry
WHERE status = 'processing';

-- ==== Operations: stats, mending (retry, cancel) and retention ====
-- Statements for queue_core.observability and queue_core.mending. Counting finished tasks row by
-- row would cost time in proportion to the whole history, so their totals come from
-- finished_task_counts (kept by the triggers of migration 0004); only live tasks are counted.

-- live_counts --
-- Tasks still to be done, per status and type, all from ix_task_type_status without touching
-- the table: the recursive part hops from one type to the next with one index seek each (the
-- distinct types), then each (type, status) count is a range of that index. Grouping the live
-- rows instead looked each one up in the table: 7 ms for 10k queued tasks, against 0.3 ms.
WITH RECURSIVE types(type) AS (
    SELECT min(type) FROM task_queue
    UNION ALL
    SELECT (SELECT min(type) FROM task_queue WHERE type > types.type) FROM types
    WHERE types.type IS NOT NULL
),
live(status) AS (VALUES ('queued'), ('processing'))
SELECT live.status, types.type,
       (SELECT count(*) FROM task_queue AS t WHERE t.type = types.type AND t.status = live.status)
           AS n
FROM types, live
WHERE types.type IS NOT NULL AND n > 0;

-- finished_counts --
SELECT status, type, n FROM finished_task_counts WHERE n > 0;

-- due_now --
-- How many queued tasks may be claimed now, and since when the oldest has waited.
SELECT count(*), min(run_after_utc) FROM task_queue
WHERE status = 'queued' AND run_after_utc <= :now;

-- leases --
-- Tasks in flight, and how many of their leases have run out (workers that died).
SELECT count(*), coalesce(sum(lease_until_utc <= :now), 0)
FROM task_queue INDEXED BY ix_task_lease_expiry
WHERE status = 'processing';

-- finished_since --
-- Completions, failures and cancellations since :since, from the index of finished tasks
-- (visits only those rows).
SELECT status, count(*) FROM task_queue INDEXED BY ix_task_finished
WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at_utc >= :since
GROUP BY status;

-- stale_workers --
-- Workers not heard from since :threshold, the longest silent first.
SELECT worker_id, capabilities, heartbeat_utc FROM workers
WHERE heartbeat_utc < :threshold ORDER BY heartbeat_utc, worker_id;

-- worker_count --
SELECT count(*) FROM workers;

-- list_tasks --
-- :status and :type may be NULL (any). Newest first.
SELECT {task_columns}
FROM task_queue
WHERE (:status IS NULL OR status = :status) AND (:type IS NULL OR type = :type)
ORDER BY id DESC LIMIT :limit;

-- retry_task --
-- A failed or cancelled task goes back to the queue, due now, with a fresh set of attempts.
-- error_message keeps the last error until the next attempt ends. A task cancelled while it
-- ran kept its lease (cancel_task): its handler may still be running until its worker next
-- renews and finds the task gone, so it is due only once that lease would have run out.
UPDATE task_queue
SET status = 'queued', attempts = 0,
    run_after_utc = max(:now, coalesce(lease_until_utc, :now)), finished_at_utc = NULL,
    locked_by = NULL, lease_until_utc = NULL, updated_at_utc = :now
WHERE id = :task_id AND status IN ('failed', 'cancelled')
RETURNING {task_columns};

-- retry_failed_batch --
-- The same as retry_task for up to :limit failed tasks (of :type, or any if NULL).
UPDATE task_queue
SET status = 'queued', attempts = 0, run_after_utc = :now, finished_at_utc = NULL,
    locked_by = NULL, lease_until_utc = NULL, updated_at_utc = :now
WHERE id IN (
    SELECT id FROM task_queue
    WHERE status = 'failed' AND (:type IS NULL OR type = :type)
    LIMIT :limit
)
RETURNING id;

-- cancel_task --
-- A queued task, or one being processed, becomes cancelled. A worker still running it keeps
-- going, but its complete/fail/extend_lease are refused (they are fenced on status
-- 'processing'); locked_by stays as the record of who held it, and lease_until_utc as the
-- latest its handler may run on (retry_task waits for it; no lease index holds a cancelled task).
UPDATE task_queue
SET status = 'cancelled', finished_at_utc = :now, updated_at_utc = :now,
    error_message = CASE WHEN status = 'processing'
        THEN 'cancelled while held by ' || locked_by ELSE error_message END
WHERE id = :task_id AND status IN ('queued', 'processing')
RETURNING {task_columns};

-- task_status --
SELECT status FROM task_queue WHERE id = :task_id;

-- prune_count --
-- How many tasks of a final :status finished before :cutoff.
SELECT count(*) FROM task_queue INDEXED BY ix_task_finished
WHERE status = :status AND finished_at_utc < :cutoff;

-- prune_candidates --
-- The oldest finished tasks of one :status, from the index.
SELECT id FROM task_queue INDEXED BY ix_task_finished
WHERE status = :status AND finished_at_utc < :cutoff
ORDER BY finished_at_utc
LIMIT :limit;

-- prune_logs --
-- :ids is a JSON array of task ids.
DELETE FROM task_logs WHERE task_id IN (SELECT value FROM json_each(:ids));

-- prune_tasks --
-- :ids is a JSON array of task ids. The delete trigger keeps finished_task_counts right.
DELETE FROM task_queue WHERE id IN (SELECT value FROM json_each(:ids));

-- claim: filters, strategies, the look before the lock --
-- The statements below carry a /*filter*/ marker that queue_core.claiming replaces with one of
-- two fixed filters, "AND region IS :region" or "AND type = :type AND region IS :region", served
-- by migration 0003's partial indexes of queued tasks. One (type, region) pair is an "arm": a
-- claim for types T1, T2 and region R runs the arms (T1, R), (T1, NULL), (T2, R), (T2, NULL) and
-- merges their rows in Python, so every arm is a seek into an index in claim order and no filter
-- makes SQLite scan the backlog. The statements only read; claim_by_ids then leases the pick.

-- claim_due_in_order --
-- :type / :region are the arm's (see above). The first :limit due tasks of one arm in
-- priority order (priority, run_after_utc, id). Read-only: the look before the write lock, and
-- the pick inside it.
SELECT priority, run_after_utc, id FROM task_queue
WHERE status = 'queued' /*filter*/ AND run_after_utc <= :now
ORDER BY priority, run_after_utc, id
LIMIT :limit;

-- claim_bands --
-- A part of the two statements below, not a statement: the distinct priorities ("bands") of the
-- arm's queued tasks, found by a loose index scan (min(priority) above the last band found).
WITH RECURSIVE bands(p) AS (
  SELECT (SELECT min(priority) FROM task_queue WHERE status = 'queued' /*filter*/)
  UNION ALL
  SELECT (SELECT min(priority) FROM task_queue
          WHERE status = 'queued' /*filter*/ AND priority > bands.p)
  FROM bands WHERE bands.p IS NOT NULL
)

-- claim_band_heads_oldest --
-- For every priority band the :limit due tasks that arrived first (run_after_utc, id). The cost
-- grows with the number of distinct priorities, not with the backlog. Used by the fifo and
-- weighted_random strategies.
{claim_bands}
SELECT t.priority, t.run_after_utc, t.id FROM bands JOIN task_queue AS t ON t.id IN (
  SELECT id FROM task_queue
  WHERE status = 'queued' /*filter*/ AND priority = bands.p AND run_after_utc <= :now
  ORDER BY run_after_utc, id
  LIMIT :limit
);

-- claim_band_heads_newest --
-- As claim_band_heads_oldest, but the :limit due tasks of each band that arrived last (the
-- index walked backwards from :now). Used by the lifo strategy.
{claim_bands}
SELECT t.priority, t.run_after_utc, t.id FROM bands JOIN task_queue AS t ON t.id IN (
  SELECT id FROM task_queue
  WHERE status = 'queued' /*filter*/ AND priority = bands.p AND run_after_utc <= :now
  ORDER BY run_after_utc DESC, id DESC
  LIMIT :limit
);

-- claim_by_ids --
-- :ids is a JSON array of task ids. Leases the picked tasks
-- that are still queued and due; one another worker took in the meantime is skipped, not an
-- error, and so is one that was taken, failed and rescheduled for later in between (the look
-- saw it due, but its backoff must hold).
-- NOT INDEXED: the ids are looked up by rowid; left alone, the planner walks the status index
-- over every queued task and tests each against the id list.
UPDATE task_queue NOT INDEXED
{lease_to_worker}
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'queued'
  AND run_after_utc <= :now
RETURNING {task_columns};

-- claim_in_order --
-- :limit and the arm's :type / :region as in claim_due_in_order. Picks and leases
-- in one statement the first :limit due tasks of one arm in priority order: the claim under the
-- lock when it did not look first (one statement instead of claim_due_in_order + claim_by_ids).
UPDATE task_queue
{lease_to_worker}
WHERE id IN (
    SELECT id FROM task_queue
    WHERE status = 'queued' /*filter*/ AND run_after_utc <= :now
    ORDER BY priority, run_after_utc, id
    LIMIT :limit
)
RETURNING {task_columns};

-- expired_lease_exists --
-- A read of one entry of ix_task_lease_expiry: tells a claim whether releasing
-- expired leases (a write) is needed, so polls do not write when no lease ran out.
SELECT 1 FROM task_queue INDEXED BY ix_task_lease_expiry
WHERE status = 'processing' AND lease_until_utc <= :now
LIMIT 1;

-- ==== Hot-path cost: cheaper forms of hot statements (python -m bench index-cost) ====

-- claim_first_in_order --
-- claim_in_order for one task (claim_one, the one-at-a-time worker loop). "id = (subquery)"
-- leases the row in one pass, where "id IN (subquery)" first fills a temporary table with the
-- list and then a second one with the rows to update: 6 % fewer CPU instructions per
-- claim+complete. :limit is not used.
UPDATE task_queue
{lease_to_worker}
WHERE id = (
    SELECT id FROM task_queue
    WHERE status = 'queued' /*filter*/ AND run_after_utc <= :now
    ORDER BY priority, run_after_utc, id
    LIMIT 1
)
RETURNING {task_columns};

-- ===== Worker engine (issue #9): when an engine that found nothing wakes up =====

-- next_due_in_arm --
-- When the first queued task of one arm (a (type, region) pair, see "claim:" above) becomes
-- due; NULL when the arm has none. Per priority band (claim_bands, a loose index scan) the
-- smallest run_after_utc is one seek into the arm's partial index of queued tasks, so the cost
-- grows with the arms and the distinct priorities, not with the backlog: an engine calls it
-- after every claim that came up short.
{claim_bands}
SELECT min((SELECT min(run_after_utc) FROM task_queue
            WHERE status = 'queued' /*filter*/ AND priority = bands.p))
FROM bands WHERE bands.p IS NOT NULL;
