//! The wire format of the streaming protocol (see `PROTOCOL.md`): control messages,
//! binary chunks and close codes. Pure parsing, no I/O, so it can be fuzzed.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The WebSocket subprotocol that names this version of the protocol.
pub const SUBPROTOCOL: &str = "pipe.stream.v1";

/// Bytes of the big-endian offset in front of every binary chunk.
pub const OFFSET_LEN: usize = 8;

/// A message from the client.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientMessage {
    /// Start a new recording.
    #[serde(rename_all = "camelCase")]
    Start {
        /// The MIME type MediaRecorder produces.
        mime_type: Option<String>,
        /// The operator's string, echoed in webhooks.
        payload: Option<String>,
    },
    /// Continue a recording.
    #[serde(rename_all = "camelCase")]
    Resume {
        /// Its id.
        recording: String,
        /// The token from `started`.
        resume_token: String,
    },
    /// What the recorder knows of the person recording, sent after `started` and only
    /// the fields `started` asked for (`collect`); the server keeps only those.
    #[serde(rename_all = "camelCase")]
    Describe {
        /// The camera's name (`MediaStreamTrack.label`).
        camera_name: Option<String>,
        /// The microphone's name.
        microphone_name: Option<String>,
        /// The page the recorder is on (`location.href`).
        page: Option<String>,
    },
    /// The recording is complete.
    Finish {
        /// Its total length in bytes.
        length: u64,
    },
}

/// A message from the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage {
    /// A new recording exists.
    #[serde(rename_all = "camelCase")]
    Started {
        /// Its id.
        recording: String,
        /// Present it to resume.
        resume_token: String,
        /// Always 0.
        offset: u64,
        /// The largest chunk accepted after the offset.
        max_chunk: usize,
        /// The environment's longest recording in milliseconds, which the recorder stops
        /// at (as Pipe's `mrt`); absent when there is none.
        #[serde(skip_serializing_if = "Option::is_none")]
        max_duration_ms: Option<u64>,
        /// What the environment collects that only the recorder knows, for it to send in
        /// a `describe` (`cameraName`, `microphoneName`, `page`); absent when nothing.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        collect: Vec<String>,
    },
    /// The server holds `offset` bytes of the recording durably.
    #[serde(rename_all = "camelCase")]
    Resumed {
        /// Its id.
        recording: String,
        /// Send from here.
        offset: u64,
        /// Whether the recording was already finished.
        finished: bool,
        /// The largest chunk accepted after the offset.
        max_chunk: usize,
    },
    /// The first `offset` bytes are durable.
    Ack {
        /// The durable length.
        offset: u64,
    },
    /// The recording is complete and queued for processing.
    Finished {
        /// Its id.
        recording: String,
        /// Its length.
        length: u64,
    },
}

impl ServerMessage {
    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

/// A binary chunk: the recording's bytes from `offset` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Where `data` starts in the recording.
    pub offset: u64,
    /// The bytes.
    pub data: Bytes,
}

impl Chunk {
    /// Parses a binary message: an 8-byte big-endian offset, then at most `max_chunk` bytes.
    pub fn parse(message: Bytes, max_chunk: usize) -> Result<Self, Close> {
        if message.len() < OFFSET_LEN {
            return Err(Close::bad_message(
                "a binary message starts with an 8-byte offset",
            ));
        }
        if message.len() - OFFSET_LEN > max_chunk {
            return Err(Close::too_big());
        }
        let offset = u64::from_be_bytes(message[..OFFSET_LEN].try_into().expect("8 bytes"));
        if offset
            .checked_add((message.len() - OFFSET_LEN) as u64)
            .is_none()
        {
            return Err(Close::bad_message("offset overflows"));
        }
        Ok(Self {
            offset,
            data: message.slice(OFFSET_LEN..),
        })
    }

    /// The message bytes of this chunk.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(OFFSET_LEN + self.data.len());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.data);
        out
    }

    /// The offset just past the chunk.
    pub fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

/// Parses a text message.
pub fn parse_control(text: &str) -> Result<ClientMessage, Close> {
    serde_json::from_str(text).map_err(|e| Close::bad_message(&e.to_string()))
}

/// How and why the server closes a connection: a WebSocket close code and a reason of at
/// most 123 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    /// The close code (see `PROTOCOL.md`).
    pub code: u16,
    /// The reason, for people.
    pub reason: String,
}

