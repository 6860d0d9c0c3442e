-- Spot availability per offering (`cloud/region/zone/instance_type`) as change points: each
-- row is the value in force from `at` until the next row of its scope. The spot policy
-- learns each zone's run and outage lengths from it (skyd.market.availability_log); rows
-- older than `[recovery] history_keep_days` are pruned, but the last one before the cut is
-- kept so the value in force at the cut stays known.
CREATE TABLE spot_availability (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    at REAL NOT NULL,
    available INTEGER NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX spot_availability_by_scope ON spot_availability (scope, at);
