//! Deals from e-mail through the real server: `POST /api/v1/boards/{boardId}/inbound-email`
//! (a new deal, a reply appended once, a sender's open card, a duplicate Message-ID, malformed
//! mail 400 with nothing stored, the size limit 413, roles), the board's inbound address, the
//! SMTP listener's refusals (unknown board, wrong secret, oversized, malformed), and the
//! Message-ID table on PostgreSQL across a restart.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::policy::Role;
use funnel_server::auth::{Auth, claims_for};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use support::{TestDatabase, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SECRET: &str = "a test secret that is long enough for HS256";

fn token(user: &str, role: Role) -> String {
    let claims = claims_for(user, None, role, &[], Duration::from_secs(600));
    Auth::with_secret(SECRET).issue(&claims).unwrap().unwrap()
}

/// An API caller with a token (None: no Authorization header).
struct Api {
    base: String,
    bearer: Option<String>,
    http: reqwest::Client,
}

impl Api {
    fn new(server: &TestServer, bearer: Option<String>) -> Self {
        Api {
            base: format!("http://{}", server.addr),
            bearer,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let request = match &self.bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, value)
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let request = self
            .http
            .request(method.parse().unwrap(), url)
            .timeout(Duration::from_secs(10));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        self.send(request).await
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, value) = self.json(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {value}");
        value
    }

    /// Posts a raw message to the board's inbound-email endpoint.
    async fn mail(&self, board: &str, raw: &str) -> (u16, Value) {
        self.mail_as(board, raw, "message/rfc822").await
    }

    async fn mail_as(&self, board: &str, raw: &str, content_type: &str) -> (u16, Value) {
        let url = format!("{}/api/v1/boards/{board}/inbound-email", self.base);
        let request = self
            .http
            .post(url)
            .header("content-type", content_type)
            .body(raw.to_owned())
            .timeout(Duration::from_secs(10));
        self.send(request).await
    }
}

/// A message from `from` with these extra header lines.
fn message(from: &str, id: &str, subject: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: board@crm.example\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         {extra}Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    )
}

async fn deal_board(admin: &Api) -> String {
    let board = admin
        .ok(
            "POST",
            "/api/v1/boards",
            Some(json!({"entity": "deal", "name": "Inbound"})),
            201,
        )
        .await;
    board["id"].as_str().unwrap().to_owned()
}

async fn cards(api: &Api, board: &str) -> Vec<Value> {
    api.ok("GET", &format!("/api/v1/boards/{board}/cards"), None, 200)
        .await["cards"]
        .as_array()
        .unwrap()
        .clone()
}

async fn timeline(api: &Api, board: &str, card: &str) -> Vec<Value> {
    api.ok(
        "GET",
        &format!("/api/v1/boards/{board}/cards/{card}/timeline"),
        None,
        200,
    )
    .await["events"]
        .as_array()
        .unwrap()
        .clone()
}

