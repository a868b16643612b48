//! funnel's load tester: simulated y-websocket clients that drag cards on Kanban boards, a bare
//! relay to compare with, and reports of fan-out latency, throughput, initial-sync time,
//! convergence and server cost.
//!
//! Modules, top to bottom:
//! - [`cli`]: the command line, and each scenario's flags turned into a [`scenario::RunPlan`].
//! - [`bench`]: funnel, the relay and the durable relay as child processes, in rounds, medians.
//! - [`cluster`]: several instances of a cluster started, the board spread over them, each
//!   one's cost per delivered update.
//! - [`roll`]: two instances of a cluster restarted in turn under a board's load.
//! - [`scenario`]: one run against one target: its phases, its progress line, its report.
//! - [`client`]: one simulated client (doc-holding or byte-counting, dragger or observer).
//! - [`relay`]: the bare WebSocket relay, and with `--durable` one that stores before it forwards.
//! - [`disk`]: the latency of one durable append on a directory's disk, the other floor.
//! - [`report`]: the report types, the terminal table, JSON and the HTML page.
//! - [`metrics`]: counters and histograms the clients share; /proc readings of a process.
//! - [`stamp`]: the markers moves and seed batches carry, found without decoding an update.
//! - [`clock`]: microsecond timestamps and a small seeded random generator.

pub mod bench;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod disk;
pub mod metrics;
pub mod relay;
pub mod report;
pub mod roll;
pub mod scenario;
pub mod stamp;
