//! Stored rows to Pipe's types.

use pipe_core::{
    ApiKey, ApiKeyId, Artifact, ArtifactKind, Copy, DeletionReason, Environment, EnvironmentId,
    EnvironmentSettings, JobId, JobKind, JobRecord, JobStatus, MediaInfo, ObjectKey, PersonalData,
    Recording, RecordingId, RecordingSource, RecordingState, Result, Role, SinkId, Timestamp,
    Tombstone,
};

use super::{CatalogRow, Value, corrupt};

pub(crate) fn recording(row: &impl CatalogRow) -> Result<Recording> {
    let media: Option<String> = get(row, "media")?;
    let media = media
        .map(|json| serde_json::from_str::<MediaInfo>(&json))
        .transpose()
        .map_err(|e| corrupt("media", e))?;
    let length: Option<i64> = get(row, "length")?;
    let mut recording = Recording::new(
        recording_id(get(row, "id")?)?,
        state(get(row, "state")?)?,
        get(row, "version")?,
        Timestamp::from_millis(get(row, "created")?),
        Timestamp::from_millis(get(row, "updated")?),
    );
    recording.environment = environment_id(get(row, "environment")?)?;
    recording.mime_type = get(row, "mime_type")?;
    recording.payload = get(row, "payload")?;
    recording.length = length.map(size_from_sql).transpose()?;
    recording.media = media;
    recording.failure = get(row, "failure")?;
    recording.deleting = get::<Option<i64>>(row, "deleting")?.map(Timestamp::from_millis);
    recording.deletion_reason = get::<Option<String>>(row, "deletion_reason")?
        .map(deletion_reason)
        .transpose()?;
    recording.number = number(row)?;
    recording.personal = PersonalData::default();
    recording.personal.ip = get(row, "ip")?;
    recording.personal.user_agent = get(row, "user_agent")?;
    recording.personal.referer = get(row, "referer")?;
    recording.personal.camera_name = get(row, "camera_name")?;
    recording.personal.microphone_name = get(row, "microphone_name")?;
    recording.anonymized = get::<Option<i64>>(row, "anonymized")?.map(Timestamp::from_millis);
    let source: String = get(row, "source")?;
    recording.source =
        RecordingSource::parse(&source).ok_or_else(|| corrupt("source", source.as_str()))?;
    recording.upload_length = get::<Option<i64>>(row, "upload_length")?
        .map(size_from_sql)
        .transpose()?;
    Ok(recording)
}

/// A row of `recordings` whose recording was erased, as [`TOMBSTONE_COLUMNS`] selects it.
///
/// [`TOMBSTONE_COLUMNS`]: super::TOMBSTONE_COLUMNS
pub(crate) fn tombstone(row: &impl CatalogRow) -> Result<Tombstone> {
    let erased: Option<i64> = get(row, "erased")?;
    let requested: Option<i64> = get(row, "deleting")?;
    let (Some(erased), Some(requested)) = (erased, requested) else {
        return Err(corrupt("tombstone", "a recording not erased"));
    };
    let reason: Option<String> = get(row, "deletion_reason")?;
    let reason = deletion_reason(reason.unwrap_or_else(|| "request".into()))?;
    Ok(Tombstone::new(
        recording_id(get(row, "id")?)?,
        environment_id(get(row, "environment")?)?,
        Timestamp::from_millis(get(row, "created")?),
        Timestamp::from_millis(requested),
        Timestamp::from_millis(erased),
        reason,
    )
    .with_number(number(row)?))
}

fn number(row: &impl CatalogRow) -> Result<u64> {
    Ok(get::<Option<i64>>(row, "number")?
        .map(|n| u64::try_from(n).map_err(|e| corrupt("number", e)))
        .transpose()?
        .unwrap_or(0))
}

pub(crate) fn deletion_reason(name: String) -> Result<DeletionReason> {
    DeletionReason::parse(&name).ok_or_else(|| corrupt("deletion reason", name))
}

pub(crate) fn artifact(row: &impl CatalogRow) -> Result<Artifact> {
    Ok(Artifact::new(
        recording_id(get(row, "recording")?)?,
        kind(get(row, "kind")?)?,
        key(get(row, "key")?)?,
        size_from_sql(get(row, "size")?)?,
        get::<String>(row, "sha256")?,
        get::<String>(row, "content_type")?,
    ))
}

