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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve boards over WebSocket and HTTP.
    Serve(Box<ServeConfig>),
    /// Print a token for a user (signed with the server's --auth-secret).
    Token(TokenArgs),
    /// List the boards (a client of a running server, like `cards` and `watch`).
    Boards(funnel_server::cli::Connection),
    /// List, add, move and edit cards.
    Cards(funnel_server::cli::CardsArgs),
    /// Follow a board live: one line per change ("Acme moved New → Won by ann").
    Watch(funnel_server::cli::WatchArgs),
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,funnel_server=info".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(config) => serve(*config),
        Command::Token(args) => token(args),
        Command::Boards(connection) => funnel_server::cli::boards(connection),
        Command::Cards(args) => funnel_server::cli::cards(args),
        Command::Watch(args) => funnel_server::cli::watch(args),
    }
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
