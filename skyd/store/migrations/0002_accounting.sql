-- Accounting: credit pools, projects and limits, the append-only ledger and its daily roll-up.
-- Money is integer micro-dollars; ledger times are integer milliseconds since the epoch, so a
-- charge never depends on float rounding.

CREATE TABLE credit_pools (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    cloud TEXT NOT NULL,
    account TEXT,
    region TEXT,
    amount_micros INTEGER NOT NULL CHECK (amount_micros >= 0),
    spent_micros INTEGER NOT NULL DEFAULT 0,
    starts_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    retired_at REAL,
    created_at REAL NOT NULL,
    created_by INTEGER NOT NULL
);
CREATE INDEX credit_pools_by_cloud ON credit_pools (cloud, expires_at, id);

CREATE TABLE projects (
    name TEXT PRIMARY KEY,
    monthly_budget_micros INTEGER CHECK (monthly_budget_micros IS NULL OR monthly_budget_micros >= 0),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE project_members (
    project TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    PRIMARY KEY (project, uid)
);

CREATE TABLE user_limits (
    uid INTEGER PRIMARY KEY,
    max_gpus INTEGER CHECK (max_gpus IS NULL OR max_gpus >= 0),
    max_hourly_micros INTEGER CHECK (max_hourly_micros IS NULL OR max_hourly_micros >= 0),
    updated_at REAL NOT NULL
);

CREATE TABLE budget_overrides (
    job_id INTEGER PRIMARY KEY REFERENCES jobs (id),
    by_uid INTEGER NOT NULL,
    at REAL NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);

-- Who changed pools, projects, limits and overrides, and how: append-only.
CREATE TABLE accounting_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    by_uid INTEGER NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    data_json TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER accounting_changes_no_update BEFORE UPDATE ON accounting_changes
    BEGIN SELECT RAISE(ABORT, 'accounting changes are append-only'); END;
CREATE TRIGGER accounting_changes_no_delete BEFORE DELETE ON accounting_changes
    BEGIN SELECT RAISE(ABORT, 'accounting changes are append-only'); END;

-- One row per instance, per stretch of time at one price, per payer (pool_id NULL = cash).
CREATE TABLE ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    job_id INTEGER,
    owner_uid INTEGER,
    project TEXT,
    cloud TEXT NOT NULL,
    region TEXT NOT NULL,
    pool_id INTEGER REFERENCES credit_pools (id),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    hourly_price_micros INTEGER NOT NULL,
    stopped INTEGER NOT NULL DEFAULT 0,
    amount_micros INTEGER NOT NULL CHECK (amount_micros >= 0)
);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- How far each instance has been charged. `carry` is the sub-micro-dollar remainder
-- (in micro-dollar-milliseconds per hour) so splitting time into ticks never loses money.
CREATE TABLE accrual_watermarks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    accrued_ms INTEGER NOT NULL,
    carry INTEGER NOT NULL DEFAULT 0,
    settled INTEGER NOT NULL DEFAULT 0,
    UNIQUE (provider, instance_id)
);
CREATE INDEX accrual_watermarks_open ON accrual_watermarks (settled) WHERE settled = 0;

-- Cursor over the instances table (its rowid) so new instances are found without a scan.
CREATE TABLE accounting_cursor (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

-- The ledger summed per UTC day, job, cloud and payer (pool 0 = cash): what reports read.
CREATE TABLE cost_daily (
    day INTEGER NOT NULL,
    job_id INTEGER NOT NULL,
    cloud TEXT NOT NULL,
    pool_id INTEGER NOT NULL,
    owner_uid INTEGER,
    project TEXT,
    amount_micros INTEGER NOT NULL,
    PRIMARY KEY (day, job_id, cloud, pool_id)
);
CREATE INDEX cost_daily_by_project ON cost_daily (project, day);
CREATE INDEX cost_daily_by_pool ON cost_daily (pool_id, day);
