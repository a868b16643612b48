//! `bench`: starts funnel, the bare relay and the durable relay as child processes on
//! 127.0.0.1 (port 0, a fresh data directory for each funnel, so each peak RSS is the run's
//! own), runs the same scenario against each in rounds, stops them, and compares medians.
//!
//! Each round runs every target once, and each round starts with a different one (funnel, relay,
//! durable; then relay, durable, funnel; …), so that no target always runs first or last on a
//! machine whose load drifts. The durable relay's log is on the same filesystem as funnel's data.

use crate::cli::{BenchArgs, BenchScenario};
use crate::report::{self, Comparison, Machine, Ratios, Round, RunReport, Summary};
use crate::scenario::{self, Target};
use anyhow::Context;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to log its address, and to exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// The most rounds one `bench` runs.
pub const MAX_ROUNDS: usize = 9;

/// What one run of a round is against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Funnel,
    Relay,
    Durable,
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<Comparison> {
    let scenario_name = match &args.scenario {
        BenchScenario::Board(_) => "board",
        BenchScenario::Rooms(_) => "rooms",
        BenchScenario::Storm(_) => "storm",
        BenchScenario::Idle(_) => "idle",
    };
    anyhow::ensure!(
        (1..=MAX_ROUNDS).contains(&args.rounds),
        "--rounds must be 1 to {MAX_ROUNDS}"
    );
    let plan = args.scenario.plan()?;
    let funnel_bin = args.funnel_bin.clone();
    anyhow::ensure!(
        funnel_bin.exists(),
        "no funnel binary at {}: build it with `cargo build --release -p funnel-server` or pass --funnel-bin",
        funnel_bin.display()
    );
    // funnel's data directories and the durable relay's log, side by side on one filesystem.
    let work = tempfile::tempdir().context("creating the bench's directory")?;
    let disk = if args.disk_probe.is_zero() {
        None
    } else {
        tracing::info!(
            "probing the disk of {} for {:?}",
            work.path().display(),
            args.disk_probe
        );
        let plan = crate::disk::DiskPlan {
            duration: args.disk_probe,
            ..crate::disk::DiskPlan::default()
        };
        Some(crate::disk::probe_blocking(work.path().to_owned(), plan).await?)
    };
    // The storm is compared with relays that answer joins from a cached copy, as a server
    // must; the other scenarios with the plain ones.
    let cached = scenario_name == "storm";
    let kinds: &[Kind] = if args.no_relay {
        &[Kind::Funnel]
    } else {
        &[Kind::Funnel, Kind::Relay, Kind::Durable]
    };
    let label = |kind: Kind| -> &'static str {
        match (kind, cached) {
            (Kind::Funnel, _) => "funnel",
            (Kind::Relay, false) => "relay",
            (Kind::Relay, true) => "relay (cached join)",
            (Kind::Durable, false) => "durable relay",
            (Kind::Durable, true) => "durable relay (cached join)",
        }
    };
    let exe = std::env::current_exe().context("finding the load tester's own binary")?;
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let order: Vec<Kind> = (0..kinds.len())
            .map(|i| kinds[(i + round) % kinds.len()])
            .collect();
        let mut runs: Vec<(Kind, RunReport)> = Vec::new();
        for &kind in &order {
            tracing::info!("round {} of {}: {}", round + 1, args.rounds, label(kind));
            let server = match kind {
                Kind::Funnel => {
                    let data = tempfile::tempdir_in(work.path())
                        .context("creating funnel's data directory")?;
                    let mut funnel_args: Vec<String> = vec![
                        "serve".into(),
                        "--listen".into(),
                        "127.0.0.1:0".into(),
                        "--data-dir".into(),
                        data.path().display().to_string(),
                        // Every simulated client comes from 127.0.0.1: the per-address limit
                        // would refuse all but the first 1,024. (`--funnel-arg` may set it
                        // again; the last value wins.)
                        "--max-connections-per-address".into(),
                        "0".into(),
                    ];
                    funnel_args.extend(args.funnel_args.iter().cloned());
                    (
                        Server::spawn("funnel", &funnel_bin, &funnel_args)?,
                        Some(data),
                    )
                }
                Kind::Relay | Kind::Durable => {
                    let mut relay_args = vec![
                        "relay".to_owned(),
                        "--listen".into(),
                        "127.0.0.1:0".into(),
                        "--exit-after".into(),
                        "30m".into(),
                    ];
                    if cached {
                        relay_args.push("--cached-join".into());
                    }
                    let dir = if kind == Kind::Durable {
                        let dir = tempfile::tempdir_in(work.path())
                            .context("creating the durable relay's directory")?;
                        relay_args.push("--durable".into());
                        relay_args.push(dir.path().display().to_string());
                        Some(dir)
                    } else {
                        None
                    };
                    relay_args.extend(args.relay_args.iter().cloned());
                    (Server::spawn(label(kind), &exe, &relay_args)?, dir)
                }
            };
            let (server, _dir) = server;
            let report = run_against(&plan, label(kind), &server).await;
            server.stop();
            let report = report?;
            print_run(&report);
            runs.push((kind, report));
        }
        let find = |kind: Kind| runs.iter().find(|(k, _)| *k == kind).map(|(_, r)| r);
        let funnel = find(Kind::Funnel).context("every round runs funnel")?;
        let ratio_to = |kind: Kind| {
            find(kind)
                .map(|other| Ratios::of(funnel, other))
                .unwrap_or_default()
        };
        let (ratios, ratios_durable) = (ratio_to(Kind::Relay), ratio_to(Kind::Durable));
        let in_order: Vec<RunReport> = kinds
            .iter()
            .filter_map(|&kind| find(kind).cloned())
            .collect();
        rounds.push(Round {
            order: order.iter().map(|&k| label(k).to_owned()).collect(),
            runs: in_order,
            ratios,
            ratios_durable,
        });
    }
    let medians: Vec<Summary> = (0..kinds.len())
        .map(|i| {
            let runs: Vec<&RunReport> = rounds.iter().map(|r| &r.runs[i]).collect();
            Summary::of(&runs)
        })
        .collect();
    let ratios = medians
        .get(1)
        .map(|relay| Ratios::between(&medians[0], relay))
        .unwrap_or_default();
    let ratios_durable = medians
        .get(2)
        .map(|durable| Ratios::between(&medians[0], durable))
        .unwrap_or_default();
    let round_ratios: Vec<Ratios> = rounds.iter().map(|r| r.ratios.clone()).collect();
    let targets = report::summary_targets(
        scenario_name,
        &medians[0],
        medians.get(1),
        medians.get(2),
        if args.no_relay { &[] } else { &round_ratios },
    );
    Ok(Comparison {
        scenario: scenario_name.into(),
        machine: Machine::this(),
        rounds,
        medians,
        ratios,
        ratios_durable,
        targets,
        disk,
    })
}

