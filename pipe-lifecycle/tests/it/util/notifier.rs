//! Notifier stand-ins: the real notifier (pipe-webhook) posts to HTTP endpoints; these
//! record what they were asked to deliver.

use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use pipe_core::{Error, Event, Notifier, Result};

/// Stand-in notifier that accepts every event and remembers it, in delivery order.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    delivered: Mutex<Vec<Event>>,
}

impl RecordingNotifier {
    /// Every event delivered so far.
    pub fn delivered(&self) -> Vec<Event> {
        self.delivered.lock().unwrap().clone()
    }

    /// The names of the events delivered for `recording`, in order.
    pub fn names_for(&self, recording: &pipe_core::RecordingId) -> Vec<String> {
        self.delivered()
            .iter()
            .filter(|e| &e.recording == recording)
            .map(|e| e.name.to_string())
            .collect()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn deliver(&self, event: &Event) -> Result<()> {
        self.delivered.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// Stand-in notifier that fails the first `failures` attempts (retryable or permanent),
/// then accepts; it remembers every attempt with its time.
#[derive(Debug)]
pub struct FailingNotifier {
    failures: usize,
    retryable: bool,
    attempts: Mutex<Vec<(Event, Instant)>>,
}

impl FailingNotifier {
    /// Fails `failures` times with a retryable error (a 503 answer), then accepts.
    pub fn retryable(failures: usize) -> Self {
        Self {
            failures,
            retryable: true,
            attempts: Mutex::default(),
        }
    }

    /// Fails every time with a permanent error (a 410 answer).
    pub fn permanent() -> Self {
        Self {
            failures: usize::MAX,
            retryable: false,
            attempts: Mutex::default(),
        }
    }

    /// Every attempt so far, with its time.
    pub fn attempts(&self) -> Vec<(Event, Instant)> {
        self.attempts.lock().unwrap().clone()
    }
}

#[async_trait]
impl Notifier for FailingNotifier {
    async fn deliver(&self, event: &Event) -> Result<()> {
        let mut attempts = self.attempts.lock().unwrap();
        attempts.push((event.clone(), Instant::now()));
        if attempts.len() > self.failures {
            Ok(())
        } else if self.retryable {
            Err(Error::temporary("webhook", "endpoint answered 503"))
        } else {
            Err(Error::permanent("webhook", "endpoint answered 410"))
        }
    }
}
