//! funnel's server: a WebSocket hub that keeps every board's CRDT document live and durable.
//!
//! Modules, top to bottom (every arrow points down; see ARCHITECTURE.md):
//! - [`config`]: `funnel serve` flags and environment variables.
//! - [`http`]: the router, the WebSocket upgrade, `/healthz`, `/readyz`, the web client's files.
//! - [`api`]: the JSON API under `/api/v1/` (its routes) and its OpenAPI document.
//! - [`app_state`]: the state every HTTP handler gets (shared by `http` and `api`).
//! - [`headers`]: reading request headers (origin, host, bearer token).
//! - [`accounts`]: people who sign in: passwords, sessions, invites (with `--auth-secret`).
//! - [`oidc`]: sign-in through an identity provider (OpenID Connect, with `--oidc-issuer`).
//! - [`auth`]: tokens, the local mode and browser origins: who is calling, what they may open.
//! - [`connection`]: one socket: a reader loop and a writer task.
//! - [`drain`]: a graceful stop: not ready first, then sockets closed in waves.
//! - [`feed`]: the change feed: typed events of stored changes, their cursor and wake-ups.
//! - [`cli`]: the command-line client (`funnel boards`, `funnel cards ...`, `funnel watch`).
//! - [`bus`]: the cluster fan-out between instances (in-memory, Redis pub/sub).
//! - [`clock`]: wall-clock time as a dependency (tests set it).
//! - [`mail`]: deals from e-mail: a raw message (API or the SMTP listener) to a card.
//! - [`limits`]: messages a second per connection, connections per user and per address.
//! - [`lease`]: who maintains a board's counters and avatars (one holder per board; in-process,
//!   or a Redis lease with a fencing token in a cluster).
//! - [`metrics`]: Prometheus metrics at `/metrics`.
//! - [`outbox`]: a connection's bounded outgoing queue and its slow-consumer rule.
//! - [`rooms`]: the registry that hands out rooms, creating each atomically.
//! - [`room`]: the task that owns one board's document; its logic is `room::state`.
//! - [`shapes`]: the JSON shapes of cards and activities (the API's and the change feed's).
//! - [`scheduler`]: the task that wakes boards for their reminders, loaded or not.
//! - [`wakeups`]: when each board must next wake up: one timer structure for the server.
//! - [`storage`]: the durable update log and snapshots (SQLite, or PostgreSQL for a cluster).
//! - [`webhooks`]: signed deliveries of change events to endpoints, from a durable outbox.

pub mod accounts;
pub mod api;
pub mod app_state;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connection;
pub mod drain;
pub mod feed;
pub mod headers;
pub mod http;
pub mod lease;
pub mod limits;
pub mod mail;
pub mod metrics;
pub mod oidc;
pub mod outbox;
pub mod room;
pub mod rooms;
pub mod scheduler;
pub mod shapes;
pub mod socket;
pub mod storage;
pub mod wakeups;
pub mod webhooks;

use anyhow::Context;
use axum::serve::ListenerExt;
use config::ServeConfig;
use connection::ConnectionContext;
use outbox::OutboxLimits;
use room::{RoomConfig, RoomContext};
use rooms::Rooms;
use std::sync::Arc;
use storage::Storage;
use storage::postgres::PostgresStorage;
use storage::sqlite::SqliteStorage;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Connections the kernel queues for `accept` (it caps this at `net.core.somaxconn`). Tokio's
/// `TcpListener::bind` asks for 1,024: a reconnect storm of more clients overflowed it, and the
/// overflow costs each of them a SYN retransmission, a second.
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as tokio's own).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How often expired `Idempotency-Key`s are deleted (a claim ignores them already).
const KEY_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Deletes expired idempotency keys now and every [`KEY_SWEEP_EVERY`], until shutdown.
async fn sweep_idempotency_keys(storage: Arc<dyn Storage>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(KEY_SWEEP_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = clock::Clock::now_ms(&clock::SystemClock);
        match storage.sweep_keys(now).await {
            Ok(0) => {}
            Ok(swept) => tracing::debug!(swept, "expired idempotency keys deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep expired idempotency keys"),
        }
    }
}

