//! The typed board API: every write keeps the stage invariants, and the reading rules hold on
//! edge cases (empty columns, equal keys, orphaned cards, two currencies, threshold 0, past
//! deadlines).

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use funnel_protocol::board::{
    self, BoardError, BoardView, CardEdit, CardPlace, NewActivity, NewCard,
};
use funnel_protocol::rules::{CounterState, Direction, MINUTE_MS};
use funnel_protocol::schema::{self, Entity, StageKind};
use yrs::{Any, Doc, Map, Transact, WriteTxn};

const NOW: i64 = 1_800_000_000_000;

fn new_board(entity: Entity) -> Doc {
    let doc = Doc::new();
    let name = entity.default_board_name(schema::Language::En);
    schema::initialize_board(
        &mut doc.transact_mut(),
        &entity,
        schema::Language::En,
        &name,
    );
    doc
}

fn view(doc: &Doc) -> BoardView {
    let view = BoardView::read(&doc.transact(), NOW);
    board::check_invariants(&doc.transact()).unwrap();
    view
}

fn stage_id(doc: &Doc, name: &str) -> String {
    board::stages(&doc.transact())
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stage {name}"))
        .id
}

fn stage_names(doc: &Doc) -> Vec<String> {
    board::stages(&doc.transact())
        .into_iter()
        .map(|s| s.name)
        .collect()
}

fn add_card(doc: &Doc, stage: &str, title: &str, amount: i64, currency: &str) -> String {
    let card = NewCard {
        title: title.into(),
        amount,
        currency: currency.into(),
        responsible: "ann".into(),
        ..NewCard::default()
    };
    board::create_card(&mut doc.transact_mut(), stage, card, NOW).unwrap()
}

fn titles(view: &BoardView, stage: &str) -> Vec<String> {
    view.columns
        .iter()
        .find(|c| c.stage.name == stage)
        .unwrap()
        .cards
        .iter()
        .map(|c| c.title.clone())
        .collect()
}

#[test]
fn every_entity_starts_valid_with_its_default_stages() {
    let cases = [
        (
            Entity::Lead,
            vec![
                "Not processed",
                "In progress",
                "Processed",
                "Converted",
                "Junk",
            ],
        ),
        (Entity::Invoice, vec!["New", "Sent", "Paid", "Cancelled"]),
        (Entity::Quote, vec!["Draft", "Sent", "Approved", "Declined"]),
        (
            Entity::Smart("7".into()),
            vec!["New", "In progress", "Success", "Failure"],
        ),
    ];
    for (entity, names) in cases {
        let doc = new_board(entity.clone());
        assert_eq!(stage_names(&doc), names, "{entity:?}");
        let view = view(&doc);
        assert!(
            view.columns.iter().all(|c| c.cards.is_empty()),
            "empty columns"
        );
        assert_eq!(view.settings.entity, entity.as_string());
        assert_eq!(view.settings.counter_threshold_min, 15);
    }
}

#[test]
fn stages_keep_their_invariants() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    let won = stage_id(&doc, "Won");
    let lost = stage_id(&doc, "Lost");
    let analysis = stage_id(&doc, "Failure analysis");
    let in_progress = stage_id(&doc, "In progress");
    let mut txn = doc.transact_mut();

    assert_eq!(
        board::delete_stage(&mut txn, &new, &won),
        Err(BoardError::InitialStageIsPermanent)
    );
    assert_eq!(
        board::delete_stage(&mut txn, &won, &new),
        Err(BoardError::SuccessStageIsUnique)
    );
    assert_eq!(
        board::add_stage(&mut txn, "Won again", "#00ff00", StageKind::Success, &won),
        Err(BoardError::SuccessStageIsUnique)
    );
    assert_eq!(
        board::add_stage(&mut txn, "Start", "#00ff00", StageKind::Initial, &new),
        Err(BoardError::InitialStageIsUnique)
    );
    // A progress stage cannot go among the finals, a failure stage not among the others.
    assert!(matches!(
        board::add_stage(&mut txn, "Late", "#123456", StageKind::Progress, &won),
        Err(BoardError::StageOrder(_))
    ));
    assert!(matches!(
        board::add_stage(&mut txn, "Early no", "#123456", StageKind::Failure, &new),
        Err(BoardError::StageOrder(_))
    ));
    assert!(matches!(
        board::move_stage(&mut txn, &new, &won),
        Err(BoardError::StageOrder(_))
    ));
    assert!(matches!(
        board::move_stage(&mut txn, &in_progress, &lost),
        Err(BoardError::StageOrder(_))
    ));
    assert_eq!(
        board::rename_stage(&mut txn, &new, "  "),
        Err(BoardError::BadName {
            what: "a stage name"
        })
    );
    assert_eq!(
        board::recolor_stage(&mut txn, &new, "red"),
        Err(BoardError::BadColor("red".into()))
    );
    // One failure stage may go; the last one may not.
    board::delete_stage(&mut txn, &analysis, &lost).unwrap();
    assert_eq!(
        board::delete_stage(&mut txn, &lost, &new),
        Err(BoardError::LastFailureStage)
    );
    drop(txn);
    view(&doc);
}

