-- Each recording's own key (pipe_core::RecordingKeyStore), sealed under a key-encryption
-- key: every encrypted object of the recording has its data key wrapped under it, so the
-- row's deletion at erasure makes every copy unreadable, wherever it was copied. A
-- backup's copy of this table has `sealed` NULL: backups keep the keys apart, one object
-- per recording at their destinations, where an erasure can delete them too.
CREATE TABLE recording_keys (
    recording TEXT PRIMARY KEY NOT NULL REFERENCES recordings (id),
    sealed BLOB,
    created INTEGER NOT NULL
) WITHOUT ROWID;
