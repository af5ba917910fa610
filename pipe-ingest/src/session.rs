//! One WebSocket connection of the streaming protocol.

use std::sync::atomic::Ordering;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use pipe_core::{
    Change, EnvironmentId, Error, JobKind, NewRecording, PersonalData, PersonalDataSettings,
    RecordingId, RecordingState,
};
use tokio::sync::watch;
use tokio::time::{Duration, Instant, timeout, timeout_at};

use crate::Ingest;
use crate::protocol::{Chunk, ClientMessage, Close, ServerMessage, parse_control};

/// The recording a connection appends to.
#[derive(Debug)]
struct Active {
    id: RecordingId,
    /// The spool's durable length as this connection last saw it.
    len: u64,
    finished: bool,
}

/// What the connection's environment allows, read before the upgrade.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The environment new recordings go to, and resumed ones must belong to.
    pub(crate) environment: EnvironmentId,
    /// The largest recording in bytes.
    pub(crate) max_recording_bytes: u64,
    /// Whether the recorder may play its recording back.
    pub(crate) client_playback: bool,
    /// The longest recording the recorder is told to make, in seconds.
    pub(crate) max_recording_secs: Option<u32>,
    /// What the environment collects of the person recording.
    pub(crate) collect: PersonalDataSettings,
    /// What the server read of the connection itself (IP address, user agent), already
    /// limited to what the environment collects.
    pub(crate) seen: PersonalData,
}

/// Serves one connection until it ends, then closes it with the code the protocol names.
pub(crate) async fn run(ingest: Ingest, admission: Admission, mut socket: WebSocket) {
    let inner = &ingest.inner;
    inner.sessions.fetch_add(1, Ordering::AcqRel);
    let _open = crate::metrics::OpenStream::new();
    let mut shutdown = inner.shutdown.subscribe();
    let mut session = Session {
        ingest: &ingest,
        admission,
        active: None,
    };
    let close = session.serve(&mut socket, &mut shutdown).await;
    if let Some(close) = close {
        match close.code {
            Close::NORMAL | Close::GOING_AWAY => {
                tracing::debug!(code = close.code, reason = %close.reason, "closing stream")
            }
            _ => tracing::info!(
                recording = session.active.as_ref().map(|a| a.id.as_str()),
                code = close.code,
                reason = %close.reason,
                "closing stream"
            ),
        }
        let frame = CloseFrame {
            code: close.code,
            reason: close.reason.into(),
        };
        let close = socket.send(Message::Close(Some(frame)));
        let _ = timeout(inner.config.send_timeout, close).await;
        // Reading on flushes a close reply the library still owes, and lets the client
        // answer ours, so the handshake completes cleanly either way.
        let _ = timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = socket.recv().await {}
        })
        .await;
    }
    drop(socket);
    if inner.sessions.fetch_sub(1, Ordering::AcqRel) == 1 {
        inner.sessions_done.notify_waiters();
    }
}

struct Session<'a> {
    ingest: &'a Ingest,
    admission: Admission,
    active: Option<Active>,
}

