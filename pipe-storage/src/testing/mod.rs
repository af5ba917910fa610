//! Real servers for tests, started on loopback: for this crate's tests and for those of
//! crates that use it (feature `test-servers`): an S3 server, OpenSSH's SFTP, vsftpd with
//! TLS, Azurite, fake-gcs-server, PostgreSQL (for the catalog on PostgreSQL), and a
//! stand-in for Dropbox (whose service cannot be reached from here).

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Sha256;

mod dropbox;
mod ftps;
mod gcs;
mod postgres;

pub use self::dropbox::DropboxStandIn;
pub use self::ftps::FtpsTestServer;
pub use self::gcs::GcsTestServer;
pub use self::postgres::PostgresTestServer;

use crate::{AzureConfig, S3Config, SftpAuth, SftpConfig};

/// An `s3s-fs` process (an S3 server that checks SigV4 signatures and `x-amz-checksum-*`
/// headers, and keeps objects as files) serving a temporary directory on a free loopback
/// port, with one bucket; killed when dropped.
///
/// The binary is `PIPE_S3S_FS`, else `s3s-fs` on the `PATH` or in cargo's `bin`
/// (`cargo xtask test` installs it). A test that cannot find it fails: it is never
/// skipped.
#[derive(Debug)]
pub struct S3TestServer {
    daemon: Daemon,
    root: tempfile::TempDir,
    endpoint: String,
}

impl S3TestServer {
    /// The access key the server accepts.
    pub const ACCESS_KEY: &str = "pipe-test-access-key";
    /// Its secret.
    pub const SECRET_KEY: &str = "pipe-test-secret-key-0123456789";
    /// The bucket it has.
    pub const BUCKET: &str = "recordings";

    /// Starts a server and waits until it listens.
    pub fn start() -> Self {
        let root = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(root.path().join(Self::BUCKET)).expect("the bucket's directory");
        let port = free_port();
        let mut args: Vec<OsString> = [
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            Self::ACCESS_KEY,
            "--secret-key",
            Self::SECRET_KEY,
        ]
        .iter()
        .map(OsString::from)
        .collect();
        args.push(root.path().into());
        Self {
            daemon: Daemon::start("s3s-fs", s3s_fs(), args, port),
            root,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Stops the server; its objects and uploads stay for [`S3TestServer::restart`].
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Starts the stopped server again, on the same port, over the same files.
    pub fn restart(&mut self) {
        self.daemon.restart();
    }

    /// The server's URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Where the objects of the bucket are, as files.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(Self::BUCKET)
    }

    /// Its directory: the buckets, and the files of uploads in progress.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A config for the bucket, with the server's credentials.
    pub fn config(&self) -> S3Config {
        S3Config::new(Self::BUCKET, "us-east-1")
            .with_endpoint(&self.endpoint)
            .with_credentials(Self::ACCESS_KEY, Self::SECRET_KEY)
    }

    /// The files of multipart uploads begun and neither completed nor aborted.
    pub fn uploads_in_progress(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path())
            .expect("the server's directory")
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".upload"))
            .collect()
    }
}

/// OpenSSH's `sshd` on a free loopback port, serving SFTP (`internal-sftp`) to the user
/// running the tests, who logs in with a key made for it; killed when dropped. Its
/// configuration, keys and files live in a temporary directory.
#[derive(Debug)]
pub struct SftpTestServer {
    daemon: Daemon,
    dir: tempfile::TempDir,
    port: u16,
    user: String,
    host_key: String,
    client_key: String,
}

