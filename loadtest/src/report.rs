//! The report of a run, and of a comparison of runs: a table for the terminal, JSON, and a
//! self-contained HTML page whose charts are inline SVG drawn here (nothing is fetched when the
//! page is viewed).

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One scenario against one target.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub target: String,
    pub urls: Vec<String>,
    pub params: serde_json::Value,
    pub boards: u64,
    /// Clients on the boards from the start.
    pub clients: u64,
    /// Storm newcomers.
    pub joiners: u64,
    pub connected: u64,
    pub synced: u64,
    pub joiners_synced: u64,
    pub move_seconds: f64,
    pub moves_sent: u64,
    /// Moves sent × the other clients of the sender's board (storm newcomers not included).
    pub moves_expected: u64,
    /// Moves received by clients on the board from the start; a frame merging several moves
    /// counts as several.
    pub moves_delivered: u64,
    pub moves_delivered_to_joiners: u64,
    pub duplicates: u64,
    pub rebalances: u64,
    /// Updates doc-holding clients received before their initial step 2 (applied after it).
    pub updates_before_sync: u64,
    pub delivered_per_second: f64,
    pub all_delivered: bool,
    /// Fan-out latency: a move's send → its arrival at another client.
    pub latency_us: Latency,
    /// The same, for moves sent while a storm was joining.
    pub storm_latency_us: Option<Latency>,
    /// Initial sync: connect → step 2 applied.
    pub sync_us: Latency,
    pub joiner_sync_us: Option<Latency>,
    /// From the storm's start until its last newcomer synced.
    pub storm_all_synced_s: Option<f64>,
    pub frames_in: u64,
    pub bytes_in: u64,
    pub frames_out: u64,
    pub bytes_out: u64,
    pub error_total: u64,
    pub errors: BTreeMap<String, u64>,
    pub disconnects: BTreeMap<String, u64>,
    /// Only when clients reconnect (the `roll` scenario).
    pub reconnects: Option<Reconnects>,
    pub convergence: Convergence,
    pub server: Option<ProcessStats>,
    pub idle_memory: Option<IdleMemory>,
    /// The load tester's own CPU time during the run and its peak RSS so far (the process's
    /// peak: with `bench`, the first run's peak carries into the second). It shares the
    /// machine with the server.
    pub loadtest_cpu_s: f64,
    pub loadtest_peak_rss_kib: u64,
    pub wall_seconds: f64,
}

/// How clients came back after servers restarted under them.
#[derive(Debug, Clone, Serialize)]
pub struct Reconnects {
    /// The closes they reconnected after, by code.
    pub closes: BTreeMap<String, u64>,
    /// Attempts refused (a draining or stopped server) before one was taken.
    pub failed_attempts: u64,
    /// Moves first seen in a re-sync rather than live (made while the client was away).
    pub moves_delivered_on_resync: u64,
    /// Close → re-synced, per reconnect.
    pub gap_us: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    /// (percentile, µs) points of the percentile curve.
    pub curve: Vec<(f64, u64)>,
    /// (upper bound µs, count) of power-of-two buckets.
    pub buckets: Vec<(u64, u64)>,
}

