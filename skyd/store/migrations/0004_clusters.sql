-- Interactive clusters: named, owned sets of instances that stay up between jobs, with autostop.
-- A cluster's instances are rows of `instances` with no job (job_id NULL), so ending a job on
-- the cluster never tears the cluster down; `cluster_jobs` binds the jobs that run on it.
CREATE TABLE clusters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    owner_uid INTEGER NOT NULL,
    owner_name TEXT NOT NULL,
    state TEXT NOT NULL,
    provider TEXT NOT NULL DEFAULT '',
    spec_json TEXT NOT NULL,
    placement_json TEXT,
    launch_token TEXT NOT NULL DEFAULT '',
    instance_ids_json TEXT NOT NULL DEFAULT '[]',
    -- NULL: autostop off; 0: stop as soon as it is seen idle
    autostop_minutes INTEGER CHECK (autostop_minutes IS NULL OR autostop_minutes >= 0),
    autostop_down INTEGER NOT NULL DEFAULT 0,
    autostop_set_at REAL,
    idle_since REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    up_at REAL,
    ended_at REAL,
    reason TEXT NOT NULL DEFAULT ''
);
-- a name is taken while its cluster exists; a torn-down cluster's name is free again
CREATE UNIQUE INDEX clusters_live_name ON clusters (name) WHERE state != 'DOWN';
CREATE INDEX clusters_by_state ON clusters (state, id);

CREATE TABLE cluster_jobs (
    job_id INTEGER PRIMARY KEY REFERENCES jobs (id),
    cluster_id INTEGER NOT NULL REFERENCES clusters (id)
);
CREATE INDEX cluster_jobs_by_cluster ON cluster_jobs (cluster_id, job_id);
