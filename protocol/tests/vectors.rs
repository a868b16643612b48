//! Shared test vectors: the browser's model mirror (`clients/web/src/model`) must read a board
//! and apply the rules exactly as this crate does, and these files are how both sides check it.
//!
//! - `vectors/boards.json`: boards built here with the typed API (and a few raw writes a peer
//!   could make), each as a yrs update with the `BoardView` Rust reads from it at a fixed `now`.
//! - `vectors/rules.json`: counter, lights-at, next-change, fired-reminder and avatar cases.
//! - `vectors/order-validation.json`: keys and neighbours that `order` refuses (some of which the
//!   npm package would take), and `needs_rebalance` cases.
//! - `vectors/schema.json`: root and key names, limits, entities and their default stages.
//! - `vectors/from-typescript.json`: boards built by the browser's tests with plain Yjs, with the
//!   view the TypeScript mirror reads; Rust must read the same.
//!
//! Ids are random, so the files are generated once: with `FUNNEL_UPDATE_VECTORS=1` this test
//! (re)writes the files it owns; otherwise it decodes what is committed, recomputes everything
//! with Rust and asserts that the stored results still hold, so the files cannot drift from Rust.
//! `clients/web/test/vectors.test.ts` checks the same files against TypeScript.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use funnel_protocol::board::{
    self, BoardView, CardEdit, CardPlace, NewActivity, NewCard, activity_key, card_key, field_key,
};
use funnel_protocol::order::{self, OrderError};
use funnel_protocol::rules::{
    self, ActivityFacts, AvatarEvent, AvatarReason, Counter, CounterState, Direction, MINUTE_MS,
    Millis,
};
use funnel_protocol::schema::{self, Entity, StageKind, root};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Doc, Map, MapPrelim, MapRef, Out, ReadTxn, StateVector, Transact, TransactionMut, Update,
    WriteTxn,
};

/// 2027-01-15T08:00:00Z: the `now` of most scenarios.
const NOW: Millis = 1_800_000_000_000;
const HOUR: Millis = 60 * MINUTE_MS;
const DAY: Millis = 24 * HOUR;

const UPDATE_ENV: &str = "FUNNEL_UPDATE_VECTORS";

fn updating() -> bool {
    std::env::var(UPDATE_ENV).is_ok_and(|v| v == "1")
}

fn vector_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(name)
}

