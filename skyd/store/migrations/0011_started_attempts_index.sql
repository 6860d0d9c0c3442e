-- The spot policy plans with the changeover skyd measured of its recent launches (from each
-- attempt's PROVISIONING event to its RUNNING one; skyd.store.changeovers). RUNNING events
-- are a small part of the event history: this partial index holds only them, in order, so
-- the newest are read without a scan. The terms must match skyd.store.changeovers' query
-- (SQLite uses a partial index only for the same terms).
CREATE INDEX events_run_started ON events (seq) WHERE kind = 'state' AND state = 'RUNNING';