const CURVE: [f64; 22] = [
    0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 92.5, 95.0, 97.0, 98.0,
    99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
];

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        let at = |q: f64| h.value_at_quantile(q);
        let mut buckets = Vec::new();
        if !h.is_empty() {
            let mut low = 0u64;
            let mut high = 16u64;
            while low <= h.max() {
                buckets.push((high, h.count_between(low, high.saturating_sub(1))));
                low = high;
                high = high.saturating_mul(2);
            }
        }
        Self {
            count: h.len(),
            min: if h.is_empty() { 0 } else { h.min() },
            mean: if h.is_empty() { 0.0 } else { h.mean() },
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: h.max(),
            curve: if h.is_empty() {
                Vec::new()
            } else {
                CURVE.iter().map(|p| (*p, at(p / 100.0))).collect()
            },
            buckets,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Convergence {
    pub doc_clients: u64,
    pub boards_checked: u64,
    pub diverged_boards: Vec<String>,
    pub clients_missing_cards: u64,
    pub converged: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProcessStats {
    /// CPU seconds (user + system) from the run's start to its end.
    pub cpu_s_total: f64,
    /// CPU seconds of the move phase (storm and drain included).
    pub cpu_s_move: f64,
    /// VmHWM at the end: the peak since the process started.
    pub peak_rss_kib: u64,
    pub rss_end_kib: u64,
    /// VmRSS once every client was connected and the board seeded.
    pub rss_loaded_kib: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct IdleMemory {
    pub connections: u64,
    pub rss_one_connection_kib: u64,
    pub rss_all_connections_kib: u64,
    pub kib_per_connection: f64,
}

/// funnel and the relay on the same scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub scenario: String,
    pub machine: Machine,
    pub runs: Vec<RunReport>,
    /// funnel ÷ relay (the first run ÷ the second).
    pub ratios: Ratios,
    pub targets: Vec<TargetCheck>,
    /// The flush latency of funnel's data directory, probed before the runs (`--disk-probe`).
    pub disk: Option<crate::disk::DiskReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_mib: u64,
}

impl Machine {
    pub fn this() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            memory_mib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib / 1024),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Ratios {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub storm_p99: Option<f64>,
    pub cpu_move: Option<f64>,
    pub peak_rss: Option<f64>,
    pub storm_all_synced: Option<f64>,
}

impl Ratios {
    pub fn of(a: &RunReport, b: &RunReport) -> Self {
        let ratio = |x: f64, y: f64| (y > 0.0).then_some(x / y);
        Self {
            p50: ratio(a.latency_us.p50 as f64, b.latency_us.p50 as f64),
            p99: ratio(a.latency_us.p99 as f64, b.latency_us.p99 as f64),
            storm_p99: match (&a.storm_latency_us, &b.storm_latency_us) {
                (Some(x), Some(y)) => ratio(x.p99 as f64, y.p99 as f64),
                _ => None,
            },
            cpu_move: match (a.server, b.server) {
                (Some(x), Some(y)) => ratio(x.cpu_s_move, y.cpu_s_move),
                _ => None,
            },
            peak_rss: match (a.server, b.server) {
                (Some(x), Some(y)) => ratio(x.peak_rss_kib as f64, y.peak_rss_kib as f64),
                _ => None,
            },
            storm_all_synced: match (a.storm_all_synced_s, b.storm_all_synced_s) {
                (Some(x), Some(y)) => ratio(x, y),
                _ => None,
            },
        }
    }
}

/// One target of the issue, measured.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub name: String,
    pub measured: String,
    pub limit: String,
    pub pass: bool,
}

impl TargetCheck {
    fn new(name: &str, measured: String, limit: String, pass: bool) -> Self {
        Self {
            name: name.into(),
            measured,
            limit,
            pass,
        }
    }
}

/// The targets for `funnel` compared with `relay` on `scenario`.
pub fn targets(scenario: &str, funnel: &RunReport, relay: Option<&RunReport>) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    let ratios = relay.map(|r| Ratios::of(funnel, r)).unwrap_or_default();
    let fmt_ratio = |r: Option<f64>| r.map_or("n/a".into(), |r| format!("{r:.2}×"));
    let peak_mib = funnel.server.map(|s| s.peak_rss_kib as f64 / 1024.0);
    let delivered = |checks: &mut Vec<TargetCheck>| {
        checks.push(TargetCheck::new(
            "every move reaches every observer",
            format!("{} of {}", funnel.moves_delivered, funnel.moves_expected),
            "all".into(),
            funnel.all_delivered && funnel.moves_sent > 0,
        ));
        checks.push(TargetCheck::new(
            "replicas converged",
            format!(
                "{} doc clients, {} diverged boards",
                funnel.convergence.doc_clients,
                funnel.convergence.diverged_boards.len()
            ),
            "all equal".into(),
            funnel.convergence.converged,
        ));
    };
    match scenario {
        "board" | "cluster" => {
            checks.push(TargetCheck::new(
                "p99 fan-out ≤ 1.5× relay",
                fmt_ratio(ratios.p99),
                "≤ 1.50×".into(),
                ratios.p99.is_some_and(|r| r <= 1.5),
            ));
            delivered(&mut checks);
            checks.push(TargetCheck::new(
                "server CPU ≤ 2× relay",
                fmt_ratio(ratios.cpu_move),
                "≤ 2.00×".into(),
                ratios.cpu_move.is_some_and(|r| r <= 2.0),
            ));
            checks.push(TargetCheck::new(
                "peak RSS < 40 MB",
                peak_mib.map_or("n/a".into(), |m| format!("{m:.1} MiB")),
                "< 40 MB (38.1 MiB)".into(),
                peak_mib.is_some_and(|m| m * 1_048_576.0 < 40e6),
            ));
        }
        "rooms" => {
            checks.push(TargetCheck::new(
                "p99 fan-out ≤ 2× relay",
                fmt_ratio(ratios.p99),
                "≤ 2.00×".into(),
                ratios.p99.is_some_and(|r| r <= 2.0),
            ));
            delivered(&mut checks);
        }
        "storm" => {
            checks.push(TargetCheck::new(
                "all newcomers synced within 1.2× a cached relay's time",
                format!(
                    "{} ({} vs {})",
                    fmt_ratio(ratios.storm_all_synced),
                    secs(funnel.storm_all_synced_s),
                    secs(relay.and_then(|r| r.storm_all_synced_s))
                ),
                "≤ 1.20×".into(),
                ratios.storm_all_synced.is_some_and(|r| r <= 1.2)
                    && funnel.joiners_synced == funnel.joiners,
            ));
            checks.push(TargetCheck::new(
                "peak RSS < 250 MB",
                peak_mib.map_or("n/a".into(), |m| format!("{m:.1} MiB")),
                "< 250 MB (238.4 MiB)".into(),
                peak_mib.is_some_and(|m| m * 1_048_576.0 < 250e6),
            ));
            let storm_p99 = funnel.storm_latency_us.as_ref().map(|l| l.p99);
            checks.push(TargetCheck::new(
                "draggers' p99 during the storm < 50 ms",
                storm_p99.map_or("n/a".into(), ms),
                "< 50 ms".into(),
                storm_p99.is_some_and(|p| p < 50_000),
            ));
        }
        "roll" => {
            checks.push(TargetCheck::new(
                "draggers' p99 fan-out through the roll < 100 ms",
                ms(funnel.latency_us.p99),
                "< 100 ms".into(),
                funnel.latency_us.count > 0 && funnel.latency_us.p99 < 100_000,
            ));
            let reconnected = funnel
                .reconnects
                .as_ref()
                .map_or(0, |c| c.closes.values().sum::<u64>());
            checks.push(TargetCheck::new(
                "clients reconnected after 1012 and re-synced",
                format!(
                    "{reconnected} reconnects, {} re-syncs",
                    funnel.reconnects.as_ref().map_or(0, |c| c.gap_us.count)
                ),
                "every reconnect re-synced".into(),
                reconnected > 0
                    && funnel
                        .reconnects
                        .as_ref()
                        .is_some_and(|c| c.gap_us.count == reconnected),
            ));
            checks.push(TargetCheck::new(
                "nothing lost: replicas converged",
                format!(
                    "{} doc clients, {} diverged boards, {} missing cards",
                    funnel.convergence.doc_clients,
                    funnel.convergence.diverged_boards.len(),
                    funnel.convergence.clients_missing_cards
                ),
                "all equal".into(),
                funnel.convergence.converged,
            ));
        }
        "idle" => {
            let per = funnel.idle_memory.map(|m| m.kib_per_connection);
            checks.push(TargetCheck::new(
                "RSS per idle connection < 16 KiB",
                per.map_or("n/a".into(), |k| format!("{k:.1} KiB")),
                "< 16 KiB".into(),
                per.is_some_and(|k| k < 16.0) && funnel.synced == funnel.clients,
            ));
        }
        _ => {}
    }
    checks.push(TargetCheck::new(
        "no errors or disconnects",
        funnel.error_total.to_string(),
        "0".into(),
        funnel.error_total == 0,
    ));
    checks
}