impl SftpTestServer {
    /// Starts `sshd` and waits until it listens. Needs OpenSSH's server (`cargo xtask test`
    /// installs it) and, for `sshd`'s privilege separation, `/run/sshd`.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = |name: &str| dir.path().join(name);
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "pipe-test", "-f"])
                .arg(path(key)));
        }
        std::fs::copy(path("client_key.pub"), path("authorized_keys"))
            .expect("the authorized keys");
        std::fs::create_dir(path("files")).expect("the files' directory");
        // The password login is a local user's (see `password_config`): when there is
        // one, it owns the files and reaches them through the (0700) temporary directory.
        if password_user_exists() {
            run(Command::new("chmod").arg("755").arg(dir.path()));
            run(Command::new("chown")
                .arg(crate::testing::FtpsTestServer::USER)
                .arg(path("files")));
        }
        let fingerprint = output(
            Command::new("ssh-keygen")
                .args(["-l", "-E", "sha256", "-f"])
                .arg(path("host_key.pub")),
        );
        let host_key = fingerprint
            .split_whitespace()
            .nth(1)
            .expect("ssh-keygen -l prints the fingerprint second")
            .to_owned();
        let user = output(Command::new("id").arg("-un")).trim().to_owned();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile none\n\
             AuthorizedKeysFile {keys}\nPasswordAuthentication yes\nPermitEmptyPasswords no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             StrictModes no\nUsePAM no\nSubsystem sftp internal-sftp\nLogLevel ERROR\n",
            host = path("host_key").display(),
            keys = path("authorized_keys").display(),
        );
        std::fs::write(path("sshd_config"), config).expect("sshd's configuration");
        // sshd's privilege separation directory (made by the Debian package's service,
        // which does not run here).
        let _ = std::fs::create_dir_all("/run/sshd");
        let daemon = Daemon::start(
            "sshd",
            "/usr/sbin/sshd".into(),
            vec![
                "-D".into(),
                "-e".into(),
                "-f".into(),
                path("sshd_config").into(),
            ],
            port,
        );
        let client_key =
            std::fs::read_to_string(path("client_key")).expect("the client's private key");
        Self {
            daemon,
            dir,
            port,
            user,
            host_key,
            client_key,
        }
    }

    /// The directory the tests' objects go under.
    pub fn files_dir(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// Stops the server; its files stay for [`SftpTestServer::restart`].
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Starts the stopped server again, on the same port, with the same keys and files.
    pub fn restart(&mut self) {
        self.daemon.restart();
    }

    /// The host key's fingerprint (`SHA256:…`).
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user that logs in.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// A config for the server logging in with a password: the local user of the FTPS
    /// tests ([`FtpsTestServer::USER`](crate::testing::FtpsTestServer::USER), no shell,
    /// made by `cargo xtask test`), which owns [`SftpTestServer::files_dir`].
    pub fn password_config(&self) -> SftpConfig {
        assert!(
            password_user_exists(),
            "the user {} does not exist: `cargo xtask test` makes it",
            crate::testing::FtpsTestServer::USER
        );
        SftpConfig::new(
            "127.0.0.1",
            crate::testing::FtpsTestServer::USER,
            SftpAuth::Password(crate::testing::FtpsTestServer::PASSWORD.into()),
            &self.host_key,
        )
        .with_port(self.port)
        .with_folder(self.files_dir().to_string_lossy())
    }

    /// The user's private key (OpenSSH's format).
    pub fn private_key(&self) -> &str {
        &self.client_key
    }

    /// A config for the server: the user with its key, the pinned host key, and
    /// [`SftpTestServer::files_dir`] as the folder.
    pub fn config(&self) -> SftpConfig {
        SftpConfig::new(
            "127.0.0.1",
            &self.user,
            SftpAuth::Key {
                private_key: self.client_key.clone(),
                passphrase: None,
            },
            &self.host_key,
        )
        .with_port(self.port)
        .with_folder(self.files_dir().to_string_lossy())
    }
}

/// Azurite's Blob service (Microsoft's emulator of Azure Blob Storage) on a free loopback
/// port, with one container; killed when dropped.
///
/// The binary is `PIPE_AZURITE_BLOB`, else `azurite-blob` where `cargo xtask test`
/// installs it (`~/.cache/pipe/servers/node_modules/.bin`).
#[derive(Debug)]
pub struct AzureTestServer {
    daemon: Daemon,
    _dir: tempfile::TempDir,
    port: u16,
}

impl AzureTestServer {
    /// The emulator's account.
    pub const ACCOUNT: &str = "devstoreaccount1";
    /// Its well-known key (published by Microsoft for the emulator).
    pub const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    /// The container it has.
    pub const CONTAINER: &str = "recordings";

