-- The catalog on PostgreSQL: the same tables and meaning as the SQLite catalog's
-- migrations (pipe-lifecycle/migrations/), in one file. Times are milliseconds since the
-- Unix epoch (BIGINT); JSON is kept as TEXT, written and read by the catalog alone. Ids
-- that order pages compare in byte order (COLLATE "C"), as SQLite compares them, whatever
-- the database's collation.

CREATE TABLE counters (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL CHECK (value >= 0)
);
INSERT INTO counters (name, value) VALUES ('recording', 0);

CREATE TABLE recordings (
    id              TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    environment     TEXT   COLLATE "C" NOT NULL DEFAULT 'production',
    state           TEXT   NOT NULL
                    CHECK (state IN ('receiving', 'recorded', 'converted', 'copied', 'failed')),
    version         BIGINT NOT NULL,
    created         BIGINT NOT NULL,
    updated         BIGINT NOT NULL,
    mime_type       TEXT,
    payload         TEXT,
    length          BIGINT CHECK (length >= 0),
    media           TEXT,   -- MediaInfo as JSON
    failure         TEXT,
    deleting        BIGINT,
    deletion_reason TEXT   CHECK (deletion_reason IN ('request', 'retention', 'abandoned')),
    erased          BIGINT,
    number          BIGINT UNIQUE,
    ip              TEXT,
    user_agent      TEXT,
    referer         TEXT,
    camera_name     TEXT,
    microphone_name TEXT,
    anonymized      BIGINT
);

CREATE INDEX recordings_by_created ON recordings (created DESC, id DESC);
CREATE INDEX recordings_by_state ON recordings (state, created DESC, id DESC);
CREATE INDEX recordings_by_environment ON recordings (environment, created DESC, id DESC);
CREATE INDEX recordings_kept_by_environment ON recordings (environment, created DESC, id DESC)
    WHERE deleting IS NULL;

CREATE TABLE artifacts (
    recording    TEXT   NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    kind         TEXT   NOT NULL CHECK (kind IN ('original', 'mp4', 'snapshot')),
    key          TEXT   NOT NULL,
    size         BIGINT NOT NULL CHECK (size >= 0),
    sha256       TEXT   NOT NULL,
    content_type TEXT   NOT NULL,
    PRIMARY KEY (recording, kind)
);

CREATE TABLE copies (
    recording TEXT   NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    kind      TEXT   NOT NULL CHECK (kind IN ('original', 'mp4', 'snapshot')),
    sink      TEXT   NOT NULL,
    key       TEXT   NOT NULL,
    size      BIGINT NOT NULL CHECK (size >= 0),
    PRIMARY KEY (recording, kind, sink)
);

CREATE TABLE jobs (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          TEXT   NOT NULL,
    recording     TEXT   NOT NULL,
    payload       TEXT   NOT NULL,   -- JobKind as JSON
    dedupe_key    TEXT   NOT NULL UNIQUE,
    status        TEXT   NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    run_at        BIGINT NOT NULL,
    lease_token   TEXT,
    lease_expires BIGINT,
    last_error    TEXT,
    created       BIGINT NOT NULL,
    updated       BIGINT NOT NULL,
    sequence      TEXT,
    lane          TEXT
);

CREATE INDEX jobs_running_by_lease ON jobs (lease_expires) WHERE status = 'running';
CREATE INDEX jobs_by_recording ON jobs (recording, id);
CREATE INDEX jobs_by_sequence ON jobs (sequence, id)
    WHERE sequence IS NOT NULL AND status IN ('queued', 'running');
CREATE INDEX jobs_running_by_lane ON jobs (lane, lease_expires)
    WHERE lane IS NOT NULL AND status = 'running';
CREATE INDEX jobs_queued_outside_lanes ON jobs (run_at, id)
    WHERE status = 'queued' AND lane IS NULL;
CREATE INDEX jobs_queued_by_lane ON jobs (lane, run_at, id)
    WHERE status = 'queued' AND lane IS NOT NULL;

-- One row per lane: a claimer locks a lane's row while it takes the lane's job, so two
-- nodes never start two jobs of one lane at once.
CREATE TABLE job_lanes (lane TEXT NOT NULL PRIMARY KEY);

CREATE TABLE delivery_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recording   TEXT   NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    event       TEXT   NOT NULL,
    event_name  TEXT   NOT NULL,
    endpoint    TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0),
    status      BIGINT,
    response    TEXT   NOT NULL,
    error       TEXT
);

CREATE INDEX delivery_attempts_by_recording ON delivery_attempts (recording, id);
CREATE INDEX delivery_attempts_by_endpoint ON delivery_attempts (endpoint, id);
CREATE INDEX delivery_attempts_by_time ON delivery_attempts (at, id);

CREATE TABLE environments (
    id       TEXT   NOT NULL PRIMARY KEY,
    name     TEXT   NOT NULL,
    version  BIGINT NOT NULL CHECK (version >= 1),
    created  BIGINT NOT NULL,
    updated  BIGINT NOT NULL,
    settings TEXT   NOT NULL   -- EnvironmentSettings as JSON
);

CREATE TABLE environment_versions (
    environment TEXT   NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    version     BIGINT NOT NULL CHECK (version >= 1),
    name        TEXT   NOT NULL,
    settings    TEXT   NOT NULL,
    changed     BIGINT NOT NULL,   -- when this version was written
    PRIMARY KEY (environment, version)
);

CREATE TABLE api_keys (
    id           TEXT   NOT NULL PRIMARY KEY,
    label        TEXT   NOT NULL,
    role         TEXT   NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    environments TEXT   NOT NULL,   -- JSON array of environment ids; [] for every one
    secret_hash  TEXT   NOT NULL,
    created      BIGINT NOT NULL,
    revoked      BIGINT
);

CREATE INDEX api_keys_by_created ON api_keys (created, id);

CREATE TABLE webhook_endpoints (
    id          TEXT   NOT NULL PRIMARY KEY,
    environment TEXT   NOT NULL,
    seq         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,   -- creation order
    endpoint    TEXT   NOT NULL
);

CREATE INDEX webhook_endpoints_by_environment ON webhook_endpoints (environment, seq);

CREATE TABLE audit (
    seq         BIGINT NOT NULL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    role        TEXT,
    action      TEXT   NOT NULL,
    target      TEXT   NOT NULL,
    outcome     TEXT   NOT NULL,
    environment TEXT,
    ip          TEXT,
    detail      TEXT,
    prev        TEXT   NOT NULL,
    hash        TEXT   NOT NULL
);

CREATE INDEX audit_by_target ON audit (target, seq);
CREATE INDEX audit_by_actor ON audit (actor, seq);
CREATE INDEX audit_by_at ON audit (at);

CREATE FUNCTION audit_entries_never_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;

CREATE TRIGGER audit_entries_never_change BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_entries_never_change();

-- Once per statement, on the rows it removed: none may be newer than an entry left.
CREATE FUNCTION audit_removed_from_the_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit WHERE seq < (SELECT MAX(seq) FROM removed)) THEN
        RAISE EXCEPTION 'only the oldest audit entries are removed';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER audit_removed_from_the_start AFTER DELETE ON audit
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION audit_removed_from_the_start();

CREATE TABLE recording_keys (
    recording TEXT   COLLATE "C" NOT NULL PRIMARY KEY REFERENCES recordings (id),
    sealed    BYTEA,
    created   BIGINT NOT NULL
);
