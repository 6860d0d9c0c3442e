-- Budgets that hold (#18): pools scoped to projects and users, per-user and lab-wide monthly
-- budgets, the warning lines already announced, and clusters that belong to a project.

-- NULL: any project / any user may draw the pool; else a JSON list of names / uids.
ALTER TABLE credit_pools ADD COLUMN projects_json TEXT;
ALTER TABLE credit_pools ADD COLUMN users_json TEXT;

ALTER TABLE user_limits ADD COLUMN monthly_budget_micros INTEGER
    CHECK (monthly_budget_micros IS NULL OR monthly_budget_micros >= 0);

-- One row at most: the whole lab's monthly budget (NULL = none).
CREATE TABLE lab_budget (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    monthly_budget_micros INTEGER CHECK (monthly_budget_micros IS NULL OR monthly_budget_micros >= 0),
    updated_at REAL NOT NULL
);

-- Which warning line (per mille of the budget, 1000 = spent) of which scope was announced in
-- which month, so each crossing is announced once, and again after a restart never.
CREATE TABLE budget_alerts (
    scope TEXT NOT NULL,
    month_start REAL NOT NULL,
    line_permille INTEGER NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (scope, month_start, line_permille)
) WITHOUT ROWID;

ALTER TABLE clusters ADD COLUMN project TEXT;