fn read_vectors(name: &str) -> Value {
    let path = vector_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; {UPDATE_ENV}=1 regenerates it (README.md of clients/web)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn write_vectors(name: &str, value: &Value) {
    let mut text = serde_json::to_string_pretty(value).unwrap();
    text.push('\n');
    std::fs::write(vector_path(name), text).unwrap();
}

/// Writes an object of lists with one item a line: hundreds of small cases stay readable and
/// diff line by line.
fn write_vectors_by_line(name: &str, value: &Value) {
    let object = value.as_object().unwrap();
    let mut members = Vec::new();
    for (key, member) in object {
        let key = serde_json::to_string(key).unwrap();
        let text = match member.as_array() {
            Some(items) if !items.is_empty() => {
                let lines: Vec<String> = items
                    .iter()
                    .map(|item| format!("  {}", serde_json::to_string(item).unwrap()))
                    .collect();
                format!(" {key}: [\n{}\n ]", lines.join(",\n"))
            }
            _ => format!(" {key}: {}", serde_json::to_string(member).unwrap()),
        };
        members.push(text);
    }
    let text = format!("{{\n{}\n}}\n", members.join(",\n"));
    std::fs::write(vector_path(name), text).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The board view as JSON: the format both sides write and compare

fn counter_json(counter: &Counter) -> Value {
    json!({
        "count": counter.count,
        "lit": counter.lit,
        "incoming": counter.incoming,
        "next": counter.next,
        "state": counter.state.as_str(),
    })
}

fn view_json(view: &BoardView) -> Value {
    let columns: Vec<Value> = view
        .columns
        .iter()
        .map(|column| {
            json!({
                "stageId": column.stage.id,
                "stageName": column.stage.name,
                "stageColor": column.stage.color,
                "stagePos": column.stage.pos,
                "kind": column.stage.kind.as_str(),
                "cardIds": column.cards.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
                "sums": column.sums,
            })
        })
        .collect();
    let cards: serde_json::Map<String, Value> = view
        .columns
        .iter()
        .flat_map(|column| &column.cards)
        .map(|card| {
            let value = json!({
                "title": card.title,
                "stage": card.stage,
                "pos": card.pos,
                "amount": card.amount,
                "currency": card.currency,
                "responsible": card.responsible,
                "client": card.client,
                "email": card.email,
                "createdAt": card.created_at,
                "updatedAt": card.updated_at,
                "fields": card.fields,
            });
            (card.id.clone(), value)
        })
        .collect();
    let workload: Vec<Value> = view
        .workload
        .iter()
        .map(|load| {
            json!({
                "responsible": load.responsible,
                "cards": load.cards,
                "amounts": load.amounts,
                "lit": load.lit,
            })
        })
        .collect();
    let counters: serde_json::Map<String, Value> = view
        .counters
        .iter()
        .map(|(id, counter)| (id.clone(), counter_json(counter)))
        .collect();
    json!({
        "settings": {
            "name": view.settings.name,
            "entity": view.settings.entity,
            "currency": view.settings.currency,
            "counterThresholdMin": view.settings.counter_threshold_min,
        },
        "columns": columns,
        "cards": cards,
        "workload": workload,
        "unprocessed": view.unprocessed,
        "counters": counters,
    })
}

fn encode(doc: &Doc) -> String {
    BASE64.encode(
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default()),
    )
}

fn decode(update: &str) -> Doc {
    let doc = Doc::new();
    let bytes = BASE64.decode(update).unwrap();
    doc.transact_mut()
        .apply_update(Update::decode_v1(&bytes).unwrap())
        .unwrap();
    doc
}

/// Checks every board of a vector file against what Rust reads; returns the views, as JSON.
fn check_boards(file: &str) -> Vec<Value> {
    let stored = read_vectors(file);
    let boards = stored.as_array().unwrap();
    assert!(!boards.is_empty(), "{file} has no boards");
    let mut names = BTreeSet::new();
    boards
        .iter()
        .map(|board| {
            let name = board["name"].as_str().unwrap();
            assert!(names.insert(name), "{file}: two boards named {name:?}");
            let now = board["now"].as_i64().unwrap();
            let doc = decode(board["update"].as_str().unwrap());
            let got = view_json(&BoardView::read(&doc.transact(), now));
            assert_eq!(
                got, board["expected"],
                "{file}, board {name:?}: Rust reads another view than the stored one"
            );
            got
        })
        .collect()
}

/// What the scenarios must show between them, so that the vectors cannot quietly shrink to
/// boards that test nothing.
fn assert_coverage(file: &str, views: &[Value]) {
    let mut states = BTreeSet::new();
    let mut thresholds = BTreeSet::new();
    let mut two_currencies = false;
    let mut equal_keys = false;
    let mut orphan = false;
    let mut empty_column = false;
    for view in views {
        thresholds.insert(view["settings"]["counterThresholdMin"].as_i64().unwrap());
        for counter in view["counters"].as_object().unwrap().values() {
            states.insert(counter["state"].as_str().unwrap().to_owned());
        }
        for column in view["columns"].as_array().unwrap() {
            two_currencies |= column["sums"].as_object().unwrap().len() >= 2;
            let ids = column["cardIds"].as_array().unwrap();
            empty_column |= ids.is_empty();
            let keys: Vec<&str> = ids
                .iter()
                .map(|id| view["cards"][id.as_str().unwrap()]["pos"].as_str().unwrap())
                .collect();
            equal_keys |= keys.windows(2).any(|pair| pair[0] == pair[1]);
            orphan |= ids
                .iter()
                .any(|id| view["cards"][id.as_str().unwrap()]["stage"] != column["stageId"]);
        }
    }
    let all: BTreeSet<String> = ["due", "incoming", "planned", "idle", "none"]
        .map(String::from)
        .into();
    assert_eq!(states, all, "{file}: every counter state appears");
    assert!(thresholds.contains(&15), "{file}: threshold 15");
    assert!(thresholds.contains(&0), "{file}: threshold 0");
    assert!(two_currencies, "{file}: two currencies in one column");
    assert!(equal_keys, "{file}: equal keys in one column");
    assert!(orphan, "{file}: an orphaned card");
    assert!(empty_column, "{file}: an empty column");
}

// ---------------------------------------------------------------------------------------------
// Board scenarios, built with the Rust API

fn new_board(entity: &Entity) -> Doc {
    let doc = Doc::new();
    schema::initialize_board(
        &mut doc.transact_mut(),
        entity,
        schema::Language::En,
        &entity.default_board_name(schema::Language::En),
    );
    doc
}

fn stage_id(doc: &Doc, name: &str) -> String {
    board::stages(&doc.transact())
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stage {name}"))
        .id
}

/// When the scenarios' cards were created.
const CREATED: Millis = NOW - 3 * DAY;

fn add_card(
    doc: &Doc,
    stage: &str,
    title: &str,
    amount: i64,
    currency: &str,
    responsible: &str,
) -> String {
    let card = NewCard {
        title: title.into(),
        amount,
        currency: currency.into(),
        responsible: responsible.into(),
        client: format!("client of {title}"),
        email: format!("{}@example.com", title.len()),
        ..NewCard::default()
    };
    board::create_card(&mut doc.transact_mut(), stage, card, CREATED).unwrap()
}

struct ActivitySpec {
    direction: Direction,
    deadline: Option<Millis>,
    remind_min: Option<i64>,
    responsible: &'static str,
}

fn planned(deadline: Option<Millis>, remind_min: Option<i64>) -> ActivitySpec {
    ActivitySpec {
        direction: Direction::Outgoing,
        deadline,
        remind_min,
        responsible: "bob",
    }
}

fn incoming(deadline: Option<Millis>) -> ActivitySpec {
    ActivitySpec {
        direction: Direction::Incoming,
        deadline,
        remind_min: None,
        responsible: "ann",
    }
}

fn add_activity(doc: &Doc, card: &str, spec: ActivitySpec) -> String {
    let activity = NewActivity {
        card: card.into(),
        kind: match spec.direction {
            Direction::Incoming => "email".into(),
            Direction::Outgoing => "call".into(),
        },
        direction: spec.direction,
        subject: "follow up".into(),
        deadline: spec.deadline,
        remind_min: spec.remind_min,
        responsible: spec.responsible.into(),
    };
    board::add_activity(&mut doc.transact_mut(), activity).unwrap()
}

fn child(txn: &TransactionMut, parent: &MapRef, key: &str) -> MapRef {
    match parent.get(txn, key) {
        Some(Out::YMap(map)) => map,
        other => panic!("{key} is not a map: {other:?}"),
    }
}

/// A raw write to one card, as a peer (or a buggy client) could make it.
fn set_card_value(doc: &Doc, id: &str, key: &str, value: Any) {
    let mut txn = doc.transact_mut();
    let cards = txn.get_or_insert_map(root::CARDS);
    let card = child(&txn, &cards, id);
    card.insert(&mut txn, key, value);
}

struct Scenario {
    name: &'static str,
    now: Millis,
    doc: Doc,
}

fn fresh_boards() -> Vec<Scenario> {
    [
        ("a fresh deal board", Entity::Deal),
        ("a fresh lead board", Entity::Lead),
        ("a fresh invoice board", Entity::Invoice),
        ("a fresh quote board", Entity::Quote),
        ("a fresh smart process board", Entity::Smart("42".into())),
    ]
    .into_iter()
    .map(|(name, entity)| Scenario {
        name,
        now: NOW,
        doc: new_board(&entity),
    })
    .collect()
}

/// Cards in several stages, two currencies in one column, equal keys, an orphan, and counters
/// in every state with the default threshold (15 minutes).
fn busy_deal_board() -> Scenario {
    let doc = new_board(&Entity::Deal);
    let new = stage_id(&doc, "New");
    let preparing = stage_id(&doc, "Preparing documents");
    let invoice = stage_id(&doc, "Invoice sent");
    let progress = stage_id(&doc, "In progress");
    let won = stage_id(&doc, "Won");
    let lost = stage_id(&doc, "Lost");

    // New: an unprocessed card, one lit 10 minutes before its deadline, one orphan.
    let idle = add_card(&doc, &new, "idle lead", 1_000, "USD", "ann");
    let due = add_card(&doc, &new, "call in 10 min", 2_500, "USD", "bob");
    add_activity(&doc, &due, planned(Some(NOW + 10 * MINUTE_MS), None));
    let orphan = add_card(&doc, &invoice, "orphan", 700, "EUR", "cy");
    set_card_value(
        &doc,
        &orphan,
        card_key::STAGE,
        Any::from("deleted-elsewhere"),
    );
    add_activity(&doc, &orphan, incoming(None));

    // Preparing documents: planned tomorrow, a done overdue one, a planned one without deadline.
    let tomorrow = add_card(&doc, &preparing, "meet tomorrow", 10, "USD", "ann");
    add_activity(&doc, &tomorrow, planned(Some(NOW + DAY), None));
    let overdue_done = add_activity(&doc, &tomorrow, planned(Some(NOW - DAY), None));
    board::complete_activity(&mut doc.transact_mut(), &overdue_done, true).unwrap();
    let someday = add_card(&doc, &preparing, "someday", 20, "USD", "");
    add_activity(&doc, &someday, planned(None, None));
    // Lit at exactly now: 15 minutes before a deadline 15 minutes away.
    let exactly = add_card(&doc, &preparing, "lit right now", 30, "USD", "bob");
    add_activity(&doc, &exactly, planned(Some(NOW + 15 * MINUTE_MS), None));
    // Not lit: one millisecond short of the threshold.
    let almost = add_card(&doc, &preparing, "lights in 1 ms", 40, "USD", "bob");
    add_activity(&doc, &almost, planned(Some(NOW + 15 * MINUTE_MS + 1), None));

    // In progress: two currencies, equal keys, overdue and incoming together, reminders.
    let usd = add_card(&doc, &progress, "usd deal", 5_000, "USD", "ann");
    let eur = add_card(&doc, &progress, "eur deal", 4_200, "EUR", "bob");
    let default_currency = add_card(&doc, &progress, "board currency", 300, "", "ann");
    let twin = add_card(&doc, &progress, "equal key twin", 1, "EUR", "cy");
    for id in [&eur, &twin] {
        set_card_value(&doc, id, card_key::POS, Any::from("a0V"));
    }
    add_activity(&doc, &usd, planned(Some(NOW - 2 * HOUR), None));
    add_activity(&doc, &usd, incoming(Some(NOW - DAY)));
    add_activity(&doc, &eur, planned(Some(NOW + HOUR), Some(120)));
    add_activity(
        &doc,
        &default_currency,
        planned(Some(NOW + 5 * MINUTE_MS), Some(0)),
    );
    add_activity(&doc, &twin, planned(Some(NOW), Some(-10)));

    // Won: nothing open (none), an open incoming in a final stage (incoming), an overdue
    // planned in a final stage (due).
    add_card(&doc, &won, "won deal", 9_900, "USD", "ann");
    let after_sale = add_card(&doc, &won, "after sale", 0, "USD", "bob");
    add_activity(&doc, &after_sale, incoming(Some(NOW + HOUR)));
    let invoice_late = add_card(&doc, &won, "invoice late", 50, "USD", "cy");
    add_activity(&doc, &invoice_late, planned(Some(NOW - 30 * DAY), None));

    // Lost: only a done activity.
    let gone = add_card(&doc, &lost, "gone", 123, "GBP", "ann");
    let call = add_activity(&doc, &gone, incoming(None));
    board::complete_activity(&mut doc.transact_mut(), &call, true).unwrap();

    // Archived: kept in the document, shown nowhere (no column, sum, workload or counter).
    let shelved = add_card(&doc, &progress, "archived deal", 77_000, "USD", "ann");
    add_activity(&doc, &shelved, planned(Some(NOW - HOUR), None));
    board::archive_card(&mut doc.transact_mut(), &shelved, Some(NOW - DAY)).unwrap();

    // Custom fields on one card.
    let status =
        board::define_field(&mut doc.transact_mut(), None, "Status", "enum", &["a", "b"]).unwrap();
    let score = board::define_field(&mut doc.transact_mut(), None, "Score", "number", &[]).unwrap();
    let mut edit = CardEdit::default();
    edit.fields.insert(status, Any::from("b"));
    edit.fields.insert(score, Any::from(7.5));
    board::edit_card(&mut doc.transact_mut(), &usd, edit).unwrap();
    // A move between two columns, then one within a column.
    board::move_card(
        &mut doc.transact_mut(),
        &idle,
        &preparing,
        CardPlace::Bottom,
    )
    .unwrap();
    board::move_card(&mut doc.transact_mut(), &idle, &new, CardPlace::After(&due)).unwrap();

    Scenario {
        name: "a deal board with cards in every state, two currencies, equal keys and an orphan",
        now: NOW,
        doc,
    }
}

/// A lead board with threshold 0 and edited stages: added, moved, renamed, deleted.
fn lead_board_threshold_zero() -> Scenario {
    let doc = new_board(&Entity::Lead);
    board::set_counter_threshold(&mut doc.transact_mut(), 0).unwrap();
    let not_processed = stage_id(&doc, "Not processed");
    let in_progress = stage_id(&doc, "In progress");
    let processed = stage_id(&doc, "Processed");
    let junk = stage_id(&doc, "Junk");
    let qualified = board::add_stage(
        &mut doc.transact_mut(),
        "Qualified",
        "#123abc",
        StageKind::Progress,
        &in_progress,
    )
    .unwrap();
    let spam = board::add_stage(
        &mut doc.transact_mut(),
        "Spam",
        "#aa0000",
        StageKind::Failure,
        &junk,
    )
    .unwrap();
    board::move_stage(&mut doc.transact_mut(), &qualified, &not_processed).unwrap();
    board::rename_stage(&mut doc.transact_mut(), &not_processed, "Inbox").unwrap();
    let now = NOW + 7;

    let at_deadline = add_card(&doc, &not_processed, "deadline is now", 1, "USD", "ann");
    add_activity(&doc, &at_deadline, planned(Some(now), None));
    let in_a_ms = add_card(&doc, &not_processed, "deadline in 1 ms", 2, "USD", "ann");
    add_activity(&doc, &in_a_ms, planned(Some(now + 1), None));
    let own_reminder = add_card(&doc, &qualified, "own reminder", 3, "USD", "bob");
    add_activity(
        &doc,
        &own_reminder,
        planned(Some(now + 20 * MINUTE_MS), Some(30)),
    );
    let past = add_card(&doc, &qualified, "past deadline", 4, "USD", "bob");
    add_activity(&doc, &past, planned(Some(now - 3 * DAY), None));
    add_activity(&doc, &past, planned(Some(now + 3 * DAY), None));
    add_activity(&doc, &past, incoming(Some(now - 4 * DAY)));
    add_card(&doc, &processed, "nothing open", 5, "USD", "cy");
    let to_move = add_card(&doc, &in_progress, "moved by delete", 6, "EUR", "cy");
    add_activity(&doc, &to_move, incoming(None));
    board::delete_stage(&mut doc.transact_mut(), &in_progress, &processed).unwrap();
    add_card(&doc, &spam, "spam", 0, "USD", "ann");

    Scenario {
        name: "a lead board with threshold 0 and edited stages",
        now,
        doc,
    }
}

/// Raw writes a peer could make that the reading rules must survive: stage keys against the
/// kind order, an unknown kind, entries that are not maps, missing and mistyped values.
fn odd_document() -> Scenario {
    let doc = new_board(&Entity::Smart("7".into()));
    let new = stage_id(&doc, "New");
    let progress = stage_id(&doc, "In progress");
    let success = stage_id(&doc, "Success");
    let plain = add_card(&doc, &progress, "plain", 100, "USD", "ann");
    let in_unknown = add_card(&doc, &progress, "in an unknown stage", 5, "USD", "bob");
    let floaty = add_card(&doc, &new, "float amount", 0, "JPY", "bob");
    {
        let mut txn = doc.transact_mut();
        let stages = txn.get_or_insert_map(root::STAGES);
        // The success stage's key sorts first, the new stage's last: kind order wins.
        let success_map = child(&txn, &stages, &success);
        success_map.insert(
            &mut txn,
            schema::stage::POS,
            Any::from("A00000000000000000000000001"),
        );
        let new_map = child(&txn, &stages, &new);
        new_map.insert(&mut txn, schema::stage::POS, Any::from("zzz"));
        // Two progress stages with one key: by id.
        let progress_map = child(&txn, &stages, &progress);
        progress_map.insert(&mut txn, schema::stage::POS, Any::from("a5"));
        stages.insert(
            &mut txn,
            "0-progress-twin",
            MapPrelim::from([
                (schema::stage::NAME, Any::from("Twin")),
                (schema::stage::KIND, Any::from("progress")),
                (schema::stage::POS, Any::from("a5")),
            ]),
        );
        // Not a stage: unknown kind, no kind, not a map.
        stages.insert(
            &mut txn,
            "archived-stage",
            MapPrelim::from([
                (schema::stage::NAME, Any::from("Archive")),
                (schema::stage::KIND, Any::from("archived")),
                (schema::stage::POS, Any::from("a2")),
            ]),
        );
        stages.insert(
            &mut txn,
            "kindless-stage",
            MapPrelim::from([(schema::stage::NAME, Any::from("Kindless"))]),
        );
        stages.insert(&mut txn, "string-stage", Any::from("not a map"));

        let cards = txn.get_or_insert_map(root::CARDS);
        cards.insert(&mut txn, "string-card", Any::from("not a map"));
        // A card with nothing but a stage: every other value reads as its default.
        cards.insert(
            &mut txn,
            "bare-card",
            MapPrelim::from([(card_key::STAGE, Any::from(progress.as_str()))]),
        );
        // Mistyped values: a title that is a number, an amount that is a string.
        cards.insert(
            &mut txn,
            "mistyped-card",
            MapPrelim::from([
                (card_key::STAGE, Any::from(success.as_str())),
                (card_key::TITLE, Any::from(12_i64)),
                (card_key::AMOUNT, Any::from("12")),
                (card_key::POS, Any::from("a0")),
                (card_key::RESPONSIBLE, Any::from("ann")),
                (card_key::FIELDS, Any::from("not a map")),
            ]),
        );
        let card_map = child(&txn, &cards, &in_unknown);
        card_map.insert(&mut txn, card_key::STAGE, Any::from("archived-stage"));
        let card_map = child(&txn, &cards, &floaty);
        card_map.insert(&mut txn, card_key::AMOUNT, Any::from(12.75));
        card_map.insert(&mut txn, card_key::CREATED_AT, Any::from(-1.5));

        let activities = txn.get_or_insert_map(root::ACTIVITIES);
        // No card: skipped. A card that does not exist: never read.
        activities.insert(
            &mut txn,
            "cardless",
            MapPrelim::from([(activity_key::DIRECTION, Any::from("incoming"))]),
        );
        activities.insert(
            &mut txn,
            "for-a-ghost",
            MapPrelim::from([(activity_key::CARD, Any::from("ghost"))]),
        );
        // An unknown direction is planned; a mistyped `done` is open; a float deadline truncates.
        activities.insert(
            &mut txn,
            "sideways",
            MapPrelim::from([
                (activity_key::CARD, Any::from(plain.as_str())),
                (activity_key::DIRECTION, Any::from("sideways")),
                (activity_key::DONE, Any::from("yes")),
                (
                    activity_key::DEADLINE,
                    Any::from((NOW + 14 * MINUTE_MS) as f64 + 0.9),
                ),
            ]),
        );
        activities.insert(
            &mut txn,
            "bare-incoming",
            MapPrelim::from([
                (activity_key::CARD, Any::from("bare-card")),
                (activity_key::DIRECTION, Any::from("incoming")),
            ]),
        );
        activities.insert(&mut txn, "string-activity", Any::from("not a map"));
        // A threshold stored as a float.
        let board_map = txn.get_or_insert_map(root::BOARD);
        board_map.insert(
            &mut txn,
            schema::board::COUNTER_THRESHOLD_MIN,
            Any::from(15.9),
        );
        board_map.remove(&mut txn, schema::board::CURRENCY);
        // A custom field definition, for the schema names.
        let fields = txn.get_or_insert_map(root::FIELDS);
        fields.insert(
            &mut txn,
            "f1",
            MapPrelim::from([
                (field_key::LABEL, Any::from("Budget")),
                (field_key::TYPE, Any::from("money")),
            ]),
        );
    }
    Scenario {
        name: "a document with values of the wrong type, unknown kinds and keys against the kind order",
        now: NOW,
        doc,
    }
}

/// Cards but no stages: nothing to show them in.
fn stageless_document() -> Scenario {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        let board_map = txn.get_or_insert_map(root::BOARD);
        board_map.insert(&mut txn, schema::board::NAME, Any::from("Stageless"));
        let cards = txn.get_or_insert_map(root::CARDS);
        cards.insert(
            &mut txn,
            "lonely",
            MapPrelim::from([
                (card_key::STAGE, Any::from("nowhere")),
                (card_key::AMOUNT, Any::from(5_i64)),
            ]),
        );
    }
    Scenario {
        name: "cards without any stage",
        now: NOW,
        doc,
    }
}

