//! Copies one large file into Pipe's S3 and SFTP sinks, and with rclone into the same
//! servers, and prints the time and the memory of both.
//!
//! `cargo bench -p pipe-storage --features test-servers --bench copy`
//! (or `benches/sinks-vs-rclone.sh` at the workspace's root, which installs rclone).
//!
//! For each target it starts the real test server of `pipe_storage::testing` (`s3s-fs`,
//! OpenSSH's `sshd` with `internal-sftp`), then, `PIPE_BENCH_COPY_RUNS` times, copies the
//! file with the sink ([`pipe_storage::put_file`], the path a finished recording takes)
//! and with `rclone copyto` (alternating which goes first), checks the copy (the
//! receipt's size and SHA-256, and the size of the file the server stored, which is then
//! deleted), and prints one line per copy and the medians.
//!
//! Memory: "ours" is the bench's process, which stands in for Pipe's server (the servers
//! are other processes and do not count); each target is measured in a fresh process of
//! its own, so that memory the allocator kept from one target's copies does not count
//! in the next's. Its peak is `VmHWM`, reset before each copy by
//! writing `5` to `/proc/self/clear_refs`, so it is the peak *during* that copy; the
//! growth is that peak minus `VmRSS` just before the copy. `VmRSS` is also sampled every
//! 50 ms as a cross-check. rclone's peak is its whole process's, from `/usr/bin/time`'s
//! `%M`.
//!
//! | variable | default | what |
//! |---|---|---|
//! | `PIPE_BENCH_COPY_MIB` | 1024 | size of the file made (incompressible bytes) |
//! | `PIPE_BENCH_COPY_FILE` | | copy this file instead of making one |
//! | `PIPE_BENCH_COPY_RUNS` | 3 | copies per tool and target; medians are printed |
//! | `PIPE_BENCH_COPY_TARGETS` | `s3,sftp` | which servers |
//! | `PIPE_BENCH_COPY_TOOLS` | `pipe,rclone` | which copiers |
//! | `PIPE_BENCH_RCLONE` | `rclone` | the rclone binary |
//! | `PIPE_BENCH_RCLONE_FLAGS` | | extra flags for every `rclone copyto` (split on spaces) |
//!
//! Besides the human lines it prints machine-readable ones:
//! `RESULT target=s3 tool=pipe bytes=… runs=… seconds=… mib_s=… cpu_s=… peak_rss_mib=…`
//! (medians; `peak_rss_mib` is the highest of the runs) and
//! `RATIO target=s3 seconds=… cpu_s=… peak_rss=…` (ours / rclone).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipe_core::{ObjectKey, PutOptions, SinkKind, StorageSink};
use pipe_storage::testing::{S3TestServer, SftpTestServer};
use pipe_storage::{ObjectStoreSink, SftpSink, put_file};
use sha2::{Digest, Sha256};

const MIB: f64 = 1024.0 * 1024.0;

/// Set in the process that measures one target (see [`main`]).
const CHILD: &str = "PIPE_BENCH_COPY_CHILD";
/// The source's SHA-256, handed to that process so that it need not hash the file again.
const SOURCE_SHA256: &str = "PIPE_BENCH_COPY_SOURCE_SHA256";

