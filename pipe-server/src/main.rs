//! `pipe`: the reference server of the Pipe recording platform.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pipe_core::{ApiKeyId, EnvironmentId, Role};
use pipe_server::Config;
use pipe_server::admin::AuditVerdict;
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
    /// Make, list and revoke API keys (works while the server runs, or not).
    Keys {
        /// A TOML file with the same settings in lowercase (data_dir is the one used).
        #[arg(long, env = "PIPE_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Back up the catalog (a consistent snapshot, taken while the server runs), the
    /// secrets and the key-encryption keys into one file encrypted under a passphrase
    /// (Argon2id, AES-256-GCM). Recordings stay in the sinks they were copied to.
    Backup {
        /// Where to write it (refused if it exists).
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        args: BackupArgs,
    },
    /// Rebuild an empty data directory from a backup.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        #[command(flatten)]
        args: BackupArgs,
    },
    /// Check the audit log (works while the server runs, or not).
    Audit {
        /// A TOML file with the same settings in lowercase (data_dir is the one used).
        #[arg(long, env = "PIPE_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, clap::Args)]
struct BackupArgs {
    /// A TOML file with the same settings in lowercase (data_dir is the one used).
    #[arg(long, env = "PIPE_CONFIG")]
    config: Option<PathBuf>,
    /// The variable that holds the passphrase (at least 12 characters).
    #[arg(long, default_value = "PIPE_BACKUP_PASSPHRASE")]
    passphrase_from: String,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check that every entry is chained to the one before it (SHA-256) and names the
    /// first one that is not: changed, removed or reordered entries are found. Exits 1
    /// if the chain is broken.
    Verify {
        /// A head the server wrote to its log output earlier (`audit log head` lines:
        /// `<seq>:<hash>`): also check that the log still holds that entry, so a log cut
        /// off after it is found.
        #[arg(long, value_parser = parse_head)]
        head: Option<(u64, String)>,
    },
}

fn parse_head(s: &str) -> Result<(u64, String), String> {
    let (seq, hash) = s
        .split_once(':')
        .ok_or("<seq>:<hash>, as the `audit log head` line gives them")?;
    let seq = seq
        .parse()
        .map_err(|_| format!("{seq:?} is not an entry number"))?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{hash:?} is not a SHA-256 in hex"));
    }
    Ok((seq, hash.to_ascii_lowercase()))
}

