-- Webhook endpoints of environments. The endpoint is one JSON document (StoredEndpoint),
-- so a field added later needs no migration; id and environment are columns to look it
-- up by. No foreign key to `environments`: deleting an environment checks for its
-- endpoints itself.
CREATE TABLE webhook_endpoints (
    id          TEXT    NOT NULL PRIMARY KEY,
    environment TEXT    NOT NULL,
    seq         INTEGER NOT NULL UNIQUE,   -- creation order
    endpoint    TEXT    NOT NULL CHECK (json_valid(endpoint))
) STRICT;

CREATE INDEX webhook_endpoints_by_environment ON webhook_endpoints (environment, seq);
