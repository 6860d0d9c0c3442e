-- Data transfer out of clouds (egress) is charged on the ledger beside instance time: a
-- checkpoint pulled from a cloud VM to the daemon host is billed by the cloud per GB. The
-- same table, not a second one, so pools, budgets, the daily roll-up and jobs' cost count it
-- with no special case; `kind` tells the two apart for reports.
--   kind            'instance' (time: start_ms..end_ms at hourly_price_micros) or 'transfer'
--                   (bytes at per_gb_micros, start_ms = end_ms = when it was pulled)
--   transfer_key    which pull this charge is for: a pull posted again (a retry, a restarted
--                   daemon) finds its key and posts nothing
ALTER TABLE ledger ADD COLUMN kind TEXT NOT NULL DEFAULT 'instance'
    CHECK (kind IN ('instance', 'transfer'));
ALTER TABLE ledger ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0);
ALTER TABLE ledger ADD COLUMN per_gb_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN transfer_key TEXT;
CREATE UNIQUE INDEX ledger_by_transfer ON ledger (transfer_key, COALESCE(pool_id, 0))
    WHERE transfer_key IS NOT NULL;

-- The roll-up keeps the transfer share (and its bytes) of each day's amount, for reports.
ALTER TABLE cost_daily ADD COLUMN transfer_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cost_daily ADD COLUMN transfer_bytes INTEGER NOT NULL DEFAULT 0;