fn scenarios() -> Vec<Scenario> {
    let mut all = fresh_boards();
    all.push(busy_deal_board());
    all.push(lead_board_threshold_zero());
    all.push(odd_document());
    all.push(stageless_document());
    all
}

#[test]
fn boards_written_by_rust_read_the_same_in_rust() {
    if updating() {
        let boards: Vec<Value> = scenarios()
            .into_iter()
            .map(|scenario| {
                let txn = scenario.doc.transact();
                if !board::stages(&txn).is_empty() {
                    board::check_invariants(&txn).unwrap();
                }
                drop(txn);
                let view = BoardView::read(&scenario.doc.transact(), scenario.now);
                json!({
                    "name": scenario.name,
                    "now": scenario.now,
                    "update": encode(&scenario.doc),
                    "expected": view_json(&view),
                })
            })
            .collect();
        write_vectors("boards.json", &Value::Array(boards));
    }
    let views = check_boards("boards.json");
    assert_coverage("boards.json", &views);
}

#[test]
fn boards_written_by_typescript_read_the_same_in_rust() {
    // Written by clients/web/test/vectors.test.ts: Yjs encodes its numbers its own way (small
    // integers as varints, others as float32 or float64, bigints as int64), and Rust must read
    // them as the mirror does.
    let views = check_boards("from-typescript.json");
    assert_coverage("from-typescript.json", &views);
}