#[test]
fn stages_are_added_renamed_recoloured_and_reordered() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    let invoice = stage_id(&doc, "Invoice sent");
    let lost = stage_id(&doc, "Lost");
    {
        let mut txn = doc.transact_mut();
        let signing =
            board::add_stage(&mut txn, "Signing", "#aabbcc", StageKind::Progress, &new).unwrap();
        board::add_stage(&mut txn, "No budget", "#ff0000", StageKind::Failure, &lost).unwrap();
        board::rename_stage(&mut txn, &new, "Incoming").unwrap();
        board::recolor_stage(&mut txn, &invoice, "#000000").unwrap();
        board::move_stage(&mut txn, &signing, &invoice).unwrap();
    }
    assert_eq!(
        stage_names(&doc),
        [
            "Incoming",
            "Preparing documents",
            "Invoice sent",
            "Signing",
            "In progress",
            "Won",
            "Lost",
            "No budget",
            "Failure analysis"
        ]
    );
    let stages = board::stages(&doc.transact());
    assert_eq!(stages[2].color, "#000000");
    view(&doc);
}

#[test]
fn deleting_a_stage_moves_its_cards_to_the_chosen_stage() {
    let doc = new_board(Entity::Deal);
    let prep = stage_id(&doc, "Preparing documents");
    let progress = stage_id(&doc, "In progress");
    add_card(&doc, &progress, "already there", 1, "USD");
    add_card(&doc, &prep, "p1", 1, "USD");
    add_card(&doc, &prep, "p2", 1, "USD");
    assert_eq!(
        board::delete_stage(&mut doc.transact_mut(), &prep, &prep),
        Err(BoardError::CardsNeedAnotherStage)
    );
    assert_eq!(
        board::delete_stage(&mut doc.transact_mut(), &prep, "nope"),
        Err(BoardError::NoSuchStage("nope".into()))
    );
    board::delete_stage(&mut doc.transact_mut(), &prep, &progress).unwrap();
    let view = view(&doc);
    // New cards go on top; moved cards go to the bottom, keeping their order.
    assert_eq!(titles(&view, "In progress"), ["already there", "p2", "p1"]);
    assert!(!stage_names(&doc).contains(&"Preparing documents".to_owned()));
}

#[test]
fn columns_count_and_sum_per_currency() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    add_card(&doc, &new, "a", 1000, "USD");
    add_card(&doc, &new, "b", 250, "EUR");
    add_card(&doc, &new, "c", 500, "USD");
    add_card(&doc, &new, "d", 99, ""); // the board's currency
    let view = view(&doc);
    let column = &view.columns[0];
    assert_eq!(column.cards.len(), 4);
    assert_eq!(column.sums.get("USD"), Some(&1599));
    assert_eq!(column.sums.get("EUR"), Some(&250));
    assert!(
        view.columns[1..]
            .iter()
            .all(|c| c.cards.is_empty() && c.sums.is_empty())
    );
    assert_eq!(titles(&view, "New"), ["d", "c", "b", "a"]);
}