/// Of each target, the run of the round whose p99 is the median one: what the table and the
/// charts show.
pub fn median_runs(comparison: &Comparison) -> Vec<&RunReport> {
    let Some(first) = comparison.rounds.first() else {
        return Vec::new();
    };
    (0..first.runs.len())
        .map(|i| {
            let mut runs: Vec<&RunReport> = comparison.rounds.iter().map(|r| &r.runs[i]).collect();
            runs.sort_by_key(|r| r.latency_us.p99);
            runs[(runs.len() - 1) / 2]
        })
        .collect()
}

async fn run_against(
    plan: &scenario::RunPlan,
    label: &str,
    server: &Server,
) -> anyhow::Result<RunReport> {
    tracing::info!(
        "running {} against {label} on {}",
        plan.scenario,
        server.addr
    );
    let target = Target {
        label: label.into(),
        urls: vec![format!("ws://{}/ws/boards/{{board}}", server.addr)],
        server_pid: Some(server.child.id()),
        instance_pids: Vec::new(),
    };
    scenario::run(plan, &target).await
}

fn print_run(report: &RunReport) {
    println!("{}", report::table(&[report], &[]));
}

/// A server started for one run.
pub(crate) struct Server {
    name: String,
    addr: SocketAddr,
    child: Child,
}

impl Server {
    /// Starts `bin args…` and waits for its `listening on ADDR` log line.
    pub(crate) fn spawn(name: &str, bin: &Path, args: &[String]) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().context("the server's stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let log_name = name.to_owned();
        // Reads the log until the listening line, then keeps draining it (warnings are passed
        // on) so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(addr);
                    sent = true;
                } else if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("[{log_name}] {line}");
                }
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("{name} did not log `listening on` within {START_TIMEOUT:?}");
            }
        };
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("{name} logged an address that does not parse: {addr:?}"))?;
        anyhow::ensure!(addr.ip().is_loopback(), "{name} is not on loopback: {addr}");
        tracing::info!(pid = child.id(), "{name} listening on {addr}");
        Ok(Self {
            name: name.into(),
            addr,
            child,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then a bounded wait; SIGKILL after it.
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!("{} did not stop after SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // After stop() the child is reaped and these do nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
