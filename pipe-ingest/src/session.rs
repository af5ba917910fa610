//! One WebSocket connection of the streaming protocol: a thin adapter that reads
//! messages, hands them to the [`Intake`](crate::Intake) and answers in the protocol's
//! words.

use std::sync::atomic::Ordering;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use pipe_core::PersonalData;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::{Duration, Instant, timeout, timeout_at};

use crate::Ingest;
use crate::intake::{Admission, IntakeError, NewUpload, Placement, Upload};
use crate::protocol::{Chunk, ClientMessage, Close, ServerMessage, parse_control};

/// Serves one connection until it ends, then closes it with the code the protocol names.
/// `_permit` is its place under the connection cap, taken before the upgrade.
pub(crate) async fn run(
    ingest: Ingest,
    admission: Admission,
    _permit: OwnedSemaphorePermit,
    mut socket: WebSocket,
) {
    let inner = &ingest.inner;
    inner.sessions.fetch_add(1, Ordering::AcqRel);
    let _open = crate::metrics::OpenStream::new();
    let mut shutdown = inner.shutdown.subscribe();
    let mut session = Session {
        ingest: &ingest,
        admission,
        active: None,
        described: false,
    };
    let close = session.serve(&mut socket, &mut shutdown).await;
    if let Some(close) = close {
        // The reason may carry what the client sent (a parse error quotes it): logged
        // escaped, so it cannot forge log lines or reach a terminal raw.
        match close.code {
            Close::NORMAL | Close::GOING_AWAY => {
                tracing::debug!(code = close.code, reason = ?close.reason, "closing stream")
            }
            _ => tracing::info!(
                recording = session.active.as_ref().map(|a| a.id().as_str()),
                code = close.code,
                reason = ?close.reason,
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

/// The protocol's close for a refusal of the intake.
fn close_for(e: IntakeError) -> Close {
    match e {
        IntakeError::Invalid { detail, .. } => Close::bad_message(&detail),
        IntakeError::UnknownRecording | IntakeError::Gone => {
            Close::new(Close::UNKNOWN_RECORDING, e.to_string())
        }
        IntakeError::BadToken => Close::new(Close::BAD_TOKEN, e.to_string()),
        IntakeError::Gap { .. } | IntakeError::OffsetMismatch { .. } => {
            Close::new(Close::GAP, e.to_string())
        }
        IntakeError::Finished => Close::new(Close::FINISHED, e.to_string()),
        IntakeError::LengthMismatch { .. } => Close::new(Close::LENGTH_MISMATCH, e.to_string()),
        IntakeError::TooLarge { .. } => Close::new(Close::TOO_LARGE, e.to_string()),
        // Refusals of admission are answered before the upgrade; here they can only mean
        // the server cannot go on.
        _ => Close::new(Close::UNAVAILABLE, "storage unavailable"),
    }
}

struct Session<'a> {
    ingest: &'a Ingest,
    admission: Admission,
    active: Option<Upload>,
    /// Whether the recorder told what it knows of the person recording.
    described: bool,
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
        // Only progress moves the deadline: pings, chunks of bytes already durable and
        // empty chunks do not, so a client cannot hold a connection without recording.
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
                Ok(Some(Err(e))) => return read_error(e),
                Ok(Some(Ok(message))) => message,
            };
            let before = self.active.as_ref().map(Upload::len);
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
            let after = self.active.as_ref().map(Upload::len);
            if after.is_some() && (before.is_none() || after > before) {
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
        let intake = &self.ingest.inner.intake;
        let upload = self
            .active
            .as_mut()
            .ok_or_else(|| Close::bad_message("send start or resume before bytes"))?;
        let chunk = Chunk::parse(message, self.ingest.inner.config.max_chunk)?;
        let offset = intake
            .append(
                &self.admission,
                upload,
                chunk.offset,
                chunk.data,
                Placement::UpToDurable,
            )
            .await
            .map_err(close_for)?;
        // A recorder still sending well past the environment's maximum recording time
        // is finished with what it sent (the conversion keeps only the maximum).
        if let Some(secs) = self.admission.max_recording_secs {
            let grace = self.ingest.inner.config.max_duration_grace;
            let limit = upload
                .created()
                .plus(Duration::from_secs(u64::from(secs)) + grace);
            if pipe_core::Timestamp::now() > limit {
                intake.finish(upload, offset).await.map_err(close_for)?;
                tracing::info!(
                    recording = %upload.id(),
                    max_recording_secs = secs,
                    "finished a stream that went on past its maximum recording time"
                );
                return Ok(ServerMessage::Finished {
                    recording: upload.id().to_string(),
                    length: offset,
                });
            }
        }
        Ok(ServerMessage::Ack { offset })
    }

    async fn control(&mut self, message: ClientMessage) -> Result<ServerMessage, Close> {
        let inner = &self.ingest.inner;
        let intake = &inner.intake;
        match message {
            ClientMessage::Start { .. } | ClientMessage::Resume { .. } if self.active.is_some() => {
                Err(Close::bad_message(
                    "this connection already has a recording",
                ))
            }
            ClientMessage::Start { mime_type, payload } => {
                let upload = intake
                    .start(
                        &self.admission,
                        NewUpload {
                            mime_type,
                            payload,
                            upload: None,
                        },
                    )
                    .await
                    .map_err(close_for)?;
                let collect = self.admission.collect;
                let reply = ServerMessage::Started {
                    recording: upload.id().to_string(),
                    resume_token: intake.resume_token(upload.id()),
                    offset: 0,
                    max_chunk: inner.config.max_chunk,
                    max_duration_ms: self
                        .admission
                        .max_recording_secs
                        .map(|secs| u64::from(secs) * 1000),
                    collect: [
                        (collect.camera_name, "cameraName"),
                        (collect.microphone_name, "microphoneName"),
                        (collect.referer, "page"),
                    ]
                    .into_iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, name)| name.to_owned())
                    .collect(),
                };
                self.active = Some(upload);
                Ok(reply)
            }
            ClientMessage::Resume {
                recording,
                resume_token,
            } => {
                let upload = intake
                    .resume(&self.admission, &recording, &resume_token)
                    .await
                    .map_err(close_for)?;
                let reply = ServerMessage::Resumed {
                    recording: upload.id().to_string(),
                    offset: upload.len(),
                    finished: upload.is_finished(),
                    max_chunk: inner.config.max_chunk,
                };
                self.active = Some(upload);
                Ok(reply)
            }
            ClientMessage::Describe {
                camera_name,
                microphone_name,
                page,
            } => {
                let Some(upload) = &self.active else {
                    return Err(Close::bad_message("describe comes after started"));
                };
                if std::mem::replace(&mut self.described, true) {
                    return Err(Close::bad_message("describe comes once"));
                }
                let mut told = PersonalData::default();
                told.camera_name = camera_name;
                told.microphone_name = microphone_name;
                told.referer = page;
                intake
                    .describe(&self.admission, upload, told)
                    .await
                    .map_err(close_for)?;
                Ok(ServerMessage::Ack {
                    offset: upload.len(),
                })
            }
            ClientMessage::Finish { length } => {
                let upload = self
                    .active
                    .as_mut()
                    .ok_or_else(|| Close::bad_message("send start or resume before finish"))?;
                intake.finish(upload, length).await.map_err(close_for)?;
                Ok(ServerMessage::Finished {
                    recording: upload.id().to_string(),
                    length,
                })
            }
        }
    }
}

/// A read error: the library's size guard (a message or frame over the protocol's
/// limits, which the library enforces) gets the protocol's 1009; anything else means the
/// connection is broken.
fn read_error(e: axum::Error) -> Option<Close> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::CapacityError;

    match e.into_inner().downcast::<WsError>().map(|e| *e) {
        Ok(WsError::Capacity(CapacityError::MessageTooLong { .. })) => Some(Close::too_big()),
        Ok(other) => {
            tracing::debug!(error = %other, "stream connection broke");
            None
        }
        Err(other) => {
            tracing::debug!(error = %other, "stream connection broke");
            None
        }
    }
}
