//! `roll`: a rolling restart under load. Two funnel instances of one cluster (PostgreSQL and
//! Redis) take the clients round-robin; during the move phase each instance in turn gets SIGTERM,
//! drains as it does in production (readiness 503, `--drain-delay`, then 1012 in waves over
//! `--drain-window`), exits, and starts again on the same address before the next one goes.
//! Clients reconnect to the other instance on 1012 and re-sync, as stock clients do behind a
//! balancer. The report shows the draggers' latency through the roll, the reconnects, and
//! whether every replica ended equal.

use crate::bench::Server;
use crate::cli::RollArgs;
use crate::report::{self, RunReport, TargetCheck};
use crate::scenario::{self, Target};
use anyhow::Context;
use serde::Serialize;
use std::net::SocketAddr;
use tokio::time::Instant;

/// What `roll` writes as JSON.
#[derive(Debug, Serialize)]
pub struct RollReport {
    pub run: RunReport,
    pub steps: Vec<RollStep>,
    pub targets: Vec<TargetCheck>,
}

/// One instance's restart, in seconds from the start of the move phase.
#[derive(Debug, Clone, Serialize)]
pub struct RollStep {
    pub instance: usize,
    pub address: String,
    pub stop_signalled_s: f64,
    /// SIGTERM → the process exited (its drain).
    pub drained_in_s: f64,
    /// SIGTERM → listening again.
    pub back_after_s: f64,
}

pub async fn run(args: &RollArgs) -> anyhow::Result<RollReport> {
    let mut plan = args.board.plan("roll")?;
    plan.reconnect = true;
    anyhow::ensure!(
        args.funnel_bin.exists(),
        "no funnel binary at {}: build it with `cargo build --release -p funnel-server` or pass --funnel-bin",
        args.funnel_bin.display()
    );
    // A schema of its own, so the run meets no tables of another run or of another version.
    let schema = FreshSchema::create(&args.database_url).await?;
    let addrs = [free_address()?, free_address()?];
    let data = [tempdir()?, tempdir()?];
    let serve_args = |i: usize| -> Vec<String> {
        let mut a: Vec<String> = [
            "serve",
            "--listen",
            &addrs[i].to_string(),
            "--data-dir",
            &data[i].path().display().to_string(),
            "--database-url",
            &schema.url,
            "--redis-url",
            &args.redis_url,
            "--drain-delay",
            &humantime::format_duration(args.drain_delay).to_string(),
            "--drain-window",
            &humantime::format_duration(args.drain_window).to_string(),
            // Every simulated client comes from 127.0.0.1 (see `bench`).
            "--max-connections-per-address",
            "0",
        ]
        .map(String::from)
        .to_vec();
        a.extend(args.funnel_args.iter().cloned());
        a
    };
    let mut servers = Vec::new();
    for i in 0..2 {
        servers.push(Some(Server::spawn(
            &format!("funnel {i}"),
            &args.funnel_bin,
            &serve_args(i),
        )?));
    }
    let target = Target {
        label: "funnel ×2, rolled".into(),
        urls: addrs
            .iter()
            .map(|a| format!("ws://{a}/ws/boards/{{board}}"))
            .collect(),
        server_pid: None,
        instance_pids: Vec::new(),
    };
    let (moving_tx, moving_rx) = tokio::sync::oneshot::channel();
    let roll = async {
        let mut steps = Vec::new();
        if moving_rx.await.is_err() {
            return Ok(steps); // the run ended before its move phase
        }
        let move_start = Instant::now();
        tokio::time::sleep(args.roll_after).await;
        for i in 0..2 {
            let Some(server) = servers[i].take() else {
                continue;
            };
            let signalled = Instant::now();
            tracing::info!("rolling funnel {i} on {}: SIGTERM", addrs[i]);
            // Both wait on the child process: off the clients' runtime threads.
            tokio::task::spawn_blocking(move || server.stop())
                .await
                .context("stopping an instance")?;
            let drained = signalled.elapsed();
            tracing::info!("funnel {i} exited after {drained:?}; starting it again");
            let (bin, flags) = (args.funnel_bin.clone(), serve_args(i));
            let name = format!("funnel {i}");
            servers[i] = Some(
                tokio::task::spawn_blocking(move || Server::spawn(&name, &bin, &flags))
                    .await
                    .context("starting an instance")??,
            );
            steps.push(RollStep {
                instance: i,
                address: addrs[i].to_string(),
                stop_signalled_s: (signalled - move_start).as_secs_f64(),
                drained_in_s: drained.as_secs_f64(),
                back_after_s: signalled.elapsed().as_secs_f64(),
            });
            tokio::time::sleep(args.settle).await;
        }
        anyhow::Ok(steps)
    };
    let (report, steps) = tokio::join!(
        scenario::run_observed(&plan, &target, Some(moving_tx)),
        roll
    );
    for server in servers.into_iter().flatten() {
        tokio::task::spawn_blocking(move || server.stop())
            .await
            .context("stopping an instance")?;
    }
    schema.drop().await;
    let report = report?;
    let steps = steps?;
    let targets = report::targets("roll", &report, None);
    Ok(RollReport {
        run: report,
        steps,
        targets,
    })
}

/// A schema made for one run in a PostgreSQL database, and the URL that puts funnel's tables
/// in it (`search_path`); [`FreshSchema::drop`] removes it with everything in it.
pub struct FreshSchema {
    admin_url: String,
    name: String,
    /// The database URL to give funnel.
    pub url: String,
}

impl FreshSchema {
    pub async fn create(database_url: &str) -> anyhow::Result<Self> {
        let name = format!("funnel_{}", scenario::run_prefix());
        let client = connect(database_url).await?;
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .with_context(|| format!("creating the schema {name} in {database_url}"))?;
        let separator = if database_url.contains('?') { '&' } else { '?' };
        Ok(Self {
            url: format!("{database_url}{separator}options=-csearch_path%3D{name}"),
            admin_url: database_url.to_owned(),
            name,
        })
    }

    /// Drops the schema; a failure is logged (the schema is left for a person to drop).
    pub async fn drop(self) {
        let dropped = async {
            connect(&self.admin_url)
                .await?
                .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name))
                .await?;
            anyhow::Ok(())
        };
        if let Err(e) = dropped.await {
            tracing::warn!(schema = self.name, "could not drop the run's schema: {e:#}");
        }
    }
}

async fn connect(database_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {database_url}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("a schema connection ended: {e}");
        }
    });
    Ok(client)
}

/// The roll's steps as a table.
pub fn steps_table(steps: &[RollStep]) -> String {
    let mut table = comfy_table::Table::new();
    table.set_header(vec![
        "instance",
        "address",
        "SIGTERM at (move phase)",
        "drained and exited in",
        "listening again after",
    ]);
    for s in steps {
        table.add_row(vec![
            s.instance.to_string(),
            s.address.clone(),
            format!("{:.1} s", s.stop_signalled_s),
            format!("{:.1} s", s.drained_in_s),
            format!("{:.1} s", s.back_after_s),
        ]);
    }
    table.to_string()
}

/// A loopback address free right now, so an instance can come back on the same one.
fn free_address() -> anyhow::Result<SocketAddr> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?)
}

fn tempdir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::tempdir().context("creating a data directory")
}