// ---------------------------------------------------------------------------------------------
// Rules

/// A small deterministic generator, so that regenerating the vectors gives the same cases.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next()).unwrap() % n
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// Users whose byte order is not their UTF-16 order ("ｚ" is U+FF5A, "😀" is U+1F600): the
/// tie-break of fired reminders sorts by bytes.
const USERS: [&str; 7] = ["ann", "bob", "cy", "", "Émile", "ｚ", "😀"];

fn facts_json(activity: &ActivityFacts) -> Value {
    json!({
        "deadline": activity.deadline,
        "remindMin": activity.remind_min,
        "direction": activity.direction.as_str(),
        "done": activity.done,
        "responsible": activity.responsible,
    })
}

fn facts_from(value: &Value) -> ActivityFacts {
    ActivityFacts {
        deadline: value["deadline"].as_i64(),
        remind_min: value["remindMin"].as_i64(),
        direction: Direction::parse(value["direction"].as_str().unwrap()).unwrap(),
        done: value["done"].as_bool().unwrap(),
        responsible: value["responsible"].as_str().unwrap().to_owned(),
    }
}

fn event_json(event: &AvatarEvent) -> Value {
    json!({ "at": event.at, "user": event.user, "reason": event.reason.as_str() })
}

fn event_from(value: &Value) -> AvatarEvent {
    AvatarEvent {
        at: value["at"].as_i64().unwrap(),
        user: value["user"].as_str().unwrap().to_owned(),
        reason: AvatarReason::parse(value["reason"].as_str().unwrap()).unwrap(),
    }
}

