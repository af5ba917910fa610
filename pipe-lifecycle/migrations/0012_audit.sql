-- The audit log (pipe_core::AuditLog): entries numbered from 1 without gaps, each chained
-- to the one before by SHA-256 (`prev`, `hash`). Times are milliseconds since the epoch.
CREATE TABLE audit (
    seq         INTEGER NOT NULL PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    role        TEXT,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    environment TEXT,
    ip          TEXT,
    detail      TEXT,
    prev        TEXT    NOT NULL,
    hash        TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_by_target ON audit (target, seq);
CREATE INDEX audit_by_actor ON audit (actor, seq);
CREATE INDEX audit_by_at ON audit (at);

-- Append-only, as far as SQL goes (the chain shows what is done to the file behind its
-- back): no entry changes, and only the oldest entries are removed (expiry).
CREATE TRIGGER audit_entries_never_change BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_expires_from_the_start BEFORE DELETE ON audit
    WHEN EXISTS (SELECT 1 FROM audit WHERE seq < OLD.seq)
BEGIN
    SELECT RAISE(ABORT, 'only the oldest audit entries are removed');
END;