fn secs(s: Option<f64>) -> String {
    s.map_or("n/a".into(), |s| format!("{s:.2} s"))
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Rows of the summary: (label, one value per run).
fn rows(runs: &[&RunReport]) -> Vec<(String, Vec<String>)> {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, f: &dyn Fn(&RunReport) -> String| {
        rows.push((label.into(), runs.iter().map(|r| f(r)).collect()));
    };
    row("clients (boards)", &|r| {
        if r.joiners > 0 {
            format!("{} + {} newcomers ({})", r.clients, r.joiners, r.boards)
        } else {
            format!("{} ({})", r.clients, r.boards)
        }
    });
    row("synced", &|r| {
        format!("{} + {}", r.synced, r.joiners_synced)
    });
    row("moves sent", &|r| r.moves_sent.to_string());
    row("moves delivered / expected", &|r| {
        format!("{} / {}", r.moves_delivered, r.moves_expected)
    });
    row("delivered per second", &|r| {
        format!("{:.0}", r.delivered_per_second)
    });
    row("fan-out p50", &|r| ms(r.latency_us.p50));
    row("fan-out p90", &|r| ms(r.latency_us.p90));
    row("fan-out p99", &|r| ms(r.latency_us.p99));
    row("fan-out p99.9", &|r| ms(r.latency_us.p999));
    row("fan-out max", &|r| ms(r.latency_us.max));
    row("initial sync p50 / p99 / max", &|r| {
        format!(
            "{} / {} / {}",
            ms(r.sync_us.p50),
            ms(r.sync_us.p99),
            ms(r.sync_us.max)
        )
    });
    if runs.iter().any(|r| r.joiner_sync_us.is_some()) {
        row(
            "newcomers' sync p50 / p99 / max",
            &|r| match &r.joiner_sync_us {
                Some(l) => format!("{} / {} / {}", ms(l.p50), ms(l.p99), ms(l.max)),
                None => "-".into(),
            },
        );
        row("all newcomers synced after", &|r| {
            secs(r.storm_all_synced_s)
        });
        row("fan-out p99 during the storm", &|r| {
            r.storm_latency_us
                .as_ref()
                .map_or("-".into(), |l| format!("{} ({} moves)", ms(l.p99), l.count))
        });
    }
    if runs.iter().any(|r| r.reconnects.is_some()) {
        row("reconnects (closes seen)", &|r| match &r.reconnects {
            Some(c) if !c.closes.is_empty() => c
                .closes
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            Some(_) => "0".into(),
            None => "-".into(),
        });
        row("refused attempts before one was taken", &|r| {
            r.reconnects
                .as_ref()
                .map_or("-".into(), |c| c.failed_attempts.to_string())
        });
        row("close → re-synced p50 / p99 / max", &|r| {
            r.reconnects.as_ref().map_or("-".into(), |c| {
                format!(
                    "{} / {} / {}",
                    ms(c.gap_us.p50),
                    ms(c.gap_us.p99),
                    ms(c.gap_us.max)
                )
            })
        });
        row("moves first seen in a re-sync", &|r| {
            r.reconnects
                .as_ref()
                .map_or("-".into(), |c| c.moves_delivered_on_resync.to_string())
        });
    }
    row("errors + disconnects", &|r| {
        if r.error_total == 0 {
            "0".into()
        } else {
            let all: Vec<String> = r
                .errors
                .iter()
                .chain(&r.disconnects)
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("{} ({})", r.error_total, all.join("; "))
        }
    });
    row("converged", &|r| {
        format!(
            "{} ({} doc clients)",
            if r.convergence.converged { "yes" } else { "NO" },
            r.convergence.doc_clients
        )
    });
    row("server CPU (move phase / run)", &|r| {
        r.server.map_or("-".into(), |s| {
            format!("{:.2} s / {:.2} s", s.cpu_s_move, s.cpu_s_total)
        })
    });
    row("server peak RSS", &|r| {
        r.server.map_or("-".into(), |s| mib(s.peak_rss_kib))
    });
    if runs.iter().any(|r| r.idle_memory.is_some()) {
        row("RSS per idle connection", &|r| {
            r.idle_memory.map_or("-".into(), |m| {
                format!(
                    "{:.2} KiB ({} → {})",
                    m.kib_per_connection,
                    mib(m.rss_one_connection_kib),
                    mib(m.rss_all_connections_kib)
                )
            })
        });
    }
    row("load tester CPU / peak RSS", &|r| {
        format!(
            "{:.1} s / {}",
            r.loadtest_cpu_s,
            mib(r.loadtest_peak_rss_kib)
        )
    });
    row("wall time", &|r| format!("{:.1} s", r.wall_seconds));
    rows
}

/// The terminal table of some runs (and targets, if any).
pub fn table(runs: &[&RunReport], targets: &[TargetCheck]) -> String {
    use comfy_table::Table;
    let mut table = Table::new();
    let mut header = vec![format!(
        "{}",
        runs.first().map_or("", |r| r.scenario.as_str())
    )];
    header.extend(runs.iter().map(|r| r.target.clone()));
    table.set_header(header);
    for (label, values) in rows(runs) {
        let mut cells = vec![label];
        cells.extend(values);
        table.add_row(cells);
    }
    let mut out = table.to_string();
    if !targets.is_empty() {
        let mut t = Table::new();
        t.set_header(vec!["target", "measured", "limit", "met"]);
        for c in targets {
            t.add_row(vec![
                c.name.clone(),
                c.measured.clone(),
                c.limit.clone(),
                if c.pass { "yes" } else { "NO" }.into(),
            ]);
        }
        out.push('\n');
        out.push_str(&t.to_string());
    }
    out
}

const COLORS: [&str; 4] = ["#d9480f", "#1971c2", "#2f9e44", "#7048e8"];

/// A self-contained HTML page: the summary, targets, and inline SVG charts.
pub fn html(title: &str, runs: &[&RunReport], targets: &[TargetCheck], json: &str) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:980px}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         .no{{color:#c92a2a;font-weight:bold}}.yes{{color:#2b8a3e}}svg{{background:#fff;border:1px solid #ddd}}\
         details pre{{font-size:11px;max-height:30em;overflow:auto}}</style></head><body><h1>{t}</h1>",
        t = escape(title)
    );
    page.push_str("<table><tr><th></th>");
    for r in runs {
        let _ = write!(page, "<th>{}</th>", escape(&r.target));
    }
    page.push_str("</tr>");
    for (label, values) in rows(runs) {
        let _ = write!(page, "<tr><td>{}</td>", escape(&label));
        for v in values {
            let _ = write!(page, "<td>{}</td>", escape(&v));
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
    if !targets.is_empty() {
        page.push_str("<h2>Targets</h2><table><tr><th>target</th><th>measured</th><th>limit</th><th>met</th></tr>");
        for c in targets {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&c.name),
                escape(&c.measured),
                escape(&c.limit),
                if c.pass { "yes" } else { "no" },
                if c.pass { "yes" } else { "NO" }
            );
        }
        page.push_str("</table>");
    }
    let legend: Vec<(&str, &str)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.target.as_str(), COLORS[i % COLORS.len()]))
        .collect();
    page.push_str("<h2>Fan-out latency by percentile</h2>");
    page.push_str(&percentile_chart(
        &runs.iter().map(|r| &r.latency_us).collect::<Vec<_>>(),
        &legend,
    ));
    page.push_str("<h2>Fan-out latency distribution</h2>");
    page.push_str(&histogram_chart(
        &runs.iter().map(|r| &r.latency_us).collect::<Vec<_>>(),
        &legend,
    ));
    if runs.iter().any(|r| r.joiner_sync_us.is_some()) {
        page.push_str("<h2>Newcomers' initial sync by percentile</h2>");
        let empty = Latency::from_histogram(&crate::metrics::new_histogram());
        let series: Vec<&Latency> = runs
            .iter()
            .map(|r| r.joiner_sync_us.as_ref().unwrap_or(&empty))
            .collect();
        page.push_str(&percentile_chart(&series, &legend));
    }
    page.push_str("<h2>Initial sync by percentile</h2>");
    page.push_str(&percentile_chart(
        &runs.iter().map(|r| &r.sync_us).collect::<Vec<_>>(),
        &legend,
    ));
    let _ = write!(
        page,
        "<details><summary>JSON report</summary><pre>{}</pre></details></body></html>",
        escape(json)
    );
    page
}