async fn stage_id(api: &Api, board: &str, name: &str) -> String {
    let stages = api
        .ok("GET", &format!("/api/v1/boards/{board}/stages"), None, 200)
        .await;
    stages["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn start_with_tokens(dir: &std::path::Path) -> TestServer {
    TestServer::start_with(dir, |config| config.auth_secret = Some(SECRET.into())).await
}

#[tokio::test]
async fn a_new_deal_then_a_reply_appended_once_then_the_senders_open_card() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_tokens(dir.path()).await;
    let admin = Api::new(&server, Some(token("root", Role::Admin)));
    let ann = Api::new(&server, Some(token("ann", Role::Member)));
    let board = deal_board(&admin).await;
    let new_stage = stage_id(&admin, &board, "New").await;

    // A first message: a new deal in the initial stage, the caller responsible.
    let first = message(
        "Ada Lovelace <ada@example.com>",
        "m1@example.com",
        "Quote for 40 engines",
        "",
        "Hello,\r\nwhat would 40 engines cost?",
    );
    let (status, created) = ann.mail(&board, &first).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["action"], "created");
    assert_eq!(created["messageId"], "m1@example.com");
    let card_id = created["cardId"].as_str().unwrap().to_owned();
    // The open incoming activity is named after the mail's Subject, not its first words.
    let activities = ann
        .ok(
            "GET",
            &format!("/api/v1/boards/{board}/cards/{card_id}/activities"),
            None,
            200,
        )
        .await;
    let email_activity = activities["activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "email")
        .unwrap_or_else(|| panic!("no e-mail activity: {activities}"));
    assert_eq!(
        email_activity["subject"], "Quote for 40 engines",
        "{email_activity}"
    );
    assert_eq!(email_activity["direction"], "incoming", "{email_activity}");
    // The change feed names the e-mail as the deal's origin, and the caller as its actor.
    let feed = admin
        .ok(
            "GET",
            &format!("/api/v1/events?boardId={board}&types=card.created,activity.created"),
            None,
            200,
        )
        .await;
    let events = feed["events"].as_array().unwrap();
    let created_event = events
        .iter()
        .find(|e| e["type"] == "card.created" && e["data"]["cardId"] == card_id.as_str())
        .unwrap_or_else(|| panic!("no card.created for the deal: {feed}"));
    assert_eq!(created_event["data"]["origin"], "email", "{created_event}");
    assert_eq!(created_event["data"]["actor"], "ann", "{created_event}");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "activity.created" && e["data"]["origin"] == "email"),
        "the incoming e-mail activity comes from the e-mail: {feed}"
    );
    let card = ann
        .ok(
            "GET",
            &format!("/api/v1/boards/{board}/cards/{card_id}"),
            None,
            200,
        )
        .await;
    assert_eq!(card["title"], "Quote for 40 engines");
    assert_eq!(card["client"], "Ada Lovelace");
    assert_eq!(card["email"], "ada@example.com");
    assert_eq!(card["stageId"], new_stage);
    assert_eq!(card["responsible"], "ann");
    assert_eq!(card["counter"]["incoming"], 1, "{card}");
    assert_eq!(card["counter"]["state"], "incoming", "{card}");
    let events = timeline(&ann, &board, &card_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["kind"], "email");
    assert_eq!(events[0]["direction"], "incoming");
    assert_eq!(events[0]["user"], "ann");
    assert_eq!(events[0]["text"], "Hello,\r\nwhat would 40 engines cost?");
    assert_eq!(events[0]["mail"]["subject"], "Quote for 40 engines");
    assert_eq!(events[0]["mail"]["from"], "ada@example.com");
    assert_eq!(events[0]["mail"]["fromName"], "Ada Lovelace");
    assert_eq!(events[0]["id"], created["eventId"]);

    // A reply from another address, naming the first message: appended to that card, once.
    let reply = message(
        "Grace <grace@other.example>",
        "m2@other.example",
        "Re: Quote for 40 engines",
        "In-Reply-To: <m1@example.com>\r\nReferences: <m1@example.com>\r\n",
        "We need them by March.",
    );
    let (status, appended) = ann.mail(&board, &reply).await;
    assert_eq!(status, 201, "{appended}");
    assert_eq!(appended["action"], "appended");
    assert_eq!(appended["cardId"], card_id.as_str());
    let (status, duplicate) = ann.mail(&board, &reply).await;
    assert_eq!(status, 200, "{duplicate}");
    assert_eq!(duplicate["action"], "duplicate");
    assert_eq!(duplicate["cardId"], card_id.as_str());
    assert_eq!(duplicate["eventId"], appended["eventId"]);
    let events = timeline(&ann, &board, &card_id).await;
    assert_eq!(events.len(), 2, "the reply is on the card once: {events:?}");
    assert_eq!(events[0]["mail"]["subject"], "Re: Quote for 40 engines");
    assert_eq!(cards(&ann, &board).await.len(), 1);
    let card = ann
        .ok(
            "GET",
            &format!("/api/v1/boards/{board}/cards/{card_id}"),
            None,
            200,
        )
        .await;
    assert_eq!(card["counter"]["incoming"], 2, "{card}");

    // The same sender again, not a reply, any case: the open card gets it.
    let again = message(
        "ADA@EXAMPLE.COM",
        "m3@example.com",
        "Another question",
        "",
        "And spare parts?",
    );
    let (status, appended) = ann.mail(&board, &again).await;
    assert_eq!(status, 201, "{appended}");
    assert_eq!(appended["action"], "appended");
    assert_eq!(appended["cardId"], card_id.as_str());

    // Once the card is won it is no longer open: the sender's next mail is a new deal, but a
    // reply to a message on the won card still goes there.
    let won = stage_id(&admin, &board, "Won").await;
    ann.ok(
        "PATCH",
        &format!("/api/v1/boards/{board}/cards/{card_id}"),
        Some(json!({"stageId": won})),
        200,
    )
    .await;
    let later = message(
        "ada@example.com",
        "m4@example.com",
        "New order",
        "",
        "10 more.",
    );
    let (status, created) = ann.mail(&board, &later).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["action"], "created");
    assert_ne!(created["cardId"], card_id.as_str());
    let late_reply = message(
        "ada@example.com",
        "m5@example.com",
        "Re: Quote",
        "References: <m0@nowhere.example> <m2@other.example>\r\n",
        "Thanks!",
    );
    let (status, appended) = ann.mail(&board, &late_reply).await;
    assert_eq!(status, 201, "{appended}");
    assert_eq!(appended["action"], "appended");
    assert_eq!(appended["cardId"], card_id.as_str());
    assert_eq!(cards(&ann, &board).await.len(), 2);
    server.stop().await;
}

