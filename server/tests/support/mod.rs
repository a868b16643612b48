//! Test support: a funnel server (in-process or as a spawned process) and a Rust y-websocket
//! client holding a real yrs document. Every wait is bounded.

#![allow(dead_code)] // each test file uses a different part of this module

use bytes::Bytes;
use funnel_protocol::wire::{self, ServerMessage};
use funnel_server::config::ServeConfig;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use yrs::{
    Any, Doc, Map, MapPrelim, MapRef, Out, ReadTxn, StateVector, Transact, TransactionMut, WriteTxn,
};

/// The longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// funnel running inside the test process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, |_| {}).await
    }

    pub async fn start_with(data_dir: &Path, tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = ServeConfig::with_defaults(addr, data_dir.to_owned());
        tweak(&mut config);
        config.validate().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(funnel_server::run(listener, config, shutdown.clone()));
        Self {
            addr,
            data_dir: data_dir.to_owned(),
            shutdown,
            task,
        }
    }

    pub fn url(&self, board: &str) -> String {
        format!("ws://{}/ws/boards/{board}", self.addr)
    }

    /// Graceful shutdown, as on SIGTERM.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("shutdown within its deadline")
            .unwrap()
            .unwrap();
    }
}

/// funnel as a child process, for kill -9 and memory measurements.
pub struct ProcessServer {
    pub addr: SocketAddr,
    child: Child,
}

impl ProcessServer {
    pub fn spawn(data_dir: &Path, extra_args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_funnel"))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn funnel");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the log until the listening line, then keeps draining it so the child never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(WAIT)
            .expect("funnel logged its listening address")
            .parse()
            .unwrap();
        Self { addr, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, board: &str) -> String {
        format!("ws://{}/ws/boards/{board}", self.addr)
    }

    /// A `VmRSS`-style field of /proc/PID/status, in KiB.
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "funnel did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ProcessServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request over a raw socket: returns the status and the body. (Responses
/// here carry a Content-Length; `Connection: close` ends the body.)
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    http_with(addr, method, path, &[], body).await
}

/// [`http`] with extra request headers (`Authorization`, `Origin`...).
pub async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let (status, _, body) = http_full(addr, method, path, headers, body).await;
    (status, body)
}

/// A JSON call of the API with a bearer token (`None`: no `Authorization`): the status, the
/// response's head, and its JSON body (`Null` when empty; a body that is not JSON fails).
pub async fn json_call(
    addr: SocketAddr,
    bearer: Option<&str>,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, String, serde_json::Value) {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    json_call_with(addr, method, path, &headers, body).await
}

/// [`json_call`] with any request headers (a session cookie, an `Origin`...).
pub async fn json_call_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> (u16, String, serde_json::Value) {
    let body = body.map(|b| b.to_string());
    let (status, head, text) = http_full(addr, method, path, headers, body.as_deref()).await;
    let value = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, head, value)
}

/// [`http_with`] that also returns the response's head (status line and headers).
pub async fn http_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let (head, body) = response
        .split_once("\r\n\r\n")
        .map(|(head, body)| (head.to_owned(), body.to_owned()))
        .unwrap_or_default();
    (status, head, body)
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A y-websocket client with a real document.
pub struct Client {
    pub ws: Socket,
    pub doc: Doc,
    /// Last awareness JSON seen per client id ("null" once removed).
    pub awareness: HashMap<u64, String>,
}

impl Client {
    /// Connects without syncing.
    pub async fn connect_raw(url: &str) -> Self {
        Self::connect_raw_with(url, &[]).await
    }

