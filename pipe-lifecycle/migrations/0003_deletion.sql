-- Deletion: when it was asked for. A recording being deleted takes no change but its
-- erasure, which ends by removing its rows.
ALTER TABLE recordings ADD COLUMN deleting INTEGER;

-- The recordings being deleted, for the claim that dead-letters their other jobs.
CREATE INDEX recordings_being_deleted ON recordings (id) WHERE deleting IS NOT NULL;

