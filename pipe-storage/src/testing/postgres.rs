//! [`PostgresTestServer`]: a PostgreSQL cluster of its own on loopback.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, output};

/// A real PostgreSQL server: a fresh cluster (`initdb`) in a temporary directory, and
/// `postgres` serving it on a free loopback port, where the superuser `postgres` logs in
/// without a password (`trust`); stopped, and its directory removed, when dropped.
///
/// Tests use one database each: [`PostgresTestServer::create_database`] makes a fresh
/// one and gives its URL.
///
/// The server runs with `fsync`, `synchronous_commit` and `full_page_writes` off: the
/// tests do not test PostgreSQL's own durability, and it starts and writes faster so.
/// The cluster has the `C` locale and UTF-8 encoding, whatever the machine's locale.
/// Its log is `postgres.log` in the temporary directory; a server that does not start
/// panics with the log's last lines.
///
/// The binaries (`initdb`, `postgres`, `pg_isready`, `createdb`) are those in the
/// directory `PIPE_POSTGRES_BIN`, else in the highest-numbered
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout; `cargo xtask test` installs
/// PostgreSQL and sets `PIPE_POSTGRES_BIN`). A test that cannot find them fails: it is
/// never skipped.
///
/// PostgreSQL refuses to run as root: when the tests do, the cluster belongs to, and the
/// server runs as, the system user `postgres` (which Debian's package makes), and the
/// temporary directory (under `TMPDIR`, else `/tmp`) must be reachable by that user.
#[derive(Debug)]
pub struct PostgresTestServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    process: Option<Child>,
}

impl PostgresTestServer {
    /// Makes a cluster, starts the server, and waits (at most 30 s) until it accepts
    /// connections.
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let owner = server_user();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("the temporary directory handed to the user postgres");
        }
        let data = dir.path().join("data");
        let as_owner = |program: &str| {
            let mut command = Command::new(bin.join(program));
            command.current_dir(dir.path());
            if let Some((uid, gid)) = owner {
                command.uid(uid).gid(gid);
            }
            command
        };

        let initdb = as_owner("initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.join("initdb").display()));
        assert!(
            initdb.status.success(),
            "initdb failed ({}):\n{}{}",
            initdb.status,
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        );

        let port = free_port();
        let log = File::create(dir.path().join("postgres.log")).expect("the server's log");
        let settings = [
            "listen_addresses=127.0.0.1".to_owned(),
            format!("port={port}"),
            format!("unix_socket_directories={}", dir.path().display()),
            "fsync=off".to_owned(),
            "synchronous_commit=off".to_owned(),
            "full_page_writes=off".to_owned(),
            "logging_collector=off".to_owned(),
        ];
        let process = as_owner("postgres")
            .arg("-D")
            .arg(&data)
            .args(settings.iter().flat_map(|setting| ["-c", setting]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.join("postgres").display()));
        let mut server = Self {
            bin,
            dir,
            port,
            process: Some(process),
        };
        server.wait_until_ready();
        server
    }

    /// The URL of the database `postgres` (`postgres://postgres@127.0.0.1:<port>/postgres`).
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// Makes a fresh, empty database with a random name (`t_` and 16 hex digits) and
    /// gives its URL.
    pub fn create_database(&self) -> String {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).expect("random bytes");
        let name = format!("t_{}", hex::encode(random));
        let created = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg(&name)
            .output()
            .expect("cannot run createdb");
        assert!(
            created.status.success(),
            "createdb {name} failed ({}): {}",
            created.status,
            String::from_utf8_lossy(&created.stderr)
        );
        self.database_url(&name)
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the PostgreSQL binaries it runs, where the tests find `psql`
    /// and the like of the same version.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// Stops the server at once (an immediate shutdown, as `pg_ctl -m immediate` does:
    /// SIGQUIT; killed if it has not exited within 10 s), and waits until it has exited:
    /// its port is closed. It is not started again; its directory goes when it is
    /// dropped.
    pub fn stop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        if matches!(process.try_wait(), Ok(Some(_))) {
            return;
        }
        let asked = Command::new("kill")
            .args(["-QUIT", &process.id().to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while asked && Instant::now() < deadline {
            if matches!(process.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = process.kill();
        let _ = process.wait();
    }

    fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Polls `pg_isready` until the server accepts connections; panics with the log's
    /// tail if it exits first or is not ready within 30 s.
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(Ok(Some(status))) = self.process.as_mut().map(Child::try_wait) {
                panic!(
                    "postgres exited ({status}) before accepting connections:\n{}",
                    self.log_tail()
                );
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "postgres"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not accept connections within 30 s:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the server's log.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for PostgresTestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The directory of the PostgreSQL binaries: `PIPE_POSTGRES_BIN`, else the
/// highest-numbered `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PIPE_POSTGRES_BIN") {
        return dir.into();
    }
    std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .expect(
            "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb): install \
             PostgreSQL: `cargo xtask test` does (or set PIPE_POSTGRES_BIN)",
        )
}

/// The uid and gid of the system user `postgres` when the tests run as root (PostgreSQL
/// will not), else `None`: the server runs as the current user.
fn server_user() -> Option<(u32, u32)> {
    if output(Command::new("id").arg("-u")).trim() != "0" {
        return None;
    }
    let id = |flag: &str| {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("cannot run id");
        assert!(
            out.status.success(),
            "PostgreSQL will not run as root, and there is no user postgres to run it: \
             install PostgreSQL: `cargo xtask test` does"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("id prints a number")
    };
    Some((id("-u"), id("-g")))
}