/// Mail sent by a program (an out-of-office reply, a bounce, bulk mail) makes no deal: about no
/// card it is ignored and nothing is stored; from the sender of an open card it joins that card.
#[tokio::test]
async fn automatic_mail_makes_no_deal_but_joins_its_senders_card() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_tokens(dir.path()).await;
    let admin = Api::new(&server, Some(token("root", Role::Admin)));
    let ann = Api::new(&server, Some(token("ann", Role::Member)));
    let board = deal_board(&admin).await;

    for (i, (from, extra)) in [
        ("Ada <ada@example.com>", "Auto-Submitted: auto-replied\r\n"),
        ("Ada <ada@example.com>", "Precedence: bulk\r\n"),
        ("Mail Delivery System <MAILER-DAEMON@mx.example.com>", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let raw = message(
            from,
            &format!("auto{i}@example.com"),
            "Out of office",
            extra,
            "I am away.",
        );
        let (status, outcome) = ann.mail(&board, &raw).await;
        assert_eq!(status, 200, "{outcome}");
        assert_eq!(outcome["action"], "ignored", "{outcome}");
        assert!(outcome.get("cardId").is_none(), "{outcome}");
    }
    assert!(
        cards(&ann, &board).await.is_empty(),
        "no deal from a program's mail"
    );

    // A person's mail makes the deal; the program's reply from the same address then joins it.
    let first = message(
        "Ada <ada@example.com>",
        "human@example.com",
        "Engines",
        "",
        "Hello",
    );
    let (status, created) = ann.mail(&board, &first).await;
    assert_eq!(status, 201, "{created}");
    let card = created["cardId"].as_str().unwrap().to_owned();
    let away = message(
        "Ada <ada@example.com>",
        "away@example.com",
        "Out of office",
        "Auto-Submitted: auto-replied\r\n",
        "Back on Monday.",
    );
    let (status, appended) = ann.mail(&board, &away).await;
    assert_eq!(status, 201, "{appended}");
    assert_eq!(appended["action"], "appended");
    assert_eq!(appended["cardId"], card.as_str());
    assert_eq!(cards(&ann, &board).await.len(), 1);
    // "Auto-Submitted: no" is a person's mail.
    let person = message(
        "Bo <bo@example.com>",
        "bo@example.com",
        "A question",
        "Auto-Submitted: no\r\n",
        "Hi",
    );
    assert_eq!(ann.mail(&board, &person).await.1["action"], "created");
    server.stop().await;
}