const W: f64 = 760.0;
const H: f64 = 340.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 50.0;

/// x: percentile on a "nines" scale (0, 90, 99, 99.9, 99.99, 100 evenly spaced); y: log10 ms.
fn percentile_chart(series: &[&Latency], legend: &[(&str, &str)]) -> String {
    let nines = |p: f64| -> f64 {
        if p >= 100.0 {
            5.0
        } else {
            (-(1.0 - p / 100.0).log10()).min(4.0)
        }
    };
    let x = |p: f64| LEFT + nines(p) / 5.0 * (W - LEFT - RIGHT);
    let (lo, hi) = log_range(series.iter().flat_map(|l| l.curve.iter().map(|c| c.1)));
    let y = |us: u64| {
        let v = (us.max(1) as f64 / 1000.0).log10();
        TOP + (1.0 - (v - lo) / (hi - lo)) * (H - TOP - BOTTOM)
    };
    let mut svg = svg_open();
    for (label, p) in [
        ("0", 0.0),
        ("90", 90.0),
        ("99", 99.0),
        ("99.9", 99.9),
        ("99.99", 99.99),
        ("max", 100.0),
    ] {
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{1:.1}\" stroke=\"#eee\"/>\
             <text x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\" font-size=\"11\">{label}</text>",
            x(p),
            H - BOTTOM,
            H - BOTTOM + 16.0
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">percentile</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 12.0
    );
    y_axis(&mut svg, lo, hi);
    for (i, l) in series.iter().enumerate() {
        let points: Vec<String> = l
            .curve
            .iter()
            .map(|(p, us)| format!("{:.1},{:.1}", x(*p), y(*us)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"{}\" points=\"{}\"/>",
            COLORS[i % COLORS.len()],
            points.join(" ")
        );
    }
    legend_and_close(svg, legend)
}

/// x: log2 latency buckets; y: share of the samples in each bucket.
fn histogram_chart(series: &[&Latency], legend: &[(&str, &str)]) -> String {
    let buckets = series
        .iter()
        .map(|l| l.buckets.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |i: usize| LEFT + i as f64 / buckets as f64 * (W - LEFT - RIGHT);
    let y = |share: f64| TOP + (1.0 - share) * (H - TOP - BOTTOM);
    let mut svg = svg_open();
    for i in (0..=buckets).step_by(2) {
        let upper = 16u64 << i.min(40);
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
            x(i),
            H - BOTTOM + 16.0,
            if i == 0 {
                "0".into()
            } else {
                short_us(upper / 2)
            }
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">latency (bucket lower bound)</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 12.0
    );
    for share in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#eee\"/>\
             <text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"end\" font-size=\"11\">{4:.0}%</text>",
            W - RIGHT,
            y(share),
            LEFT - 6.0,
            y(share) + 4.0,
            share * 100.0
        );
    }
    for (s, l) in series.iter().enumerate() {
        let total: u64 = l.buckets.iter().map(|b| b.1).sum();
        if total == 0 {
            continue;
        }
        let mut points = vec![format!("{:.1},{:.1}", x(0), y(0.0))];
        for (i, (_, count)) in l.buckets.iter().enumerate() {
            let share = *count as f64 / total as f64;
            points.push(format!("{:.1},{:.1}", x(i), y(share)));
            points.push(format!("{:.1},{:.1}", x(i + 1), y(share)));
        }
        points.push(format!("{:.1},{:.1}", x(l.buckets.len()), y(0.0)));
        let color = COLORS[s % COLORS.len()];
        let _ = write!(
            svg,
            "<polyline fill=\"{color}\" fill-opacity=\"0.15\" stroke-width=\"2\" stroke=\"{color}\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    legend_and_close(svg, legend)
}

fn short_us(us: u64) -> String {
    match us {
        0..=999 => format!("{us}µs"),
        1_000..=999_999 => format!("{}ms", us / 1000),
        _ => format!("{}s", us / 1_000_000),
    }
}

/// log10(ms) bounds, widened to whole decades.
fn log_range(values: impl Iterator<Item = u64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for us in values {
        let v = (us.max(1) as f64 / 1000.0).log10();
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (-1.0, 2.0);
    }
    let (lo, hi) = (lo.floor(), hi.ceil());
    if hi - lo < 1.0 {
        (lo, lo + 1.0)
    } else {
        (lo, hi)
    }
}

fn y_axis(svg: &mut String, lo: f64, hi: f64) {
    let y = |v: f64| TOP + (1.0 - (v - lo) / (hi - lo)) * (H - TOP - BOTTOM);
    let mut decade = lo;
    while decade <= hi + 1e-9 {
        let ms = 10f64.powf(decade);
        let label = if ms >= 1.0 {
            format!("{ms:.0} ms")
        } else {
            format!("{ms} ms")
        };
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#eee\"/>\
             <text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"end\" font-size=\"11\">{label}</text>",
            W - RIGHT,
            y(decade),
            LEFT - 6.0,
            y(decade) + 4.0
        );
        decade += 1.0;
    }
}

fn svg_open() -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">\
         <rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>",
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    )
}

fn legend_and_close(mut svg: String, legend: &[(&str, &str)]) -> String {
    for (i, (label, color)) in legend.iter().enumerate() {
        let y = TOP + 14.0 + i as f64 * 16.0;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"4\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            LEFT + 10.0,
            y - 4.0,
            LEFT + 28.0,
            y,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes the JSON and HTML files asked for; returns the JSON text.
pub fn write_outputs(
    title: &str,
    value: &impl Serialize,
    runs: &[&RunReport],
    targets: &[TargetCheck],
    json_path: Option<&std::path::Path>,
    html_path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let json = serde_json::to_string_pretty(value).context("encoding the report as JSON")?;
    if let Some(path) = json_path {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = html_path {
        std::fs::write(path, html(title, runs, targets, &json))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