#[test]
fn moves_place_a_card_exactly_and_touch_no_other_card() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    let won = stage_id(&doc, "Won");
    let a = add_card(&doc, &new, "a", 0, "USD");
    let b = add_card(&doc, &new, "b", 0, "USD");
    let c = add_card(&doc, &new, "c", 0, "USD");
    assert_eq!(titles(&view(&doc), "New"), ["c", "b", "a"]);
    let before_b = board::card(&doc.transact(), &b).unwrap();

    board::move_card(&mut doc.transact_mut(), &c, &new, CardPlace::After(&a)).unwrap();
    assert_eq!(titles(&view(&doc), "New"), ["b", "a", "c"]);
    board::move_card(&mut doc.transact_mut(), &a, &won, CardPlace::Top).unwrap();
    board::move_card(&mut doc.transact_mut(), &c, &won, CardPlace::Bottom).unwrap();
    let v = view(&doc);
    assert_eq!(titles(&v, "New"), ["b"]);
    assert_eq!(titles(&v, "Won"), ["a", "c"]);
    assert_eq!(board::card(&doc.transact(), &b).unwrap(), before_b);
    assert_eq!(
        board::move_card(&mut doc.transact_mut(), "ghost", &won, CardPlace::Top),
        Err(BoardError::NoSuchCard("ghost".into()))
    );
    assert_eq!(
        board::move_card(&mut doc.transact_mut(), &a, &won, CardPlace::After("ghost")),
        Err(BoardError::NoSuchCard("ghost".into()))
    );
}

#[test]
fn equal_keys_sort_by_id_and_a_move_between_them_rebalances_the_column() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    let ids: Vec<String> = (0..3)
        .map(|i| add_card(&doc, &new, &format!("c{i}"), 0, "USD"))
        .collect();
    {
        // Two replicas that inserted at the same place concurrently: equal keys.
        let mut txn = doc.transact_mut();
        let cards = txn.get_or_insert_map(schema::root::CARDS);
        for id in &ids {
            let yrs::Out::YMap(card) = cards.get(&txn, id).unwrap() else {
                panic!()
            };
            card.insert(&mut txn, "pos", Any::from("a0"));
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    let order: Vec<String> = view(&doc).columns[0]
        .cards
        .iter()
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(order, sorted, "equal keys: by id");
    let x = add_card(&doc, &stage_id(&doc, "Won"), "x", 0, "USD");
    board::move_card(
        &mut doc.transact_mut(),
        &x,
        &new,
        CardPlace::After(&sorted[0]),
    )
    .unwrap();
    let order: Vec<String> = view(&doc).columns[0]
        .cards
        .iter()
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(
        order,
        [sorted[0].clone(), x, sorted[1].clone(), sorted[2].clone()]
    );
    let keys: Vec<String> = view(&doc).columns[0]
        .cards
        .iter()
        .map(|c| c.pos.clone())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "rebalanced: {keys:?}");
}

#[test]
fn an_orphaned_card_shows_in_the_initial_column() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    let id = add_card(&doc, &new, "lost soul", 10, "USD");
    {
        let mut txn = doc.transact_mut();
        let cards = txn.get_or_insert_map(schema::root::CARDS);
        let yrs::Out::YMap(card) = cards.get(&txn, &id).unwrap() else {
            panic!()
        };
        card.insert(&mut txn, "stage", Any::from("deleted-elsewhere"));
    }
    let view = view(&doc);
    assert_eq!(titles(&view, "New"), ["lost soul"]);
    assert_eq!(view.columns[0].sums.get("USD"), Some(&10));
    assert_eq!(view.column_of(&id).unwrap().stage.name, "New");
}

