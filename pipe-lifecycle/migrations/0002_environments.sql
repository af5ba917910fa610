-- Environments (an operator's sites or stages) with their versioned settings, the
-- environment each recording belongs to, and API keys. Times are milliseconds since the
-- Unix epoch (UTC).

-- Recordings made before environments existed belong to the default one. There is no
-- foreign key to `environments`: a library user creates recordings without ever
-- creating an environment, and deleting an environment checks for recordings itself.
ALTER TABLE recordings ADD COLUMN environment TEXT NOT NULL DEFAULT 'production';

-- Listing one environment's recordings newest first, and the keyset pages after a
-- cursor `(created, id)`.
CREATE INDEX recordings_by_environment ON recordings (environment, created DESC, id DESC);

CREATE TABLE environments (
    id       TEXT    NOT NULL PRIMARY KEY,
    name     TEXT    NOT NULL,
    version  INTEGER NOT NULL CHECK (version >= 1),
    created  INTEGER NOT NULL,
    updated  INTEGER NOT NULL,
    settings TEXT    NOT NULL CHECK (json_valid(settings))   -- EnvironmentSettings as JSON
) STRICT;

-- Every version an environment ever had, the current one included; deleted with it.
CREATE TABLE environment_versions (
    environment TEXT    NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL CHECK (version >= 1),
    name        TEXT    NOT NULL,
    settings    TEXT    NOT NULL CHECK (json_valid(settings)),
    changed     INTEGER NOT NULL,   -- when this version was written
    PRIMARY KEY (environment, version)
) STRICT;

-- API keys: only a hash of the secret is kept. Keys are revoked, never deleted, so an id
-- is never reused and the audit trail can always name a key.
CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    label        TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    environments TEXT    NOT NULL   -- JSON array of environment ids; [] for every one
                 CHECK (json_valid(environments) AND json_type(environments) = 'array'),
    secret_hash  TEXT    NOT NULL,
    created      INTEGER NOT NULL,
    revoked      INTEGER
) STRICT;

CREATE INDEX api_keys_by_created ON api_keys (created, id);
