//! The delivery log of [`SqliteCatalog`]: the table `delivery_attempts`, whose rows go
//! with their recording.

use pipe_core::{DeliveryAttempt, DeliveryFilter, Result};

use super::SqliteCatalog;
use super::change::Statements;
use super::error::from_sqlx;
use crate::catalog::deliveries::{attempt, select};

/// Adds the statement that logs `attempt`.
pub(super) fn push_insert(s: &mut Statements, attempt: &DeliveryAttempt) -> Result<()> {
    let values = [
        s.arg(attempt.recording.as_str().to_owned())?,
        s.arg(attempt.event.as_str().to_owned())?,
        s.arg(attempt.event_name.as_str().to_owned())?,
        s.arg(attempt.endpoint.clone())?,
        s.arg(attempt.at.as_millis())?,
        s.arg(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))?,
        s.arg(attempt.status.map(i64::from))?,
        s.arg(attempt.response.clone())?,
        s.arg(attempt.error.clone())?,
    ]
    .join(", ");
    s.push(&format!(
        "INSERT INTO delivery_attempts \
           (recording, event, event_name, endpoint, at, duration_ms, status, response, error) \
         VALUES ({values})"
    ));
    Ok(())
}

impl SqliteCatalog {
    pub(super) async fn select_attempts(
        &self,
        filter: DeliveryFilter,
    ) -> Result<Vec<DeliveryAttempt>> {
        let rows = select::<sqlx::Sqlite>(&filter)
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(attempt).collect()
    }
}