fn parse_stage_kind(raw: &str) -> StageKind {
    match raw {
        "initial" => StageKind::Initial,
        "progress" => StageKind::Progress,
        "success" => StageKind::Success,
        "failure" => StageKind::Failure,
        _ => panic!("unknown stage kind {raw}"),
    }
}

/// Rust's outputs for one card's activities.
fn activity_outputs(
    activities: &[ActivityFacts],
    stage: StageKind,
    threshold: i64,
    now: Millis,
) -> Value {
    json!({
        "lightsAt": activities
            .iter()
            .map(|a| rules::lights_at(a, threshold))
            .collect::<Vec<_>>(),
        "counter": counter_json(&rules::counter(activities, stage, threshold, now)),
        "nextCounterChange": rules::next_counter_change(activities, threshold, now),
        "firedReminders": rules::fired_reminders(activities, threshold, now)
            .iter()
            .map(event_json)
            .collect::<Vec<_>>(),
    })
}

fn activity_case(
    name: &str,
    activities: &[ActivityFacts],
    stage: StageKind,
    threshold: i64,
    now: Millis,
) -> Value {
    json!({
        "name": name,
        "activities": activities.iter().map(facts_json).collect::<Vec<_>>(),
        "stage": stage.as_str(),
        "thresholdMin": threshold,
        "now": now,
        "expected": activity_outputs(activities, stage, threshold, now),
    })
}

fn facts(
    direction: Direction,
    deadline: Option<Millis>,
    remind_min: Option<i64>,
    done: bool,
    responsible: &str,
) -> ActivityFacts {
    ActivityFacts {
        deadline,
        remind_min,
        direction,
        done,
        responsible: responsible.into(),
    }
}

