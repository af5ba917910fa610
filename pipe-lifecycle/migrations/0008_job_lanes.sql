-- Lanes: at most one job of a lane runs at a time (under a live lease); queued jobs of a
-- busy lane wait without holding up anything else. Deliveries to one endpoint share one.
ALTER TABLE jobs ADD COLUMN lane TEXT;

CREATE INDEX jobs_running_by_lane ON jobs (lane, lease_expires)
    WHERE lane IS NOT NULL AND status = 'running';