/// Makes (or hashes) the source, then measures each target in a process of its own: the
/// allocator keeps what one target's copies freed, which would otherwise count in the
/// next target's peak.
fn main() {
    let settings = Settings::from_env();
    if std::env::var_os(CHILD).is_some() {
        return measure(&settings);
    }
    let work = tempfile::Builder::new()
        .prefix("pipe-bench-copy")
        .tempdir()
        .expect("a temporary directory");
    let source = Source::new(&settings, work.path());
    println!(
        "copy of {} ({} bytes, {:.0} MiB), {} run(s) per tool and target, {} cores, load {}",
        source.path.display(),
        source.size,
        source.size as f64 / MIB,
        settings.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
    );
    println!(
        "SHA-256 (sha2, the hash of every receipt) runs at {:.0} MiB/s on one core here",
        sha256_mib_s()
    );
    if settings.rclone {
        let rclone = Rclone::new(&settings, work.path());
        println!(
            "rclone: {} ({}), flags: {}",
            rclone.binary,
            rclone.version(),
            rclone.flags.join(" ")
        );
    }
    let me = std::env::current_exe().expect("this bench's path");
    let mut summaries = Vec::new();
    for &target in &settings.targets {
        let mut child = Command::new(&me)
            .env(CHILD, "1")
            .env("PIPE_BENCH_COPY_TARGETS", target.to_string())
            .env("PIPE_BENCH_COPY_FILE", &source.path)
            .env(SOURCE_SHA256, &source.sha256)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start the bench for a target");
        let mut summary = Summary {
            target,
            ours: None,
            theirs: None,
        };
        let stdout = child.stdout.take().expect("the child's stdout");
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let line = line.expect("the child's output");
            println!("{line}");
            if let Some((tool, median)) = Median::parse(&line) {
                match tool.as_str() {
                    "pipe" => summary.ours = Some(median),
                    _ => summary.theirs = Some(median),
                }
            }
        }
        let status = child.wait().expect("the bench for a target");
        assert!(status.success(), "the bench for {target} failed: {status}");
        summaries.push(summary);
    }
    print_table(&summaries, source.size, settings.runs);
}

/// Copies the source to each target (one, when [`main`] starts this), printing each copy
/// and the `RESULT` and `RATIO` lines.
fn measure(settings: &Settings) {
    let work = tempfile::Builder::new()
        .prefix("pipe-bench-copy")
        .tempdir()
        .expect("a temporary directory");
    let source = Source::new(settings, work.path());
    let clock_ticks = clock_ticks();
    if !reset_peak_rss() {
        println!(
            "note: /proc/self/clear_refs refused the reset of VmHWM: our peak RSS is since the \
             process started"
        );
    }
    let rclone = settings.rclone.then(|| Rclone::new(settings, work.path()));
    // As Pipe's server runs: Tokio's multi-threaded runtime, a worker per core.
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    for &target in &settings.targets {
        let server = Server::start(target);
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for run in 1..=settings.runs {
            // Alternate, so that neither tool always runs on a warmer machine.
            let pipe_first = run % 2 == 1;
            for pass in 0..2 {
                let pipe_turn = (pass == 0) == pipe_first;
                if pipe_turn && settings.pipe {
                    let sample = copy_with_pipe(&runtime, &server, &source, run, clock_ticks);
                    println!("run {run}/{} {target} pipe:   {sample}", settings.runs);
                    ours.push(sample);
                } else if !pipe_turn && let Some(rclone) = &rclone {
                    let sample = rclone.copy(&server, &source, run);
                    println!("run {run}/{} {target} rclone: {sample}", settings.runs);
                    theirs.push(sample);
                }
            }
        }
        let summary = Summary {
            target,
            ours: Median::of(&ours),
            theirs: Median::of(&theirs),
        };
        summary.print_machine_lines(source.size, settings.runs);
    }
}

/// How fast `sha2` hashes here, in MiB/s (64 MiB in memory, best of 3).
fn sha256_mib_s() -> f64 {
    let data = vec![0x5au8; 64 * 1024 * 1024];
    let best = (0..3)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(Sha256::digest(std::hint::black_box(&data)));
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    64.0 / best
}

/// What to run, from the environment.
struct Settings {
    mib: u64,
    file: Option<PathBuf>,
    runs: usize,
    targets: Vec<Target>,
    pipe: bool,
    rclone: bool,
    rclone_binary: String,
    rclone_flags: Vec<String>,
}

