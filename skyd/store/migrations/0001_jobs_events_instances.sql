-- Jobs, their append-only event history, and the instances skyd launched.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    owner_uid INTEGER NOT NULL,
    owner_name TEXT NOT NULL,
    project TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    base_dir TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    deadline REAL,
    exit_code INTEGER,
    reason TEXT,
    placement_json TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    preemptions INTEGER NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    cost_micros INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_owner ON jobs (owner_uid, id);
CREATE INDEX jobs_queue_order ON jobs (state, priority DESC, id);

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER REFERENCES jobs (id),
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    state TEXT,
    reason TEXT NOT NULL DEFAULT '',
    data_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_job ON events (job_id, seq);
-- the event history is append-only: refuse edits at the database level
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

CREATE TABLE instances (
    provider TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    job_id INTEGER REFERENCES jobs (id),
    attempt INTEGER NOT NULL DEFAULT 0,
    client_token TEXT NOT NULL,
    cloud TEXT NOT NULL,
    region TEXT NOT NULL,
    zone TEXT NOT NULL DEFAULT '',
    instance_type TEXT NOT NULL,
    spot INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    hourly_price_micros INTEGER NOT NULL DEFAULT 0,
    launched_at REAL NOT NULL,
    ended_at REAL,
    tags_json TEXT NOT NULL DEFAULT '{}',
    data_json TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (provider, instance_id)
);
CREATE INDEX instances_by_job ON instances (job_id);
CREATE INDEX instances_by_state ON instances (state);

