//! When to try a failed job again, and when to give up.

use std::time::Duration;

use pipe_core::{Error, JobKind};

/// Exponential backoff with jitter, and a budget of attempts per job kind.
///
/// The `n`-th failed attempt waits `min(cap, base × factorⁿ⁻¹)`, of which the upper half is
/// random ("equal jitter"): retries of many jobs that failed together spread out instead
/// of hitting a recovering endpoint at the same instant.
///
/// ```
/// use std::time::Duration;
/// use pipe_lifecycle::RetryPolicy;
///
/// let policy = RetryPolicy::default();
/// let third = policy.backoff(3);
/// assert!(third >= Duration::from_secs(2) && third <= Duration::from_secs(4));
/// assert!(policy.backoff(40) <= Duration::from_secs(600));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    base: Duration,
    factor: u32,
    cap: Duration,
    max_attempts: u32,
    notify_max_attempts: u32,
    delivery_schedule: Vec<Duration>,
}

/// The longest wait a failure may ask for: a receiver asking for more is retried anyway.
const MAX_ASKED_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The waits between the attempts of one delivery to one endpoint, as svix spaces them:
/// the first attempt at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h —
/// eight attempts over about 27.5 hours, which rides out a receiver down for a day.
pub const DELIVERY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

impl Default for RetryPolicy {
    /// Base 1 s, factor 2, cap 10 min, 12 attempts for every kind: a temporary failure
    /// (a disk, catalog, sink or endpoint that is down) is retried for 20 to 40 minutes
    /// before a recording fails or a job is dead-lettered. Permanent errors give up at once.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            factor: 2,
            cap: Duration::from_secs(600),
            max_attempts: 12,
            notify_max_attempts: 12,
            delivery_schedule: DELIVERY_SCHEDULE.to_vec(),
        }
    }
}

impl RetryPolicy {
    /// Waits `base` after the first failure.
    #[must_use]
    pub fn with_base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// Multiplies the wait by `factor` after every further failure (at least 1).
    #[must_use]
    pub fn with_factor(mut self, factor: u32) -> Self {
        self.factor = factor.max(1);
        self
    }

    /// Never waits longer than `cap`.
    #[must_use]
    pub fn with_cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// Gives up on a probe, convert, copy or cleanup job after `attempts` attempts (at
    /// least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Gives up on a webhook delivery after `attempts` attempts (at least 1).
    #[must_use]
    pub fn with_notify_max_attempts(mut self, attempts: u32) -> Self {
        self.notify_max_attempts = attempts.max(1);
        self
    }

    /// Waits `schedule[n - 1]` after the `n`-th failed delivery to one endpoint, and gives
    /// up after `schedule.len() + 1` attempts ([`DELIVERY_SCHEDULE`] unless set).
    #[must_use]
    pub fn with_delivery_schedule(mut self, schedule: impl Into<Vec<Duration>>) -> Self {
        self.delivery_schedule = schedule.into();
        self
    }

    /// How many attempts a job of `kind` gets.
    pub fn max_attempts(&self, kind: &JobKind) -> u32 {
        match kind {
            JobKind::Notify { .. } => self.notify_max_attempts,
            JobKind::Deliver { .. } => {
                u32::try_from(self.delivery_schedule.len() + 1).unwrap_or(u32::MAX)
            }
            _ => self.max_attempts,
        }
    }

    /// How long to wait after failed attempt `attempt` (1 for the first) of a job of
    /// `kind`: the delivery schedule for deliveries, else [`RetryPolicy::backoff`]; longer
    /// if the failure asked for a longer wait (`asked`, an HTTP `Retry-After`), up to a day.
    pub fn wait(&self, kind: &JobKind, attempt: u32, asked: Option<Duration>) -> Duration {
        let planned = self.planned(kind, attempt);
        match asked {
            Some(asked) => planned.max(asked.min(MAX_ASKED_WAIT)),
            None => planned,
        }
    }

    fn planned(&self, kind: &JobKind, attempt: u32) -> Duration {
        match kind {
            JobKind::Deliver { .. } => {
                let n = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
                self.delivery_schedule
                    .get(n)
                    .or(self.delivery_schedule.last())
                    .copied()
                    .unwrap_or_default()
            }
            _ => self.backoff(attempt),
        }
    }

    /// Whether a job of `kind` that failed with `error` on attempt `attempt` (1 for the
    /// first) runs again: the error must be worth retrying and attempts must be left.
    ///
    /// Retryable are temporary backend failures ([`Error::is_retryable`]) and, for a copy,
    /// an integrity mismatch (bytes damaged on the way may arrive whole the next time).
    pub fn should_retry(&self, kind: &JobKind, error: &Error, attempt: u32) -> bool {
        // An erasure never gives up: a recording asked to be deleted must leave every sink
        // in the end, and a sink refusing for now (down, credentials revoked) is fixed by
        // its operator, after which the next attempt finishes the job.
        if matches!(kind, JobKind::Erase { .. }) {
            return true;
        }
        let transient = error.is_retryable()
            || matches!(
                (kind, error),
                (JobKind::Copy { .. }, Error::Integrity { .. })
            );
        transient && attempt < self.max_attempts(kind)
    }