/// What `pipe backup` or `pipe restore` is asked to do.
enum BackupAction<'a> {
    To(&'a std::path::Path),
    From(&'a std::path::Path),
}

/// `pipe backup --to` or `pipe restore --from`, the passphrase read from `passphrase_from`.
fn backup(config: &Config, passphrase_from: &str, action: BackupAction<'_>) -> ExitCode {
    if config.catalog_url.is_some() {
        eprintln!(
            "pipe: `pipe backup` and `pipe restore` work on the SQLite catalog; back a \
             PostgreSQL catalog (PIPE_CATALOG_URL) up with PostgreSQL's own tools"
        );
        return ExitCode::from(2);
    }
    let Ok(passphrase) = std::env::var(passphrase_from) else {
        eprintln!("pipe: set {passphrase_from} to the backup's passphrase");
        return ExitCode::from(2);
    };
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
    let data = &config.data_dir;
    let done = runtime.block_on(async {
        // Where the recording keys are escrowed: the scheduled backups' destinations.
        let destinations = match &config.backups {
            Some(backups) => pipe_server::admin::open_destinations(&backups.destinations)?,
            None => Vec::new(),
        };
        match action {
            BackupAction::To(to) => {
                let sealed = pipe_server::admin::backup(data, &passphrase, &destinations).await?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(to)?;
                std::io::Write::write_all(&mut file, &sealed)?;
                file.sync_all()?;
                eprintln!(
                    "backed up {} to {} ({} bytes)",
                    data.display(),
                    to.display(),
                    sealed.len()
                );
            }
            BackupAction::From(from) => {
                let backup = std::fs::read(from)?;
                let keys =
                    pipe_server::admin::restore(data, &backup, &passphrase, &destinations).await?;
                eprintln!("restored {} from {}", data.display(), from.display());
                if keys.recovered > 0 || !keys.erased.is_empty() {
                    eprintln!(
                        "{} recording keys taken back from escrow; {} recordings erased after \
                         this backup was made stay erased (their deletion runs again at the \
                         next start)",
                        keys.recovered,
                        keys.erased.len()
                    );
                }
                if keys.waiting > 0 {
                    eprintln!(
                        "{} recordings wait for their keys: set PIPE_BACKUP_DESTINATIONS to \
                         where the backups were made; the server takes them back at its start",
                        keys.waiting
                    );
                }
            }
        }
        Ok::<_, pipe_core::Error>(())
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn audit(config: Config, command: AuditCommand) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
    let AuditCommand::Verify { head } = command;
    match runtime.block_on(pipe_server::admin::verify_audit(&config, head)) {
        Ok(AuditVerdict::Holds { entries, head }) => {
            match head {
                Some((seq, hash)) => {
                    println!("the audit log holds: {entries} entries checked, head {seq}:{hash}")
                }
                None => println!("the audit log is empty"),
            }
            ExitCode::SUCCESS
        }
        Ok(AuditVerdict::Broken(broken)) => {
            println!("the audit log is broken at {broken}");
            ExitCode::FAILURE
        }
        Ok(AuditVerdict::HeadMissing { seq, found }) => {
            println!(
                "the audit log's chain holds, but not the head given: entry {seq} is not \
                 there as it was ({found}); the log was cut off or rewritten after it"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("pipe audit verify: {e}");
            ExitCode::from(2)
        }
    }
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a key and print it (it is shown this once; only its hash is stored).
    Create {
        /// admin (everything), editor (recordings and webhooks) or viewer (read only).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// What the key is for.
        #[arg(long, default_value = "")]
        label: String,
        /// Limit the key to this environment (repeat for several; default: all).
        #[arg(long = "environment", value_parser = parse_environment)]
        environments: Vec<EnvironmentId>,
    },
    /// List every key (never their secrets).
    List,
    /// Revoke a key by its id (the 16 characters after `pk_`).
    Revoke {
        /// The key's id.
        #[arg(value_parser = parse_key_id)]
        id: ApiKeyId,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: pipe_core::Error| e.to_string())
}

fn parse_environment(s: &str) -> Result<EnvironmentId, String> {
    s.parse().map_err(|e: pipe_core::Error| e.to_string())
}

fn parse_key_id(s: &str) -> Result<ApiKeyId, String> {
    s.parse().map_err(|e: pipe_core::Error| e.to_string())
}

fn load(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    Config::load(path, |name| std::env::var(name).ok()).map_err(|e| {
        eprintln!("pipe: configuration: {e}");
        ExitCode::from(2)
    })
}

fn keys(config: Config, command: KeysCommand) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
    let done = runtime.block_on(async {
        match command {
            KeysCommand::Create {
                role,
                label,
                environments,
            } => {
                let minted =
                    pipe_server::admin::create_key(&config, role, &label, environments).await?;
                eprintln!(
                    "made {} key {} (shown this once; store it as a secret):",
                    minted.record.role, minted.record.id
                );
                println!("{}", minted.key);
            }
            KeysCommand::List => {
                for key in pipe_server::admin::list_keys(&config).await? {
                    let envs: Vec<&str> = key.environments.iter().map(|e| e.as_str()).collect();
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        key.id,
                        key.role,
                        if envs.is_empty() {
                            "*".to_owned()
                        } else {
                            envs.join(",")
                        },
                        key.revoked.map_or("active".to_owned(), |t| format!(
                            "revoked {}",
                            t.to_rfc3339()
                        )),
                        key.label
                    );
                }
            }
            KeysCommand::Revoke { id } => {
                let key = pipe_server::admin::revoke_key(&config, &id).await?;
                eprintln!("revoked key {}", key.id);
            }
        }
        Ok::<_, pipe_core::Error>(())
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipe keys: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Keys { config, command } => match load(config.as_deref()) {
            Ok(config) => keys(config, command),
            Err(code) => code,
        },
        Command::Backup { to, args } => match load(args.config.as_deref()) {
            Ok(config) => backup(&config, &args.passphrase_from, BackupAction::To(&to)),
            Err(code) => code,
        },
        Command::Restore { from, args } => match load(args.config.as_deref()) {
            Ok(config) => backup(&config, &args.passphrase_from, BackupAction::From(&from)),
            Err(code) => code,
        },
        Command::Audit { config, command } => match load(config.as_deref()) {
            Ok(config) => audit(config, command),
            Err(code) => code,
        },
        Command::Serve { config } => {
            let config = match load(config.as_deref()) {
                Ok(config) => config,
                Err(code) => return code,
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
    // Colours only for a terminal: a log file or a collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
