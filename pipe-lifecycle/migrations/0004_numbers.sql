-- Numbers: every recording gets a number, unique and never reused, for the receivers and
-- REST clients written for the hosted Pipe, whose video ids are numbers.
CREATE TABLE counters (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL CHECK (value >= 0)
) STRICT;

ALTER TABLE recordings ADD COLUMN number INTEGER;

-- Recordings made before this migration are numbered in the order they were made.
UPDATE recordings SET number = (
    SELECT COUNT(*) FROM recordings AS earlier
    WHERE earlier.created < recordings.created
       OR (earlier.created = recordings.created AND earlier.id <= recordings.id)
);

INSERT INTO counters (name, value)
SELECT 'recording', COALESCE(MAX(number), 0) FROM recordings;

CREATE UNIQUE INDEX recordings_by_number ON recordings (number);