#[tokio::test]
async fn malformed_mail_oversized_mail_and_wrong_callers_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.auth_secret = Some(SECRET.into());
        config.max_mail_bytes = 2048;
    })
    .await;
    let admin = Api::new(&server, Some(token("root", Role::Admin)));
    let ann = Api::new(&server, Some(token("ann", Role::Member)));
    let board = deal_board(&admin).await;

    for (raw, why) in [
        ("this is not a message at all\r\n", "no header"),
        ("Subject: who wrote this?\r\n\r\nnobody\r\n", "no From"),
        (
            "From: nobody at all\r\nSubject: x\r\n\r\nbody\r\n",
            "no address",
        ),
    ] {
        let (status, problem) = ann.mail(&board, raw).await;
        assert_eq!(status, 400, "{why}: {problem}");
        assert_eq!(problem["status"], 400);
        assert!(
            problem["detail"].as_str().unwrap().contains("From")
                || problem["detail"].as_str().unwrap().contains("RFC 5322"),
            "{why}: {problem}"
        );
    }
    // Over --max-mail-bytes: 413.
    let big = message(
        "ada@example.com",
        "big@example.com",
        "Big",
        "",
        &"x".repeat(3000),
    );
    let (status, problem) = ann.mail(&board, &big).await;
    assert_eq!(status, 413, "{problem}");
    // A sender address that a card cannot hold (no dot in the domain): 400, nothing kept.
    let local = message("root@localhost", "local@example.com", "Local", "", "hi");
    let (status, problem) = ann.mail(&board, &local).await;
    assert_eq!(status, 400, "{problem}");
    // Not message/rfc822: 415. Viewers 403, no token 401, no board 404.
    let fine = message("ada@example.com", "fine@example.com", "Fine", "", "hello");
    let (status, _) = ann.mail_as(&board, &fine, "text/plain").await;
    assert_eq!(status, 415);
    let viewer = Api::new(&server, Some(token("vic", Role::Viewer)));
    assert_eq!(viewer.mail(&board, &fine).await.0, 403);
    assert_eq!(Api::new(&server, None).mail(&board, &fine).await.0, 401);
    assert_eq!(ann.mail("no-such-board", &fine).await.0, 404);
    assert!(cards(&ann, &board).await.is_empty(), "nothing was stored");

    // None of them kept its Message-ID: the big one, cut down, is taken as new.
    let small = message("ada@example.com", "big@example.com", "Big", "", "short");
    let (status, outcome) = ann.mail(&board, &small).await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(outcome["action"], "created");
    let local = message("root@example.com", "local@example.com", "Local", "", "hi");
    let (status, outcome) = ann.mail(&board, &local).await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(cards(&ann, &board).await.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn admins_see_the_boards_address_with_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.auth_secret = Some(SECRET.into());
        config.mail_domain = "crm.example.com".into();
    })
    .await;
    let admin = Api::new(&server, Some(token("root", Role::Admin)));
    let board = deal_board(&admin).await;
    let path = format!("/api/v1/boards/{board}/inbound-email");
    let address = admin.ok("GET", &path, None, 200).await;
    let local_part = address["localPart"].as_str().unwrap();
    let (id, secret) = local_part.split_once('+').unwrap();
    assert_eq!(id, board);
    assert_eq!(secret.len(), 20);
    assert_eq!(address["address"], format!("{local_part}@crm.example.com"));
    assert_eq!(address["secretRequired"], true);
    assert_eq!(address["smtp"], false);
    assert_eq!(address["maxBytes"], 10 * 1024 * 1024);
    let ann = Api::new(&server, Some(token("ann", Role::Member)));
    assert_eq!(ann.json("GET", &path, None).await.0, 403);
    server.stop().await;

    // Local mode: the board id alone.
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let local = Api::new(&server, None);
    let board = deal_board(&local).await;
    let address = local
        .ok(
            "GET",
            &format!("/api/v1/boards/{board}/inbound-email"),
            None,
            200,
        )
        .await;
    assert_eq!(address["localPart"], board.as_str());
    assert_eq!(address["secretRequired"], false);

    // Every message is counted by outcome.
    let raw = message("ada@example.com", "count@example.com", "Counted", "", "hi");
    assert_eq!(local.mail(&board, &raw).await.0, 201);
    assert_eq!(local.mail(&board, &raw).await.0, 200);
    assert_eq!(local.mail(&board, "no header here").await.0, 400);
    for outcome in ["created", "duplicate", "malformed"] {
        let name = format!("funnel_inbound_mail_total{{outcome=\"{outcome}\"}}");
        assert_eq!(support::metric(server.addr, &name).await, 1, "{name}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_flood_to_one_board_is_slowed_down_per_board() {
    use funnel_server::mail::MAIL_BURST;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let local = Api::new(&server, None);
    let flooded = deal_board(&local).await;
    let other = deal_board(&local).await;
    // The burst is taken (each refused as malformed, but counted), then 429 with Retry-After.
    for _ in 0..MAIL_BURST {
        assert_eq!(local.mail(&flooded, "not a message").await.0, 400);
    }
    let url = format!(
        "http://{}/api/v1/boards/{flooded}/inbound-email",
        server.addr
    );
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "message/rfc822")
        .body("From: ada@example.com\r\n\r\nhi\r\n")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "{wait}");
    // Another board is not slowed by it.
    let fine = message("ada@example.com", "other@example.com", "Other", "", "hi");
    assert_eq!(local.mail(&other, &fine).await.0, 201);
    assert!(cards(&local, &flooded).await.is_empty());
    server.stop().await;
}

