//! `cluster`: the board scenario over several funnel instances of one cluster (PostgreSQL and
//! Redis), clients spread round-robin over them. By default the load tester starts the
//! instances itself (`--instances`, three), each on a fresh data directory and all on a fresh
//! schema, and reads each one's CPU time and peak memory from /proc; with `--url` given twice or
//! more it runs against servers already running instead (`--instance-pid` per URL for their
//! cost).
//!
//! Every move is made on one instance and reaches the clients of the others through the bus:
//! the report gives the fan-out of the moves received on another instance than their sender's
//! apart (`across servers`), and for each instance its clients, the moves they received, and its
//! CPU time per delivered update and per move of the whole cluster.

use crate::bench::Server;
use crate::cli::ClusterArgs;
use crate::report::{self, InstanceReport, RunReport, TargetCheck};
use crate::roll::FreshSchema;
use crate::scenario::{self, Target};
use anyhow::Context;
use serde::Serialize;

/// The most instances one run starts: each is a process with its own pools.
pub const MAX_INSTANCES: usize = 8;

/// What `cluster` writes as JSON.
#[derive(Debug, Serialize)]
pub struct ClusterReport {
    pub run: RunReport,
    pub targets: Vec<TargetCheck>,
}

pub async fn run(args: &ClusterArgs) -> anyhow::Result<ClusterReport> {
    let plan = args.board.plan("cluster")?;
    let common = &args.board.common;
    if common.urls.len() >= 2 {
        anyhow::ensure!(
            args.instance_pids.is_empty() || args.instance_pids.len() == common.urls.len(),
            "give --instance-pid once per --url, in the same order, or not at all"
        );
        let target = Target {
            label: common
                .label
                .clone()
                .unwrap_or_else(|| format!("{} servers", common.urls.len())),
            urls: common.urls.clone(),
            server_pid: None,
            instance_pids: args.instance_pids.clone(),
        };
        let run = scenario::run(&plan, &target).await?;
        return Ok(finish(run));
    }
    anyhow::ensure!(
        (2..=MAX_INSTANCES).contains(&args.instances),
        "--instances must be 2 to {MAX_INSTANCES}"
    );
    anyhow::ensure!(
        args.funnel_bin.exists(),
        "no funnel binary at {}: build it with `cargo build --release -p funnel-server` or pass --funnel-bin",
        args.funnel_bin.display()
    );
    // A schema of its own, so the run meets no tables of another run or of another version.
    let schema = FreshSchema::create(&args.database_url).await?;
    let started = start_instances(args, &schema.url);
    let servers = match started {
        Ok(servers) => servers,
        Err(e) => {
            schema.drop().await;
            return Err(e);
        }
    };
    let target = Target {
        label: common
            .label
            .clone()
            .unwrap_or_else(|| format!("funnel ×{}", servers.len())),
        urls: servers
            .iter()
            .map(|(s, _)| format!("ws://{}/ws/boards/{{board}}", s.addr()))
            .collect(),
        server_pid: None,
        instance_pids: servers.iter().map(|(s, _)| s.pid()).collect(),
    };
    let run = scenario::run(&plan, &target).await;
    for (server, _data) in servers {
        tokio::task::spawn_blocking(move || server.stop())
            .await
            .context("stopping an instance")?;
    }
    schema.drop().await;
    Ok(finish(run?))
}

/// Starts `--instances` funnels on one schema and Redis, each with its own data directory.
fn start_instances(
    args: &ClusterArgs,
    database_url: &str,
) -> anyhow::Result<Vec<(Server, tempfile::TempDir)>> {
    let mut servers = Vec::new();
    for i in 0..args.instances {
        let data = tempfile::tempdir().context("creating a data directory")?;
        let mut flags: Vec<String> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data.path().display().to_string(),
            "--database-url",
            database_url,
            "--redis-url",
            &args.redis_url,
            // Every simulated client comes from 127.0.0.1 (see `bench`).
            "--max-connections-per-address",
            "0",
        ]
        .map(String::from)
        .to_vec();
        flags.extend(args.funnel_args.iter().cloned());
        let server = Server::spawn(&format!("funnel {i}"), &args.funnel_bin, &flags)?;
        servers.push((server, data));
    }
    Ok(servers)
}

fn finish(run: RunReport) -> ClusterReport {
    let mut targets = Vec::new();
    targets.push(TargetCheck::new(
        "every move reaches every observer",
        format!("{} of {}", run.moves_delivered, run.moves_expected),
        "all".into(),
        run.all_delivered,
    ));
    targets.push(TargetCheck::new(
        "replicas converged",
        format!(
            "{} doc clients, {} diverged boards",
            run.convergence.doc_clients,
            run.convergence.diverged_boards.len()
        ),
        "all equal".into(),
        run.convergence.converged,
    ));
    targets.push(TargetCheck::new(
        "no error",
        run.error_total.to_string(),
        "0".into(),
        run.error_total == 0,
    ));
    ClusterReport { run, targets }
}

/// Each instance's share of the run as a table.
pub fn instances_table(instances: &[InstanceReport]) -> String {
    let mut table = comfy_table::Table::new();
    table.set_header(vec![
        "instance",
        "address",
        "clients",
        "moves delivered",
        "CPU, move phase",
        "CPU per delivered update",
        "CPU per move",
        "peak RSS",
    ]);
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for (i, s) in instances.iter().enumerate() {
        let address = s
            .url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or(&s.url);
        table.add_row(vec![
            i.to_string(),
            address.to_owned(),
            s.clients.to_string(),
            s.delivered.to_string(),
            or_dash(s.cpu_s_move.map(|c| format!("{c:.2} s"))),
            or_dash(s.cpu_us_per_delivered.map(|c| format!("{c:.1} µs"))),
            or_dash(s.cpu_us_per_move.map(|c| format!("{c:.0} µs"))),
            or_dash(
                s.peak_rss_kib
                    .map(|k| format!("{:.1} MiB", k as f64 / 1024.0)),
            ),
        ]);
    }
    table.to_string()
}

/// The report as text: the run, each instance, the checks.
pub fn text(report: &ClusterReport) -> String {
    format!(
        "{}\n{}",
        report::table(&[&report.run], &report.targets),
        instances_table(&report.run.instances)
    )
}