pub(crate) fn copy(row: &impl CatalogRow) -> Result<Copy> {
    Ok(Copy::new(
        recording_id(get(row, "recording")?)?,
        kind(get(row, "kind")?)?,
        SinkId::new(get::<String>(row, "sink")?),
        key(get(row, "key")?)?,
        size_from_sql(get(row, "size")?)?,
    ))
}

pub(crate) fn job_record(row: &impl CatalogRow) -> Result<JobRecord> {
    let status: String = get(row, "status")?;
    let status = JobStatus::parse(&status).ok_or_else(|| corrupt("job status", status))?;
    let attempts: i64 = get(row, "attempts")?;
    Ok(JobRecord::new(
        JobId(get(row, "id")?),
        job_kind(get(row, "payload")?)?,
        status,
        u32::try_from(attempts).map_err(|e| corrupt("attempts", e))?,
        get(row, "last_error")?,
        Timestamp::from_millis(get(row, "run_at")?),
    ))
}

/// An environment row: `id, name, version, created, updated, settings`.
pub(crate) fn environment(row: &impl CatalogRow) -> Result<Environment> {
    Ok(Environment::new(
        environment_id(get(row, "id")?)?,
        get::<String>(row, "name")?,
        get(row, "version")?,
        Timestamp::from_millis(get(row, "created")?),
        Timestamp::from_millis(get(row, "updated")?),
        settings(get(row, "settings")?)?,
    ))
}

/// An API key row: `id, label, role, environments, secret_hash, created, revoked`.
pub(crate) fn api_key(row: &impl CatalogRow) -> Result<ApiKey> {
    let role: String = get(row, "role")?;
    let role = role.parse::<Role>().map_err(|_| corrupt("role", role))?;
    let environments: String = get(row, "environments")?;
    let environments = serde_json::from_str::<Vec<EnvironmentId>>(&environments)
        .map_err(|e| corrupt("API key environments", e))?;
    let revoked: Option<i64> = get(row, "revoked")?;
    let mut key = ApiKey::new(
        ApiKeyId::try_from(get::<String>(row, "id")?).map_err(|e| corrupt("API key id", e))?,
        get::<String>(row, "label")?,
        role,
        environments,
        get::<String>(row, "secret_hash")?,
        Timestamp::from_millis(get(row, "created")?),
    );
    key.revoked = revoked.map(Timestamp::from_millis);
    Ok(key)
}

fn settings(json: String) -> Result<EnvironmentSettings> {
    serde_json::from_str(&json).map_err(|e| corrupt("environment settings", e))
}

fn environment_id(s: String) -> Result<EnvironmentId> {
    EnvironmentId::try_from(s).map_err(|e| corrupt("environment id", e))
}

pub(crate) fn job_kind(payload: String) -> Result<JobKind> {
    serde_json::from_str(&payload).map_err(|e| corrupt("job", e))
}

pub(crate) fn state(s: String) -> Result<RecordingState> {
    RecordingState::parse(&s).ok_or_else(|| corrupt("recording state", s))
}

pub(crate) fn size_to_sql(size: u64) -> Result<i64> {
    i64::try_from(size)
        .map_err(|_| pipe_core::Error::invalid("size", format!("{size} does not fit the catalog")))
}

fn size_from_sql(size: i64) -> Result<u64> {
    u64::try_from(size).map_err(|e| corrupt("size", e))
}

fn recording_id(s: String) -> Result<RecordingId> {
    RecordingId::try_from(s).map_err(|e| corrupt("recording id", e))
}

fn kind(s: String) -> Result<ArtifactKind> {
    ArtifactKind::parse(&s).ok_or_else(|| corrupt("artifact kind", s))
}

fn key(s: String) -> Result<ObjectKey> {
    ObjectKey::new(s).map_err(|e| corrupt("object key", e))
}

/// A column's value; a type mismatch is an error, not a panic.
pub(crate) fn get<T: Value>(row: &impl CatalogRow, column: &str) -> Result<T> {
    row.value(column)
}
