-- Sequences: jobs with the same sequence run one after another, in id order. A job is
-- not claimed while an older job of its sequence is queued or running.
ALTER TABLE jobs ADD COLUMN sequence TEXT;

CREATE INDEX jobs_by_sequence ON jobs (sequence, id)
    WHERE sequence IS NOT NULL AND status IN ('queued', 'running');
