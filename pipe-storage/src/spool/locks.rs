//! One async lock per recording, held only while someone uses it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use pipe_core::RecordingId;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Serialises the writers of one recording while writers of different recordings run in
/// parallel.
///
/// The map holds an entry only while a task holds or awaits that recording's lock, so it
/// does not grow with the number of recordings the spool has ever seen.
#[derive(Default)]
pub(super) struct RecordingLocks {
    locks: Arc<Mutex<HashMap<RecordingId, Arc<AsyncMutex<()>>>>>,
}

impl RecordingLocks {
    /// Waits for the lock of `id`.
    pub(super) async fn lock(&self, id: &RecordingId) -> RecordingGuard {
        let mutex = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(id.clone()).or_default())
        };
        let guard = Arc::clone(&mutex).lock_owned().await;
        RecordingGuard {
            locks: Arc::clone(&self.locks),
            id: id.clone(),
            mutex,
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl fmt::Debug for RecordingLocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("RecordingLocks")
            .field("held", &held)
            .finish()
    }
}

/// The lock of one recording; released on drop.
pub(super) struct RecordingGuard {
    locks: Arc<Mutex<HashMap<RecordingId, Arc<AsyncMutex<()>>>>>,
    id: RecordingId,
    mutex: Arc<AsyncMutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for RecordingGuard {
    fn drop(&mut self) {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        // Nobody else can take a reference while we hold the map: if the map's and ours are
        // the only ones (the guard holds a third), nobody waits, and the entry can go.
        if let Entry::Occupied(entry) = locks.entry(self.id.clone())
            && Arc::ptr_eq(entry.get(), &self.mutex)
            && Arc::strong_count(&self.mutex) == 3
        {
            entry.remove();
        }
        drop(self.guard.take());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn entries_live_only_while_used() {
        let locks = RecordingLocks::default();
        let id = RecordingId::generate();
        let guard = locks.lock(&id).await;
        assert_eq!(locks.len(), 1);
        drop(guard);
        assert_eq!(locks.len(), 0);
    }

    #[tokio::test]
    async fn same_recording_is_serialised_and_others_are_not() {
        let locks = Arc::new(RecordingLocks::default());
        let a = RecordingId::generate();
        let held = locks.lock(&a).await;

        // Another recording is not blocked by `a`.
        let other =
            tokio::time::timeout(Duration::from_secs(5), locks.lock(&RecordingId::generate()))
                .await;
        assert!(other.is_ok(), "a different recording waited for a's lock");
        drop(other);

        // The same recording waits until `held` is released, and its entry survives the
        // release because the waiter still needs it.
        let waiter = tokio::spawn({
            let locks = Arc::clone(&locks);
            let a = a.clone();
            async move { drop(locks.lock(&a).await) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "a second lock of the same recording did not wait"
        );
        drop(held);
        waiter.await.unwrap();
        assert_eq!(locks.len(), 0);
    }
}
