//! Every scenario at a tiny size, against an in-process relay and an in-process funnel: every
//! move reaches every observer, the replicas converge, nothing fails.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use funnel_loadtest::relay::{self, RelayConfig};
use funnel_loadtest::report::{self, RunReport};
use funnel_loadtest::roll::FreshSchema;
use funnel_loadtest::scenario::{self, RoomPlan, RunPlan, StormPlan, Target};
use funnel_server::config::ServeConfig;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server in this process, stopped on drop.
struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    _data: Option<tempfile::TempDir>,
}

impl Server {
    async fn relay(cached_join: bool) -> Self {
        Self::relay_with(RelayConfig {
            cached_join,
            ..RelayConfig::default()
        })
        .await
    }

    async fn relay_with(config: RelayConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { relay::serve(listener, config, shutdown).await.unwrap() }
        });
        Self {
            addr,
            shutdown,
            task,
            _data: None,
        }
    }

    async fn funnel() -> Self {
        let data = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ServeConfig::with_defaults(addr, data.path().to_owned());
        config.validate().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                funnel_server::run(listener, config, shutdown)
                    .await
                    .unwrap()
            }
        });
        Self {
            addr,
            shutdown,
            task,
            _data: Some(data),
        }
    }

    /// A funnel of a cluster on PostgreSQL and Redis (as the server's own cluster tests), on
    /// `addr` (port 0: any), draining on shutdown like a deployed instance.
    async fn cluster_member(addr: SocketAddr, database_url: &str) -> Self {
        let data = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = ServeConfig::with_defaults(addr, data.path().to_owned());
        config.database_url = Some(database_url.to_owned());
        config.redis_url = Some(
            std::env::var("FUNNEL_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        );
        config.drain_delay = Duration::from_millis(100);
        config.drain_window = Duration::from_millis(500);
        config.validate().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                funnel_server::run(listener, config, shutdown)
                    .await
                    .unwrap()
            }
        });
        Self {
            addr,
            shutdown,
            task,
            _data: Some(data),
        }
    }

    fn target(&self, label: &str, copies: usize) -> Target {
        Target {
            label: label.into(),
            urls: vec![format!("ws://{}/ws/boards/{{board}}", self.addr); copies],
            server_pid: None,
            instance_pids: Vec::new(),
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("server stops in time")
            .unwrap();
    }
}

fn plan(scenario: &str, rooms: Vec<RoomPlan>, duration_ms: u64) -> RunPlan {
    RunPlan {
        scenario: scenario.into(),
        rooms,
        duration: Duration::from_millis(duration_ms),
        storm: None,
        doc_share: 0.5,
        seed_batch: 40,
        connect_parallel: 16,
        awareness: true,
        drain: Duration::from_secs(5),
        setup_timeout: Duration::from_secs(15),
        progress: false,
        reconnect: false,
        params: serde_json::Value::Null,
    }
}

fn room(board: &str, cards: usize, clients: usize, draggers: usize, rate: f64) -> RoomPlan {
    RoomPlan {
        board: format!("{}-{board}", scenario::run_prefix()),
        cards,
        clients,
        draggers,
        rate,
    }
}

/// What every moving scenario must show.
fn assert_clean(report: &RunReport) {
    let what = format!(
        "{} on {}: errors {:?}, disconnects {:?}, convergence {:?}",
        report.scenario, report.target, report.errors, report.disconnects, report.convergence
    );
    assert_eq!(report.error_total, 0, "{what}");
    assert_eq!(report.synced, report.clients, "{what}");
    assert!(report.moves_sent > 0, "{what}");
    assert_eq!(report.moves_delivered, report.moves_expected, "{what}");
    assert!(report.all_delivered, "{what}");
    assert_eq!(report.duplicates, 0, "{what}");
    assert!(report.convergence.converged, "{what}");
    assert_eq!(report.latency_us.count, report.moves_delivered, "{what}");
}

