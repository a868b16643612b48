//! The `funnel-loadtest` binary: parses the command line, runs a scenario, the relay or a
//! comparison, and prints and writes the report.

use anyhow::Context;
use clap::Parser;
use funnel_loadtest::cli::{Cli, Command, Common};
use funnel_loadtest::report;
use funnel_loadtest::scenario::{self, RunPlan, Target};
use funnel_loadtest::{bench, cluster, disk, relay, roll};
use std::io::IsTerminal;
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Board(args) => run_one(args.plan("board")?, &args.common).await,
        Command::Cluster(args) => {
            for url in &args.board.common.urls {
                check_loopback(url)?;
            }
            let report = cluster::run(&args).await?;
            println!("{}", cluster::text(&report));
            report::write_outputs(
                "funnel-loadtest cluster",
                &report,
                &[&report.run],
                &report.targets,
                args.board.common.json.as_deref(),
                args.board.common.html.as_deref(),
            )
        }
        Command::Rooms(args) => run_one(args.plan()?, &args.common).await,
        Command::Storm(args) => run_one(args.plan()?, &args.common).await,
        Command::Idle(args) => run_one(args.plan()?, &args.common).await,
        Command::Relay(args) => {
            anyhow::ensure!(
                args.listen.ip().is_loopback(),
                "the relay listens on loopback addresses only (use --listen 127.0.0.1:PORT)"
            );
            // The same backlog as funnel's (`funnel_server::LISTEN_BACKLOG`), so that a storm
            // overflows neither.
            let socket = if args.listen.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            };
            let listener = socket
                .and_then(|socket| {
                    socket.set_reuseaddr(true)?;
                    socket.bind(args.listen)?;
                    socket.listen(4096)
                })
                .with_context(|| format!("cannot listen on {}", args.listen))?;
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal_or_after(shutdown.clone(), args.exit_after));
            let config = relay::RelayConfig {
                cached_join: args.cached_join,
                read_buffer_bytes: args.read_buffer,
                durable: args.durable.clone(),
                ..relay::RelayConfig::default()
            };
            relay::serve(listener, config, shutdown).await?;
            Ok(())
        }
        Command::Roll(args) => {
            let roll = roll::run(&args).await?;
            println!("{}", report::table(&[&roll.run], &roll.targets));
            println!("{}", roll::steps_table(&roll.steps));
            report::write_outputs(
                "funnel-loadtest roll",
                &roll,
                &[&roll.run],
                &roll.targets,
                args.board.common.json.as_deref(),
                args.board.common.html.as_deref(),
            )
        }
        Command::Disk(args) => {
            let plan = disk::DiskPlan {
                rate: args.rate,
                bytes: args.bytes,
                duration: args.duration,
            };
            let report = disk::probe_blocking(args.dir.clone(), plan).await?;
            println!("{}", disk::table(&report));
            if let Some(path) = &args.json {
                let json = serde_json::to_string_pretty(&report)?;
                std::fs::write(path, json)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Command::Bench(args) => {
            let comparison = bench::run(&args).await?;
            // The table and the charts show each target's median run (by p99); the rounds
            // table every round and the medians of each figure.
            let runs = bench::median_runs(&comparison);
            println!("{}", report::table(&runs, &comparison.targets));
            println!("{}", report::rounds_table(&comparison));
            if let Some(disk) = &comparison.disk {
                println!("{}", disk::table(disk));
            }
            let common = args.scenario.common();
            report::write_outputs_with(
                &format!("funnel-loadtest bench {}", comparison.scenario),
                &comparison,
                &runs,
                &comparison.targets,
                &report::rounds_html(&comparison),
                common.json.as_deref(),
                common.html.as_deref(),
            )
        }
    }
}

async fn run_one(plan: RunPlan, common: &Common) -> anyhow::Result<()> {
    for url in &common.urls {
        check_loopback(url)?;
    }
    let target = Target {
        label: common
            .label
            .clone()
            .unwrap_or_else(|| common.urls.join(", ")),
        urls: common.urls.clone(),
        server_pid: common.server_pid,
        instance_pids: Vec::new(),
    };
    let report = scenario::run(&plan, &target).await?;
    println!("{}", report::table(&[&report], &[]));
    report::write_outputs(
        &format!("funnel-loadtest {}", report.scenario),
        &report,
        &[&report],
        &[],
        common.json.as_deref(),
        common.html.as_deref(),
    )
}

/// The load tester only ever targets this machine: a URL's host must be a loopback address.
fn check_loopback(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .with_context(|| format!("{url}: a URL starts with ws:// or wss://"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(
        loopback,
        "{url}: the load tester only connects to loopback addresses (127.0.0.1, [::1], localhost)"
    );
    Ok(())
}

/// Cancels `shutdown` on SIGINT or SIGTERM, or once `after` has passed.
async fn cancel_on_signal_or_after(shutdown: CancellationToken, after: std::time::Duration) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
        () = tokio::time::sleep(after) => tracing::info!("--exit-after reached"),
    }
    shutdown.cancel();
}
