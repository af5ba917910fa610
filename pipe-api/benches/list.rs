//! Latency of `GET /v1/recordings` over HTTP, against a real SQLite catalog of 100,000
//! recordings.
//!
//! Run it (the `bench` profile, i.e. release):
//!
//! ```text
//! export CARGO_TARGET_DIR=$HOME/.cache/pipe/target
//! cargo bench -p pipe-api --bench list
//! ```
//!
//! What it does:
//!
//! 1. Opens a [`SqliteCatalog`] in a temporary directory (`$TMPDIR`, so the file is on the
//!    disk it names, fsync'd at every commit as in production), makes two environments
//!    (`alpha`, `beta`) and fills it with 100,000 recordings, alternating between them,
//!    through [`Catalog::create_recording`], several at once on tokio tasks. The fill
//!    time is printed; it is bound by the fsync of each commit, not by the API.
//! 2. Mints an admin key, stores it, and serves [`Api::router`] (rate limit effectively
//!    off) with `axum::serve` on `127.0.0.1:0`.
//! 3. With one `reqwest` client (one keep-alive connection, requests one after another)
//!    times, from sending the request to the last byte of the body:
//!    - the first page, `GET /v1/recordings` (default limit, 100);
//!    - a deep page: `next_cursor` followed 500 times with `limit=100`, i.e. the page
//!      after the first 50,000 recordings, then that page's URL requested again and again;
//!    - the same two with `?environment=alpha` (50,000 recordings; its deep page is the
//!      deepest one still holding recordings within 500 pages, so never an empty one).
//!
//!    Each gets 200 warm-up requests, then 2,000 timed ones; the table gives p50, p90,
//!    p99 and max in milliseconds, and the body size.
//!
//! The goal is p99 < 20 ms for each row. Client and server share the machine (and its
//! cores), so the numbers include the client's work and are an upper bound for the
//! server's.
//!
//! For a quick run, `PIPE_BENCH_RECORDINGS` sets the number of recordings and
//! `PIPE_BENCH_FILL_TASKS` the number of concurrent writers (default 4, the catalog's
//! pool size).

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use pipe_api::{Api, RateLimit, mint_key};
use pipe_core::{
    ApiKeyStore, Catalog, EnvironmentId, EnvironmentStore, NewEnvironment, NewRecording, Role,
};
use pipe_lifecycle::SqliteCatalog;
use serde_json::Value;

type BoxError = Box<dyn Error + Send + Sync>;

/// Recordings in the catalog (unless `PIPE_BENCH_RECORDINGS` says otherwise).
const RECORDINGS: usize = 100_000;
/// The environments the recordings alternate between.
const ENVIRONMENTS: [&str; 2] = ["alpha", "beta"];
/// Concurrent `create_recording` calls while filling (unless `PIPE_BENCH_FILL_TASKS`).
const FILL_TASKS: usize = 4;
/// How many times the deep page's cursor is followed from the first page.
const DEEP_PAGES: usize = 500;
/// Requests before timing starts.
const WARM_UP: usize = 200;
/// Timed requests per row.
const TIMED: usize = 2_000;
/// The goal for every row.
const GOAL_P99_MS: f64 = 20.0;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let recordings = env_usize("PIPE_BENCH_RECORDINGS", RECORDINGS)?;
    let fill_tasks = env_usize("PIPE_BENCH_FILL_TASKS", FILL_TASKS)?.max(1);
    print_machine();
    println!("goal: p99 < {GOAL_P99_MS} ms for every row");
    if cfg!(debug_assertions) {
        println!("warning: built with debug assertions; run with `cargo bench` for release");
    }

    let dir = tempfile::tempdir()?;
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("catalog.sqlite")).await?);
    let environments: Vec<EnvironmentId> = ENVIRONMENTS
        .iter()
        .map(|e| e.parse())
        .collect::<Result<_, _>>()?;
    for env in &environments {
        catalog
            .create_environment(NewEnvironment::new(env.clone()))
            .await?;
    }

    let fill = fill(&catalog, &environments, recordings, fill_tasks).await?;
    println!(
        "fill: {recordings} recordings via Catalog::create_recording, {fill_tasks} tasks, in {}: {:.1} s ({:.0} recordings/s)",
        dir.path().display(),
        fill.as_secs_f64(),
        recordings as f64 / fill.as_secs_f64()
    );

    let minted = mint_key("bench", Role::Admin, vec![]);
    catalog.create_api_key(minted.record).await?;
    let router: axum::Router = Api::builder(catalog.clone(), catalog.clone(), catalog.clone())
        .rate_limit(RateLimit::new(1e9, u32::MAX))
        .build()
        .router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/v1/recordings", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let client = Client {
        http: reqwest::Client::builder().no_proxy().build()?,
        auth: format!("Bearer {}", minted.key),
    };
    let env = &environments[0];
    let mut rows = Vec::new();
    for (name, first, paged) in [
        ("all", base.clone(), format!("{base}?limit=100")),
        (
            env.as_str(),
            format!("{base}?environment={env}"),
            format!("{base}?environment={env}&limit=100"),
        ),
    ] {
        rows.push(
            client
                .measure(format!("first page, {name}"), &first)
                .await?,
        );
        let (deep, depth, skipped) = client.deep_page(&paged).await?;
        rows.push(
            client
                .measure(format!("page {} ({skipped} in), {name}", depth + 1), &deep)
                .await?,
        );
    }

    println!();
    println!(
        "GET /v1/recordings, {recordings} recordings in {} environments; {WARM_UP} warm-up + {TIMED} timed requests per row, sequential, one keep-alive connection",
        environments.len()
    );
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "request", "p50 ms", "p90 ms", "p99 ms", "max ms", "bytes", "p99 goal"
    );
    let mut all_met = true;
    for row in &rows {
        let met = row.p99 < GOAL_P99_MS;
        all_met &= met;
        println!(
            "{:<32} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8} {:>9}",
            row.name,
            row.p50,
            row.p90,
            row.p99,
            row.max,
            row.bytes,
            if met { "met" } else { "MISSED" }
        );
    }
    println!(
        "goal p99 < {GOAL_P99_MS} ms: {}",
        if all_met {
            "met by every row"
        } else {
            "missed"
        }
    );
    catalog.close().await;
    Ok(())
}