/// Runs `plan` against a fresh relay and a fresh funnel at the same time.
async fn against_both(plan: &RunPlan, cached_relay: bool, copies: usize) -> [RunReport; 2] {
    let relay = Server::relay(cached_relay).await;
    let funnel = Server::funnel().await;
    let (relay_target, funnel_target) = (
        relay.target("relay", copies),
        funnel.target("funnel", copies),
    );
    let (a, b) = tokio::join!(
        scenario::run(plan, &relay_target),
        scenario::run(plan, &funnel_target),
    );
    relay.stop().await;
    funnel.stop().await;
    [a.unwrap(), b.unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_every_move_reaches_every_observer() {
    let plan = plan("board", vec![room("board", 30, 6, 3, 10.0)], 1000);
    for report in against_both(&plan, false, 1).await {
        assert_clean(&report);
        // 3 draggers × 10 a second × 1 s, give or take a tick; each reaches the 5 others.
        assert!(report.moves_sent >= 15, "{}", report.moves_sent);
        assert_eq!(report.moves_expected, report.moves_sent * 5);
        assert_eq!(report.convergence.doc_clients, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_keep_their_moves_apart() {
    let rooms = (0..4)
        .map(|b| room(&format!("r{b}"), 10, 3, 1, 8.0))
        .collect();
    let plan = plan("rooms", rooms, 1000);
    for report in against_both(&plan, false, 1).await {
        assert_clean(&report);
        assert_eq!(report.moves_expected, report.moves_sent * 2);
        assert_eq!(report.convergence.boards_checked, 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_newcomers_sync_while_draggers_move() {
    let mut plan = plan("storm", vec![room("storm", 200, 3, 2, 10.0)], 1500);
    plan.storm = Some(StormPlan {
        joiners: 20,
        after: Duration::from_millis(300),
    });
    for report in against_both(&plan, true, 1).await {
        assert_clean(&report);
        assert_eq!(report.joiners_synced, 20, "{}", report.target);
        assert!(report.storm_all_synced_s.is_some());
        let joiner_sync = report.joiner_sync_us.as_ref().unwrap();
        assert_eq!(joiner_sync.count, 20);
        // Newcomers hold documents too (half of them): they converge with the others.
        assert_eq!(report.convergence.doc_clients, 2 + 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durable_relay_stores_every_update_in_its_ring_before_it_forwards() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Server::relay_with(RelayConfig {
        cached_join: true,
        durable: Some(dir.path().to_owned()),
        ..RelayConfig::default()
    })
    .await;
    let mut plan = plan("storm", vec![room("durable", 40, 4, 2, 10.0)], 800);
    plan.storm = Some(StormPlan {
        joiners: 6,
        after: Duration::from_millis(200),
    });
    let report = scenario::run(&plan, &relay.target("durable relay", 1))
        .await
        .unwrap();
    // The ring is read while the relay still runs: it removes its file when it stops.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let ring = std::fs::read(&files[0]).unwrap();
    relay.stop().await;
    assert_clean(&report);
    assert_eq!(report.joiners_synced, 6);
    assert_eq!(ring.len() as u64, relay::RING_BYTES, "preallocated");
    // Every move's stamp is in the log (the moves fit in the ring without wrapping).
    let text = String::from_utf8_lossy(&ring);
    let stamps = text.matches("ltm1:").count() as u64;
    assert!(
        stamps >= report.moves_sent,
        "{stamps} stamps in the ring, {} moves",
        report.moves_sent
    );
}

#[test]
fn a_durable_relay_in_a_missing_directory_says_where() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let err = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = RelayConfig {
            durable: Some("/nonexistent/funnel-relay".into()),
            ..RelayConfig::default()
        };
        relay::serve(listener, config, CancellationToken::new())
            .await
            .unwrap_err()
    });
    assert!(
        err.to_string().contains("/nonexistent/funnel-relay"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_spreads_clients_over_urls() {
    let plan = plan("cluster", vec![room("cluster", 20, 4, 2, 10.0)], 800);
    for report in against_both(&plan, false, 2).await {
        assert_clean(&report);
        assert_eq!(report.urls.len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_of_three_delivers_across_instances_and_reports_each_one() {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let schema = FreshSchema::create(
        &std::env::var("FUNNEL_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
    )
    .await
    .unwrap();
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(Server::cluster_member(any, &schema.url).await);
    }
    let target = Target {
        label: "three".into(),
        urls: servers
            .iter()
            .map(|s| format!("ws://{}/ws/boards/{{board}}", s.addr))
            .collect(),
        server_pid: None,
        instance_pids: Vec::new(),
    };
    // Two draggers (clients 0 and 1, on the first two instances) and seven observers.
    let plan = plan("cluster", vec![room("three", 20, 9, 2, 10.0)], 1500);
    let report = scenario::run(&plan, &target).await.unwrap();
    for server in servers {
        server.stop().await;
    }
    schema.drop().await;
    assert_clean(&report);
    let cross = report
        .cross_instance_latency_us
        .as_ref()
        .expect("several servers: the moves across them apart");
    // Each move reaches 8 others, of whom 6 are on another instance than its sender.
    assert_eq!(cross.count * 8, report.moves_delivered * 6, "{cross:?}");
    assert_eq!(report.instances.len(), 3);
    assert_eq!(
        report
            .instances
            .iter()
            .map(|i| i.clients)
            .collect::<Vec<_>>(),
        [3, 3, 3]
    );
    let delivered: u64 = report.instances.iter().map(|i| i.delivered).sum();
    assert_eq!(delivered, report.moves_delivered);
    // In this process: no instance's CPU is known, and the table says so.
    assert!(report.instances.iter().all(|i| i.cpu_s_move.is_none()));
    let table = funnel_loadtest::cluster::instances_table(&report.instances);
    assert!(table.contains("CPU per delivered update"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_clients_reconnect_on_1012_and_nothing_is_lost() {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let schema = FreshSchema::create(
        &std::env::var("FUNNEL_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
    )
    .await
    .unwrap();
    let mut servers = vec![
        Some(Server::cluster_member(any, &schema.url).await),
        Some(Server::cluster_member(any, &schema.url).await),
    ];
    let target = Target {
        label: "two, rolled".into(),
        urls: servers
            .iter()
            .flatten()
            .map(|s| format!("ws://{}/ws/boards/{{board}}", s.addr))
            .collect(),
        server_pid: None,
        instance_pids: Vec::new(),
    };
    let mut plan = plan("roll", vec![room("roll", 30, 8, 2, 10.0)], 3000);
    plan.reconnect = true;
    let (moving_tx, moving_rx) = tokio::sync::oneshot::channel();
    let roll = async {
        moving_rx.await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        for slot in &mut servers {
            let old = slot.take().unwrap();
            let addr = old.addr;
            // Drains (1012 in waves over its window), exits, and comes back on its address.
            old.stop().await;
            *slot = Some(Server::cluster_member(addr, &schema.url).await);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let (report, ()) = tokio::join!(
        scenario::run_observed(&plan, &target, Some(moving_tx)),
        roll
    );
    let report = report.unwrap();
    for server in servers.into_iter().flatten() {
        server.stop().await;
    }
    schema.drop().await;
    let what = format!(
        "errors {:?}, disconnects {:?}, reconnects {:?}, convergence {:?}",
        report.errors, report.disconnects, report.reconnects, report.convergence
    );
    assert_eq!(report.error_total, 0, "{what}");
    assert_eq!(report.synced, report.clients, "{what}");
    let reconnects = report
        .reconnects
        .as_ref()
        .expect("a roll reports reconnects");
    let closes: u64 = reconnects.closes.values().sum();
    // Every client was on one of the two instances, and both were restarted.
    assert!(closes >= 8, "{what}");
    assert_eq!(
        reconnects.closes.keys().collect::<Vec<_>>(),
        ["closed by server: 1012"],
        "{what}"
    );
    assert_eq!(
        reconnects.gap_us.count, closes,
        "every reconnect re-synced: {what}"
    );
    assert!(report.convergence.converged, "{what}");
    assert!(
        report.moves_delivered + reconnects.moves_delivered_on_resync <= report.moves_expected,
        "{what}"
    );
    let checks = report::targets("roll", &report, None);
    let table = report::table(&[&report], &checks);
    assert!(table.contains("close → re-synced"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_counted_and_reports_render() {
    let funnel = Server::funnel().await;
    let mut plan = plan("idle", vec![room("idle", 0, 40, 0, 0.0)], 200);
    plan.doc_share = 0.0;
    let mut target = funnel.target("funnel", 1);
    // The server runs in this process: the figures mean little, but the plumbing is tested.
    target.server_pid = Some(std::process::id());
    let report = scenario::run(&plan, &target).await.unwrap();
    funnel.stop().await;
    assert_eq!(report.error_total, 0, "{:?}", report.errors);
    assert_eq!(report.synced, 40);
    assert_eq!(report.sync_us.count, 40);
    let idle = report.idle_memory.expect("idle memory measured");
    assert_eq!(idle.connections, 40);
    assert!(report.server.is_some());

    let checks = report::targets("idle", &report, None);
    let table = report::table(&[&report], &checks);
    assert!(table.contains("RSS per idle connection"), "{table}");
    let dir = tempfile::tempdir().unwrap();
    let (json, html) = (dir.path().join("r.json"), dir.path().join("r.html"));
    report::write_outputs(
        "idle",
        &report,
        &[&report],
        &checks,
        Some(&json),
        Some(&html),
    )
    .unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(parsed["synced"], 40);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg"));
    // Self-contained: nothing is loaded when the page is viewed.
    assert!(!page.contains("<script") && !page.contains("https://") && !page.contains("<link"));
}
