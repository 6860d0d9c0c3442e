-- One-time maintenance a start has already done, by name, so later starts skip it: sealing
-- the env values of specs stored before sealing existed scanned every job's spec on every
-- start (~0.12 s at 100,000 pending, before the daemon could answer).
CREATE TABLE store_flags (
    name TEXT PRIMARY KEY,
    set_at REAL NOT NULL
);
