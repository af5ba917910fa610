//! A real MediaRecorder recording: headless Chromium with its fake camera and microphone
//! records for 3 s and uploads the WebM to a one-page HTTP server on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PAGE: &str = r#"<!doctype html><html><body><script>
(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: true});
  const recorder = new MediaRecorder(stream, {mimeType: 'video/webm;codecs=vp8,opus'});
  const chunks = [];
  recorder.ondataavailable = e => chunks.push(e.data);
  recorder.onstop = () => fetch('/upload', {method: 'POST', body: new Blob(chunks)});
  recorder.start(500);
  setTimeout(() => recorder.stop(), 3000);
})();
</script></body></html>"#;

/// Records a WebM with Chromium's MediaRecorder into `dir` and returns its path.
pub fn record(dir: &Path) -> PathBuf {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if let Some(upload) = serve(stream) {
                let _ = tx.send(upload);
                return;
            }
        }
    });

    let profile = dir.join("chromium-profile");
    let mut browser = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium runs");
    let upload = rx.recv_timeout(Duration::from_secs(60));
    let _ = browser.kill();
    let _ = browser.wait();
    let upload = upload.expect("Chromium uploaded a recording within 60 s");
    let path = dir.join("mediarecorder.webm");
    std::fs::write(&path, upload).unwrap();
    path
}

/// Answers one HTTP/1.1 request: the page for a GET, `Some(body)` for the upload.
fn serve(stream: TcpStream) -> Option<Vec<u8>> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    if request_line.starts_with("POST /upload") {
        let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        return Some(body);
    }
    let (status, content) = if request_line.starts_with("GET / ") {
        ("200 OK", PAGE)
    } else {
        ("404 Not Found", "")
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{content}",
        content.len()
    );
    None
}
