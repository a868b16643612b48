//! The `funnel` binary: parses the command line, sets up logging and signals, and runs the server.

use clap::{Args, Parser, Subcommand};
use funnel_protocol::BoardId;
use funnel_protocol::policy::Role;
use funnel_server::auth::{self, Auth};
use funnel_server::config::ServeConfig;
use std::io::IsTerminal;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// funnel: a real-time CRM Kanban server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to stderr: `text` for people, `json` (one object a line, with
    /// the request id of each request and socket) for log collectors.
    #[arg(long, global = true, env = "FUNNEL_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve boards over WebSocket and HTTP.
    Serve(Box<ServeConfig>),
    /// Print a token for a user (signed with the server's --auth-secret).
    Token(TokenArgs),
    /// Invite a person (e.g. the first admin): prints a one-time link with which they set a
    /// password and sign in. Uses the server's storage directly (same --data-dir or
    /// --database-url), so it works before anyone can sign in.
    Invite(InviteArgs),
    /// Exit 0 when a funnel server answers its readiness probe, 1 otherwise (the container
    /// image's health check: it has no curl).
    Healthcheck(HealthcheckArgs),
    /// Copy the embedded SQLite database to a file while funnel runs (SQLite's online backup).
    /// For PostgreSQL use pg_dump (deploy/README.md).
    Backup(BackupArgs),
    /// List the boards (a client of a running server, like `cards` and `watch`).
    Boards(funnel_server::cli::Connection),
    /// List, add, move and edit cards.
    Cards(funnel_server::cli::CardsArgs),
    /// Follow a board live: one line per change ("Acme moved New → Won by ann").
    Watch(funnel_server::cli::WatchArgs),
}

#[derive(Debug, Args)]
struct HealthcheckArgs {
    /// The readiness URL to ask.
    #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
    url: String,
    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Args)]
struct BackupArgs {
    /// The data directory of the server (as `funnel serve --data-dir`).
    #[arg(long, env = "FUNNEL_DATA_DIR", default_value = funnel_server::config::defaults::DATA_DIR)]
    data_dir: std::path::PathBuf,
    /// The file to write (it must not exist). Restore: stop funnel, put this file in place of
    /// `DATA_DIR/funnel.db` and remove `funnel.db-wal` and `funnel.db-shm` beside it.
    #[arg(long)]
    to: std::path::PathBuf,
}

#[derive(Debug, Args)]
struct InviteArgs {
    /// The person's e-mail address (what they sign in with).
    email: String,
    /// Make them an admin (the role on every board); otherwise `--role`.
    #[arg(long)]
    admin: bool,
    /// viewer, member or admin (for a new person; ignored for one who exists).
    #[arg(long, default_value = "member", conflicts_with = "admin")]
    role: String,
    /// The name they go by (default: what comes before the `@`).
    #[arg(long)]
    name: Option<String>,
    /// Where people open funnel: the link starts with it.
    #[arg(
        long,
        env = "FUNNEL_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// The data directory of the server (as `funnel serve --data-dir`).
    #[arg(long, env = "FUNNEL_DATA_DIR", default_value = funnel_server::config::defaults::DATA_DIR)]
    data_dir: std::path::PathBuf,
    /// The server's PostgreSQL URL, if it uses PostgreSQL.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// How long the link stays valid.
    #[arg(long, env = "FUNNEL_INVITE_TTL", default_value = "7days", value_parser = humantime::parse_duration)]
    ttl: Duration,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The user's id (the token's `sub`).
    #[arg(long)]
    user: String,
    /// viewer, member or admin.
    #[arg(long)]
    role: String,
    /// The user's display name (default: the id).
    #[arg(long)]
    name: Option<String>,
    /// Limit the token to this board (repeat for several; default: every board).
    #[arg(long = "board")]
    boards: Vec<String>,
    /// How long the token is valid.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// The secret the server was started with.
    #[arg(long, env = "FUNNEL_AUTH_SECRET", hide_env_values = true)]
    auth_secret: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,funnel_server=info".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    match cli.command {
        Command::Serve(config) => serve(*config),
        Command::Token(args) => token(args),
        Command::Healthcheck(args) => healthcheck(&args),
        Command::Backup(args) => backup(&args),
        Command::Invite(args) => invite(args),
        Command::Boards(connection) => funnel_server::cli::boards(connection),
        Command::Cards(args) => funnel_server::cli::cards(args),
        Command::Watch(args) => funnel_server::cli::watch(args),
    }
}

fn healthcheck(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(args.timeout).build()?;
        let response = client.get(&args.url).send().await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, body))
    });
    match answer {
        Ok((status, _)) if status.is_success() => Ok(()),
        Ok((status, body)) => {
            anyhow::bail!("{} answered {status}: {}", args.url, body.trim())
        }
        Err(e) => anyhow::bail!("{} does not answer: {e}", args.url),
    }
}

fn invite(args: InviteArgs) -> anyhow::Result<()> {
    let role = if args.admin {
        Role::Admin
    } else {
        Role::parse(&args.role)?
    };
    let mut config = ServeConfig::with_defaults(
        funnel_server::config::defaults::LISTEN.parse()?,
        args.data_dir,
    );
    config.database_url = args.database_url;
    config.invite_ttl = args.ttl;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (link, expires_at) = runtime.block_on(funnel_server::invite_from_cli(
        &config,
        &args.email,
        args.name,
        role,
        &args.url,
    ))?;
    let expires =
        std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(expires_at).unwrap_or(0));
    println!("{link}");
    eprintln!(
        "Send this link to {} ({role}); it works once, until {} (UTC). The server must run with \
         --auth-secret for people to sign in.",
        args.email,
        humantime::format_rfc3339_seconds(expires)
    );
    Ok(())
}

fn backup(args: &BackupArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut shown = None;
    let bytes = funnel_server::storage::sqlite::backup(&args.data_dir, &args.to, |done, total| {
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        // One line per tenth, so a log keeps it short and a person sees it move.
        if shown != Some(percent / 10) {
            shown = Some(percent / 10);
            eprintln!("backup: {percent:>3} % ({done} of {total} pages)");
        }
    })?;
    eprintln!(
        "backup: {} written ({bytes} bytes) in {:.1} s",
        args.to.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    if args.auth_secret.len() < auth::MIN_SECRET_BYTES {
        anyhow::bail!(
            "--auth-secret must be at least {} bytes, as for `funnel serve`",
            auth::MIN_SECRET_BYTES
        );
    }
    let role = Role::parse(&args.role)?;
    let boards = args
        .boards
        .iter()
        .map(|id| BoardId::parse(id).map_err(|e| anyhow::anyhow!("--board {id:?}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.user.trim().is_empty() {
        anyhow::bail!("--user must not be empty");
    }
    let claims = auth::claims_for(&args.user, args.name.as_deref(), role, &boards, args.ttl);
    let token = Auth::with_secret(&args.auth_secret)
        .issue(&claims)
        .ok_or_else(|| anyhow::anyhow!("no secret to sign with"))??;
    println!("{token}");
    Ok(())
}

fn serve(config: ServeConfig) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = funnel_server::listen(config.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        funnel_server::run(listener, config, shutdown).await
    })
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("signal received");
    shutdown.cancel();
}