    /// Connects without syncing, with extra headers on the upgrade request (`Origin`...).
    pub async fn connect_raw_with(url: &str, headers: &[(&str, &str)]) -> Self {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .unwrap(),
                value.parse().unwrap(),
            );
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect in time")
            .expect("connect");
        Self {
            ws,
            doc: Doc::new(),
            awareness: HashMap::new(),
        }
    }

    /// Connects and completes the sync handshake: after this the document holds the board.
    pub async fn connect(url: &str) -> Self {
        Self::reconnect(url, Doc::new()).await
    }

    pub async fn send(&mut self, frame: Bytes) {
        self.ws.send(Message::Binary(frame)).await.unwrap();
    }

    /// Changes the local document in one transaction and sends the update.
    pub async fn write(&mut self, change: impl FnOnce(&mut TransactionMut)) -> Vec<u8> {
        let update = {
            let mut txn = self.doc.transact_mut();
            change(&mut txn);
            txn.encode_update_v1()
        };
        self.send(wire::client::encode_update(&update)).await;
        update
    }

    /// Handles one incoming frame; returns the decoded message, or `None` for non-protocol
    /// frames. Panics on a close: use [`Client::expect_close`] for those.
    async fn handle(&mut self, frame: Message) -> Option<ServerMessage> {
        let Message::Binary(bytes) = frame else {
            if let Message::Close(close) = frame {
                panic!("unexpected close: {close:?}");
            }
            return None;
        };
        let message = wire::decode_server_frame(&bytes).unwrap();
        match &message {
            ServerMessage::SyncStep1(sv) => {
                let diff = self.doc.transact().encode_state_as_update_v1(sv);
                self.send(wire::client::encode_sync_step2(&diff)).await;
            }
            ServerMessage::SyncStep2(update) | ServerMessage::Update(update) => {
                let update = wire::decode_update_v1(update).unwrap();
                self.doc.transact_mut().apply_update(update).unwrap();
            }
            ServerMessage::Awareness(update) => {
                for (client, entry) in &update.clients {
                    self.awareness.insert(client.get(), entry.json.to_string());
                }
            }
            ServerMessage::AuthDenied(_)
            | ServerMessage::QueryAwareness
            | ServerMessage::Recovered(_) => {}
        }
        Some(message)
    }

    /// Reads and handles frames until `done` holds (checked first with no message), or panics
    /// after [`WAIT`].
    pub async fn pump_until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&Client, Option<&ServerMessage>) -> bool,
    ) {
        if done(self, None) {
            return;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap_or_else(|| panic!("connection ended while waiting for {what}"))
                .unwrap();
            let message = self.handle(frame).await;
            if done(self, message.as_ref()) {
                return;
            }
        }
    }

    /// Reads until the server closes the connection; returns the close code and reason.
    pub async fn expect_close(&mut self) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("timed out waiting for a close");
            match frame {
                Some(Ok(Message::Close(Some(close)))) => {
                    return (u16::from(close.code), close.reason.to_string());
                }
                Some(Ok(Message::Close(None))) => return (1005, String::new()),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("connection failed instead of closing: {e}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }

    /// Card titles in this client's document, sorted.
    pub fn card_titles(&self) -> Vec<String> {
        card_titles(&self.doc)
    }

    /// Reads until the server has written card `id`'s counter (its upkeep ran for it).
    pub async fn wait_for_upkeep(&mut self, id: &str) {
        let id = id.to_owned();
        self.pump_until(&format!("the counter of card {id}"), |c, _| {
            server_field(&c.doc, &id, "counter").is_some()
        })
        .await;
    }

    /// Reads until this client's document holds a card titled `title`.
    pub async fn wait_for_card(&mut self, title: &str) {
        let title = title.to_owned();
        self.pump_until(&format!("card {title:?}"), |c, _| {
            c.card_titles().contains(&title)
        })
        .await;
    }
}

/// A field of a card as JSON, if set.
pub fn server_field(doc: &Doc, card: &str, key: &str) -> Option<serde_json::Value> {
    let txn = doc.transact();
    let cards = txn.get_map("cards")?;
    let Out::YMap(card) = cards.get(&txn, card)? else {
        return None;
    };
    let value = card.get(&txn, key)?;
    serde_json::to_value(yrs::types::ToJson::to_json(&value, &txn)).ok()
}

/// Adds a card with `title` in the given transaction.
pub fn add_card(txn: &mut TransactionMut, id: &str, title: &str) {
    let cards = txn.get_or_insert_map("cards");
    cards.insert(
        txn,
        id,
        MapPrelim::from([("title", Any::from(title)), ("pos", Any::from("V"))]),
    );
}

/// Adds an open outgoing call `id` of `bob`'s on `card`, due at `deadline` (ms): it lights 15
/// minutes before (the board's default threshold).
pub fn add_call(txn: &mut TransactionMut, id: &str, card: &str, deadline: i64) {
    let activities = txn.get_or_insert_map("activities");
    activities.insert(
        txn,
        id,
        MapPrelim::from([
            ("card", Any::from(card)),
            ("kind", Any::from("call")),
            ("direction", Any::from("outgoing")),
            ("subject", Any::from("call back")),
            ("deadline", Any::from(deadline)),
            ("responsible", Any::from("bob")),
            ("done", Any::from(false)),
        ]),
    );
}

pub fn card_titles(doc: &Doc) -> Vec<String> {
    let txn = doc.transact();
    let Some(cards) = txn.get_map("cards") else {
        return Vec::new();
    };
    let mut titles: Vec<String> = cards
        .iter(&txn)
        .filter_map(|(_, card)| match card {
            Out::YMap(card) => card.get(&txn, "title").map(|t| t.to_string(&txn)),
            _ => None,
        })
        .collect();
    titles.sort();
    titles
}

/// Stage names of a board document, in board order (pos, then id).
pub fn stage_names(doc: &Doc) -> Vec<String> {
    let txn = doc.transact();
    let Some(stages) = txn.get_map("stages") else {
        return Vec::new();
    };
    let mut named: Vec<(String, String, String)> = stages
        .iter(&txn)
        .filter_map(|(id, stage)| match stage {
            Out::YMap(stage) => {
                let get = |key: &str| stage.get(&txn, key).map(|v| v.to_string(&txn));
                Some((get("pos")?, id.to_owned(), get("name")?))
            }
            _ => None,
        })
        .collect();
    named.sort();
    named.into_iter().map(|(_, _, name)| name).collect()
}

/// What a replica holds, comparable across replicas: its state vector and its content as JSON
/// (encoded updates are not: the order of a plain map's entries is not fixed).
pub fn doc_state(doc: &Doc) -> (StateVector, serde_json::Value) {
    let txn = doc.transact();
    let mut content = serde_json::Map::new();
    for name in [
        "board",
        "stages",
        "cards",
        "activities",
        "fields",
        "forms",
        "views",
    ] {
        if let Some(map) = txn.get_map(name) {
            let json = serde_json::to_value(yrs::types::ToJson::to_json(&map, &txn)).unwrap();
            content.insert(name.to_owned(), json);
        }
    }
    (txn.state_vector(), serde_json::Value::Object(content))
}

pub fn cards_map(doc: &Doc) -> Option<MapRef> {
    doc.transact().get_map("cards")
}

impl Client {
    /// Connects with an existing document, as a client that lost its server does: it sends its
    /// state vector, answers the server's step 1 with what the server lacks, and syncs.
    pub async fn reconnect(url: &str, doc: Doc) -> Self {
        let mut client = Self::connect_raw(url).await;
        client.doc = doc;
        let sv = client.doc.transact().state_vector();
        client.send(wire::client::encode_sync_step1(&sv)).await;
        let mut synced = false;
        client
            .pump_until("initial sync", |_, message| {
                synced |= matches!(message, Some(ServerMessage::SyncStep2(_)));
                synced
            })
            .await;
        client
    }

    /// [`Client::write`] to a server that may be gone: false when the frame could not be sent.
    pub async fn try_write(&mut self, change: impl FnOnce(&mut TransactionMut)) -> bool {
        let update = {
            let mut txn = self.doc.transact_mut();
            change(&mut txn);
            txn.encode_update_v1()
        };
        let frame = wire::client::encode_update(&update);
        self.ws.send(Message::Binary(frame)).await.is_ok()
    }

    /// Handles frames until none comes for `quiet`; returns false when the connection ended
    /// (a killed server) instead.
    pub async fn drain_for(&mut self, quiet: Duration) -> bool {
        loop {
            match tokio::time::timeout(quiet, self.ws.next()).await {
                Err(_) => return true,
                Ok(Some(Ok(frame))) => {
                    if matches!(frame, Message::Close(_)) {
                        return false;
                    }
                    self.handle(frame).await;
                }
                Ok(_) => return false,
            }
        }
    }
}

/// A fresh PostgreSQL schema in the test database (`FUNNEL_TEST_DATABASE_URL`, by default the
/// local `test` database); dropped with everything in it when this drops, even after a panic.
pub struct TestDatabase {
    /// The test database itself (where schemas are made and dropped).
    pub admin_url: String,
    pub schema: String,
    /// The URL that puts funnel's tables in `schema`.
    pub url: String,
}

impl TestDatabase {
    pub async fn new() -> Self {
        use std::sync::atomic::AtomicUsize;
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let admin_url = std::env::var("FUNNEL_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let schema = format!("funnel_test_{}", unique(&NEXT));
        connect_postgres(&admin_url)
            .await
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-csearch_path%3D{schema}");
        Self {
            admin_url,
            schema,
            url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let drop_schema = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        // Drop may run inside the test's runtime, which cannot block on itself: use a thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), async {
                    let (client, connection) =
                        tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await?;
                    tokio::spawn(connection);
                    client.batch_execute(&drop_schema).await
                })
                .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(Ok(())))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.schema);
        }
    }
}