/// A minimal SMTP client: sends each line, reads the reply's last line.
struct Smtp {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Smtp {
    async fn connect(addr: SocketAddr) -> Self {
        Self::over(tokio::net::TcpStream::connect(addr).await.unwrap()).await
    }

    /// The first session of a server that is starting: connects once it listens.
    async fn when_listening(addr: SocketAddr) -> Self {
        for _ in 0..100 {
            if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
                return Self::over(stream).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no SMTP listener on {addr}");
    }

    async fn over(stream: tokio::net::TcpStream) -> Self {
        let (read, writer) = stream.into_split();
        let mut smtp = Smtp {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = smtp.reply().await;
        assert!(greeting.starts_with("220"), "{greeting}");
        smtp
    }

    /// The reply's last line (multi-line replies have `NNN-` before it).
    async fn reply(&mut self) -> String {
        for _ in 0..32 {
            let mut line = String::new();
            tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line))
                .await
                .unwrap()
                .unwrap();
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return line.trim_end().to_owned();
            }
        }
        panic!("a reply of more than 32 lines");
    }

    async fn say(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    /// Sends a whole message after DATA; the reply to its final dot.
    async fn data(&mut self, raw: &str) -> String {
        let go = self.say("DATA").await;
        assert!(go.starts_with("354"), "{go}");
        let mut body = String::new();
        for line in raw.split("\r\n") {
            if line.starts_with('.') {
                body.push('.');
            }
            body.push_str(line);
            body.push_str("\r\n");
        }
        body.push_str(".\r\n");
        self.writer.write_all(body.as_bytes()).await.unwrap();
        self.reply().await
    }
}

fn smtp_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

#[tokio::test]
async fn smtp_refuses_unknown_boards_wrong_secrets_big_and_malformed_mail() {
    let dir = tempfile::tempdir().unwrap();
    let smtp_addr = smtp_port();
    let server = TestServer::start_with(dir.path(), |config| {
        config.auth_secret = Some(SECRET.into());
        config.smtp_listen = Some(smtp_addr);
        config.max_mail_bytes = 4096;
    })
    .await;
    let admin = Api::new(&server, Some(token("root", Role::Admin)));
    let board = deal_board(&admin).await;
    let address = admin
        .ok(
            "GET",
            &format!("/api/v1/boards/{board}/inbound-email"),
            None,
            200,
        )
        .await;
    let local_part = address["localPart"].as_str().unwrap().to_owned();
    let mut smtp = Smtp::when_listening(smtp_addr).await;
    assert!(smtp.say("EHLO client.example").await.starts_with("250"));
    assert!(
        smtp.say("MAIL FROM:<ada@example.com>")
            .await
            .starts_with("250")
    );
    let unknown = smtp.say("RCPT TO:<no-such-board@crm.example>").await;
    assert!(unknown.starts_with("550"), "{unknown}");
    let no_secret = smtp.say(&format!("RCPT TO:<{board}@crm.example>")).await;
    assert!(no_secret.starts_with("550"), "{no_secret}");
    let bad_secret = smtp
        .say(&format!(
            "RCPT TO:<{board}+00000000000000000000@crm.example>"
        ))
        .await;
    assert!(bad_secret.starts_with("550"), "{bad_secret}");
    let good = smtp
        .say(&format!("RCPT TO:<{local_part}@any.example>"))
        .await;
    assert!(good.starts_with("250"), "{good}");
    let big = message(
        "ada@example.com",
        "big@example.com",
        "Big",
        "",
        &vec!["y".repeat(76); 60].join("\r\n"),
    );
    let reply = smtp.data(&big).await;
    assert!(reply.starts_with("552"), "{reply}");

    // Malformed: 554, and the session goes on.
    assert!(
        smtp.say("MAIL FROM:<ada@example.com>")
            .await
            .starts_with("250")
    );
    assert!(
        smtp.say(&format!("RCPT TO:<{local_part}@any.example>"))
            .await
            .starts_with("250")
    );
    let reply = smtp.data("Subject: no sender\r\n\r\nwho?").await;
    assert!(reply.starts_with("554"), "{reply}");

    // A good one: 250 once stored, and the deal is there.
    assert!(
        smtp.say("MAIL FROM:<ada@example.com>")
            .await
            .starts_with("250")
    );
    assert!(
        smtp.say(&format!("RCPT TO:<{local_part}@any.example>"))
            .await
            .starts_with("250")
    );
    let good = message(
        "Ada <ada@example.com>",
        "s1@example.com",
        "By SMTP",
        "",
        ".dotted line\r\nend",
    );
    let reply = smtp.data(&good).await;
    assert!(reply.starts_with("250"), "{reply}");
    assert!(reply.contains("created"), "{reply}");
    assert!(smtp.say("QUIT").await.starts_with("221"));
    let all = cards(&admin, &board).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["title"], "By SMTP");
    assert_eq!(
        all[0]["responsible"], "",
        "a deal from SMTP is nobody's yet"
    );
    let events = timeline(&admin, &board, all[0]["id"].as_str().unwrap()).await;
    assert_eq!(
        events[0]["text"], ".dotted line\r\nend",
        "dot-stuffing undone"
    );
    server.stop().await;
}

