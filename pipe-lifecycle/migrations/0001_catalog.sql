-- The catalog: recordings, their artifacts and verified copies, and the durable jobs that
-- move them on. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE recordings (
    id        TEXT    NOT NULL PRIMARY KEY,
    state     TEXT    NOT NULL
              CHECK (state IN ('receiving', 'recorded', 'converted', 'copied', 'failed')),
    version   INTEGER NOT NULL,
    created   INTEGER NOT NULL,
    updated   INTEGER NOT NULL,
    mime_type TEXT,
    payload   TEXT,
    length    INTEGER CHECK (length >= 0),
    media     TEXT,   -- MediaInfo as JSON
    failure   TEXT
) STRICT;

CREATE INDEX recordings_by_created ON recordings (created DESC, id DESC);
CREATE INDEX recordings_by_state ON recordings (state, created DESC, id DESC);

CREATE TABLE artifacts (
    recording    TEXT    NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('original', 'mp4', 'snapshot')),
    key          TEXT    NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    sha256       TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    PRIMARY KEY (recording, kind)
) STRICT;

CREATE TABLE copies (
    recording TEXT    NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    kind      TEXT    NOT NULL CHECK (kind IN ('original', 'mp4', 'snapshot')),
    sink      TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    size      INTEGER NOT NULL CHECK (size >= 0),
    PRIMARY KEY (recording, kind, sink)
) STRICT;

CREATE TABLE jobs (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    recording     TEXT    NOT NULL,
    payload       TEXT    NOT NULL,   -- JobKind as JSON
    dedupe_key    TEXT    NOT NULL UNIQUE,
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    run_at        INTEGER NOT NULL,
    lease_token   TEXT,
    lease_expires INTEGER,
    last_error    TEXT,
    created       INTEGER NOT NULL,
    updated       INTEGER NOT NULL
) STRICT;

-- Claiming: due queued jobs by run_at, and running jobs whose lease expired.
CREATE INDEX jobs_queued_by_run_at ON jobs (run_at, id) WHERE status = 'queued';
CREATE INDEX jobs_running_by_lease ON jobs (lease_expires) WHERE status = 'running';
CREATE INDEX jobs_by_recording ON jobs (recording, id);
