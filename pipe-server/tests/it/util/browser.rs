//! Headless Chromium with its fake camera and microphone, driven by Playwright through
//! `tests/browser/drive.mjs`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

pub struct Driver;

/// A recording in progress in the browser; its events arrive as JSON lines.
pub struct BrowserRecording {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    pub seen: Vec<Value>,
}

fn node(args: &[&str]) -> Command {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/drive.mjs");
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    cmd
}

impl Driver {
    /// Opens `page`, clicks Record, records `seconds`, clicks Stop, waits for "saved".
    pub fn record(page: &str, seconds: u32) -> BrowserRecording {
        BrowserRecording::spawn(node(&["record", page, &seconds.to_string()]))
    }

    /// As [`Driver::record`], with Chromium trusting the certificate whose SPKI hash
    /// (base64 SHA-256) is `spki`, for a server with a test certificate.
    pub fn record_trusting(page: &str, seconds: u32, spki: &str) -> BrowserRecording {
        let mut cmd = node(&["record", page, &seconds.to_string()]);
        cmd.env("PIPE_CHROMIUM_SPKI", spki);
        BrowserRecording::spawn(cmd)
    }

    /// As [`Driver::record`], then waits for the page to play the recording back itself.
    pub fn record_and_watch(page: &str, seconds: u32) -> BrowserRecording {
        BrowserRecording::spawn(node(&["watch", page, &seconds.to_string()]))
    }

    /// Plays `media` in a `<video>` on `page`; the driver's final JSON line.
    pub async fn play(page: &str, media: &str) -> Value {
        let out = node(&["play", page, media]).output().await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.lines().last().unwrap_or("null")).unwrap()
    }
}

impl BrowserRecording {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("node runs the browser driver");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            _child: child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next event; panics if the driver failed or ended.
    pub async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(120), self.lines.next_line())
            .await
            .expect("the browser driver said nothing for 120 s")
            .unwrap()
            .unwrap_or_else(|| panic!("the browser driver ended; events: {:#?}", self.seen));
        let event: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("not JSON from the driver: {line}"));
        assert_ne!(
            event["event"], "failed",
            "the browser driver failed: {}\nevents: {:#?}",
            event["message"], self.seen
        );
        self.seen.push(event.clone());
        event
    }

    /// Waits for an event that passes `pred`.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let event = self.next().await;
            if pred(&event) {
                return event;
            }
        }
    }

    /// Waits for the final "done" event: recordingId, sha256, length, durationMs, reconnects.
    pub async fn done(mut self) -> Value {
        self.until(|e| e["event"] == "done").await
    }
}