impl Session<'_> {
    /// Handles messages in order. Returns the close to send, or `None` when the client
    /// is gone.
    async fn serve(
        &mut self,
        socket: &mut WebSocket,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Close> {
        let config = &self.ingest.inner.config;
        // Pings keep the socket alive but do not count as activity: only protocol messages
        // move the deadline, so a client cannot hold a connection without recording.
        let mut deadline = Instant::now() + config.start_timeout;
        loop {
            let received = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => {
                    return Some(Close::new(Close::GOING_AWAY, "server shutting down"));
                }
                received = timeout_at(deadline, socket.recv()) => received,
            };
            let message = match received {
                Err(_elapsed) => return Some(Close::new(Close::TIMEOUT, "timeout")),
                Ok(None) => return None,
                Ok(Some(Err(e))) => return read_error(&e),
                Ok(Some(Ok(message))) => message,
            };
            let reply = match message {
                Message::Binary(bytes) => self.chunk(bytes).await,
                Message::Text(text) if text.len() > config.max_text => Err(Close::too_big()),
                Message::Text(text) => match parse_control(text.as_str()) {
                    Ok(control) => self.control(control).await,
                    Err(close) => Err(close),
                },
                // Answered, so the client sees its close handshake complete.
                Message::Close(_) => return Some(Close::new(Close::NORMAL, "")),
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            if self.active.is_some() {
                deadline = Instant::now() + config.idle_timeout;
            }
            match reply {
                Ok(reply) => {
                    let finished = matches!(reply, ServerMessage::Finished { .. });
                    let message = Message::Text(reply.to_json().into());
                    // A client that does not read its acks must not hold the session (and
                    // a graceful shutdown) forever.
                    match timeout(config.send_timeout, socket.send(message)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => return None,
                    }
                    if finished {
                        return Some(Close::new(Close::NORMAL, "finished"));
                    }
                }
                Err(close) => return Some(close),
            }
        }
    }

    async fn chunk(&mut self, message: Bytes) -> Result<ServerMessage, Close> {
        let inner = &self.ingest.inner;
        let active = self
            .active
            .as_mut()
            .ok_or_else(|| Close::bad_message("send start or resume before bytes"))?;
        let chunk = Chunk::parse(message, inner.config.max_chunk)?;
        if chunk.offset > active.len {
            return Err(Close::new(
                Close::GAP,
                format!("gap: expected offset <= {}", active.len),
            ));
        }
        if chunk.end() <= active.len {
            return Ok(ServerMessage::Ack { offset: active.len });
        }
        if active.finished {
            return Err(Close::new(Close::FINISHED, "recording already finished"));
        }
        if chunk.end() > self.admission.max_recording_bytes {
            return Err(Close::new(Close::TOO_LARGE, "recording too large"));
        }
        let started = std::time::Instant::now();
        let before = active.len;
        active.len = match inner
            .spool
            .append(&active.id, chunk.offset, chunk.data)
            .await
        {
            Ok(len) => len,
            // Sealed, or shorter than this connection believed (another connection's
            // append failed after this one resumed): say which.
            Err(Error::Precondition { .. }) => {
                return Err(match inner.spool.stat(&active.id).await {
                    Ok(entry) if entry.sealed => {
                        Close::new(Close::FINISHED, "recording already finished")
                    }
                    Ok(entry) => {
                        Close::new(Close::GAP, format!("gap: expected offset <= {}", entry.len))
                    }
                    Err(e) => storage_failed(&active.id, &e),
                });
            }
            Err(e) => return Err(storage_failed(&active.id, &e)),
        };
        crate::metrics::chunk_durable(active.len.saturating_sub(before), started.elapsed());
        Ok(ServerMessage::Ack { offset: active.len })
    }

    async fn control(&mut self, message: ClientMessage) -> Result<ServerMessage, Close> {
        match message {
            ClientMessage::Start { .. } | ClientMessage::Resume { .. } if self.active.is_some() => {
                Err(Close::bad_message(
                    "this connection already has a recording",
                ))
            }
            ClientMessage::Start { mime_type, payload } => self.start(mime_type, payload).await,
            ClientMessage::Resume {
                recording,
                resume_token,
            } => self.resume(&recording, &resume_token).await,
            ClientMessage::Describe {
                camera_name,
                microphone_name,
                page,
            } => self.describe(camera_name, microphone_name, page).await,
            ClientMessage::Finish { length } => self.finish(length).await,
        }
    }

    async fn start(
        &mut self,
        mime_type: Option<String>,
        payload: Option<String>,
    ) -> Result<ServerMessage, Close> {
        let inner = &self.ingest.inner;
        let mut new = NewRecording::new()
            .with_environment(self.admission.environment.clone())
            .with_personal(self.admission.seen.clone());
        if let Some(mime) = mime_type {
            if mime.len() > 255 || !mime.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(Close::bad_message(
                    "mimeType is at most 255 printable ASCII characters",
                ));
            }
            new = new.with_mime_type(mime);
        }
        if let Some(payload) = payload {
            if payload.len() > 8 << 10 {
                return Err(Close::bad_message("payload is at most 8 KiB"));
            }
            new = new.with_payload(payload);
        }
        let recording = inner.catalog.create_recording(new).await.map_err(|e| {
            tracing::error!(error = %e, "could not record a new recording in the catalog");
            Close::new(Close::UNAVAILABLE, "storage unavailable")
        })?;
        let id = recording.id;
        inner
            .spool
            .create(&id)
            .await
            .map_err(|e| storage_failed(&id, &e))?;
        tracing::info!(recording = %id, "recording started");
        let reply = ServerMessage::Started {
            recording: id.to_string(),
            resume_token: self.ingest.resume_token(&id),
            offset: 0,
            max_chunk: inner.config.max_chunk,
            max_duration_ms: self
                .admission
                .max_recording_secs
                .map(|secs| u64::from(secs) * 1000),
            collect: [
                (self.admission.collect.camera_name, "cameraName"),
                (self.admission.collect.microphone_name, "microphoneName"),
                (self.admission.collect.referer, "page"),
            ]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| name.to_owned())
            .collect(),
        };
        self.active = Some(Active {
            id,
            len: 0,
            finished: false,
        });
        Ok(reply)
    }

    /// Keeps what the recorder tells of the person recording, as far as the environment
    /// collects it (a field it does not collect is dropped unread); answers with an `ack`
    /// of what is durable.
    async fn describe(
        &mut self,
        camera_name: Option<String>,
        microphone_name: Option<String>,
        page: Option<String>,
    ) -> Result<ServerMessage, Close> {
        let Some(active) = &self.active else {
            return Err(Close::bad_message("describe comes after started"));
        };
        let field = |value: Option<String>, name: &str| -> Result<Option<String>, Close> {
            match value {
                Some(v) if v.len() > 1024 || v.chars().any(char::is_control) => {
                    Err(Close::bad_message(&format!(
                        "{name} is at most 1 KiB, without control characters"
                    )))
                }
                other => Ok(other),
            }
        };
        let mut told = PersonalData::default();
        told.camera_name = field(camera_name, "cameraName")?;
        told.microphone_name = field(microphone_name, "microphoneName")?;
        told.referer = field(page, "page")?;
        let told = told.allowed_by(&self.admission.collect);
        let offset = active.len;
        if !told.is_empty() {
            let change = Change::new(active.id.clone())
                .expect_state(RecordingState::Receiving)
                .personal(told);
            match self.ingest.inner.catalog.commit(change).await {
                Ok(_) => {}
                // Finished meanwhile (or deleted): what it says is of no use any more.
                Err(e) if e.is_precondition() => {}
                Err(e) => {
                    tracing::error!(error = %e, "could not record what the recorder told");
                    return Err(Close::new(Close::UNAVAILABLE, "storage unavailable"));
                }
            }
        }
        Ok(ServerMessage::Ack { offset })
    }

    async fn resume(&mut self, recording: &str, token: &str) -> Result<ServerMessage, Close> {
        let inner = &self.ingest.inner;
        let unknown = || Close::new(Close::UNKNOWN_RECORDING, "unknown recording");
        let id: RecordingId = recording.parse().map_err(|_| unknown())?;
        if !self.ingest.check_resume_token(&id, token) {
            return Err(Close::new(Close::BAD_TOKEN, "bad resume token"));
        }
        let record = match inner.catalog.recording(&id).await {
            Ok(record) => record,
            Err(e) if e.is_not_found() => return Err(unknown()),
            Err(e) => return Err(storage_failed(&id, &e)),
        };
        if record.environment != self.admission.environment {
            // Not this environment's recording: as unknown as one that does not exist.
            return Err(unknown());
        }
        let (len, finished) = if record.state == RecordingState::Receiving {
            match inner.spool.stat(&id).await {
                Ok(entry) => (entry.len, false),
                Err(e) if e.is_not_found() => return Err(unknown()),
                Err(e) => return Err(storage_failed(&id, &e)),
            }
        } else {
            (record.length.unwrap_or(0), true)
        };
        tracing::info!(recording = %id, offset = len, finished, "recording resumed");
        self.active = Some(Active {
            id: id.clone(),
            len,
            finished,
        });
        Ok(ServerMessage::Resumed {
            recording: id.to_string(),
            offset: len,
            finished,
            max_chunk: inner.config.max_chunk,
        })
    }

    async fn finish(&mut self, length: u64) -> Result<ServerMessage, Close> {
        let inner = &self.ingest.inner;
        let active = self
            .active
            .as_mut()
            .ok_or_else(|| Close::bad_message("send start or resume before finish"))?;
        let finished = ServerMessage::Finished {
            recording: active.id.to_string(),
            length,
        };
        if active.finished {
            return if length == active.len {
                Ok(finished)
            } else {
                Err(Close::new(Close::FINISHED, "recording already finished"))
            };
        }
        if length != active.len {
            return Err(Close::new(
                Close::LENGTH_MISMATCH,
                format!("length mismatch: durable {}", active.len),
            ));
        }
        let id = active.id.clone();
        inner
            .spool
            .seal(&id)
            .await
            .map_err(|e| storage_failed(&id, &e))?;
        let change = Change::new(id.clone())
            .expect_state(RecordingState::Receiving)
            .state(RecordingState::Recorded)
            .length(length)
            .enqueue(JobKind::Probe {
                recording: id.clone(),
            });
        match inner.catalog.commit(change).await {
            Ok(_) => {
                tracing::info!(recording = %id, length, "recording finished");
                if let Some(hook) = &inner.on_finish {
                    hook(&id);
                }
            }
            // Finished before, by this client on an earlier connection: say so again.
            Err(e) if e.is_precondition() => match inner.catalog.recording(&id).await {
                Ok(r) if r.length == Some(length) => {}
                Ok(_) => return Err(Close::new(Close::FINISHED, "recording already finished")),
                Err(e) => return Err(storage_failed(&id, &e)),
            },
            Err(e) => return Err(storage_failed(&id, &e)),
        }
        active.finished = true;
        Ok(finished)
    }
}

fn storage_failed(id: &RecordingId, e: &Error) -> Close {
    tracing::error!(recording = %id, error = %e, "storage failed while streaming");
    Close::new(Close::UNAVAILABLE, "storage unavailable")
}

/// A read error: the library's size guard (a message far over the limit) gets the
/// protocol's 1009; anything else means the connection is broken.
fn read_error(e: &axum::Error) -> Option<Close> {
    let text = e.to_string();
    if text.contains("too long") || text.contains("Space limit") {
        Some(Close::too_big())
    } else {
        tracing::debug!(error = %text, "stream connection broke");
        None
    }
}
