//! A stage's required fields through the real server, on every path a card can take into it:
//! a yrs client's move (taken back: the card returns, its other edits stay), an offline copy
//! merged on reconnect (judged the same way), and the REST API (422 naming each missing field).
//! Also the stage rules and lost reasons as the API shows and takes them.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::board::{self, CardEdit, CardPlace};
use funnel_protocol::schema::StageKind;
use serde_json::{Value, json};
use std::time::Duration;
use support::{Client, TestServer, json_call};
use yrs::Transact;

/// A deal board made through the API (local mode); its id and stage ids by name.
async fn deal_board(server: &TestServer) -> (String, Vec<(String, String)>) {
    let (status, _, board) = json_call(
        server.addr,
        None,
        "POST",
        "/api/v1/boards",
        Some(json!({"entity": "deal", "name": "Q4"})),
    )
    .await;
    assert_eq!(status, 201, "{board}");
    let id = board["id"].as_str().unwrap().to_owned();
    let (_, _, stages) = json_call(
        server.addr,
        None,
        "GET",
        &format!("/api/v1/boards/{id}/stages"),
        None,
    )
    .await;
    let named = support::named_stages(&stages);
    (id, named)
}

fn stage_of(client: &Client, card: &str) -> String {
    board::card(&client.doc.transact(), card).unwrap().stage
}

/// The board's rules: Won needs an amount, Lost a reason from the list, Invoice sent a close date.
async fn set_rules(server: &TestServer, board: &str, stages: &[(String, String)]) {
    let patch = |stage: &str, body: Value| {
        let path = format!("/api/v1/boards/{board}/stages/{stage}");
        async move { json_call(server.addr, None, "PATCH", &path, Some(body)).await }
    };
    let (status, _, won) = patch(
        support::stage_id(stages, "Won"),
        json!({"required": ["amount"], "rotDays": 0}),
    )
    .await;
    assert_eq!(status, 200, "{won}");
    assert_eq!(won["required"], json!(["amount"]));
    assert_eq!(won["probability"], 100, "the success stage's default");
    let (status, _, lost) = patch(
        support::stage_id(stages, "Lost"),
        json!({"required": ["lostReason"]}),
    )
    .await;
    assert_eq!(status, 200, "{lost}");
    let (status, _, invoice) = patch(
        support::stage_id(stages, "Invoice sent"),
        json!({"required": ["closeDate"], "probability": 60, "rotDays": 7}),
    )
    .await;
    assert_eq!(status, 200, "{invoice}");
    assert_eq!(invoice["probability"], 60);
    assert_eq!(invoice["rotDays"], 7);
    // What a stage cannot take, each a clear 422.
    for (body, field) in [
        (json!({"probability": 101}), "probability"),
        (json!({"rotDays": -1}), "rotDays"),
        (json!({"required": ["nonsense"]}), "required"),
    ] {
        let (status, _, problem) = patch(support::stage_id(stages, "In progress"), body).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (status, _, problem) = patch(
        support::stage_id(stages, "New"),
        json!({"required": ["amount"]}),
    )
    .await;
    assert_eq!(status, 422, "the initial stage requires nothing: {problem}");
    let (status, _, settings) = json_call(
        server.addr,
        None,
        "PATCH",
        &format!("/api/v1/boards/{board}"),
        Some(json!({"lostReasons": ["Too expensive", "Went silent"]})),
    )
    .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(
        settings["lostReasons"],
        json!(["Too expensive", "Went silent"])
    );
}

#[tokio::test]
async fn a_move_that_lacks_a_required_field_is_taken_back_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (board_id, stages) = deal_board(&server).await;
    set_rules(&server, &board_id, &stages).await;
    let url = server.url(&board_id);
    let (new, won, lost) = (
        support::stage_id(&stages, "New").to_owned(),
        support::stage_id(&stages, "Won").to_owned(),
        support::stage_id(&stages, "Lost").to_owned(),
    );

    let mut ann = Client::connect(&url).await;
    let mut bob = Client::connect(&url).await;
    let mut card = String::new();
    ann.write(|txn| {
        let new_card = board::NewCard {
            title: "ACME".into(),
            ..Default::default()
        };
        card = board::create_card(txn, &new, new_card, 1).unwrap();
    })
    .await;
    bob.wait_for_card("ACME").await;

    // A stock move into Won without an amount: the card returns, for the mover and for others;
    // the title change made with it stays. The mover is not closed.
    ann.write(|txn| {
        let edit = CardEdit {
            title: Some("ACME Corp".into()),
            ..Default::default()
        };
        board::edit_card(txn, &card, edit).unwrap();
        board::move_card(txn, &card, &won, CardPlace::Top).unwrap();
    })
    .await;
    ann.pump_until("the card back in New", |c, _| stage_of(c, &card) == new)
        .await;
    bob.wait_for_card("ACME Corp").await;
    assert_eq!(stage_of(&bob, &card), new, "no one sees it in Won");

    // With the amount in the same update, the move stands.
    ann.write(|txn| {
        let edit = CardEdit {
            amount: Some(5_000),
            ..Default::default()
        };
        board::edit_card(txn, &card, edit).unwrap();
        board::move_card(txn, &card, &won, CardPlace::Top).unwrap();
    })
    .await;
    bob.pump_until("the card in Won", |c, _| stage_of(c, &card) == won)
        .await;

    // An offline copy that moved the card to Lost without a reason: merged on reconnect, the
    // move is taken back and the card stays in Won.
    let offline = Client::connect(&url).await;
    let doc = offline.doc.clone();
    drop(offline);
    {
        let mut txn = doc.transact_mut();
        board::move_card(&mut txn, &card, &lost, CardPlace::Top).unwrap();
    }
    let mut back = Client::reconnect(&url, doc).await;
    back.pump_until("the offline move taken back", |c, _| {
        stage_of(c, &card) == won
    })
    .await;
    assert!(bob.drain_for(Duration::from_millis(300)).await);
    assert_eq!(stage_of(&bob, &card), won);

    // The REST API refuses the same move with 422, naming the missing field; a reason that is
    // not on the list is refused too; one from the list moves it.
    let path = format!("/api/v1/boards/{board_id}/cards/{card}");
    let (status, _, problem) = json_call(
        server.addr,
        None,
        "PATCH",
        &path,
        Some(json!({"stageId": lost})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "lostReason", "{problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Lost"),
        "{problem}"
    );
    let (status, _, problem) = json_call(
        server.addr,
        None,
        "PATCH",
        &path,
        Some(json!({"stageId": lost, "lostReason": "Bad weather"})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "lostReason", "{problem}");
    let (status, _, moved) = json_call(
        server.addr,
        None,
        "PATCH",
        &path,
        Some(json!({"stageId": lost, "lostReason": "Too expensive"})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["stageId"], lost);
    assert_eq!(moved["lostReason"], "Too expensive");
    bob.pump_until("the card in Lost", |c, _| stage_of(c, &card) == lost)
        .await;

    // A card created over REST straight into a stage it cannot enter is refused too.
    let (status, _, problem) = json_call(
        server.addr,
        None,
        "POST",
        &format!("/api/v1/boards/{board_id}/cards"),
        Some(json!({"title": "Straight to won", "stageId": won})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "amount", "{problem}");
    let kinds: Vec<StageKind> = board::stages(&bob.doc.transact())
        .iter()
        .map(|s| s.kind)
        .collect();
    assert_eq!(kinds.len(), 7);
    server.stop().await;
}