impl Close {
    /// 1000: the recording is finished.
    pub const NORMAL: u16 = 1000;
    /// 1001: the server is shutting down; resume.
    pub const GOING_AWAY: u16 = 1001;
    /// 1009: a message over the limit.
    pub const TOO_BIG: u16 = 1009;
    /// 1011: storage failed; resume later.
    pub const UNAVAILABLE: u16 = 1011;
    /// 4400: the client broke a rule of the protocol.
    pub const BAD_MESSAGE: u16 = 4400;
    /// 4401: the resume token does not match the recording.
    pub const BAD_TOKEN: u16 = 4401;
    /// 4404: no such recording.
    pub const UNKNOWN_RECORDING: u16 = 4404;
    /// 4408: no message in time.
    pub const TIMEOUT: u16 = 4408;
    /// 4409: a chunk would leave a gap.
    pub const GAP: u16 = 4409;
    /// 4410: bytes past the end of a finished recording.
    pub const FINISHED: u16 = 4410;
    /// 4412: `finish` with a length that is not the durable length.
    pub const LENGTH_MISMATCH: u16 = 4412;
    /// 4413: the recording would exceed the size limit.
    pub const TOO_LARGE: u16 = 4413;

    /// A close with `code` and `reason` (cut to 123 bytes at a character boundary).
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        if reason.len() > 123 {
            let mut cut = 123;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        Self { code, reason }
    }

    /// 4400 with what was wrong.
    pub fn bad_message(detail: &str) -> Self {
        Self::new(Self::BAD_MESSAGE, format!("bad message: {detail}"))
    }

    /// 1009.
    pub fn too_big() -> Self {
        Self::new(Self::TOO_BIG, "message too big")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip() {
        let c = Chunk {
            offset: 0x0102_0304_0506_0708,
            data: Bytes::from_static(b"hello"),
        };
        assert_eq!(Chunk::parse(c.encode().into(), 5).unwrap(), c);
    }

    #[test]
    fn chunks_over_the_limit_are_too_big() {
        let c = Chunk {
            offset: 0,
            data: Bytes::from(vec![0; 6]),
        };
        assert_eq!(
            Chunk::parse(c.encode().into(), 5).unwrap_err().code,
            Close::TOO_BIG
        );
    }

    #[test]
    fn short_and_overflowing_chunks_are_bad() {
        assert_eq!(
            Chunk::parse(Bytes::from_static(&[0; 7]), 5)
                .unwrap_err()
                .code,
            Close::BAD_MESSAGE
        );
        let mut m = u64::MAX.to_be_bytes().to_vec();
        m.push(1);
        assert_eq!(
            Chunk::parse(m.into(), 5).unwrap_err().code,
            Close::BAD_MESSAGE
        );
    }

    #[test]
    fn control_messages_parse() {
        assert_eq!(
            parse_control(r#"{"type":"finish","length":12}"#).unwrap(),
            ClientMessage::Finish { length: 12 }
        );
        assert_eq!(
            parse_control(r#"{"type":"start","mimeType":"video/webm"}"#).unwrap(),
            ClientMessage::Start {
                mime_type: Some("video/webm".into()),
                payload: None
            }
        );
        assert!(parse_control(r#"{"type":"finish","length":-1}"#).is_err());
        assert!(parse_control(r#"{"type":"launch"}"#).is_err());
    }

    #[test]
    fn reasons_fit_a_close_frame() {
        let c = Close::new(4400, "é".repeat(100));
        assert!(c.reason.len() <= 123);
    }

    #[test]
    fn server_messages_are_camel_case() {
        let m = ServerMessage::Started {
            recording: "r".into(),
            resume_token: "t".into(),
            offset: 0,
            max_chunk: 9,
            max_duration_ms: None,
            collect: Vec::new(),
        };
        assert_eq!(
            m.to_json(),
            r#"{"type":"started","recording":"r","resumeToken":"t","offset":0,"maxChunk":9}"#
        );
        let limited = ServerMessage::Started {
            recording: "r".into(),
            resume_token: "t".into(),
            offset: 0,
            max_chunk: 9,
            max_duration_ms: Some(60_000),
            collect: vec!["cameraName".into(), "page".into()],
        };
        assert!(
            limited.to_json().ends_with(
                r#","maxChunk":9,"maxDurationMs":60000,"collect":["cameraName","page"]}"#
            )
        );
        assert_eq!(
            parse_control(r#"{"type":"describe","cameraName":"c","page":"p"}"#).unwrap(),
            ClientMessage::Describe {
                camera_name: Some("c".into()),
                microphone_name: None,
                page: Some("p".into()),
            }
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn encode_then_parse_gives_the_chunk_back(offset in 0u64..u64::MAX / 2, data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let chunk = Chunk { offset, data: Bytes::from(data) };
            prop_assert_eq!(Chunk::parse(chunk.encode().into(), 512).unwrap(), chunk);
        }

        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), limit in 0usize..64) {
            match Chunk::parse(Bytes::from(bytes.clone()), limit) {
                Ok(chunk) => prop_assert_eq!(chunk.encode(), bytes),
                Err(close) => prop_assert!(close.code == Close::TOO_BIG || close.code == Close::BAD_MESSAGE),
            }
        }

        #[test]
        fn control_parsing_never_panics(text in ".{0,200}") {
            let _ = parse_control(&text);
        }
    }
}
