-- The retention sweep pages through an environment's recordings that are not being
-- deleted, oldest past the cutoff first. Through recordings_by_environment it stepped over
-- every recording already being deleted (a backlog of 100,000 cost that much per page);
-- this index holds only the others.
CREATE INDEX recordings_kept_by_environment ON recordings (environment, created DESC, id DESC)
    WHERE deleting IS NULL;
