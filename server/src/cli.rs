//! The command-line client in the `funnel` binary: `funnel boards`, `funnel cards
//! list|add|move|edit`, `funnel watch BOARD`. It talks to a server over the JSON API (and, for
//! `watch`, the board's WebSocket with a yrs document), as any outside program would.
//!
//! Every command takes `--url` (`FUNNEL_URL`), `--token` (`FUNNEL_TOKEN`) and `--json`. Output
//! is a table for people, JSON for scripts; a failure prints the server's problem detail and
//! exits non-zero.

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use funnel_protocol::board::{self, Card};
use funnel_protocol::schema;
use funnel_protocol::wire::{self, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Map, ReadTxn, StateVector, Transact, Update};

/// Where the server is and who is calling: every client command's flags.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The server's base URL.
    #[arg(
        long,
        env = "FUNNEL_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// A token (`funnel token` makes one); none in local mode.
    #[arg(long, env = "FUNNEL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CardsArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub action: CardsAction,
}

#[derive(Debug, Subcommand)]
pub enum CardsAction {
    /// The cards of a board.
    List {
        board: String,
        /// Only the cards of this stage (its name or id).
        #[arg(long)]
        stage: Option<String>,
        /// Only cards whose title, client or e-mail contain this text.
        #[arg(long)]
        query: Option<String>,
    },
    /// Adds a card (at the initial stage unless --stage).
    Add {
        board: String,
        #[arg(long)]
        title: String,
        #[command(flatten)]
        fields: CardFields,
        /// The stage (name or id).
        #[arg(long)]
        stage: Option<String>,
        /// Makes the command safe to repeat: the same key within 24 h adds the card once.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Moves a card to a stage (to the top, unless --before or --after names a card there).
    Move {
        board: String,
        card: String,
        /// The stage (name or id).
        stage: String,
        #[arg(long, conflicts_with = "after")]
        before: Option<String>,
        #[arg(long)]
        after: Option<String>,
    },
    /// Edits the fields given.
    Edit {
        board: String,
        card: String,
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        fields: CardFields,
    },
}

/// A card's fields as flags (each one optional).
#[derive(Debug, Args)]
pub struct CardFields {
    /// In minor units (cents).
    #[arg(long)]
    pub amount: Option<i64>,
    /// ISO 4217 (EUR, USD...).
    #[arg(long)]
    pub currency: Option<String>,
    /// The responsible employee's user id.
    #[arg(long)]
    pub responsible: Option<String>,
    #[arg(long)]
    pub client: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    /// A custom field, `FIELD=VALUE` (VALUE as JSON when it parses, else text); repeatable.
    #[arg(long = "field", value_name = "FIELD=VALUE")]
    pub custom: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The board to follow.
    pub board: String,
    /// Stop after this many events (default: until interrupted).
    #[arg(long)]
    pub count: Option<usize>,
}

/// `funnel boards`.
pub fn boards(connection: Connection) -> anyhow::Result<()> {
    block_on(async move {
        let api = Api::new(&connection)?;
        let list = api.get("/api/v1/boards").await?;
        if connection.json {
            return print_json(&list["boards"]);
        }
        let rows = array(&list, "boards")
            .iter()
            .map(|b| vec![text(b, "id"), text(b, "name"), text(b, "entity")])
            .collect();
        print_table(&["ID", "NAME", "ENTITY"], rows);
        Ok(())
    })
}

/// `funnel cards ...`.
pub fn cards(args: CardsArgs) -> anyhow::Result<()> {
    block_on(async move {
        let api = Api::new(&args.connection)?;
        let json_out = args.connection.json;
        match args.action {
            CardsAction::List {
                board,
                stage,
                query,
            } => {
                let stages = api.stages(&board).await?;
                let mut path = format!("/api/v1/boards/{}/cards?limit=200", segment(&board));
                if let Some(stage) = stage {
                    path.push_str(&format!(
                        "&stageId={}",
                        segment(&stage_id(&stages, &stage)?)
                    ));
                }
                if let Some(query) = query {
                    path.push_str(&format!("&q={}", segment(&query)));
                }
                let cards = api.all_pages(&path, "cards").await?;
                if json_out {
                    return print_json(&Value::Array(cards));
                }
                let rows = cards
                    .iter()
                    .map(|c| {
                        vec![
                            text(c, "id"),
                            text(c, "title"),
                            stage_name(&stages, &text(c, "stageId")),
                            money(c),
                            text(c, "responsible"),
                            text(c, "client"),
                        ]
                    })
                    .collect();
                print_table(
                    &["ID", "TITLE", "STAGE", "AMOUNT", "RESPONSIBLE", "CLIENT"],
                    rows,
                );
                Ok(())
            }
            CardsAction::Add {
                board,
                title,
                fields,
                stage,
                idempotency_key,
            } => {
                let mut body = fields.to_json()?;
                body.insert("title".into(), json!(title));
                if let Some(stage) = stage {
                    let stages = api.stages(&board).await?;
                    body.insert("stageId".into(), json!(stage_id(&stages, &stage)?));
                }
                let path = format!("/api/v1/boards/{}/cards", segment(&board));
                let card = api
                    .send(
                        reqwest::Method::POST,
                        &path,
                        &Value::Object(body),
                        idempotency_key.as_deref(),
                    )
                    .await?;
                print_card(&api, &board, &card, json_out).await
            }
            CardsAction::Move {
                board,
                card,
                stage,
                before,
                after,
            } => {
                let stages = api.stages(&board).await?;
                let mut body = serde_json::Map::new();
                body.insert("stageId".into(), json!(stage_id(&stages, &stage)?));
                if let Some(before) = before {
                    body.insert("before".into(), json!(before));
                }
                if let Some(after) = after {
                    body.insert("after".into(), json!(after));
                }
                let card = api.patch_card(&board, &card, body).await?;
                print_card(&api, &board, &card, json_out).await
            }
            CardsAction::Edit {
                board,
                card,
                title,
                fields,
            } => {
                let mut body = fields.to_json()?;
                if let Some(title) = title {
                    body.insert("title".into(), json!(title));
                }
                if body.is_empty() {
                    bail!("nothing to edit: give --title, --amount, --client, --field ...");
                }
                let card = api.patch_card(&board, &card, body).await?;
                print_card(&api, &board, &card, json_out).await
            }
        }
    })
}

/// `funnel watch BOARD`: one line per change of the board, as it happens.
pub fn watch(args: WatchArgs) -> anyhow::Result<()> {
    block_on(async move { watch_board(&args).await })
}

impl CardFields {
    fn to_json(&self) -> anyhow::Result<serde_json::Map<String, Value>> {
        let mut body = serde_json::Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                body.insert(key.into(), value);
            }
        };
        put("amount", self.amount.map(|v| json!(v)));
        put("currency", self.currency.as_ref().map(|v| json!(v)));
        put("responsible", self.responsible.as_ref().map(|v| json!(v)));
        put("client", self.client.as_ref().map(|v| json!(v)));
        put("email", self.email.as_ref().map(|v| json!(v)));
        if !self.custom.is_empty() {
            let mut custom = serde_json::Map::new();
            for pair in &self.custom {
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--field {pair:?}: expected FIELD=VALUE"))?;
                let value =
                    serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
                custom.insert(name.trim().to_owned(), value);
            }
            body.insert("fields".into(), Value::Object(custom));
        }
        Ok(body)
    }
}

fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

/// The longest an API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The most pages `cards list` follows (200 cards each).
const MAX_PAGES: usize = 500;

struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(connection: &Connection) -> anyhow::Result<Self> {
        let base = connection.url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--url must be an http:// or https:// URL, such as http://127.0.0.1:8080");
        }
        Ok(Self {
            http: reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?,
            base,
            token: connection.token.clone().filter(|t| !t.is_empty()),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        let bytes = response.bytes().await.context("reading the answer")?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        Err(anyhow!(describe_problem(status.as_u16(), &value)))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None, None).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> anyhow::Result<Value> {
        self.call(method, path, Some(body), key).await
    }

    async fn patch_card(
        &self,
        board: &str,
        card: &str,
        body: serde_json::Map<String, Value>,
    ) -> anyhow::Result<Value> {
        let path = format!("/api/v1/boards/{}/cards/{}", segment(board), segment(card));
        self.send(reqwest::Method::PATCH, &path, &Value::Object(body), None)
            .await
    }

    /// Every item of a list, following `next` cursors (at most [`MAX_PAGES`]).
    async fn all_pages(&self, path: &str, plural: &str) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut page = self.get(path).await?;
        for _ in 0..MAX_PAGES {
            items.extend(array(&page, plural).iter().cloned());
            let Some(next) = page.get("next").and_then(Value::as_str) else {
                return Ok(items);
            };
            let separator = if path.contains('?') { '&' } else { '?' };
            page = self
                .get(&format!("{path}{separator}cursor={}", segment(next)))
                .await?;
        }
        bail!("more than {MAX_PAGES} pages: narrow the list with --stage or --query")
    }

    async fn stages(&self, board: &str) -> anyhow::Result<Vec<Value>> {
        self.all_pages(
            &format!("/api/v1/boards/{}/stages", segment(board)),
            "stages",
        )
        .await
    }
}