#[test]
fn counters_workload_and_unprocessed_follow_the_activities() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    let won = stage_id(&doc, "Won");
    let idle = add_card(&doc, &new, "idle", 100, "USD");
    let soon = add_card(&doc, &new, "due in 10 min", 200, "USD");
    let later = add_card(&doc, &new, "due tomorrow", 300, "USD");
    let done = add_card(&doc, &won, "won", 400, "USD");
    let activity = |card: &str, deadline: i64, direction| NewActivity {
        card: card.into(),
        kind: "call".into(),
        direction,
        subject: "call back".into(),
        deadline: Some(deadline),
        remind_min: None,
        responsible: "bob".into(),
    };
    let past = {
        let mut txn = doc.transact_mut();
        board::add_activity(
            &mut txn,
            activity(&soon, NOW + 10 * MINUTE_MS, Direction::Outgoing),
        )
        .unwrap();
        board::add_activity(
            &mut txn,
            activity(&later, NOW + 24 * 60 * MINUTE_MS, Direction::Outgoing),
        )
        .unwrap();
        board::add_activity(
            &mut txn,
            activity(&later, NOW - MINUTE_MS, Direction::Incoming),
        )
        .unwrap()
    };
    let v = view(&doc);
    assert_eq!(v.counters[&idle].state, CounterState::Idle);
    assert_eq!(v.counters[&soon].state, CounterState::Due);
    assert_eq!(v.counters[&later].state, CounterState::Incoming);
    assert_eq!(v.counters[&later].count, 2);
    assert_eq!(
        v.counters[&done].state,
        CounterState::None,
        "final stages are never idle"
    );
    assert_eq!(v.unprocessed, std::slice::from_ref(&idle));
    assert_eq!(v.workload.len(), 1);
    // The won card is not in anyone's workload: it counts open deals only.
    assert_eq!((v.workload[0].cards, v.workload[0].lit), (3, 1));
    assert_eq!(v.workload[0].amounts.get("USD"), Some(&600));

    // Threshold 0: the call due in 10 minutes is not lit any more.
    board::set_counter_threshold(&mut doc.transact_mut(), 0).unwrap();
    assert_eq!(view(&doc).counters[&soon].state, CounterState::Planned);
    assert_eq!(
        board::set_counter_threshold(&mut doc.transact_mut(), -1),
        Err(BoardError::BadThreshold)
    );
    // Completing the past incoming call leaves the planned one.
    board::complete_activity(&mut doc.transact_mut(), &past, true).unwrap();
    assert_eq!(view(&doc).counters[&later].state, CounterState::Planned);
}

#[test]
fn cards_are_edited_and_forms_are_per_board_and_per_user() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    let id = add_card(&doc, &new, "deal", 1, "USD");
    let status = board::define_field(
        &mut doc.transact_mut(),
        None,
        "Payment status",
        "enum",
        &["paid", "due"],
    )
    .unwrap();
    assert_eq!(
        board::define_field(&mut doc.transact_mut(), None, "x", "colour", &[]),
        Err(BoardError::BadFieldType("colour".into()))
    );
    let mut edit = CardEdit {
        title: Some("bigger deal".into()),
        amount: Some(5000),
        client: Some("ACME".into()),
        ..CardEdit::default()
    };
    edit.fields.insert(status.clone(), Any::from("paid"));
    board::edit_card(&mut doc.transact_mut(), &id, edit).unwrap();
    let card = board::card(&doc.transact(), &id).unwrap();
    assert_eq!(
        (card.title.as_str(), card.amount, card.client.as_str()),
        ("bigger deal", 5000, "ACME")
    );
    assert_eq!(card.fields[&status], serde_json::json!("paid"));

    board::set_quick_create_fields(&mut doc.transact_mut(), &["title", "client", "amount"]);
    board::set_display_fields(
        &mut doc.transact_mut(),
        "ann",
        &["client", "amount", &status],
    );
    board::set_display_fields(&mut doc.transact_mut(), "bob", &["title"]);
    let txn = doc.transact();
    assert_eq!(
        board::quick_create_fields(&txn),
        ["title", "client", "amount"]
    );
    assert_eq!(
        board::display_fields(&txn, "ann"),
        ["client", "amount", status.as_str()]
    );
    assert_eq!(board::display_fields(&txn, "bob"), ["title"]);
    assert!(board::display_fields(&txn, "eve").is_empty());
}

#[test]
fn a_move_between_known_neighbours_needs_no_scan_and_refuses_colliding_keys() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    let won = stage_id(&doc, "Won");
    let a = add_card(&doc, &won, "a", 0, "USD");
    let b = add_card(&doc, &won, "b", 0, "USD");
    let x = add_card(&doc, &new, "x", 0, "USD");
    let column = |doc: &Doc| {
        view(doc)
            .columns
            .iter()
            .find(|c| c.stage.id == won)
            .unwrap()
            .cards
            .clone()
    };
    let (first, second) = (column(&doc)[0].pos.clone(), column(&doc)[1].pos.clone());
    board::move_card_between(
        &mut doc.transact_mut(),
        &x,
        &won,
        Some(&first),
        Some(&second),
    )
    .unwrap();
    let titles: Vec<String> = column(&doc).iter().map(|c| c.title.clone()).collect();
    assert_eq!(titles, ["b", "x", "a"]);
    assert!(matches!(
        board::move_card_between(
            &mut doc.transact_mut(),
            &a,
            &won,
            Some(&first),
            Some(&first)
        ),
        Err(BoardError::Order(_))
    ));
    assert!(board::card(&doc.transact(), &b).is_some());
}

