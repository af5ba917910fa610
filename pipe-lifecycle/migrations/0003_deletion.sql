-- Deletion: when it was asked for. A recording being deleted takes no change but its
-- erasure, which ends by removing its rows.
ALTER TABLE recordings ADD COLUMN deleting INTEGER;
