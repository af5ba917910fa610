-- The delivery log: every attempt to deliver an event to an endpoint, with the start of
-- the endpoint's answer. Entries go with their recording (ON DELETE CASCADE): an answer
-- can hold personal data, and erasure leaves nothing behind.
CREATE TABLE delivery_attempts (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    recording   TEXT    NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    event       TEXT    NOT NULL,
    event_name  TEXT    NOT NULL,
    endpoint    TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
    status      INTEGER,
    response    TEXT    NOT NULL,
    error       TEXT
) STRICT;

CREATE INDEX delivery_attempts_by_recording ON delivery_attempts (recording, id);
CREATE INDEX delivery_attempts_by_endpoint ON delivery_attempts (endpoint, id);
CREATE INDEX delivery_attempts_by_time ON delivery_attempts (at, id);