/// A problem document (RFC 9457) as one line: the status, the detail, each bad field.
fn describe_problem(status: u16, problem: &Value) -> String {
    let detail = problem
        .get("detail")
        .and_then(Value::as_str)
        .or_else(|| problem.get("error").and_then(Value::as_str))
        .unwrap_or("no detail");
    let mut line = format!("the server answered {status}: {detail}");
    for error in array(problem, "errors") {
        line.push_str(&format!(
            "\n  {}: {}",
            text(error, "field"),
            text(error, "message")
        ));
    }
    line
}

/// A path segment, percent-encoded.
fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// An amount in minor units with its currency: `1234.50 EUR`.
fn money(card: &Value) -> String {
    match card.get("amount").and_then(Value::as_i64) {
        Some(cents) => format!(
            "{}{}.{:02} {}",
            if cents < 0 { "-" } else { "" },
            cents.unsigned_abs() / 100,
            cents.unsigned_abs() % 100,
            text(card, "currency")
        )
        .trim_end()
        .to_owned(),
        None => String::new(),
    }
}

/// A stage's id from its id or its name (any case).
fn stage_id(stages: &[Value], wanted: &str) -> anyhow::Result<String> {
    if let Some(stage) = stages.iter().find(|s| text(s, "id") == wanted) {
        return Ok(text(stage, "id"));
    }
    let named: Vec<&Value> = stages
        .iter()
        .filter(|s| text(s, "name").eq_ignore_ascii_case(wanted.trim()))
        .collect();
    match named.as_slice() {
        [stage] => Ok(text(stage, "id")),
        [] => bail!(
            "no stage {wanted:?} on this board; its stages: {}",
            stages
                .iter()
                .map(|s| text(s, "name"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => bail!("several stages are named {wanted:?}: give its id"),
    }
}

fn stage_name(stages: &[Value], id: &str) -> String {
    stages
        .iter()
        .find(|s| text(s, "id") == id)
        .map_or_else(|| id.to_owned(), |s| text(s, "name"))
}

async fn print_card(api: &Api, board: &str, card: &Value, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        return print_json(card);
    }
    let stages = api.stages(board).await.unwrap_or_default();
    let row = vec![
        text(card, "id"),
        text(card, "title"),
        stage_name(&stages, &text(card, "stageId")),
        money(card),
        text(card, "responsible"),
        text(card, "client"),
    ];
    print_table(
        &["ID", "TITLE", "STAGE", "AMOUNT", "RESPONSIBLE", "CLIENT"],
        vec![row],
    );
    Ok(())
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(header.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

/// The board's WebSocket URL for the API's base URL.
fn socket_url(connection: &Connection, board: &str) -> anyhow::Result<String> {
    let base = connection.url.trim_end_matches('/');
    let rest = if let Some(rest) = base.strip_prefix("http://") {
        rest
    } else if base.starts_with("https://") {
        bail!(
            "funnel watch speaks ws:// only: give the server's http:// address (a TLS \
             terminator in front of funnel forwards to one)"
        );
    } else {
        bail!("--url must be an http:// URL, such as http://127.0.0.1:8080");
    };
    let mut url = format!("ws://{rest}/ws/boards/{}", segment(board));
    if let Some(token) = connection.token.as_deref().filter(|t| !t.is_empty()) {
        url.push_str(&format!("?token={}", segment(token)));
    }
    Ok(url)
}

async fn watch_board(args: &WatchArgs) -> anyhow::Result<()> {
    let url = socket_url(&args.connection, &args.board)?;
    let (mut socket, _) =
        tokio::time::timeout(CALL_TIMEOUT, tokio_tungstenite::connect_async(&url))
            .await
            .map_err(|_| {
                anyhow!(
                    "no answer from {} within {CALL_TIMEOUT:?}",
                    args.connection.url
                )
            })?
            .with_context(|| {
                format!("cannot open the board's socket at {}", args.connection.url)
            })?;
    let doc = Doc::new();
    socket
        .send(Message::Binary(wire::client::encode_sync_step1(
            &StateVector::default(),
        )))
        .await?;
    let mut synced = false;
    let mut names: HashMap<u64, String> = HashMap::new();
    let mut before = read_cards(&doc);
    let mut printed = 0usize;
    while let Some(message) = socket.next().await {
        let frame = match message? {
            Message::Binary(frame) => frame,
            Message::Close(close) => {
                let (code, reason) = close.map_or((1005, String::new()), |c| {
                    (u16::from(c.code), c.reason.to_string())
                });
                bail!("the server closed the board's socket ({code}): {reason}");
            }
            _ => continue,
        };
        let update = match wire::decode_server_frame(&frame) {
            Ok(ServerMessage::SyncStep1(sv)) => {
                // We write nothing: our step 2 is what the server lacks of an empty document.
                let answer = doc.transact().encode_state_as_update_v1(&sv);
                socket
                    .send(Message::Binary(wire::client::encode_sync_step2(&answer)))
                    .await?;
                continue;
            }
            Ok(ServerMessage::SyncStep2(update)) => {
                apply(&doc, &update)?;
                before = read_cards(&doc);
                if !synced {
                    synced = true;
                    if !args.connection.json {
                        eprintln!(
                            "watching {} ({} cards); Ctrl-C stops",
                            args.board,
                            before.len()
                        );
                    }
                }
                continue;
            }
            Ok(ServerMessage::Update(update)) => update,
            Ok(ServerMessage::Awareness(awareness)) => {
                for (client, entry) in awareness.clients {
                    if let Some(name) = awareness_name(&entry.json) {
                        names.insert(client.get(), name);
                    }
                }
                continue;
            }
            Ok(ServerMessage::AuthDenied(reason)) => bail!("refused: {reason}"),
            Ok(ServerMessage::QueryAwareness | ServerMessage::Recovered(_)) | Err(_) => continue,
        };
        let known = doc.transact().state_vector();
        apply(&doc, &update)?;
        let authors = authors_of(&known, &doc.transact().state_vector(), &names);
        let after = read_cards(&doc);
        let stages = stage_names(&doc);
        for event in describe_changes(&before, &after, &stages, authors.as_deref()) {
            if args.connection.json {
                println!("{event}");
            } else {
                println!("{}", event["text"].as_str().unwrap_or_default());
            }
            printed += 1;
            if args.count.is_some_and(|count| printed >= count) {
                let _ = socket.close(None).await;
                return Ok(());
            }
        }
        before = after;
    }
    bail!("the board's socket closed")
}

/// Stage id → name; the empty id (a card that names no stage, shown in the initial stage, as
/// on every replica) → the initial stage's name.
fn stage_names(doc: &Doc) -> HashMap<String, String> {
    let stages = board::stages(&doc.transact());
    let initial = stages
        .iter()
        .find(|s| s.kind == schema::StageKind::Initial)
        .map(|s| s.name.clone());
    let mut names: HashMap<String, String> = stages.into_iter().map(|s| (s.id, s.name)).collect();
    if let Some(initial) = initial {
        names.insert(String::new(), initial);
    }
    names
}

fn apply(doc: &Doc, update: &[u8]) -> anyhow::Result<()> {
    let update =
        Update::decode_v1(update).context("the server sent an update that does not decode")?;
    doc.transact_mut()
        .apply_update(update)
        .context("the server sent an update this document cannot apply")
}

/// The user's name (or id) in an awareness state `{user: {id, name}}`.
fn awareness_name(state: &str) -> Option<String> {
    let state: Value = serde_json::from_str(state).ok()?;
    let user = state.get("user")?;
    user.get("name")
        .or_else(|| user.get("id"))
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

/// Who wrote an update: the clients whose clocks it advanced (from `before` to `after`), by
/// the names their awareness states give.
fn authors_of(
    before: &StateVector,
    after: &StateVector,
    names: &HashMap<u64, String>,
) -> Option<String> {
    let mut authors: Vec<&str> = after
        .iter()
        .filter(|(client, clock)| before.get(client) < **clock)
        .filter_map(|(client, _)| names.get(&client.get()).map(String::as_str))
        .collect();
    authors.sort_unstable();
    authors.dedup();
    (!authors.is_empty()).then(|| authors.join(", "))
}

fn read_cards(doc: &Doc) -> BTreeMap<String, Card> {
    let txn = doc.transact();
    let Some(cards) = txn.get_map(schema::root::CARDS) else {
        return BTreeMap::new();
    };
    cards
        .keys(&txn)
        .filter_map(|id| board::card(&txn, id).map(|card| (id.to_owned(), card)))
        .collect()
}

/// One event per card that changed between two readings: created, moved, edited, deleted.
/// Each is `{type, card, title, text, by?}`; `text` is the line people read ("Acme moved New →
/// Won by ann").
pub fn describe_changes(
    before: &BTreeMap<String, Card>,
    after: &BTreeMap<String, Card>,
    stages: &HashMap<String, String>,
    by: Option<&str>,
) -> Vec<Value> {
    // A card naming no existing stage is in the initial stage (kept under "").
    let stage = |id: &str| {
        stages
            .get(id)
            .or_else(|| stages.get(""))
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    };
    let suffix = by.map(|by| format!(" by {by}")).unwrap_or_default();
    let event = |kind: &str, card: &Card, text: String| {
        let mut event = json!({"type": kind, "card": card.id, "title": card.title, "text": text});
        if let Some(by) = by {
            event["by"] = json!(by);
        }
        event
    };
    let mut events = Vec::new();
    for (id, card) in after {
        match before.get(id) {
            None => events.push(event(
                "card.created",
                card,
                format!("{} added to {}{suffix}", card.title, stage(&card.stage)),
            )),
            Some(old) if old.stage != card.stage => events.push(event(
                "card.moved",
                card,
                format!(
                    "{} moved {} → {}{suffix}",
                    card.title,
                    stage(&old.stage),
                    stage(&card.stage)
                ),
            )),
            Some(old) => {
                let mut changed = Vec::new();
                if old.title != card.title {
                    changed.push("title");
                }
                if old.amount != card.amount || old.currency != card.currency {
                    changed.push("amount");
                }
                if old.responsible != card.responsible {
                    changed.push("responsible");
                }
                if old.client != card.client {
                    changed.push("client");
                }
                if old.email != card.email {
                    changed.push("email");
                }
                if old.fields != card.fields {
                    changed.push("fields");
                }
                if old.pos != card.pos && changed.is_empty() {
                    changed.push("position");
                }
                if !changed.is_empty() {
                    events.push(event(
                        "card.updated",
                        card,
                        format!("{} edited ({}){suffix}", card.title, changed.join(", ")),
                    ));
                }
            }
        }
    }
    for (id, card) in before {
        if !after.contains_key(id) {
            events.push(event(
                "card.deleted",
                card,
                format!("{} deleted{suffix}", card.title),
            ));
        }
    }
    events
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

    use super::*;

    fn card(id: &str, title: &str, stage: &str) -> Card {
        Card {
            id: id.into(),
            title: title.into(),
            stage: stage.into(),
            pos: "a0".into(),
            amount: 0,
            currency: "EUR".into(),
            responsible: String::new(),
            client: String::new(),
            created_at: 0,
            fields: BTreeMap::new(),
            email: String::new(),
            updated_at: 0,
            archived_at: None,
            close_date: None,
            lost_reason: String::new(),
            timeline_at: None,
        }
    }

    #[test]
    fn changes_read_as_lines_with_stage_names_and_the_author() {
        let stages: HashMap<String, String> = [("s1", "New"), ("s2", "Won")]
            .into_iter()
            .map(|(a, b)| (a.into(), b.into()))
            .collect();
        let before: BTreeMap<_, _> = [
            ("c1", card("c1", "Acme", "s1")),
            ("c2", card("c2", "Old", "s1")),
        ]
        .into_iter()
        .map(|(id, c)| (id.to_owned(), c))
        .collect();
        let mut after = before.clone();
        after.get_mut("c1").unwrap().stage = "s2".into();
        after.remove("c2");
        let mut renamed = card("c3", "Beta", "s1");
        after.insert("c3".into(), renamed.clone());
        let lines: Vec<String> = describe_changes(&before, &after, &stages, Some("ann"))
            .iter()
            .map(|e| e["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            lines,
            [
                "Acme moved New → Won by ann",
                "Beta added to New by ann",
                "Old deleted by ann"
            ]
        );
        let before = after.clone();
        renamed.title = "Beta GmbH".into();
        renamed.amount = 100;
        after.insert("c3".into(), renamed);
        let events = describe_changes(&before, &after, &stages, None);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["type"], "card.updated");
        assert_eq!(events[0]["text"], "Beta GmbH edited (title, amount)");
        assert!(events[0].get("by").is_none());
        assert!(describe_changes(&after, &after, &stages, None).is_empty());
    }

    #[test]
    fn problems_print_their_detail_and_fields() {
        let problem = json!({"status": 422, "detail": "title: enter a title",
            "errors": [{"field": "title", "message": "enter a title"}]});
        assert_eq!(
            describe_problem(422, &problem),
            "the server answered 422: title: enter a title\n  title: enter a title"
        );
        assert_eq!(segment("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(
            money(&json!({"amount": -1234, "currency": "EUR"})),
            "-12.34 EUR"
        );
    }

    #[test]
    fn stages_are_found_by_id_or_name() {
        let stages = vec![
            json!({"id": "s1", "name": "New"}),
            json!({"id": "s2", "name": "Won"}),
        ];
        assert_eq!(stage_id(&stages, "won").unwrap(), "s2");
        assert_eq!(stage_id(&stages, "s1").unwrap(), "s1");
        let err = stage_id(&stages, "Lost").unwrap_err().to_string();
        assert!(err.contains("New, Won"), "{err}");
    }
}