impl Settings {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str, default: u64| {
            var(name).map_or(default, |v| {
                v.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number"))
            })
        };
        let list = |name: &str, default: &str| -> Vec<String> {
            var(name)
                .unwrap_or_else(|| default.to_owned())
                .split(',')
                .map(|item| item.trim().to_ascii_lowercase())
                .filter(|item| !item.is_empty())
                .collect()
        };
        let targets = list("PIPE_BENCH_COPY_TARGETS", "s3,sftp")
            .iter()
            .map(|name| match name.as_str() {
                "s3" => Target::S3,
                "sftp" => Target::Sftp,
                other => panic!("PIPE_BENCH_COPY_TARGETS: unknown target {other:?} (s3, sftp)"),
            })
            .collect();
        let tools = list("PIPE_BENCH_COPY_TOOLS", "pipe,rclone");
        for tool in &tools {
            assert!(
                tool == "pipe" || tool == "rclone",
                "PIPE_BENCH_COPY_TOOLS: unknown tool {tool:?} (pipe, rclone)"
            );
        }
        Self {
            mib: number("PIPE_BENCH_COPY_MIB", 1024).max(1),
            file: var("PIPE_BENCH_COPY_FILE").map(PathBuf::from),
            runs: usize::try_from(number("PIPE_BENCH_COPY_RUNS", 3).max(1)).unwrap_or(1),
            targets,
            pipe: tools.iter().any(|t| t == "pipe"),
            rclone: tools.iter().any(|t| t == "rclone"),
            rclone_binary: var("PIPE_BENCH_RCLONE").unwrap_or_else(|| "rclone".to_owned()),
            rclone_flags: var("PIPE_BENCH_RCLONE_FLAGS")
                .map(|flags| flags.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    S3,
    Sftp,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that the table's widths apply.
        f.pad(match self {
            Self::S3 => "s3",
            Self::Sftp => "sftp",
        })
    }
}

/// The file copied: its path, size and SHA-256.
struct Source {
    path: PathBuf,
    size: u64,
    sha256: String,
}

impl Source {
    fn new(settings: &Settings, work: &Path) -> Self {
        if let Some(path) = &settings.file {
            let (size, sha256) = match std::env::var(SOURCE_SHA256) {
                Ok(sha256) => (
                    std::fs::metadata(path).expect("the source file").len(),
                    sha256,
                ),
                Err(_) => hash_file(path),
            };
            return Self {
                path: path.clone(),
                size,
                sha256,
            };
        }
        let path = work.join("source.bin");
        let size = settings.mib * 1024 * 1024;
        let started = Instant::now();
        let sha256 = make_file(&path, size);
        println!(
            "made {} ({} MiB of incompressible bytes) in {:.1} s",
            path.display(),
            settings.mib,
            started.elapsed().as_secs_f64()
        );
        Self { path, size, sha256 }
    }
}

/// Writes `size` pseudo-random (incompressible) bytes to `path`, 1 MiB at a time, and
/// syncs them so that their write-back does not run during the copies. Returns their
/// SHA-256.
fn make_file(path: &Path, size: u64) -> String {
    let mut file = std::fs::File::create(path).expect("the source file");
    let mut hasher = Sha256::new();
    // SplitMix64: fast, and its output does not compress.
    let mut state: u64 = 0x5049_5045_2d42_454e;
    let mut block = vec![0u8; 1024 * 1024];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        let n = usize::try_from(left).map_or(block.len(), |left| left.min(block.len()));
        file.write_all(&block[..n])
            .expect("writing the source file");
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    file.sync_all().expect("syncing the source file");
    hex::encode(hasher.finalize())
}

/// The size and SHA-256 of the file at `path`.
fn hash_file(path: &Path) -> (u64, String) {
    let mut file = std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("PIPE_BENCH_COPY_FILE {}: {e}", path.display()));
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).expect("reading PIPE_BENCH_COPY_FILE");
    (size, hex::encode(hasher.finalize()))
}