fn named_activity_cases() -> Vec<Value> {
    use Direction::{Incoming, Outgoing};
    use StageKind::{Failure, Initial, Progress, Success};
    let m = MINUTE_MS;
    vec![
        activity_case("nothing, initial", &[], Initial, 15, NOW),
        activity_case("nothing, progress", &[], Progress, 15, NOW),
        activity_case("nothing, success", &[], Success, 15, NOW),
        activity_case("nothing, failure", &[], Failure, 15, NOW),
        activity_case(
            "lights exactly now",
            &[facts(Outgoing, Some(NOW + 15 * m), None, false, "ann")],
            Progress,
            15,
            NOW,
        ),
        activity_case(
            "lights in 1 ms",
            &[facts(Outgoing, Some(NOW + 15 * m + 1), None, false, "ann")],
            Progress,
            15,
            NOW,
        ),
        activity_case(
            "threshold 0 at the deadline",
            &[facts(Outgoing, Some(NOW), None, false, "ann")],
            Initial,
            0,
            NOW,
        ),
        activity_case(
            "negative threshold counts as 0",
            &[facts(Outgoing, Some(NOW + 1), None, false, "ann")],
            Initial,
            -30,
            NOW,
        ),
        activity_case(
            "negative reminder counts as 0",
            &[facts(Outgoing, Some(NOW), Some(-5), false, "ann")],
            Initial,
            15,
            NOW,
        ),
        activity_case(
            "reminder overrides threshold",
            &[facts(
                Outgoing,
                Some(NOW + 2 * HOUR),
                Some(180),
                false,
                "ann",
            )],
            Initial,
            0,
            NOW,
        ),
        activity_case(
            "overdue incoming never lights",
            &[facts(Incoming, Some(NOW - 10 * HOUR), None, false, "ann")],
            Success,
            15,
            NOW,
        ),
        activity_case(
            "planned without deadline",
            &[facts(Outgoing, None, Some(10), false, "ann")],
            Progress,
            15,
            NOW,
        ),
        activity_case(
            "done ones count as nothing",
            &[
                facts(Outgoing, Some(NOW - HOUR), None, true, "ann"),
                facts(Incoming, None, None, true, "bob"),
            ],
            Progress,
            15,
            NOW,
        ),
        activity_case(
            "due with incoming",
            &[
                facts(Outgoing, Some(NOW - HOUR), None, false, "ann"),
                facts(Incoming, Some(NOW - 2 * HOUR), None, false, "bob"),
                facts(Outgoing, Some(NOW + DAY), None, false, "cy"),
            ],
            Failure,
            15,
            NOW,
        ),
        activity_case(
            "reminders at one instant sort by user bytes",
            &[
                facts(Outgoing, Some(NOW), None, false, "😀"),
                facts(Outgoing, Some(NOW), None, false, "ｚ"),
                facts(Outgoing, Some(NOW), None, false, "Émile"),
                facts(Outgoing, Some(NOW), None, false, "ann"),
                facts(Outgoing, Some(NOW), None, false, "ann"),
                facts(Outgoing, Some(NOW - 1), Some(0), false, "zed"),
            ],
            Initial,
            15,
            NOW,
        ),
    ]
}

fn generated_activity_cases(rng: &mut Lcg, count: usize) -> Vec<Value> {
    let m = MINUTE_MS;
    let offsets: Vec<Option<Millis>> = [
        -30 * DAY,
        -10 * HOUR,
        -HOUR,
        -16 * m,
        -15 * m,
        -14 * m,
        -1,
        0,
        1,
        14 * m,
        15 * m - 1,
        15 * m,
        15 * m + 1,
        16 * m,
        30 * m,
        HOUR,
        2 * HOUR,
        DAY,
    ]
    .into_iter()
    .map(Some)
    .chain([None, None])
    .collect();
    let reminders = [
        None,
        None,
        None,
        Some(-10),
        Some(0),
        Some(5),
        Some(15),
        Some(30),
        Some(120),
    ];
    let thresholds = [0, 15, 15, 15, 60, -5];
    let stages = [
        StageKind::Initial,
        StageKind::Progress,
        StageKind::Success,
        StageKind::Failure,
    ];
    let nows = [NOW, NOW + 1, NOW - 1, NOW + 15 * m];
    (0..count)
        .map(|i| {
            let now = rng.pick(&nows);
            let activities: Vec<ActivityFacts> = (0..rng.below(6))
                .map(|_| ActivityFacts {
                    deadline: rng.pick(&offsets).map(|offset| NOW + offset),
                    remind_min: rng.pick(&reminders),
                    direction: if rng.below(3) == 0 {
                        Direction::Incoming
                    } else {
                        Direction::Outgoing
                    },
                    done: rng.below(5) == 0,
                    responsible: rng.pick(&USERS).to_owned(),
                })
                .collect();
            let stage = rng.pick(&stages);
            let threshold = rng.pick(&thresholds);
            activity_case(
                &format!("generated {i}"),
                &activities,
                stage,
                threshold,
                now,
            )
        })
        .collect()
}

fn avatar_case(name: &str, responsible: &str, since: Millis, events: &[AvatarEvent]) -> Value {
    let winner = rules::avatar(responsible, since, events);
    json!({
        "name": name,
        "responsible": responsible,
        "responsibleSince": since,
        "events": events.iter().map(event_json).collect::<Vec<_>>(),
        "expected": { "user": winner.user, "at": winner.at, "reason": winner.reason.as_str() },
    })
}

fn event(at: Millis, user: &str, reason: AvatarReason) -> AvatarEvent {
    AvatarEvent {
        at,
        user: user.into(),
        reason,
    }
}

fn avatar_cases(rng: &mut Lcg, count: usize) -> Vec<Value> {
    use AvatarReason::{Call, Chat, Comment, Email, Reminder, Responsible};
    let mut cases = vec![
        avatar_case("no events", "ann", NOW, &[]),
        avatar_case(
            "an event at the same instant beats the responsible",
            "ann",
            NOW,
            &[event(NOW, "bob", Comment)],
        ),
        avatar_case(
            "an event before the responsible change loses",
            "ann",
            NOW,
            &[event(NOW - 1, "bob", Call)],
        ),
        avatar_case(
            "the latest event wins",
            "ann",
            NOW - DAY,
            &[event(NOW, "bob", Email), event(NOW - HOUR, "cy", Chat)],
        ),
        avatar_case(
            "of equal instants the later in the slice wins",
            "ann",
            NOW - DAY,
            &[event(NOW, "bob", Reminder), event(NOW, "cy", Comment)],
        ),
    ];
    let reasons = [Responsible, Comment, Call, Email, Chat, Reminder];
    let instants = [NOW - DAY, NOW - 1, NOW, NOW + 1, NOW + HOUR];
    for i in 0..count {
        let events: Vec<AvatarEvent> = (0..rng.below(5))
            .map(|_| event(rng.pick(&instants), rng.pick(&USERS), rng.pick(&reasons)))
            .collect();
        let since = rng.pick(&instants);
        let responsible = rng.pick(&USERS);
        cases.push(avatar_case(
            &format!("generated {i}"),
            responsible,
            since,
            &events,
        ));
    }
    cases
}

