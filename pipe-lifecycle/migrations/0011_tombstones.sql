-- Erasure leaves a tombstone: the recording's row stays with its id, number, environment
-- and creation time, when and why its deletion was asked for, and when it was erased;
-- everything it carried (payload, media, failure, MIME type, length) is set to NULL, and
-- its artifacts, copies, jobs and delivery log go. Webhooks (`video_deleted`) and audits
-- about it stay explainable, and neither its id nor its number is given again.
ALTER TABLE recordings ADD COLUMN deletion_reason TEXT
    CHECK (deletion_reason IN ('request', 'retention', 'abandoned'));
ALTER TABLE recordings ADD COLUMN erased INTEGER;

-- Deletions asked before reasons were kept were asked through the API.
UPDATE recordings SET deletion_reason = 'request' WHERE deleting IS NOT NULL;

-- The claim no longer looks through every recording being deleted (it checks the job it
-- claims), so the index it used goes.
DROP INDEX recordings_being_deleted;