/// A client of the test database, or a failure that says how to get one.
pub async fn connect_postgres(url: &str) -> tokio_postgres::Client {
    let connecting = tokio_postgres::connect(url, tokio_postgres::NoTls);
    let connected = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .unwrap_or_else(|_| panic!("PostgreSQL at {url} did not answer within 10 s"));
    match connected {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
        }
        Err(e) => panic!(
            "PostgreSQL is not reachable at {url} ({e:?}): these tests need it. Start it (`bash \
             .ci/run` installs and starts it; on Debian `pg_ctlcluster --skip-systemctl-redirect \
             $(ls /etc/postgresql) main start`), with trust auth for user postgres on 127.0.0.1 \
             and a database `test`, or set FUNNEL_TEST_DATABASE_URL"
        ),
    }
}

/// A name part unique across test processes and within one: pid, a counter, the time.
pub fn unique(counter: &std::sync::atomic::AtomicUsize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{nanos}",
        std::process::id(),
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A private `redis-server` on a free port (no persistence), for tests that stop and restart
/// Redis without disturbing the shared one.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self { port, child: None };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts it again on the same port (after [`RedisServer::kill`]) and waits until it
    /// accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is running already");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (is it installed?)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it (SIGKILL), as a crash does.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A counter or gauge from `/metrics` (0 when absent).
pub async fn metric(addr: SocketAddr, name: &str) -> i64 {
    let (_, text) = http(addr, "GET", "/metrics", None).await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Creates a deal board named "Q4" over the API as the holder of `bearer` (None: local mode);
/// returns its id and its stages as (name, id) pairs in board order.
pub async fn deal_board(addr: SocketAddr, bearer: Option<&str>) -> (String, Vec<(String, String)>) {
    let body = serde_json::json!({"entity": "deal", "name": "Q4"});
    let (status, _, board) = json_call(addr, bearer, "POST", "/api/v1/boards", Some(body)).await;
    assert_eq!(status, 201, "a new board: {board}");
    let id = board["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/boards/{id}/stages");
    let (status, _, stages) = json_call(addr, bearer, "GET", &path, None).await;
    assert_eq!(status, 200, "{path}: {stages}");
    assert!(stages["next"].is_null(), "one page of stages: {stages}");
    (id, named_stages(&stages))
}

/// A `GET .../stages` answer as (name, id) pairs, in board order.
pub fn named_stages(stages: &serde_json::Value) -> Vec<(String, String)> {
    stages["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The id of the stage named `name` in [`named_stages`]' pairs.
pub fn stage_id<'a>(stages: &'a [(String, String)], name: &str) -> &'a str {
    &stages.iter().find(|(n, _)| n == name).unwrap().1
}
