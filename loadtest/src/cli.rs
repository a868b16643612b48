//! The command line: one subcommand per scenario, `relay`, and `bench` (funnel and the relay
//! back to back on one scenario). Each scenario's flags become a [`RunPlan`].

use crate::scenario::{RoomPlan, RunPlan, StormPlan, run_prefix};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// funnel-loadtest: simulated y-websocket clients dragging cards on a Kanban board, with
/// latency, throughput, convergence and server-cost reports.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One board of K cards, N clients, D draggers moving a random card R times a second.
    Board(BoardArgs),
    /// B boards × C clients, one dragger per board making M moves a second.
    Rooms(RoomsArgs),
    /// C newcomers join a K-card board at once while its draggers keep moving.
    Storm(StormArgs),
    /// The board scenario over several instances of one cluster (PostgreSQL + Redis), clients
    /// spread round-robin: starts --instances funnels itself, or uses the servers of --url
    /// given twice or more. Reports the fan-out across instances and each one's CPU per update.
    Cluster(ClusterArgs),
    /// Many idle connections: the server's memory per connection.
    Idle(IdleArgs),
    /// A bare WebSocket relay (no CRDT, no storage): the fan-out limit of the machine.
    Relay(RelayArgs),
    /// Starts funnel and the relay on 127.0.0.1, runs a scenario against each, compares.
    Bench(BenchArgs),
    /// Two funnel instances of a cluster (PostgreSQL + Redis), the board scenario spread over
    /// both, and a rolling restart during the moves: each instance drains (1012), exits and
    /// comes back in turn; clients reconnect to the other one and re-sync.
    Roll(RollArgs),
    /// The latency of one durable append (write + fdatasync) on a directory's disk: what a
    /// server that stores each update before relaying it adds at the least.
    Disk(DiskArgs),
}

