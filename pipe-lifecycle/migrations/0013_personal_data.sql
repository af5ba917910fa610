-- Personal data about the person recording, each only where the environment collects it
-- (pipe_core::PersonalDataSettings); NULL otherwise. `anonymized` is when it was erased
-- because the environment keeps it only until the recording is copied.
ALTER TABLE recordings ADD COLUMN ip TEXT;
ALTER TABLE recordings ADD COLUMN user_agent TEXT;
ALTER TABLE recordings ADD COLUMN referer TEXT;
ALTER TABLE recordings ADD COLUMN camera_name TEXT;
ALTER TABLE recordings ADD COLUMN microphone_name TEXT;
ALTER TABLE recordings ADD COLUMN anonymized INTEGER;