    /// How long to wait after failed attempt number `attempt` (1 for the first), jittered.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let full = self.ceiling(attempt);
        let half = full / 2;
        half + half.mul_f64(random_unit())
    }

    /// The un-jittered wait after attempt `attempt`.
    fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(63);
        let multiplier = u64::from(self.factor)
            .checked_pow(exponent)
            .unwrap_or(u64::MAX);
        let millis = (self.base.as_millis() as u64).saturating_mul(multiplier);
        Duration::from_millis(millis).min(self.cap)
    }
}

/// A random number in `[0, 1)`.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: no jitter; the backoff stays correct, only less spread.
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipe_core::{Event, RecordingId};

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let policy = RetryPolicy::default();
        for (attempt, secs) in [
            (1, 1),
            (2, 2),
            (3, 4),
            (4, 8),
            (10, 512),
            (11, 600),
            (1000, 600),
        ] {
            let ceiling = Duration::from_secs(secs);
            assert_eq!(policy.ceiling(attempt), ceiling, "attempt {attempt}");
            for _ in 0..50 {
                let d = policy.backoff(attempt);
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "attempt {attempt}: {d:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
    }

    #[test]
    fn deliveries_follow_the_schedule() {
        let policy = RetryPolicy::default();
        let deliver = JobKind::Deliver {
            event: Event::new(
                "video_recorded",
                RecordingId::generate(),
                serde_json::json!({}),
            ),
            endpoint: "a".into(),
        };
        let waits: Vec<u64> = (1..=7)
            .map(|n| policy.wait(&deliver, n, None).as_secs())
            .collect();
        assert_eq!(waits, [5, 300, 1800, 7200, 18_000, 36_000, 36_000]);
        let fast = RetryPolicy::default().with_delivery_schedule([Duration::from_millis(10)]);
        assert_eq!(fast.max_attempts(&deliver), 2);
        assert_eq!(fast.wait(&deliver, 5, None), Duration::from_millis(10));
        // Retry-After: a longer wait is honoured, a shorter one does not hurry the schedule,
        // and no receiver parks a delivery for more than a day.
        let secs = |asked: u64| {
            policy
                .wait(&deliver, 1, Some(Duration::from_secs(asked)))
                .as_secs()
        };
        assert_eq!((secs(120), secs(1), secs(10 * 86_400)), (120, 5, 86_400));
    }

    #[test]
    fn jitter_spreads() {
        let policy = RetryPolicy::default();
        let samples: std::collections::HashSet<_> = (0..20).map(|_| policy.backoff(8)).collect();
        assert!(
            samples.len() > 10,
            "20 backoffs gave only {} distinct values",
            samples.len()
        );
    }

    #[test]
    fn budgets_and_retryable_errors() {
        let policy = RetryPolicy::default();
        let id = RecordingId::generate();
        let notify = JobKind::Notify {
            event: Event::new("video_recorded", id.clone(), serde_json::json!({})),
        };
        let copy = JobKind::Copy {
            recording: id.clone(),
            sink: pipe_core::SinkId::new("own"),
        };
        let convert = JobKind::Convert { recording: id };
        let busy = Error::temporary("test", "busy");
        assert!(policy.should_retry(&notify, &busy, 11));
        assert!(!policy.should_retry(&notify, &busy, 12));
        assert!(policy.should_retry(&convert, &busy, 11));
        assert!(!policy.should_retry(&convert, &busy, 12));
        let short = RetryPolicy::default().with_max_attempts(5);
        assert!(short.should_retry(&convert, &busy, 4));
        assert!(!short.should_retry(&convert, &busy, 5));
        assert!(!policy.should_retry(&notify, &Error::permanent("test", "410"), 1));
        let mismatch = Error::Integrity {
            detail: "sha256".into(),
        };
        assert!(policy.should_retry(&copy, &mismatch, 1));
        let deliver = JobKind::Deliver {
            event: Event::new(
                "video_recorded",
                RecordingId::generate(),
                serde_json::json!({}),
            ),
            endpoint: "a".into(),
        };
        assert!(policy.should_retry(&deliver, &busy, 7));
        assert!(
            !policy.should_retry(&deliver, &busy, 8),
            "more than eight attempts"
        );
        assert!(!policy.should_retry(
            &convert,
            &Error::Media {
                detail: "garbage".into()
            },
            1
        ));
    }
}
