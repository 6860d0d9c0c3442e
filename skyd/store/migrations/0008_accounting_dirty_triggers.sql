-- The accounting_dirty triggers said INSERT OR IGNORE, but SQLite lets the conflict policy of
-- the statement that fires a trigger override the trigger's own: an instance UPSERT
-- (a relaunch that reuses its client token gets the same instance id) carries ABORT, so
-- with that instance's dirty row still queued the whole launch record failed with
-- "UNIQUE constraint failed: accounting_dirty" and the job stayed in PROVISIONING.
-- The triggers now insert only a missing row: no conflict, so no policy to override.
DROP TRIGGER accounting_instance_added;
DROP TRIGGER accounting_instance_changed;
CREATE TRIGGER accounting_instance_added AFTER INSERT ON instances
    BEGIN
        INSERT INTO accounting_dirty (provider, instance_id)
        SELECT new.provider, new.instance_id
        WHERE NOT EXISTS (
            SELECT 1 FROM accounting_dirty
            WHERE provider = new.provider AND instance_id = new.instance_id
        );
    END;
CREATE TRIGGER accounting_instance_changed
    AFTER UPDATE OF state, ended_at, hourly_price_micros, job_id, launched_at ON instances
    BEGIN
        INSERT INTO accounting_dirty (provider, instance_id)
        SELECT new.provider, new.instance_id
        WHERE NOT EXISTS (
            SELECT 1 FROM accounting_dirty
            WHERE provider = new.provider AND instance_id = new.instance_id
        );
    END;