#[tokio::test]
async fn smtp_bounds_its_sessions_and_its_lines() {
    use funnel_server::mail::smtp::{MAX_COMMAND_LINE, MAX_SESSIONS};
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let smtp_addr = smtp_port();
    let server = TestServer::start_with(dir.path(), |config| {
        config.smtp_listen = Some(smtp_addr);
    })
    .await;
    // MAX_SESSIONS at once are served; one more is told 421 and closed.
    let mut open = vec![Smtp::when_listening(smtp_addr).await];
    for _ in 1..MAX_SESSIONS {
        open.push(Smtp::connect(smtp_addr).await);
    }
    let greeting = |stream: tokio::net::TcpStream| async move {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        (reader, line)
    };
    let (_, line) = greeting(tokio::net::TcpStream::connect(smtp_addr).await.unwrap()).await;
    assert!(line.starts_with("421"), "{line}");

    // A session that ends frees its place.
    let mut one = open.pop().unwrap();
    assert!(one.say("QUIT").await.starts_with("221"));
    drop(one);
    let mut tries = 0;
    let mut again = loop {
        let (reader, line) =
            greeting(tokio::net::TcpStream::connect(smtp_addr).await.unwrap()).await;
        if line.starts_with("220") {
            break reader;
        }
        assert!(tries < 50, "no place freed: {line}");
        tries += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // A command line over the bound: 500, then the server closes the connection.
    let long = format!("HELO {}\r\n", "x".repeat(MAX_COMMAND_LINE + 10));
    again.get_mut().write_all(long.as_bytes()).await.unwrap();
    let mut rest = String::new();
    tokio::time::timeout(Duration::from_secs(10), again.read_to_string(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.starts_with("500"), "{rest:?}");
    drop(open);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_message_is_taken_once_across_a_restart() {
    let pg = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url.clone();
    let start = |url: String| {
        let dir = dir.path().to_owned();
        async move {
            TestServer::start_with(&dir, move |config| {
                config.auth_secret = Some(SECRET.into());
                config.database_url = Some(url);
            })
            .await
        }
    };
    let server = start(url.clone()).await;
    let admin = Api::new(&server, Some(token("root", Role::Admin)));
    let board = deal_board(&admin).await;
    let first = message(
        "bob@example.com",
        "pg1@example.com",
        "On PostgreSQL",
        "",
        "hi",
    );
    let (status, created) = admin.mail(&board, &first).await;
    assert_eq!(status, 201, "{created}");
    server.stop().await;

    let server = start(url).await;
    let admin = Api::new(&server, Some(token("root", Role::Admin)));
    let (status, duplicate) = admin.mail(&board, &first).await;
    assert_eq!(status, 200, "{duplicate}");
    assert_eq!(duplicate["action"], "duplicate");
    assert_eq!(duplicate["cardId"], created["cardId"]);
    let reply = message(
        "bob@example.com",
        "pg2@example.com",
        "Re: On PostgreSQL",
        "In-Reply-To: <pg1@example.com>\r\n",
        "again",
    );
    let (status, appended) = admin.mail(&board, &reply).await;
    assert_eq!(status, 201, "{appended}");
    assert_eq!(appended["cardId"], created["cardId"]);
    let card = created["cardId"].as_str().unwrap();
    let events = timeline(&admin, &board, card).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["mail"]["subject"], "On PostgreSQL");
    server.stop().await;
}
