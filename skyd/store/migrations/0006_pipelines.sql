-- Pipelines (SkyPilot's chain DAG): the jobs of one multi-document task file, run one after
-- another. `pipeline_id` is the id of the first stage's job; stage k+1 may start only once
-- stage k SUCCEEDED (see skyd/scheduler's pipeline hold).
CREATE TABLE pipeline_stages (
    job_id INTEGER PRIMARY KEY REFERENCES jobs (id),
    pipeline_id INTEGER NOT NULL REFERENCES jobs (id),
    stage INTEGER NOT NULL CHECK (stage >= 0),
    stages INTEGER NOT NULL CHECK (stages > stage),
    name TEXT,
    UNIQUE (pipeline_id, stage)
);
