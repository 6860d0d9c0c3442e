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

-- One row per instance, per stretch of time at one price and payer (pool_id NULL = cash)
-- within one ledger period (an hour by default).
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
CREATE INDEX ledger_by_job ON ledger (job_id);
CREATE INDEX ledger_by_instance ON ledger (provider, instance_id);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- Each charged instance: who and where it charges, and its open stretch — the charge since
-- its last ledger row, at one price, paid by one payer, within one ledger period. A stretch is
-- posted to the ledger (one row per UTC day it spans) when it closes (period end, price or
-- payer change, instance end); until then reports add it from here.
CREATE TABLE accrual_watermarks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    job_id INTEGER,
    owner_uid INTEGER,
    project TEXT,
    cloud TEXT NOT NULL,
    region TEXT NOT NULL,
    open_start_ms INTEGER,
    open_price INTEGER NOT NULL DEFAULT 0,
    open_pool_id INTEGER,
    open_stopped INTEGER NOT NULL DEFAULT 0,
    -- whether the instance was stopped at the last pass: the rate for the time since then
    seen_stopped INTEGER NOT NULL DEFAULT 0,
    settled INTEGER NOT NULL DEFAULT 0,
    UNIQUE (provider, instance_id)
);
CREATE INDEX accrual_watermarks_open ON accrual_watermarks (settled) WHERE settled = 0;
CREATE INDEX accrual_watermarks_by_job ON accrual_watermarks (job_id);

-- What changes on every pass, kept narrow so a pass rewrites few pages: how far the instance
-- has been charged (the watermark), the remainder below one micro-dollar (in
-- micro-dollar-milliseconds per hour, so splitting time never loses money) and the open
-- stretch's amount.
CREATE TABLE accrual_progress (
    id INTEGER PRIMARY KEY REFERENCES accrual_watermarks (id),
    accrued_ms INTEGER NOT NULL,
    carry INTEGER NOT NULL DEFAULT 0,
    open_amount INTEGER NOT NULL DEFAULT 0
);

-- Instances whose accrual inputs changed (launched, state, end, price) since the last pass:
-- the accountant re-reads only these, not every instance on every tick.
CREATE TABLE accounting_dirty (
    provider TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    PRIMARY KEY (provider, instance_id)
) WITHOUT ROWID;
CREATE TRIGGER accounting_instance_added AFTER INSERT ON instances
    BEGIN INSERT OR IGNORE INTO accounting_dirty VALUES (new.provider, new.instance_id); END;
CREATE TRIGGER accounting_instance_changed
    AFTER UPDATE OF state, ended_at, hourly_price_micros, job_id, launched_at ON instances
    BEGIN INSERT OR IGNORE INTO accounting_dirty VALUES (new.provider, new.instance_id); END;
INSERT INTO accounting_dirty (provider, instance_id) SELECT provider, instance_id FROM instances;

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
