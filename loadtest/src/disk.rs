//! `funnel-loadtest disk`: the latency of one durable append on a directory's disk — a small
//! write then `fdatasync`, at a steady rate, the way a server that stores each update before
//! it relays it writes its log (round an 8 MiB file, as SQLite's log once it wraps). The relay is the floor of fan-out; this is the floor a durable
//! server adds to every update, on the same machine.

use crate::metrics::new_histogram;
use anyhow::Context;
use serde::Serialize;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The most the probe's file grows to.
pub const FILE_BYTES: usize = 8 * 1024 * 1024;

/// What the probe does.
#[derive(Debug, Clone)]
pub struct DiskPlan {
    /// Appends per second (a pause after each append keeps the rate at most this).
    pub rate: u32,
    /// Bytes per append.
    pub bytes: usize,
    pub duration: Duration,
}

/// Appends per second by default: about the commits of the `rooms` scenario.
pub const DEFAULT_RATE: u32 = 500;
/// Bytes per append by default: a commit of a few moves writes a few 4 KiB pages.
pub const DEFAULT_BYTES: usize = 16 * 1024;

impl Default for DiskPlan {
    fn default() -> Self {
        Self {
            rate: DEFAULT_RATE,
            bytes: DEFAULT_BYTES,
            duration: Duration::from_secs(10),
        }
    }
}

/// Latencies of `write` + `fdatasync`, in ms.
#[derive(Debug, Clone, Serialize)]
pub struct DiskReport {
    pub dir: String,
    pub appends: u64,
    pub bytes_per_append: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// [`probe`] on a blocking thread, for async callers (the `disk` command, `bench`).
pub async fn probe_blocking(dir: PathBuf, plan: DiskPlan) -> anyhow::Result<DiskReport> {
    tokio::task::spawn_blocking(move || probe(&dir, &plan))
        .await
        .context("the disk probe stopped")?
}

/// Appends to a fresh file in `dir` for the plan's duration, then removes it.
pub fn probe(dir: &Path, plan: &DiskPlan) -> anyhow::Result<DiskReport> {
    anyhow::ensure!(plan.rate > 0, "--rate must be at least 1");
    anyhow::ensure!(
        (1..=16 * 1024 * 1024).contains(&plan.bytes),
        "--bytes must be between 1 and 16 MiB"
    );
    let file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let out = file.as_file();
    let chunk = vec![0x5a_u8; plan.bytes];
    // Like SQLite's log once it has wrapped: the appends go round a file of bounded size, so a
    // long probe does not fill the disk.
    let span = (FILE_BYTES / plan.bytes).max(1) as u64;
    let mut slot = 0u64;
    let every = Duration::from_secs_f64(1.0 / f64::from(plan.rate));
    let mut latency = new_histogram();
    let started = Instant::now();
    let mut last_line = started;
    let bound = u64::from(plan.rate) * plan.duration.as_secs().max(1) + 1;
    for _ in 0..bound {
        if started.elapsed() >= plan.duration {
            break;
        }
        let at = Instant::now();
        out.write_all_at(&chunk, slot * plan.bytes as u64)
            .context("writing the probe file")?;
        slot = (slot + 1) % span;
        out.sync_data().context("fdatasync of the probe file")?;
        let took = at.elapsed();
        latency.saturating_record(took.as_micros().max(1) as u64);
        if last_line.elapsed() >= Duration::from_secs(1) {
            last_line = Instant::now();
            tracing::info!(
                "{:5.1}s appends={} p99={:.2} ms",
                started.elapsed().as_secs_f64(),
                latency.len(),
                latency.value_at_quantile(0.99) as f64 / 1000.0
            );
        }
        if let Some(pause) = every.checked_sub(took) {
            std::thread::sleep(pause);
        }
    }
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(DiskReport {
        dir: dir.display().to_string(),
        appends: latency.len(),
        bytes_per_append: plan.bytes,
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: latency.max() as f64 / 1000.0,
    })
}

/// The report as a table.
pub fn table(report: &DiskReport) -> String {
    let mut table = comfy_table::Table::new();
    table.set_header(vec![
        "write + fdatasync".to_owned(),
        format!("{} bytes", report.bytes_per_append),
    ]);
    table.add_row(vec!["directory".to_owned(), report.dir.clone()]);
    table.add_row(vec!["appends".to_owned(), report.appends.to_string()]);
    for (name, value) in [
        ("p50", report.p50_ms),
        ("p90", report.p90_ms),
        ("p99", report.p99_ms),
        ("p99.9", report.p999_ms),
        ("max", report.max_ms),
    ] {
        table.add_row(vec![name.to_owned(), format!("{value:.3} ms")]);
    }
    table.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_appends_at_its_rate_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let plan = DiskPlan {
            rate: 200,
            duration: Duration::from_millis(300),
            ..DiskPlan::default()
        };
        let report = probe(dir.path(), &plan).unwrap();
        // At most rate × duration (plus the first), and some of them.
        assert!(
            (1..=61).contains(&report.appends),
            "{} appends",
            report.appends
        );
        assert!(report.p50_ms <= report.p99_ms && report.p99_ms <= report.max_ms);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn bad_plans_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let plan = DiskPlan {
            rate: 0,
            duration: Duration::from_millis(10),
            ..DiskPlan::default()
        };
        let err = probe(dir.path(), &plan).unwrap_err().to_string();
        assert!(err.contains("--rate"), "{err}");
        let missing = dir.path().join("missing");
        let plan = DiskPlan { rate: 10, ..plan };
        let err = format!("{:#}", probe(&missing, &plan).unwrap_err());
        assert!(err.contains("creating a file in"), "{err}");
    }
}
