-- Every claim first releases expired leases (status 'processing', lease_until_utc in the past).
-- Translated from the SQLite migration of the same number: this partial index holds only
-- leased tasks, ordered by lease end, so the release touches only the leases that expired.
CREATE INDEX IF NOT EXISTS ix_task_lease_expiry
  ON task_queue (lease_until_utc)
  WHERE status = 'processing';
