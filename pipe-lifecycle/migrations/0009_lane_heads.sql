-- Claims find a lane's next job through the lane, not by walking every queued job: a lane
-- whose endpoint is down may hold thousands of due deliveries that cannot run while its
-- one running job waits, and a claim that stepped over each of them cost as much as the
-- backlog. Every lane ever used has a row here (a few per endpoint, never removed).
CREATE TABLE job_lanes (lane TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT OR IGNORE INTO job_lanes (lane) SELECT DISTINCT lane FROM jobs WHERE lane IS NOT NULL;

-- The queued jobs outside lanes, in the order claims take them, and each lane's queued
-- jobs in that order.
CREATE INDEX jobs_queued_outside_lanes ON jobs (run_at, id)
    WHERE status = 'queued' AND lane IS NULL;
CREATE INDEX jobs_queued_by_lane ON jobs (lane, run_at, id)
    WHERE status = 'queued' AND lane IS NOT NULL;