    /// Starts Azurite, waits until it listens, and makes the container.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let mut args: Vec<OsString> = ["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()]
            .iter()
            .map(OsString::from)
            .collect();
        args.extend(["--location".into(), dir.path().into()]);
        args.extend(
            ["--silent", "--disableTelemetry", "--skipApiVersionCheck"]
                .iter()
                .map(OsString::from),
        );
        let server = Self {
            daemon: Daemon::start("azurite-blob", azurite_blob(), args, port),
            _dir: dir,
            port,
        };
        server.create_container();
        server
    }

    /// Stops the emulator; what it stored stays (in its `--location`) for
    /// [`AzureTestServer::restart`]. Azurite keeps its containers in memory and saves
    /// them every few seconds, so it is shut down rather than killed: a container made
    /// just before would be lost.
    pub fn stop(&mut self) {
        self.daemon.stop_gracefully();
    }

    /// Starts the stopped emulator again, on the same port, over the same store.
    pub fn restart(&mut self) {
        self.daemon.restart();
    }

    /// The account's address on the emulator (`http://127.0.0.1:<port>/<account>`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, Self::ACCOUNT)
    }

    /// A config for the container, with the emulator's key.
    pub fn config(&self) -> AzureConfig {
        AzureConfig::new(Self::ACCOUNT, Self::CONTAINER)
            .with_access_key(Self::KEY)
            .with_endpoint(self.endpoint())
    }

    /// `PUT ?restype=container`, signed with the account's key (object_store makes no
    /// containers, and the emulator starts with none).
    fn create_container(&self) {
        use base64::Engine as _;
        use hmac::{Hmac, Mac};
        use std::io::{Read, Write};

        let date = http_date(std::time::SystemTime::now());
        let version = "2021-08-06";
        let path = format!("/{}/{}", Self::ACCOUNT, Self::CONTAINER);
        // Verb, then eleven standard headers left empty, then the x-ms- headers and the
        // resource (the account, then the path-style URL's path) with its query.
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{}{path}\nrestype:container",
            Self::ACCOUNT
        );
        let key = base64::engine::general_purpose::STANDARD
            .decode(Self::KEY)
            .expect("the emulator's key is base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
        mac.update(to_sign.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let request = format!(
            "PUT {path}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             x-ms-date: {date}\r\nx-ms-version: {version}\r\nContent-Length: 0\r\n\
             Authorization: SharedKey {}:{signature}\r\nConnection: close\r\n\r\n",
            self.port,
            Self::ACCOUNT
        );
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("azurite listens");
        stream.write_all(request.as_bytes()).expect("the request");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.1 201"),
            "azurite did not make the container: {answer}"
        );
    }
}

/// `time` as an HTTP date (RFC 9110's IMF-fixdate), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The `azurite-blob` binary: `PIPE_AZURITE_BLOB`, else where `cargo xtask test`
/// installs it.
fn azurite_blob() -> PathBuf {
    if let Some(path) = std::env::var_os("PIPE_AZURITE_BLOB") {
        return path.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    let path = Path::new(&home).join(".cache/pipe/servers/node_modules/.bin/azurite-blob");
    assert!(
        path.exists(),
        "azurite is not installed: `cargo xtask test` installs it (or set PIPE_AZURITE_BLOB)"
    );
    path
}

/// Whether the local user with a password of the tests exists (and can be used: only root
/// can hand it the files).
fn password_user_exists() -> bool {
    let root = output(Command::new("id").arg("-u")).trim() == "0";
    root && Command::new("id")
        .arg(crate::testing::FtpsTestServer::USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A server's command line and its process, which the tests may stop and start again
/// on the same port.
#[derive(Debug)]
struct Daemon {
    what: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
    port: u16,
    process: Option<Process>,
}

impl Daemon {
    /// Starts `program` and waits until it listens on `port`.
    fn start(what: &'static str, program: PathBuf, args: Vec<OsString>, port: u16) -> Self {
        let mut daemon = Self {
            what,
            program,
            args,
            port,
            process: None,
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.what));
        self.process = Some(Process(child));
        wait_for(self.port, self.what);
    }

    /// Kills it (and waits until the port is closed).
    fn stop(&mut self) {
        self.process = None;
    }

    /// Asks it to shut down (SIGTERM), so that it saves what it keeps in memory; kills it
    /// if it has not exited within 10 s.
    fn stop_gracefully(&mut self) {
        if let Some(mut process) = self.process.take() {
            let asked = Command::new("kill")
                .args(["-TERM", &process.0.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            let deadline = Instant::now() + Duration::from_secs(10);
            while asked && Instant::now() < deadline {
                if matches!(process.0.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(process);
        }
    }

    /// Kills it if it runs, and starts it again.
    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

/// A server's process, killed (and reaped) when dropped.
#[derive(Debug)]
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(command: &mut Command) {
    let status = command.status().expect("cannot run a setup command");
    assert!(status.success(), "{command:?} failed: {status}");
}

fn output(command: &mut Command) -> String {
    let out = command.output().expect("cannot run a setup command");
    assert!(out.status.success(), "{command:?} failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_for(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `s3s-fs` binary: `PIPE_S3S_FS`, else on the `PATH`, else in cargo's `bin`.
fn s3s_fs() -> PathBuf {
    if let Some(path) = std::env::var_os("PIPE_S3S_FS") {
        return path.into();
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin"));
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join("s3s-fs"))
        .find(|candidate| candidate.is_file())
        .expect("s3s-fs is not installed: `cargo xtask test` installs it (or set PIPE_S3S_FS)")
}
