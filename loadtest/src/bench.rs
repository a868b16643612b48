//! `bench`: starts funnel and the relay as child processes on 127.0.0.1 (port 0, a fresh data
//! directory for funnel, so each peak RSS is the run's own), runs the same scenario against
//! each, stops them, and compares.

use crate::cli::{BenchArgs, BenchScenario};
use crate::report::{self, Comparison, Machine, Ratios, RunReport};
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

pub async fn run(args: &BenchArgs) -> anyhow::Result<Comparison> {
    let scenario_name = match &args.scenario {
        BenchScenario::Board(_) => "board",
        BenchScenario::Rooms(_) => "rooms",
        BenchScenario::Storm(_) => "storm",
        BenchScenario::Idle(_) => "idle",
    };
    let plan = args.scenario.plan()?;
    let funnel_bin = args.funnel_bin.clone();
    anyhow::ensure!(
        funnel_bin.exists(),
        "no funnel binary at {}: build it with `cargo build --release -p funnel-server` or pass --funnel-bin",
        funnel_bin.display()
    );
    let mut runs = Vec::new();

    let data = tempfile::tempdir().context("creating funnel's data directory")?;
    let disk = if args.disk_probe.is_zero() {
        None
    } else {
        tracing::info!(
            "probing the disk of {} for {:?}",
            data.path().display(),
            args.disk_probe
        );
        let plan = crate::disk::DiskPlan {
            duration: args.disk_probe,
            ..crate::disk::DiskPlan::default()
        };
        Some(crate::disk::probe_blocking(data.path().to_owned(), plan).await?)
    };
    let mut funnel_args: Vec<String> = vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data.path().display().to_string(),
        // Every simulated client comes from 127.0.0.1: the per-address limit would refuse all
        // but the first 1,024. (`--funnel-arg` may set it again; the last value wins.)
        "--max-connections-per-address".into(),
        "0".into(),
    ];
    funnel_args.extend(args.funnel_args.iter().cloned());
    let funnel = Server::spawn("funnel", &funnel_bin, &funnel_args)?;
    runs.push(run_against(&plan, "funnel", &funnel).await);
    funnel.stop();
    let funnel_report = runs.pop().expect("just pushed")?;
    print_run(&funnel_report);
    runs.push(Ok(funnel_report));

    if !args.no_relay {
        // The storm is compared with a relay that answers joins from a cached copy, as a
        // server must; the other scenarios with the plain relay.
        let cached = scenario_name == "storm";
        let label = if cached {
            "relay (cached join)"
        } else {
            "relay"
        };
        let exe = std::env::current_exe().context("finding the load tester's own binary")?;
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
        relay_args.extend(args.relay_args.iter().cloned());
        let relay = Server::spawn(label, &exe, &relay_args)?;
        let report = run_against(&plan, label, &relay).await;
        relay.stop();
        let report = report?;
        print_run(&report);
        runs.push(Ok(report));
    }
    let runs: Vec<RunReport> = runs.into_iter().collect::<anyhow::Result<_>>()?;
    let ratios = match runs.as_slice() {
        [a, b] => Ratios::of(a, b),
        _ => Ratios::default(),
    };
    let targets = report::targets(scenario_name, &runs[0], runs.get(1));
    Ok(Comparison {
        scenario: scenario_name.into(),
        machine: Machine::this(),
        runs,
        ratios,
        targets,
        disk,
    })
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