/// The number in the environment variable `name`, or `default` when it is unset.
fn env_usize(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name) {
        Ok(v) => Ok(v
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|e| format!("{name}={v}: {e}"))?),
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(e) => Err(format!("{name}: {e}").into()),
    }
}

fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    println!(
        "machine: nproc {cpus}, {model}, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
}

/// Creates `count` recordings, alternating between `environments`, with `tasks` calls
/// at once; returns how long it took.
async fn fill(
    catalog: &Arc<SqliteCatalog>,
    environments: &[EnvironmentId],
    count: usize,
    tasks: usize,
) -> Result<Duration, BoxError> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (catalog, next) = (catalog.clone(), next.clone());
        let environments = environments.to_vec();
        handles.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, pipe_core::Error>(());
                }
                let env = environments[i % environments.len()].clone();
                catalog
                    .create_recording(NewRecording::new().with_environment(env))
                    .await?;
                if (i + 1) % 20_000 == 0 {
                    eprintln!(
                        "  filled {} in {:.1} s",
                        i + 1,
                        start.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for handle in handles {
        handle.await??;
    }
    Ok(start.elapsed())
}

struct Client {
    http: reqwest::Client,
    auth: String,
}

struct Row {
    name: String,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    bytes: usize,
}

impl Client {
    /// The body of `GET url`, which must answer 200.
    async fn get(&self, url: &str) -> Result<Bytes, BoxError> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        if status != reqwest::StatusCode::OK {
            return Err(format!("GET {url}: {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        Ok(body)
    }

    async fn page(&self, url: &str) -> Result<Value, BoxError> {
        Ok(serde_json::from_slice(&self.get(url).await?)?)
    }

    /// Follows `next_cursor` from `paged` (a URL with a query) up to [`DEEP_PAGES`] times,
    /// never onto an empty page; returns the deepest page's URL, how many cursors were
    /// followed and how many recordings come before that page.
    async fn deep_page(&self, paged: &str) -> Result<(String, usize, usize), BoxError> {
        let mut url = paged.to_owned();
        let mut page = self.page(&url).await?;
        let mut depth = 0;
        let mut skipped = 0;
        let start = Instant::now();
        while depth < DEEP_PAGES {
            let Some(cursor) = page["next_cursor"].as_str() else {
                break;
            };
            let next_url = format!("{paged}&cursor={cursor}");
            let next = self.page(&next_url).await?;
            if recordings(&next)? == 0 {
                break;
            }
            skipped += recordings(&page)?;
            depth += 1;
            (url, page) = (next_url, next);
        }
        eprintln!(
            "  followed {depth} cursors of {paged} in {:.2} s",
            start.elapsed().as_secs_f64()
        );
        Ok((url, depth, skipped))
    }

    /// [`WARM_UP`] requests of `url`, then [`TIMED`] timed ones.
    async fn measure(&self, name: String, url: &str) -> Result<Row, BoxError> {
        let page = self.page(url).await?;
        if recordings(&page)? == 0 {
            return Err(format!("{url} lists no recordings").into());
        }
        for _ in 0..WARM_UP {
            self.get(url).await?;
        }
        let mut times = Vec::with_capacity(TIMED);
        let mut bytes = 0;
        for _ in 0..TIMED {
            let start = Instant::now();
            let body = self.get(url).await?;
            times.push(start.elapsed());
            bytes = body.len();
        }
        times.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        // Nearest rank: the smallest time at least `q` of the requests took no longer than.
        let at = |q: f64| ms(times[((q * times.len() as f64).ceil() as usize).max(1) - 1]);
        Ok(Row {
            name,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: ms(times[times.len() - 1]),
            bytes,
        })
    }
}

/// How many recordings a page lists.
fn recordings(page: &Value) -> Result<usize, BoxError> {
    page["recordings"]
        .as_array()
        .map(Vec::len)
        .ok_or_else(|| format!("not a page of recordings: {page}").into())
}
