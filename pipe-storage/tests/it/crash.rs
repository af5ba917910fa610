//! A writer process killed with SIGKILL in the middle of appending loses nothing it
//! acknowledged, and leaves nothing but correct bytes behind.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipe_core::{RecordingId, Spool};

use crate::encrypted::open_spool;
use crate::pattern;

/// Tells a re-executed test binary to act as the writer:
/// `<dir>:<recording id>:<plain|encrypted>`.
const WRITER_ENV: &str = "PIPE_STORAGE_CRASH_WRITER";
/// What the writer prints after each acknowledged append, followed by the durable length.
const ACKED: &str = "acked ";
/// Chunk size of the writer: not a multiple of a page, so a kill can tear any write.
const CHUNK: usize = 100_003;

#[test]
fn acked_bytes_survive_sigkill() {
    acked_bytes_survive_sigkill_of(false);
}

#[test]
fn acked_bytes_survive_sigkill_of_an_encrypting_writer() {
    acked_bytes_survive_sigkill_of(true);
}

fn acked_bytes_survive_sigkill_of(encrypted: bool) {
    let dir = tempfile::tempdir().unwrap();
    let id = RecordingId::generate();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            WRITER_ENV,
            format!("{}:{id}:{encrypted}", dir.path().display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    // Let it acknowledge a few dozen appends, then kill it wherever it is.
    let mut acked = 0;
    let mut acks = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acks < 40 {
        assert!(
            Instant::now() < deadline,
            "the writer acknowledged only {acks} appends in 60 s"
        );
        let line = lines.next().expect("the writer exited early").unwrap();
        if let Some(len) = line.strip_prefix(ACKED) {
            let len: u64 = len.parse().unwrap();
            assert!(len > acked, "acknowledged lengths must grow");
            acked = len;
            acks += 1;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the writer was meant to be killed, but exited with {status}"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let spool = open_spool(dir.path(), encrypted).await;
        let entry = spool.stat(&id).await.unwrap();
        assert!(
            entry.len >= acked,
            "acknowledged {acked} bytes, {} survived",
            entry.len
        );
        let bytes = spool.read_at(&id, 0, entry.len as usize).await.unwrap();
        let bad = bytes
            .iter()
            .zip(pattern(0, bytes.len()))
            .position(|(got, want)| *got != want);
        assert_eq!(
            bad,
            None,
            "the spool holds a wrong byte (of {})",
            bytes.len()
        );

        // The client resumes from its last ack: the re-sent part is ignored, the rest added.
        let len = spool
            .append(&id, acked, pattern(acked, CHUNK))
            .await
            .unwrap();
        assert_eq!(len, entry.len.max(acked + CHUNK as u64));
        assert_eq!(
            spool.read_at(&id, 0, len as usize).await.unwrap(),
            pattern(0, len as usize)
        );
    });
}

/// The writer half of [`acked_bytes_survive_sigkill`], run in a child process by it.
#[test]
#[ignore = "run as a child process by crash::acked_bytes_survive_sigkill"]
fn writer() {
    // Not a test of its own: without the variable (`cargo test -- --include-ignored`)
    // there is nothing to do.
    let Ok(target) = std::env::var(WRITER_ENV) else {
        eprintln!("crash::writer only runs as the child of crash::acked_bytes_survive_sigkill");
        return;
    };
    let (rest, encrypted) = target.rsplit_once(':').unwrap();
    let (dir, id) = rest.rsplit_once(':').unwrap();
    let (dir, id): (PathBuf, RecordingId) = (dir.into(), id.parse().unwrap());
    let encrypted: bool = encrypted.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let spool = open_spool(&dir, encrypted).await;
        spool.create(&id).await.unwrap();
        let mut stdout = std::io::stdout().lock();
        let mut len = 0;
        // Bounded, so that an orphaned writer stops by itself.
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline && len < 64 << 20 {
            len = spool.append(&id, len, pattern(len, CHUNK)).await.unwrap();
            writeln!(stdout, "{ACKED}{len}")
                .and_then(|()| stdout.flush())
                .unwrap();
        }
    });
}
