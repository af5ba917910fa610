//! `pipe`: the reference server of the Pipe recording platform.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pipe_server::Config;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "pipe",
    version,
    about = "Self-hosted recordings from the browser"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the recorder, the streaming ingest, the artifacts, and run the job workers.
    ///
    /// Settings come from the TOML file, then PIPE_* environment variables
    /// (PIPE_LISTEN, PIPE_DATA_DIR, PIPE_PUBLIC_URL, PIPE_WEBHOOK_URL, PIPE_WEBHOOK_SECRET,
    /// PIPE_ALLOWED_HOSTS, PIPE_LINK_TTL_SECS, PIPE_WORKERS). Logs: RUST_LOG filters,
    /// PIPE_LOG_FORMAT=json for JSON lines.
    Serve {
        /// A TOML file with the same settings in lowercase (listen, data_dir, …).
        #[arg(long, env = "PIPE_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Serve { config } => {
            let config = match Config::load(config.as_deref(), |name| std::env::var(name).ok()) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("pipe: configuration: {e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
            match runtime.block_on(pipe_server::serve(config, shutdown_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "pipe failed");
                    eprintln!("pipe: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PIPE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