/// A test server, and where what is copied to it lands on disk.
enum Server {
    S3(S3TestServer),
    Sftp(SftpTestServer),
}

impl Server {
    fn start(target: Target) -> Self {
        match target {
            Target::S3 => Self::S3(S3TestServer::start()),
            Target::Sftp => Self::Sftp(SftpTestServer::start()),
        }
    }

    /// Pipe's sink for it, with its default settings.
    fn sink(&self) -> Arc<dyn StorageSink> {
        match self {
            Self::S3(server) => {
                Arc::new(ObjectStoreSink::s3(&server.config(), SinkKind::S3).expect("the S3 sink"))
            }
            Self::Sftp(server) => {
                Arc::new(SftpSink::new(server.config(), SinkKind::Sftp).expect("the SFTP sink"))
            }
        }
    }

    /// The file the server keeps for `key`.
    fn stored(&self, key: &str) -> PathBuf {
        match self {
            Self::S3(server) => server.bucket_dir().join(key),
            Self::Sftp(server) => server.files_dir().join(key),
        }
    }

    /// rclone's name for `key` on this server.
    fn remote(&self, key: &str) -> String {
        match self {
            Self::S3(_) => format!("s3:{}/{key}", S3TestServer::BUCKET),
            Self::Sftp(server) => format!("sftp:{}/{key}", server.files_dir().display()),
        }
    }

    /// Checks that the server stored `size` bytes for `key`, then deletes them (so the
    /// disk holds one copy at a time, and its write-back does not slow the next run).
    fn check_and_remove(&self, key: &str, size: u64, tool: &str) {
        let stored = self.stored(key);
        let len = std::fs::metadata(&stored)
            .unwrap_or_else(|e| panic!("{tool}: the server has no {}: {e}", stored.display()))
            .len();
        assert_eq!(
            len,
            size,
            "{tool}: the server stored {len} bytes for {}, not {size}",
            stored.display()
        );
        std::fs::remove_file(&stored).expect("removing the stored copy");
    }
}

/// One copy's measurements.
#[derive(Clone, Copy)]
struct Sample {
    bytes: u64,
    seconds: f64,
    cpu_seconds: f64,
    /// The peak resident set of the copying process, in bytes.
    peak_rss: u64,
    /// For our copies: resident set just before the copy, and the highest sample during it.
    rss_before: Option<u64>,
    rss_sampled: Option<u64>,
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes in {:7.2} s = {:7.1} MiB/s, cpu {:6.2} s, peak RSS {:6.1} MiB",
            self.bytes,
            self.seconds,
            self.bytes as f64 / MIB / self.seconds,
            self.cpu_seconds,
            self.peak_rss as f64 / MIB,
        )?;
        if let (Some(before), Some(sampled)) = (self.rss_before, self.rss_sampled) {
            write!(
                f,
                " (+{:.1} MiB over the {:.1} MiB before; VmRSS sampled every 50 ms: max {:.1} MiB)",
                self.peak_rss.saturating_sub(before) as f64 / MIB,
                before as f64 / MIB,
                sampled as f64 / MIB,
            )?;
        }
        Ok(())
    }
}

/// Copies the source with Pipe's sink for `server`, in this process.
fn copy_with_pipe(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    source: &Source,
    run: usize,
    clock_ticks: f64,
) -> Sample {
    let name = format!("bench/pipe-{run}.bin");
    let key = ObjectKey::new(name.as_str()).expect("a valid key");
    sync_disks();
    let sink = server.sink();
    let rss_before = status_bytes("VmRSS");
    reset_peak_rss();
    let sampler = RssSampler::start();
    let cpu_before = cpu_seconds(clock_ticks);
    let started = Instant::now();
    let receipt = runtime
        .block_on(put_file(
            sink.as_ref(),
            &key,
            &source.path,
            PutOptions::default(),
        ))
        .unwrap_or_else(|e| panic!("pipe: the copy failed: {e}"));
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_seconds(clock_ticks) - cpu_before;
    let rss_sampled = sampler.stop();
    let peak_rss = status_bytes("VmHWM");
    drop(sink);
    assert_eq!(receipt.size, source.size, "pipe: the receipt's size");
    assert_eq!(receipt.sha256, source.sha256, "pipe: the receipt's SHA-256");
    server.check_and_remove(&name, source.size, "pipe");
    Sample {
        bytes: receipt.size,
        seconds,
        cpu_seconds,
        peak_rss,
        rss_before: Some(rss_before),
        rss_sampled: Some(rss_sampled),
    }
}

