-- Market history: every observed spot price / availability change, with the time it came in force.
CREATE TABLE market_observations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    at REAL NOT NULL,
    observed_at REAL NOT NULL,
    spot_price_micros INTEGER,
    available INTEGER,
    preemptions_per_hour REAL,
    source TEXT NOT NULL
);
CREATE INDEX market_by_scope ON market_observations (scope, at);