/// Flags every scenario takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// WebSocket URL template; `{board}` becomes the board id. Repeat it to spread the clients
    /// round-robin over several servers. Ignored by `bench`, which starts its own servers.
    #[arg(long = "url", default_value = "ws://127.0.0.1:8080/ws/boards/{board}")]
    pub urls: Vec<String>,
    /// Share of clients that hold a yrs document (apply every update, take part in the
    /// convergence check); the others only count. Seeders and draggers always hold one.
    #[arg(long, default_value_t = 0.25)]
    pub doc_share: f64,
    /// The server's process id: its CPU time and peak RSS go into the report (start it fresh
    /// for a fair peak).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Name of the target in the report (default: the first URL).
    #[arg(long)]
    pub label: Option<String>,
    /// Write the report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the report as a self-contained HTML page with latency charts.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Clients connecting at the same time while a run sets up (storm newcomers ignore it).
    #[arg(long, default_value_t = 200)]
    pub connect_parallel: usize,
    /// Each client announces a presence (one awareness update) after its sync.
    #[arg(long)]
    pub awareness: bool,
    /// Cards per seed transaction.
    #[arg(long, default_value_t = 500)]
    pub seed_batch: usize,
    /// How long to wait, after the moves stop, for moves still in flight.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    /// Bound on the connect phase and on the seed phase, each.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub setup_timeout: Duration,
    /// No progress line every second.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BoardArgs {
    #[arg(long, default_value_t = 1000)]
    pub cards: usize,
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    #[arg(long, default_value_t = 20)]
    pub draggers: usize,
    /// Moves per second of each dragger.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Length of the move phase.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct RoomsArgs {
    #[arg(long, default_value_t = 500)]
    pub boards: usize,
    #[arg(long, default_value_t = 4)]
    pub clients_per_board: usize,
    /// Moves per second on each board (made by its first client).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Cards on each board.
    #[arg(long, default_value_t = 20)]
    pub cards: usize,
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct StormArgs {
    #[arg(long, default_value_t = 5000)]
    pub cards: usize,
    /// Newcomers joining at once.
    #[arg(long, default_value_t = 1000)]
    pub joiners: usize,
    /// Clients on the board before the storm that keep dragging.
    #[arg(long, default_value_t = 5)]
    pub draggers: usize,
    /// Clients on the board before the storm that only watch.
    #[arg(long, default_value_t = 5)]
    pub observers: usize,
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// How long into the move phase the newcomers join.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub storm_after: Duration,
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Boards the connections are spread over.
    #[arg(long, default_value_t = 1)]
    pub boards: usize,
    /// How long the connections are held once all are synced.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub hold: Duration,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct RollArgs {
    /// The funnel binary (`cargo build --release -p funnel-server`).
    #[arg(long, default_value = "target/release/funnel")]
    pub funnel_bin: PathBuf,
    /// The cluster's PostgreSQL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub database_url: String,
    /// The cluster's Redis.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Each instance's `--drain-delay`: readiness 503 before its sockets close.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub drain_delay: Duration,
    /// Each instance's `--drain-window`: its sockets close with 1012 spread over this.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain_window: Duration,
    /// How long into the move phase the first instance is stopped.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub roll_after: Duration,
    /// How long after an instance is back the next one is stopped.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Extra flags for `funnel serve`.
    #[arg(long = "funnel-arg", allow_hyphen_values = true)]
    pub funnel_args: Vec<String>,
    #[command(flatten)]
    pub board: BoardArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Instances to start (2 to 8). Ignored when --url is given twice or more.
    #[arg(long, default_value_t = 3)]
    pub instances: usize,
    /// The funnel binary (`cargo build --release -p funnel-server`).
    #[arg(long, default_value = "target/release/funnel")]
    pub funnel_bin: PathBuf,
    /// The cluster's PostgreSQL (the run makes a schema of its own in it, and drops it).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub database_url: String,
    /// The cluster's Redis.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Extra flags for `funnel serve`.
    #[arg(long = "funnel-arg", allow_hyphen_values = true)]
    pub funnel_args: Vec<String>,
    /// With servers already running (--url twice or more): each one's process id, in the
    /// order of the --url flags, for its CPU time and memory.
    #[arg(long = "instance-pid")]
    pub instance_pids: Vec<u32>,
    #[command(flatten)]
    pub board: BoardArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DiskArgs {
    /// The directory to probe (put it on the disk of funnel's data directory).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Appends per second.
    #[arg(long, default_value_t = crate::disk::DEFAULT_RATE)]
    pub rate: u32,
    /// Bytes per append (a commit of a few moves writes a few 4 KiB pages).
    #[arg(long, default_value_t = crate::disk::DEFAULT_BYTES)]
    pub bytes: usize,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Write the report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Answer each join with the room's cached state (the first full state a client sent)
    /// and the updates relayed since, instead of an empty state.
    #[arg(long)]
    pub cached_join: bool,
    /// Each connection's WebSocket read buffer in bytes (default: tungstenite's 128 KiB, as
    /// funnel has through axum).
    #[arg(long)]
    pub read_buffer: Option<usize>,
    /// Store every update durably before forwarding it: written to a preallocated ring file
    /// (8 MiB) in this directory and `fdatasync`ed, updates queued meanwhile sharing one flush.
    /// The limit of a server that stores each update before relaying it, as funnel does.
    #[arg(long, value_name = "DIR")]
    pub durable: Option<PathBuf>,
    /// The relay stops by itself after this long.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub exit_after: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The funnel binary (`cargo build --release -p funnel-server`).
    #[arg(long, default_value = "target/release/funnel")]
    pub funnel_bin: PathBuf,
    /// Extra flags for `funnel serve`.
    #[arg(long = "funnel-arg", allow_hyphen_values = true)]
    pub funnel_args: Vec<String>,
    /// Extra flags for `funnel-loadtest relay`.
    #[arg(long = "relay-arg", allow_hyphen_values = true)]
    pub relay_args: Vec<String>,
    /// Run only against funnel (no relays, no ratios).
    #[arg(long)]
    pub no_relay: bool,
    /// Rounds: each runs funnel, the relay and the durable relay once, each round starting
    /// with the next one; the report gives medians over the rounds.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// How long to probe the disk of funnel's data directory (`disk`) before the runs, so the
    /// report shows the flush latency every stored move pays on this machine; 0s skips it.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub disk_probe: Duration,
    #[command(subcommand)]
    pub scenario: BenchScenario,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchScenario {
    Board(BoardArgs),
    Rooms(RoomsArgs),
    Storm(StormArgs),
    Idle(IdleArgs),
}

impl BenchScenario {
    pub fn plan(&self) -> anyhow::Result<RunPlan> {
        match self {
            BenchScenario::Board(a) => a.plan("board"),
            BenchScenario::Rooms(a) => a.plan(),
            BenchScenario::Storm(a) => a.plan(),
            BenchScenario::Idle(a) => a.plan(),
        }
    }

    pub fn common(&self) -> &Common {
        match self {
            BenchScenario::Board(a) => &a.common,
            BenchScenario::Rooms(a) => &a.common,
            BenchScenario::Storm(a) => &a.common,
            BenchScenario::Idle(a) => &a.common,
        }
    }
}

/// Bounds that keep every run finite and on this machine's scale.
const MAX_DURATION: Duration = Duration::from_secs(600);
const MAX_CLIENTS: usize = 50_000;
const MAX_CARDS: usize = 100_000;
const MAX_RATE: f64 = 1000.0;

fn check_bounds(clients: usize, cards: usize, rate: f64, duration: Duration) -> anyhow::Result<()> {
    anyhow::ensure!(
        clients <= MAX_CLIENTS,
        "at most {MAX_CLIENTS} clients in one run"
    );
    anyhow::ensure!(cards <= MAX_CARDS, "at most {MAX_CARDS} cards a board");
    anyhow::ensure!(
        rate.is_finite() && (0.0..=MAX_RATE).contains(&rate),
        "a rate must be 0 to {MAX_RATE} moves a second"
    );
    anyhow::ensure!(
        duration <= MAX_DURATION,
        "a run's duration must be at most {MAX_DURATION:?}"
    );
    Ok(())
}

impl Common {
    fn plan(
        &self,
        scenario: &str,
        rooms: Vec<RoomPlan>,
        duration: Duration,
        params: serde_json::Value,
    ) -> RunPlan {
        RunPlan {
            scenario: scenario.into(),
            rooms,
            duration,
            storm: None,
            doc_share: self.doc_share,
            seed_batch: self.seed_batch,
            connect_parallel: self.connect_parallel,
            awareness: self.awareness,
            drain: self.drain.min(MAX_DURATION),
            setup_timeout: self.setup_timeout.min(MAX_DURATION),
            progress: !self.quiet,
            reconnect: false,
            params,
        }
    }
}

impl BoardArgs {
    pub fn plan(&self, scenario: &str) -> anyhow::Result<RunPlan> {
        check_bounds(self.clients, self.cards, self.rate, self.duration)?;
        anyhow::ensure!(self.cards > 0, "a board needs cards to move");
        anyhow::ensure!(
            self.draggers <= self.clients,
            "--draggers must be at most --clients"
        );
        let room = RoomPlan {
            board: format!("{}-board", run_prefix()),
            cards: self.cards,
            clients: self.clients,
            draggers: self.draggers,
            rate: self.rate,
        };
        let params = serde_json::json!({
            "cards": self.cards, "clients": self.clients, "draggers": self.draggers,
            "rate_per_dragger": self.rate, "duration_s": self.duration.as_secs_f64(),
            "doc_share": self.common.doc_share,
        });
        Ok(self
            .common
            .plan(scenario, vec![room], self.duration, params))
    }
}

impl RoomsArgs {
    pub fn plan(&self) -> anyhow::Result<RunPlan> {
        let clients = self.boards.saturating_mul(self.clients_per_board);
        check_bounds(clients, self.cards, self.rate, self.duration)?;
        anyhow::ensure!(self.cards > 0, "boards need cards to move");
        anyhow::ensure!(
            self.clients_per_board > 0,
            "--clients-per-board must be above 0"
        );
        let prefix = run_prefix();
        let rooms = (0..self.boards)
            .map(|b| RoomPlan {
                board: format!("{prefix}-room{b}"),
                cards: self.cards,
                clients: self.clients_per_board,
                draggers: 1,
                rate: self.rate,
            })
            .collect();
        let params = serde_json::json!({
            "boards": self.boards, "clients_per_board": self.clients_per_board,
            "moves_per_second_per_board": self.rate, "cards_per_board": self.cards,
            "duration_s": self.duration.as_secs_f64(), "doc_share": self.common.doc_share,
        });
        Ok(self.common.plan("rooms", rooms, self.duration, params))
    }
}

impl StormArgs {
    pub fn plan(&self) -> anyhow::Result<RunPlan> {
        let clients = self.joiners + self.draggers + self.observers;
        check_bounds(clients, self.cards, self.rate, self.duration)?;
        anyhow::ensure!(self.cards > 0, "a board needs cards");
        anyhow::ensure!(
            self.storm_after < self.duration,
            "--storm-after must fall within --duration"
        );
        let room = RoomPlan {
            board: format!("{}-storm", run_prefix()),
            cards: self.cards,
            clients: (self.draggers + self.observers).max(1),
            draggers: self.draggers,
            rate: self.rate,
        };
        let params = serde_json::json!({
            "cards": self.cards, "joiners": self.joiners, "draggers": self.draggers,
            "observers": self.observers, "rate_per_dragger": self.rate,
            "storm_after_s": self.storm_after.as_secs_f64(),
            "duration_s": self.duration.as_secs_f64(), "doc_share": self.common.doc_share,
        });
        let mut plan = self.common.plan("storm", vec![room], self.duration, params);
        plan.storm = Some(StormPlan {
            joiners: self.joiners,
            after: self.storm_after,
        });
        Ok(plan)
    }
}

impl IdleArgs {
    pub fn plan(&self) -> anyhow::Result<RunPlan> {
        check_bounds(self.connections, 0, 0.0, self.hold)?;
        anyhow::ensure!(self.boards > 0, "--boards must be above 0");
        let prefix = run_prefix();
        let per_board = self.connections.div_ceil(self.boards);
        let rooms = (0..self.boards)
            .map(|b| RoomPlan {
                board: format!("{prefix}-idle{b}"),
                cards: 0,
                clients: per_board.min(self.connections - b * per_board),
                draggers: 0,
                rate: 0.0,
            })
            .filter(|r| r.clients > 0)
            .collect();
        let params = serde_json::json!({
            "connections": self.connections, "boards": self.boards,
            "hold_s": self.hold.as_secs_f64(), "doc_share": self.common.doc_share,
        });
        Ok(self.common.plan("idle", rooms, self.hold, params))
    }
}
