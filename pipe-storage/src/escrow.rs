//! Key escrow: the recording keys a backup needs, kept apart from it, one object per
//! recording at each backup destination, where an erasure can delete them.
//!
//! A backup holds the catalog, the secrets and the key-encryption keys, but no recording
//! key (`SqliteCatalog::snapshot` leaves them out): a backup file cannot be changed once
//! made, and a key in it would let it open an erased recording's copies for as long as it
//! exists. Instead [`escrow_keys`] puts each live recording's sealed key (as the catalog
//! keeps it, under a key-encryption key) to every destination as
//! [`ObjectKey::for_recording_key`] before the backup itself; an erasure deletes that
//! object from every destination (the pipeline's `with_key_escrow`) as well as the
//! catalog's row. A restore then takes back from escrow the keys of the recordings its
//! catalog names ([`recover_keys`]): an erased recording's key is nowhere, and its files,
//! wherever a copy of them is, stay unreadable.
//!
//! The race between a backup escrowing a key and an erasure deleting it is closed by order:
//! an erasure marks its recording deleted before it deletes the escrowed key, and
//! [`escrow_keys`], after putting keys, asks the store which of them are still live and
//! deletes the others again. Whichever runs last, the key does not stay.

use std::collections::HashSet;
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use pipe_core::{
    Error, ObjectKey, PutBody, PutOptions, RecordingId, RecordingKeyStore, Result, StorageSink,
};

/// The object every destination that escrows keys holds (`recording-keys.escrow`, the
/// time of the last escrow): a recording key missing from a destination that has it was
/// deleted, not never put.
pub const MARKER: &str = "recording-keys.escrow";

/// Keys read from the store at a time.
const PAGE: usize = 500;
/// Requests to one destination at a time.
const IN_FLIGHT: usize = 16;

/// What [`escrow_keys`] did at one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Escrowed {
    /// Live keys the destination holds now.
    pub keys: u64,
    /// Of those, how many were put by this run (the others were there already).
    pub put: u64,
    /// Keys put and deleted again because their recording was deleted meanwhile.
    pub withdrawn: u64,
}

/// Puts the key of every live recording in `store` to `destination`, unless it holds it
/// already; then deletes again those whose recording began to be deleted meanwhile.
pub async fn escrow_keys(
    store: &dyn RecordingKeyStore,
    destination: &Arc<dyn StorageSink>,
) -> Result<Escrowed> {
    let marker = ObjectKey::new(MARKER)?;
    let now = pipe_core::Timestamp::now().to_rfc3339();
    destination
        .put(&marker, PutBody::from_bytes(now), PutOptions::default())
        .await?;
    let mut done = Escrowed::default();
    let mut after: Option<RecordingId> = None;
    loop {
        let page = store.live_recording_keys(after.as_ref(), PAGE).await?;
        let Some((last, _)) = page.last() else {
            return Ok(done);
        };
        after = Some(last.clone());
        let listed = page.len() as u64;
        let put: Vec<RecordingId> = stream::iter(page)
            .map(|(id, sealed)| async move {
                let key = ObjectKey::for_recording_key(&id);
                match destination.head(&key).await {
                    Ok(_) => return Ok(None),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
                destination
                    .put(&key, PutBody::from_bytes(sealed), PutOptions::default())
                    .await?;
                Ok::<_, Error>(Some(id))
            })
            .buffer_unordered(IN_FLIGHT)
            .try_filter_map(|put| async move { Ok(put) })
            .try_collect()
            .await?;
        let live: HashSet<RecordingId> = store.still_live(&put).await?.into_iter().collect();
        let mut withdrawn = 0;
        for id in put.iter().filter(|id| !live.contains(id)) {
            match destination.delete(&ObjectKey::for_recording_key(id)).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            withdrawn += 1;
        }
        done.withdrawn += withdrawn;
        done.put += put.len() as u64 - withdrawn;
        done.keys += listed - withdrawn;
    }
}

/// What [`recover_keys`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovered {
    /// Recordings whose key came back from escrow.
    pub keys: u64,
    /// Recordings whose key is at no destination: erased after the backup was made, if
    /// [`escrowed_here`](Self::escrowed_here).
    pub missing: Vec<RecordingId>,
    /// Whether any destination has escrowed keys ([`MARKER`]): if none has, a missing key
    /// says nothing (the wrong destinations, or no backup made to them).
    pub escrowed_here: bool,
}

/// Takes back into `store` the keys of `recordings` from the first of `destinations` that
/// escrows each. A recording whose key none of them has is named in
/// [`Recovered::missing`]; a destination that cannot be read fails the whole call (a key
/// that may be there must not be taken for erased).
pub async fn recover_keys(
    store: &dyn RecordingKeyStore,
    recordings: &[RecordingId],
    destinations: &[Arc<dyn StorageSink>],
) -> Result<Recovered> {
    let found: Vec<(RecordingId, Option<bytes::Bytes>)> = stream::iter(recordings)
        .map(|id| async move {
            let key = ObjectKey::for_recording_key(id);
            for destination in destinations {
                match destination.get(&key, Default::default()).await {
                    Ok(got) => return Ok((id.clone(), Some(got.bytes().await?))),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, Error>((id.clone(), None))
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    let mut recovered = Recovered::default();
    let marker = ObjectKey::new(MARKER)?;
    for destination in destinations {
        match destination.head(&marker).await {
            Ok(_) => recovered.escrowed_here = true,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    for (id, sealed) in found {
        match sealed {
            Some(sealed) => {
                store.keep_recording_key(&id, sealed.to_vec()).await?;
                recovered.keys += 1;
            }
            None => recovered.missing.push(id),
        }
    }
    recovered.missing.sort();
    Ok(recovered)
}