#[test]
fn absurd_amounts_are_refused_on_write_and_saturate_on_read() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    let card = NewCard {
        title: "huge".into(),
        amount: i64::MAX,
        ..NewCard::default()
    };
    assert_eq!(
        board::create_card(&mut doc.transact_mut(), &new, card, NOW),
        Err(BoardError::BadAmount)
    );
    // A peer that bypasses the API writes huge amounts anyway: sums saturate, nothing panics.
    let ids = [
        add_card(&doc, &new, "a", 1, "USD"),
        add_card(&doc, &new, "b", 1, "USD"),
    ];
    {
        let mut txn = doc.transact_mut();
        let cards = txn.get_or_insert_map(schema::root::CARDS);
        for id in &ids {
            let yrs::Out::YMap(card) = cards.get(&txn, id).unwrap() else {
                panic!()
            };
            card.insert(&mut txn, "amount", Any::from(1e300));
        }
    }
    let view = view(&doc);
    assert_eq!(view.columns[0].sums.get("USD"), Some(&i64::MAX));
    assert_eq!(view.workload[0].amounts.get("USD"), Some(&i64::MAX));
}

#[test]
fn a_cards_email_is_checked_written_cleared_and_read() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    for bad in [
        "ann",
        "ann@",
        "@example.com",
        "ann@localhost",
        "ann smith@example.com",
        "Ann <ann@example.com>",
        "ann@@example.com",
    ] {
        let card = NewCard {
            title: "Acme".into(),
            email: bad.into(),
            ..NewCard::default()
        };
        assert_eq!(
            board::create_card(&mut doc.transact_mut(), &new, card, NOW),
            Err(BoardError::BadEmail(bad.into())),
            "{bad}"
        );
    }
    assert!(view(&doc).columns.iter().all(|c| c.cards.is_empty()));
    let card = NewCard {
        title: "Acme".into(),
        email: " buyer@acme.example.com ".into(),
        ..NewCard::default()
    };
    let id = board::create_card(&mut doc.transact_mut(), &new, card, NOW).unwrap();
    let read = board::card(&doc.transact(), &id).unwrap();
    assert_eq!(read.email, "buyer@acme.example.com");
    assert_eq!(read.updated_at, NOW, "no updatedAt reads as createdAt");
    let edit = |email: &str| CardEdit {
        email: Some(email.into()),
        ..CardEdit::default()
    };
    assert_eq!(
        board::edit_card(&mut doc.transact_mut(), &id, edit("nope")),
        Err(BoardError::BadEmail("nope".into()))
    );
    board::edit_card(&mut doc.transact_mut(), &id, edit("")).unwrap();
    board::touch_card(&mut doc.transact_mut(), &id, NOW + 5).unwrap();
    let read = board::card(&doc.transact(), &id).unwrap();
    assert_eq!((read.email.as_str(), read.updated_at), ("", NOW + 5));
}

#[test]
fn deleting_a_card_deletes_its_activities_only() {
    let doc = new_board(Entity::Deal);
    let new = stage_id(&doc, "New");
    let gone = add_card(&doc, &new, "Gone", 0, "USD");
    let kept = add_card(&doc, &new, "Kept", 0, "USD");
    for card in [&gone, &kept] {
        let activity = NewActivity {
            card: card.clone(),
            kind: "call".into(),
            direction: Direction::Outgoing,
            subject: String::new(),
            deadline: None,
            remind_min: None,
            responsible: "ann".into(),
        };
        board::add_activity(&mut doc.transact_mut(), activity).unwrap();
    }
    board::delete_card(&mut doc.transact_mut(), &gone).unwrap();
    assert!(board::card(&doc.transact(), &gone).is_none());
    let activities = board::activities_by_card(&doc.transact());
    assert_eq!(activities.keys().collect::<Vec<_>>(), [&kept]);
    assert_eq!(
        board::delete_card(&mut doc.transact_mut(), &gone),
        Err(BoardError::NoSuchCard(gone))
    );
}
