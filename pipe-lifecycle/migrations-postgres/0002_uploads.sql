-- How a recording's bytes arrive (pipe_core::RecordingSource: 'recorder' or 'upload'), and
-- for an upload the length it declared (tus's Upload-Length), once declared.
ALTER TABLE recordings ADD COLUMN source TEXT NOT NULL DEFAULT 'recorder';
ALTER TABLE recordings ADD COLUMN upload_length BIGINT;