/// rclone, configured for both servers.
struct Rclone {
    binary: String,
    config: PathBuf,
    key_file: PathBuf,
    known_hosts: PathBuf,
    flags: Vec<String>,
    work: PathBuf,
}

impl Rclone {
    fn new(settings: &Settings, work: &Path) -> Self {
        assert!(
            Path::new("/usr/bin/time").is_file(),
            "/usr/bin/time is missing (Debian's `time` package): it measures rclone's peak RSS"
        );
        // Defaults but for: no progress output, and one attempt, so that a failure shows
        // rather than being retried into the timing.
        let mut flags: Vec<String> = ["--quiet", "--retries", "1"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        flags.extend(settings.rclone_flags.iter().cloned());
        Self {
            binary: settings.rclone_binary.clone(),
            config: work.join("rclone.conf"),
            key_file: work.join("rclone_sftp_key"),
            known_hosts: work.join("rclone_known_hosts"),
            flags,
            work: work.to_owned(),
        }
    }

    fn version(&self) -> String {
        Command::new(&self.binary)
            .arg("version")
            .output()
            .ok()
            .and_then(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| {
                panic!(
                    "cannot run {}: install rclone (benches/sinks-vs-rclone.sh does) or set \
                     PIPE_BENCH_RCLONE, or PIPE_BENCH_COPY_TOOLS=pipe",
                    self.binary
                )
            })
    }

    /// Writes rclone's configuration for `server` (remote `s3` or `sftp`).
    fn configure(&self, server: &Server) {
        let config = match server {
            Server::S3(server) => format!(
                "[s3]\ntype = s3\nprovider = Other\nenv_auth = false\n\
                 access_key_id = {}\nsecret_access_key = {}\nregion = us-east-1\n\
                 endpoint = {}\nforce_path_style = true\nno_check_bucket = true\n",
                S3TestServer::ACCESS_KEY,
                S3TestServer::SECRET_KEY,
                server.endpoint(),
            ),
            Server::Sftp(server) => {
                write_private(&self.key_file, server.private_key());
                // The test server keeps its host key beside the files' directory: pin it,
                // as our sink pins its fingerprint.
                let host_key = server
                    .files_dir()
                    .parent()
                    .map(|dir| dir.join("host_key.pub"))
                    .and_then(|path| std::fs::read_to_string(path).ok());
                let known_hosts = match host_key {
                    Some(key) => {
                        std::fs::write(
                            &self.known_hosts,
                            format!("[127.0.0.1]:{} {}\n", server.port(), key.trim()),
                        )
                        .expect("rclone's known hosts");
                        format!("known_hosts_file = {}\n", self.known_hosts.display())
                    }
                    None => String::new(),
                };
                // internal-sftp has no shell: no remote md5sum/sha1sum, hence no hash
                // check after the upload.
                format!(
                    "[sftp]\ntype = sftp\nhost = 127.0.0.1\nport = {}\nuser = {}\n\
                     key_file = {}\n{known_hosts}shell_type = none\ndisable_hashcheck = true\n",
                    server.port(),
                    server.user(),
                    self.key_file.display(),
                )
            }
        };
        std::fs::write(&self.config, config).expect("rclone's configuration");
    }

    /// `rclone copyto` of the source to `server`, under `/usr/bin/time`.
    fn copy(&self, server: &Server, source: &Source, run: usize) -> Sample {
        self.configure(server);
        let name = format!("bench/rclone-{run}.bin");
        let times = self.work.join("rclone.time");
        sync_disks();
        let started = Instant::now();
        let status = Command::new("/usr/bin/time")
            .args(["-f", "%e %U %S %M", "-o"])
            .arg(&times)
            .arg(&self.binary)
            .arg("copyto")
            .arg(&source.path)
            .arg(server.remote(&name))
            .arg("--config")
            .arg(&self.config)
            .args(&self.flags)
            // A CA bundle in the environment makes rclone's AWS SDK fail before it sends
            // anything ("unable to load custom CA bundle"); the server is plain HTTP.
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("cannot run /usr/bin/time");
        let seconds = started.elapsed().as_secs_f64();
        assert!(status.success(), "rclone copyto failed: {status}");
        let times = std::fs::read_to_string(&times).expect("/usr/bin/time's output");
        // The last line: `time` puts a note about the exit status before it if non-zero.
        let fields: Vec<f64> = times
            .lines()
            .last()
            .unwrap_or_default()
            .split_whitespace()
            .map(|f| f.parse().expect("/usr/bin/time's numbers"))
            .collect();
        let [_, user, system, max_rss_kib] = fields[..] else {
            panic!("unexpected output of /usr/bin/time: {times:?}");
        };
        server.check_and_remove(&name, source.size, "rclone");
        Sample {
            bytes: source.size,
            seconds,
            cpu_seconds: user + system,
            peak_rss: (max_rss_kib * 1024.0) as u64,
            rss_before: None,
            rss_sampled: None,
        }
    }
}

/// Writes `contents` to a new file only its owner reads (ssh refuses keys others can).
fn write_private(path: &Path, contents: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("rclone's key file");
    file.write_all(contents.as_bytes()).expect("rclone's key");
}

/// Medians of one tool's runs on one target; the peak RSS is the highest of them.
#[derive(Clone, Copy)]
struct Median {
    seconds: f64,
    mib_s: f64,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    growth_mib: Option<f64>,
}

impl Median {
    fn of(samples: &[Sample]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let median = |values: Vec<f64>| {
            let mut values = values;
            values.sort_by(f64::total_cmp);
            let mid = values.len() / 2;
            if values.len() % 2 == 1 {
                values[mid]
            } else {
                f64::midpoint(values[mid - 1], values[mid])
            }
        };
        let seconds = median(samples.iter().map(|s| s.seconds).collect());
        let growth = samples
            .iter()
            .filter_map(|s| s.rss_before.map(|before| s.peak_rss.saturating_sub(before)))
            .max();
        Some(Self {
            seconds,
            mib_s: samples[0].bytes as f64 / MIB / seconds,
            cpu_seconds: median(samples.iter().map(|s| s.cpu_seconds).collect()),
            peak_rss_mib: samples.iter().map(|s| s.peak_rss).max().unwrap_or(0) as f64 / MIB,
            growth_mib: growth.map(|g| g as f64 / MIB),
        })
    }
}

impl Median {
    /// The tool and medians of a `RESULT` line.
    fn parse(line: &str) -> Option<(String, Self)> {
        let fields: std::collections::HashMap<&str, &str> = line
            .strip_prefix("RESULT ")?
            .split_whitespace()
            .filter_map(|field| field.split_once('='))
            .collect();
        let number = |name: &str| fields.get(name)?.parse::<f64>().ok();
        Some((
            (*fields.get("tool")?).to_owned(),
            Self {
                seconds: number("seconds")?,
                mib_s: number("mib_s")?,
                cpu_seconds: number("cpu_s")?,
                peak_rss_mib: number("peak_rss_mib")?,
                growth_mib: number("rss_growth_mib"),
            },
        ))
    }
}

struct Summary {
    target: Target,
    ours: Option<Median>,
    theirs: Option<Median>,
}

impl Summary {
    fn print_machine_lines(&self, bytes: u64, runs: usize) {
        for (tool, median) in [("pipe", self.ours), ("rclone", self.theirs)] {
            let Some(m) = median else { continue };
            let growth = m
                .growth_mib
                .map(|g| format!(" rss_growth_mib={g:.1}"))
                .unwrap_or_default();
            println!(
                "RESULT target={} tool={tool} bytes={bytes} runs={runs} seconds={:.3} \
                 mib_s={:.1} cpu_s={:.2} peak_rss_mib={:.1}{growth}",
                self.target, m.seconds, m.mib_s, m.cpu_seconds, m.peak_rss_mib,
            );
        }
        if let (Some(ours), Some(theirs)) = (self.ours, self.theirs) {
            println!(
                "RATIO target={} seconds={:.3} cpu_s={:.3} peak_rss={:.3}",
                self.target,
                ours.seconds / theirs.seconds,
                ours.cpu_seconds / theirs.cpu_seconds,
                ours.peak_rss_mib / theirs.peak_rss_mib,
            );
        }
    }
}

fn print_table(summaries: &[Summary], bytes: u64, runs: usize) {
    println!();
    println!(
        "{:.0} MiB, median of {runs} run(s); peak RSS: the highest of the runs (ours: this \
         process during the copy; rclone: its process)",
        bytes as f64 / MIB
    );
    println!(
        "{:<6} {:<12} {:>9} {:>9} {:>9} {:>13} {:>12}",
        "target", "tool", "seconds", "MiB/s", "cpu s", "peak RSS MiB", "growth MiB"
    );
    for summary in summaries {
        for (tool, median) in [("pipe", summary.ours), ("rclone", summary.theirs)] {
            let Some(m) = median else { continue };
            println!(
                "{:<6} {:<12} {:>9.2} {:>9.1} {:>9.2} {:>13.1} {:>12}",
                summary.target,
                tool,
                m.seconds,
                m.mib_s,
                m.cpu_seconds,
                m.peak_rss_mib,
                m.growth_mib
                    .map_or_else(|| "-".to_owned(), |g| format!("{g:.1}")),
            );
        }
        if let (Some(ours), Some(theirs)) = (summary.ours, summary.theirs) {
            println!(
                "{:<6} {:<12} {:>9.3} {:>9.3} {:>9.3} {:>13.3} {:>12}",
                summary.target,
                "ours/rclone",
                ours.seconds / theirs.seconds,
                ours.mib_s / theirs.mib_s,
                ours.cpu_seconds / theirs.cpu_seconds,
                ours.peak_rss_mib / theirs.peak_rss_mib,
                "",
            );
        }
    }
}

/// Samples this process's `VmRSS` every 50 ms on a thread of its own.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl RssSampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut max = 0;
                loop {
                    max = max.max(status_bytes("VmRSS"));
                    if stop.load(Ordering::Relaxed) {
                        return max;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        Self { stop, thread }
    }

    /// The highest `VmRSS` seen, in bytes.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the RSS sampler")
    }
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Resets `VmHWM` to the current `VmRSS` (Linux 4.0 and later); whether it could.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// User and system CPU time of this process (all its threads), in seconds.
fn cpu_seconds(clock_ticks: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // After the command's name (in parentheses, which may hold spaces): state is field 3,
    // utime 14 and stime 15.
    let rest = &stat[stat.rfind(')').expect("/proc/self/stat's name") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields[i - 3].parse::<f64>().expect("a number of ticks");
    (ticks(14) + ticks(15)) / clock_ticks
}

/// `CLK_TCK`, the unit of `/proc/self/stat`'s times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Flushes dirty pages (the previous copy's), so that their write-back does not land in
/// the next copy's time.
fn sync_disks() {
    let _ = Command::new("sync").status();
}