fn rules_vectors() -> Value {
    let mut rng = Lcg(0x00f0_00e1);
    let mut activity_cases = named_activity_cases();
    activity_cases.extend(generated_activity_cases(&mut rng, 300));
    json!({
        "generator": "protocol/tests/vectors.rs",
        "minuteMs": MINUTE_MS,
        "activityCases": activity_cases,
        "avatarCases": avatar_cases(&mut rng, 100),
    })
}

#[test]
fn rules_vectors_hold_in_rust() {
    if updating() {
        write_vectors_by_line("rules.json", &rules_vectors());
    }
    let stored = read_vectors("rules.json");
    assert_eq!(stored["minuteMs"], json!(MINUTE_MS));
    let activity_cases = stored["activityCases"].as_array().unwrap();
    assert!(activity_cases.len() >= 300);
    let mut states = BTreeSet::new();
    for case in activity_cases {
        let activities: Vec<ActivityFacts> = case["activities"]
            .as_array()
            .unwrap()
            .iter()
            .map(facts_from)
            .collect();
        let stage = parse_stage_kind(case["stage"].as_str().unwrap());
        let threshold = case["thresholdMin"].as_i64().unwrap();
        let now = case["now"].as_i64().unwrap();
        let got = activity_outputs(&activities, stage, threshold, now);
        assert_eq!(got, case["expected"], "{}", case["name"]);
        states.insert(got["counter"]["state"].as_str().unwrap().to_owned());
        let parsed = CounterState::parse(got["counter"]["state"].as_str().unwrap()).unwrap();
        assert_eq!(parsed.as_str(), got["counter"]["state"]);
    }
    assert_eq!(states.len(), 5, "every counter state appears: {states:?}");
    let avatar_cases = stored["avatarCases"].as_array().unwrap();
    assert!(avatar_cases.len() >= 100);
    for case in avatar_cases {
        let events: Vec<AvatarEvent> = case["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(event_from)
            .collect();
        let winner = rules::avatar(
            case["responsible"].as_str().unwrap(),
            case["responsibleSince"].as_i64().unwrap(),
            &events,
        );
        let got = json!({ "user": winner.user, "at": winner.at, "reason": winner.reason.as_str() });
        assert_eq!(got, case["expected"], "{}", case["name"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Order keys the Rust side refuses

fn error_kind(error: &OrderError) -> &'static str {
    match error {
        OrderError::Empty => "empty",
        OrderError::InvalidHead { .. } => "invalidHead",
        OrderError::InvalidCharacter { .. } => "invalidCharacter",
        OrderError::TruncatedInteger { .. } => "truncatedInteger",
        OrderError::TrailingZero { .. } => "trailingZero",
        OrderError::SmallestInteger { .. } => "smallestInteger",
        OrderError::NotIncreasing { .. } => "notIncreasing",
    }
}

fn outcome<T: Into<Value>>(result: Result<T, OrderError>) -> Value {
    match result {
        Ok(value) => json!({ "ok": value.into() }),
        Err(error) => json!({ "error": error_kind(&error) }),
    }
}

fn order_validation_vectors() -> Value {
    let smallest = format!("A{}", "0".repeat(26));
    let largest = format!("z{}", "z".repeat(26));
    let long = format!("a0{}", "V".repeat(40));
    let keys: Vec<String> = [
        "",
        "a",
        "Y",
        "Yz",
        "Yzz",
        "a0",
        "a1",
        "aV",
        "a00",
        "a01",
        "a0V",
        "a0!",
        "a0 ",
        "a0é",
        "a0\u{0}",
        "é0",
        "!0",
        "00",
        "b0",
        "b00",
        "b10",
        "Zz",
        "Z0",
        "A",
        "a0-",
        "a0_",
        "a0😀",
        "a0\u{ff5a}",
    ]
    .into_iter()
    .map(String::from)
    .chain([
        smallest.clone(),
        format!("{smallest}1"),
        format!("{smallest}0"),
        largest.clone(),
        format!("{largest}V"),
        long.clone(),
    ])
    .collect();
    let validate: Vec<Value> = keys
        .iter()
        .map(|key| {
            json!({
                "key": key,
                "error": order::validate_key(key).err().map(|e| error_kind(&e)),
            })
        })
        .collect();
    let pairs: Vec<(Option<&str>, Option<&str>)> = vec![
        (Some("a1"), Some("a0")),
        (Some("a0"), Some("a0")),
        (Some("a0V"), Some("a0")),
        (Some("b00"), Some("az")),
        (Some("a0"), Some("a0!")),
        (Some("a0!"), None),
        (None, Some("a0é")),
        (Some(""), None),
        (None, Some("")),
        (Some("a0"), Some("a00")),
        (Some("!0"), Some("a1")),
        (None, Some(smallest.as_str())),
        (None, Some("A000000000000000000000000001")),
        (Some(largest.as_str()), None),
        (Some("a0"), Some("a1")),
        (Some("Zz"), Some("a0")),
        (Some("az"), Some("b00")),
        (Some(long.as_str()), Some("a1")),
    ];
    let between: Vec<Value> = pairs
        .iter()
        .map(|&(a, b)| {
            json!({
                "a": a,
                "b": b,
                "key": outcome(order::key_between(a, b)),
                "keys0": outcome(order::n_keys_between(a, b, 0)),
                "keys3": outcome(order::n_keys_between(a, b, 3)),
            })
        })
        .collect();
    let columns: Vec<Vec<String>> = vec![
        vec![],
        vec!["a0".into(), "a1".into()],
        vec![long.clone()],
        vec![format!("a0{}", "V".repeat(order::MAX_KEY_LEN - 2))],
        vec![format!("a0{}", "V".repeat(order::MAX_KEY_LEN - 1))],
        vec!["a0".into(), "a00".into()],
        vec!["".into()],
        vec!["a0".into(), "a0é".into()],
        order::rebalanced(100),
    ];
    let rebalance: Vec<Value> = columns
        .iter()
        .map(|keys| json!({ "keys": keys, "expected": order::needs_rebalance(keys) }))
        .collect();
    json!({
        "generator": "protocol/tests/vectors.rs",
        "maxKeyLen": order::MAX_KEY_LEN,
        "validate": validate,
        "between": between,
        "needsRebalance": rebalance,
    })
}

#[test]
fn order_validation_vectors_hold_in_rust() {
    let fresh = order_validation_vectors();
    if updating() {
        write_vectors_by_line("order-validation.json", &fresh);
    }
    // The cases are fixed inputs, so the stored file must be exactly what Rust makes today.
    assert_eq!(read_vectors("order-validation.json"), fresh);
}

// ---------------------------------------------------------------------------------------------
// Schema names

fn schema_vectors() -> Value {
    let stage_kinds = [
        StageKind::Initial,
        StageKind::Progress,
        StageKind::Success,
        StageKind::Failure,
    ]
    .map(StageKind::as_str);
    let counter_states = [
        CounterState::Due,
        CounterState::Incoming,
        CounterState::Planned,
        CounterState::Idle,
        CounterState::None,
    ]
    .map(CounterState::as_str);
    let directions = [Direction::Incoming, Direction::Outgoing].map(Direction::as_str);
    let avatar_reasons = [
        AvatarReason::Responsible,
        AvatarReason::Comment,
        AvatarReason::Call,
        AvatarReason::Email,
        AvatarReason::Chat,
        AvatarReason::Reminder,
    ]
    .map(AvatarReason::as_str);
    let entities: Vec<Value> = [
        "lead", "deal", "invoice", "quote", "smart:42", "smart:", "", "deals", "Deal", "smart",
    ]
    .iter()
    .map(|raw| match Entity::parse(raw) {
        Ok(entity) => json!({
            "raw": raw,
            "asString": entity.as_string(),
            "defaultBoardName": entity.default_board_name(schema::Language::En),
            "defaultStages": entity
                .default_stages(schema::Language::En)
                .iter()
                .map(|s| json!({ "name": s.name, "color": s.color, "kind": s.kind.as_str() }))
                .collect::<Vec<_>>(),
        }),
        Err(_) => json!({ "raw": raw, "asString": null }),
    })
    .collect();
    let names = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    json!({
        "generator": "protocol/tests/vectors.rs",
        "root": names(&[
            ("BOARD", root::BOARD), ("STAGES", root::STAGES), ("CARDS", root::CARDS),
            ("ACTIVITIES", root::ACTIVITIES), ("FIELDS", root::FIELDS), ("FORMS", root::FORMS),
            ("VIEWS", root::VIEWS),
        ]),
        "boardKey": names(&[
            ("NAME", schema::board::NAME), ("ENTITY", schema::board::ENTITY),
            ("CURRENCY", schema::board::CURRENCY),
            ("COUNTER_THRESHOLD_MIN", schema::board::COUNTER_THRESHOLD_MIN),
            ("LOST_REASONS", schema::board::LOST_REASONS),
        ]),
        "stageKey": names(&[
            ("NAME", schema::stage::NAME), ("COLOR", schema::stage::COLOR),
            ("KIND", schema::stage::KIND), ("POS", schema::stage::POS),
            ("REQUIRED", schema::stage::REQUIRED), ("PROBABILITY", schema::stage::PROBABILITY),
            ("ROT_DAYS", schema::stage::ROT_DAYS),
        ]),
        "cardKey": names(&[
            ("TITLE", card_key::TITLE), ("STAGE", card_key::STAGE), ("POS", card_key::POS),
            ("AMOUNT", card_key::AMOUNT), ("CURRENCY", card_key::CURRENCY),
            ("RESPONSIBLE", card_key::RESPONSIBLE), ("CLIENT", card_key::CLIENT),
            ("EMAIL", card_key::EMAIL), ("CREATED_AT", card_key::CREATED_AT),
            ("UPDATED_AT", card_key::UPDATED_AT), ("ARCHIVED_AT", card_key::ARCHIVED_AT),
            ("FIELDS", card_key::FIELDS),
            ("CLOSE_DATE", card_key::CLOSE_DATE), ("LOST_REASON", card_key::LOST_REASON),
            ("AVATAR", card_key::AVATAR), ("AVATAR_AT", card_key::AVATAR_AT),
            ("AVATAR_REASON", card_key::AVATAR_REASON), ("COUNTER", card_key::COUNTER),
            ("TIMELINE_AT", card_key::TIMELINE_AT),
        ]),
        "activityKey": names(&[
            ("CARD", activity_key::CARD), ("KIND", activity_key::KIND),
            ("DIRECTION", activity_key::DIRECTION), ("SUBJECT", activity_key::SUBJECT),
            ("DEADLINE", activity_key::DEADLINE), ("REMIND_MIN", activity_key::REMIND_MIN),
            ("RESPONSIBLE", activity_key::RESPONSIBLE), ("DONE", activity_key::DONE),
            ("DONE_AT", activity_key::DONE_AT),
        ]),
        "fieldKey": names(&[
            ("LABEL", field_key::LABEL), ("TYPE", field_key::TYPE),
            ("OPTIONS", field_key::OPTIONS),
        ]),
        "quickCreate": board::QUICK_CREATE,
        "maxNameChars": board::MAX_NAME_CHARS,
        "maxThresholdMin": board::MAX_THRESHOLD_MIN,
        "defaultCounterThresholdMin": schema::DEFAULT_COUNTER_THRESHOLD_MIN,
        "defaultCurrency": schema::DEFAULT_CURRENCY,
        "fieldTypes": board::FIELD_TYPES,
        "stageKinds": stage_kinds,
        "counterStates": counter_states,
        "directions": directions,
        "avatarReasons": avatar_reasons,
        "minuteMs": MINUTE_MS,
        "entities": entities,
    })
}

#[test]
fn schema_vectors_hold_in_rust() {
    let fresh = schema_vectors();
    if updating() {
        write_vectors("schema.json", &fresh);
    }
    assert_eq!(read_vectors("schema.json"), fresh);
}
