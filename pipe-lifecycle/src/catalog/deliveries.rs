//! The delivery log's query and rows, for every backend: the table `delivery_attempts`,
//! whose rows go with their recording.

use sqlx::{Database, Encode, QueryBuilder, Type};

use pipe_core::{
    DeliveryAttempt, DeliveryFilter, EventId, EventName, RecordingId, Result, Timestamp,
};

use super::{CatalogRow, rows};

/// The most entries one query returns, whatever the filter asks.
const MAX_ENTRIES: u32 = 1000;

/// The query of the attempts `filter` selects, oldest first.
pub(crate) fn select<'a, DB>(filter: &'a DeliveryFilter) -> QueryBuilder<'a, DB>
where
    DB: Database,
    DB::Arguments<'a>: Default,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut query = QueryBuilder::new(
        "SELECT a.recording, a.event, a.event_name, a.endpoint, a.at, a.duration_ms, \
           a.status, a.response, a.error \
         FROM delivery_attempts AS a WHERE 1 = 1",
    );
    if let Some(recording) = &filter.recording {
        query
            .push(" AND a.recording = ")
            .push_bind(recording.as_str());
    }
    if let Some(endpoint) = &filter.endpoint {
        query
            .push(" AND a.endpoint = ")
            .push_bind(endpoint.as_str());
    }
    if let Some(event) = &filter.event {
        query.push(" AND a.event = ").push_bind(event.as_str());
    }
    match filter.delivered {
        Some(true) => {
            query.push(" AND a.error IS NULL");
        }
        Some(false) => {
            query.push(" AND a.error IS NOT NULL");
        }
        None => {}
    }
    if let Some(since) = filter.since {
        query.push(" AND a.at >= ").push_bind(since.as_millis());
    }
    if !filter.environments.is_empty() {
        query.push(" AND a.recording IN (SELECT id FROM recordings WHERE environment IN (");
        let mut list = query.separated(", ");
        for environment in &filter.environments {
            list.push_bind(environment.as_str());
        }
        query.push("))");
    }
    let limit = filter.limit.unwrap_or(MAX_ENTRIES).min(MAX_ENTRIES);
    query
        .push(" ORDER BY a.at, a.id LIMIT ")
        .push_bind(i64::from(limit));
    query
}

/// A row of the query of [`select`].
pub(crate) fn attempt(row: &impl CatalogRow) -> Result<DeliveryAttempt> {
    let recording: String = rows::get(row, "recording")?;
    Ok(DeliveryAttempt {
        event: EventId::new(rows::get::<String>(row, "event")?),
        event_name: EventName::new(rows::get::<String>(row, "event_name")?),
        recording: RecordingId::try_from(recording)?,
        endpoint: rows::get(row, "endpoint")?,
        at: Timestamp::from_millis(rows::get(row, "at")?),
        duration_ms: u64::try_from(rows::get::<i64>(row, "duration_ms")?).unwrap_or(0),
        status: rows::get::<Option<i64>>(row, "status")?.and_then(|s| u16::try_from(s).ok()),
        response: rows::get(row, "response")?,
        error: rows::get(row, "error")?,
    })
}