/// PostgreSQL at `url`, else SQLite in `data_dir`.
async fn open_storage(
    url: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<Arc<dyn Storage>> {
    Ok(match url {
        Some(url) => Arc::new(
            PostgresStorage::open(url)
                .await
                .context("opening PostgreSQL storage (--database-url)")?,
        ),
        None => Arc::new(
            SqliteStorage::open(data_dir)
                .with_context(|| format!("opening storage in {}", data_dir.display()))?,
        ),
    })
}

/// `funnel invite`: makes (or finds) the person in the server's storage and a one-time invite
/// link for them, `{base_url}/invite#{secret}`: how the first admin gets in. Returns the link
/// and when it expires (ms since the Unix epoch).
pub async fn invite_from_cli(
    config: &ServeConfig,
    email: &str,
    name: Option<String>,
    role: funnel_protocol::policy::Role,
    base_url: &str,
) -> anyhow::Result<(String, i64)> {
    let storage = open_storage(config.postgres_url(), &config.data_dir).await?;
    let auth = auth::Auth::with_secret("the CLI signs nothing; accounts are on here");
    let accounts = accounts::Accounts::new(Arc::clone(&storage), &auth, config);
    let new = api::accounts::NewInvite {
        email: email.to_owned(),
        name,
        role: Some(role.as_str().to_owned()),
    };
    let made = api::accounts::invite(&accounts, &new).await;
    storage.close().await;
    let (person, secret, expires_at) = made.map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::debug!(person = person.id, "invited");
    Ok((
        format!("{}/invite#{secret}", base_url.trim_end_matches('/')),
        expires_at,
    ))
}

/// Deletes expired sessions and invites now and every [`KEY_SWEEP_EVERY`] (a lookup ignores
/// them already), until shutdown.
async fn sweep_accounts(storage: Arc<dyn Storage>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(KEY_SWEEP_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = clock::Clock::now_ms(&clock::SystemClock);
        match storage.accounts().sweep_accounts(now).await {
            Ok(0) => {}
            Ok(swept) => tracing::debug!(swept, "expired sessions and invites deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep expired sessions and invites"),
        }
    }
}

/// Serves on `listener` until `signal` fires, then drains (`drain`: not ready, then sockets
/// closed with 1012 in waves over the configured window), lets every room finish storing, and
/// returns (within `config.shutdown_deadline` of the drain's end).
pub async fn run(
    listener: TcpListener,
    config: ServeConfig,
    signal: CancellationToken,
) -> anyhow::Result<()> {
    // What every task of the server stops on: the drain's end (at once without a drain).
    let shutdown = CancellationToken::new();
    let _stop_on_return = shutdown.clone().drop_guard();
    let drain = drain::Drain::new(config.drain_window);
    tokio::spawn(
        drain
            .clone()
            .follow(signal, config.drain_delay, shutdown.clone()),
    );
    let storage = open_storage(config.postgres_url(), &config.data_dir).await?;
    let tracker = TaskTracker::new();
    let metrics = metrics::Metrics::new();
    let clock: Arc<dyn clock::Clock> = Arc::new(clock::SystemClock);
    let wakeups = wakeups::Wakeups::default();
    // A cluster: the bus and the leases share Redis; one instance alone has neither (no bus code
    // runs, and its rooms hold their boards' leases in-process).
    let (bus, leases): (Option<Arc<dyn bus::Bus>>, Arc<dyn lease::Leases>) = match config
        .redis_url()
    {
        Some(url) => {
            let bus = bus::redis::RedisBus::start(url, metrics.clone())
                .context("starting the Redis bus (--redis-url)")?;
            let timings = lease::redis::LeaseTimings {
                ttl: config.lease_ttl,
                retry_busy_after: lease::redis::RETRY_BUSY_AFTER.min(config.lease_ttl / 4),
            };
            let leases = lease::redis::RedisLeases::new(url, bus::Bus::instance(&bus), timings)
                .context("setting up Redis leases (--redis-url)")?;
            tracing::info!(instance = %bus::Bus::instance(&bus), "cluster mode: Redis bus and leases");
            (Some(Arc::new(bus)), Arc::new(leases))
        }
        None => (None, Arc::new(lease::LocalLeases::default())),
    };
    let feed = feed::Feed::new(
        storage
            .latest_change()
            .await
            .context("reading the newest change event")?,
    );
    if bus.is_some() {
        // Other instances store events too: hear of them through the shared storage.
        tracker.spawn(feed::follow_storage(
            feed.clone(),
            Arc::clone(&storage),
            metrics.feed_signals.clone(),
            shutdown.clone(),
        ));
    }
    for (board, at) in storage.wakeups().await.context("reading board wake-ups")? {
        wakeups.set(&board, Some(at));
    }
    let rooms = Rooms::new(
        RoomContext {
            storage: Arc::clone(&storage),
            config: RoomConfig {
                idle_unload_after: config.room_idle,
                compact_after_updates: config.compact_after,
                max_board_bytes: config.max_board_bytes,
                hibernate_after: config.hibernate_after,
            },
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
            clock: Arc::clone(&clock),
            leases,
            wakeups: wakeups.clone(),
            bus: bus.clone(),
            feed: feed.clone(),
        },
        tracker.clone(),
    );
    tracker.spawn(scheduler::run(
        wakeups,
        rooms.clone(),
        Arc::clone(&clock),
        metrics.clone(),
        shutdown.clone(),
        config
            .redis_url()
            .map(|_| scheduler::Takeover::for_lease_ttl(Arc::clone(&storage), config.lease_ttl)),
    ));
    let webhooks = webhooks::Webhooks::new(webhooks::WebhookSettings::from_config(&config));
    let auth = match &config.auth_secret {
        Some(secret) => auth::Auth::with_secret(secret),
        None => auth::Auth::local(),
    };
    let accounts = Arc::new(accounts::Accounts::new(
        Arc::clone(&storage),
        &auth,
        &config,
    ));
    if let Some(bus) = &bus {
        // Before serving: a revocation published once the server is up is heard.
        let subscription = bus::revocations::subscribe(bus.as_ref()).await;
        tracker.spawn(bus::revocations::listen(
            subscription,
            accounts.revocations.clone(),
            shutdown.clone(),
        ));
        accounts.revocations.publish_on(Arc::clone(bus));
    }
    if accounts.enabled() && storage.accounts().people().await?.is_empty() {
        tracing::info!(
            "no people have accounts yet: invite the first admin with `funnel invite --admin EMAIL` \
             (same --data-dir or --database-url), or sign programs in with `funnel token`"
        );
    }
    let oidc = match (
        oidc::OidcSettings::from_config(&config),
        &config.auth_secret,
    ) {
        (Ok(Some(settings)), Some(secret)) => {
            let oidc = Arc::new(oidc::Oidc::new(settings, secret).map_err(anyhow::Error::msg)?);
            // Discovered now so that a wrong issuer shows in the log at start; a provider that
            // is down only delays it to the first sign-in.
            let early = Arc::clone(&oidc);
            let stop = shutdown.clone();
            tracker.spawn(async move {
                tokio::select! {
                    // A stop does not wait for a slow provider.
                    () = stop.cancelled() => {}
                    found = early.client() => {
                        if let Err(e) = found {
                            tracing::warn!(
                                error = %e,
                                "oidc: the identity provider cannot be discovered yet"
                            );
                        }
                    }
                }
            });
            Some(oidc)
        }
        (Ok(_), _) => None,
        (Err(e), _) => anyhow::bail!(e),
    };
    let state = app_state::AppState {
        connections: Arc::new(ConnectionContext {
            rooms,
            outbox_limits: OutboxLimits {
                max_frames: config.outbox_frames,
                max_bytes: config.outbox_bytes,
            },
            max_frame_bytes: config.max_frame_bytes,
            ping_every: config.ping_interval,
            shutdown: shutdown.clone(),
            drain,
            metrics: metrics.clone(),
            auth,
            revocations: accounts.revocations.clone(),
            // The public URL is the server's own address, whatever `Host` a proxy passes on.
            origins: auth::Origins::new(
                &config
                    .allowed_origins
                    .iter()
                    .cloned()
                    .chain(config.public_origin().ok().flatten())
                    .collect::<Vec<_>>(),
            ),
            limits: connection::ConnectionLimits {
                message_rate: config.message_rate,
                message_burst: config.message_burst,
                per_user: config.max_connections_per_user,
                per_address: config.max_connections_per_address,
            },
            counts: limits::ConnectionCounts::default(),
            backoff: Arc::default(),
            joins: Arc::new(tokio::sync::Semaphore::new(config.joins_at_once)),
        }),
        storage: Arc::clone(&storage),
        bus,
        timeline_rate: Arc::new(limits::CallerRate::new(
            limits::TIMELINE_POSTS_PER_MINUTE,
            limits::TIMELINE_POSTS_BURST,
        )),
        api_rate: (config.api_rate > 0)
            .then(|| Arc::new(limits::CallerRate::new(config.api_rate, config.api_burst))),
        mail: Arc::new(mail::MailSettings::new(
            config.max_mail_bytes,
            config.mail_domain.clone(),
            config.auth_secret.as_deref(),
            config.smtp_listen.is_some(),
        )),
        feed,
        tracker: tracker.clone(),
        webhooks: webhooks.clone(),
        accounts,
        oidc,
    };
    if let Some(addr) = config.smtp_listen {
        let smtp_listener =
            listen(addr).with_context(|| format!("listening for SMTP on {addr}"))?;
        tracing::info!("smtp on {}", smtp_listener.local_addr()?);
        tracker.spawn(mail::smtp::serve(
            smtp_listener,
            state.clone(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(webhooks::worker::run(
        webhooks::worker::WorkerContext {
            storage: Arc::clone(&storage),
            feed: state.feed.clone(),
            settings: Arc::clone(&webhooks.settings),
            metrics: metrics.clone(),
            clock: Arc::clone(&clock),
            wake: Arc::clone(&webhooks.wake),
        },
        shutdown.clone(),
    ));
    tracker.spawn(sweep_idempotency_keys(
        Arc::clone(&storage),
        shutdown.clone(),
    ));
    tracker.spawn(sweep_accounts(Arc::clone(&storage), shutdown.clone()));
    tracker.spawn(feed::sweep_changes(
        Arc::clone(&storage),
        config.change_retention,
        shutdown.clone(),
    ));
    let app = http::router(
        state.clone(),
        &config.web_dir,
        config.metrics_listen.is_none(),
    );
    if let Some(addr) = config.metrics_listen {
        let metrics_listener =
            listen(addr).with_context(|| format!("listening for metrics on {addr}"))?;
        let metrics_app = http::metrics_router(state);
        let stop = shutdown.clone();
        tracing::info!("metrics on {addr}");
        tokio::spawn(async move {
            let served = axum::serve(metrics_listener, metrics_app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    let addr = listener.local_addr()?;
    let mode = if config.auth_secret.is_some() {
        "tokens"
    } else {
        "local (no tokens, loopback only)"
    };
    tracing::info!(data_dir = %config.data_dir.display(), auth = mode, "listening on {addr}");
    // Without TCP_NODELAY, Nagle's algorithm holds a small frame (a move: ~200 bytes) back until
    // the previous one is acknowledged, and the peer's delayed ACK makes that up to 40 ms: the
    // whole tail of fan-out latency (BENCHMARKS.md, History, "Nagle, join turns, one shared cut,
    // checkpoints").
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
    .await
    .context("serving HTTP")?;
    tracing::info!("shutting down: closing connections and flushing boards");
    tracker.close();
    if tokio::time::timeout(config.shutdown_deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            deadline = ?config.shutdown_deadline,
            "shutdown deadline passed with connections or rooms still open"
        );
    }
    storage.close().await;
    tracing::info!("stopped");
    Ok(())
}
