-- The default queue page (skyctl queue, the dashboard) lists jobs not yet finished, newest
-- first. Through jobs_by_state SQLite had to gather every waiting job and sort them: ~150 ms
-- at 100,000 pending. These partial indexes hold only unfinished jobs, in id order, so a
-- keyset page reads exactly its rows at any depth. The literal state list must match
-- skyd.store.jobs.ACTIVE_CLAUSE (SQLite uses a partial index only for the same terms).
CREATE INDEX jobs_active ON jobs (id)
    WHERE state NOT IN ('SUCCEEDED', 'FAILED', 'FAILED_SETUP', 'CANCELLED');
CREATE INDEX jobs_active_by_owner ON jobs (owner_uid, id)
    WHERE state NOT IN ('SUCCEEDED', 'FAILED', 'FAILED_SETUP', 'CANCELLED');
