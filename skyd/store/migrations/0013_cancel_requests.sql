-- A cancel answers at once and runs in the background: the request is stored first, so a
-- daemon killed after answering still finishes the cancel when it starts again.
--   cancel_requested_at   when the cancel was asked (NULL: never)
--   cancel_requested_by   who asked (the name the job's CANCELLED reason gives)
ALTER TABLE jobs ADD COLUMN cancel_requested_at REAL;
ALTER TABLE jobs ADD COLUMN cancel_requested_by TEXT;
-- Each pass looks up the cancels still under way: this index holds only those (a job leaves
-- it when it ends), so the look-up costs nothing with 100,000 jobs waiting.
CREATE INDEX jobs_cancelling ON jobs (id)
    WHERE cancel_requested_at IS NOT NULL
    AND state NOT IN ('SUCCEEDED', 'FAILED', 'FAILED_SETUP', 'CANCELLED');
