//! What a resident board holds in memory, part by part, counted by the allocator (dhat's
//! counting global allocator: every live heap byte of this test process, nothing sampled).
//!
//! `BOARDS` boards of 100 cards each (titles, amounts, responsibles, clients and e-mails, as a
//! person fills the quick-create form) are stored as one v1 update each, as a snapshot is, then
//! loaded the way the room loads them, and each part the room builds over them is measured:
//!
//! 1. the yrs document, loaded from its stored update;
//! 2. the read model (`BoardModel`: the `BoardIndex` and its change tracker);
//! 3. the whole `RoomState` (document, model, awareness, the role check's recorder);
//! 4. four members joined, one with an empty document (the shared cut of the board for
//!    joiners), each with its outbox, their join frames taken;
//! 5. the sweep's `release_idle`, which lets go of what only a busy board needs;
//! 6. 100 moves by a member, delivered to the four;
//! 7. hibernation (`RoomState::hibernate`, what a quiet room does): what stays of the room;
//! 8. the room task's fixed buffers, from the size of one command.
//!
//! The table is printed (`cargo test -p funnel-server --test board_memory -- --nocapture`) and
//! BENCHMARKS.md keeps it. SQLite's page cache and the sockets are outside the Rust heap: the
//! `rooms` load test's peak RSS covers them. One test in this file: the allocator's counts are
//! the process's.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use funnel_protocol::BoardId;
use funnel_protocol::board::{self, CardPlace, NewCard};
use funnel_protocol::schema::{self, Entity};
use funnel_protocol::wire::{self, decode_client_frame};
use funnel_server::auth::Principal;
use funnel_server::outbox::{Next, OutboxLimits, OutboxReceiver, outbox};
use funnel_server::room::model::BoardModel;
use funnel_server::room::state::RoomState;
use funnel_server::room::{ConnId, MAX_BATCH, RoomCommand};
use futures_util::FutureExt;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const BOARDS: usize = 10;
const CARDS: usize = 100;
const MOVES: usize = 100;
const T0: i64 = 1_800_000_000_000;

/// A deal pipeline of `CARDS` cards spread over five stages, as its stored v1 update, and the
/// cards' ids.
fn stored_board(seed: usize) -> (Vec<u8>, Vec<String>) {
    let doc = Doc::new();
    schema::initialize_board(
        &mut doc.transact_mut(),
        &Entity::Deal,
        schema::Language::En,
        "Deals",
    );
    let stages: Vec<String> = board::stages(&doc.transact())
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut ids = Vec::with_capacity(CARDS);
    for i in 0..CARDS {
        let mut txn = doc.transact_mut();
        let card = NewCard {
            title: format!("Deal {seed}-{i} with a company"),
            amount: (i as i64 + 1) * 12_500,
            responsible: format!("user{}", i % 7),
            client: format!("Client {}", i % 40),
            email: format!("buyer{i}@example.com"),
            ..NewCard::default()
        };
        ids.push(board::create_card(&mut txn, &stages[i % 5], card, T0).unwrap());
    }
    let state = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    (state, ids)
}

fn load(stored: &[u8]) -> Doc {
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(stored).unwrap())
        .unwrap();
    doc
}

fn live_bytes() -> usize {
    dhat::HeapStats::get().curr_bytes
}

/// KiB a board added since `before` (negative: freed).
fn per_board_kib(before: usize) -> f64 {
    (live_bytes() as f64 - before as f64) / BOARDS as f64 / 1024.0
}

fn drain(rx: &mut OutboxReceiver) {
    while let Some(Next::Frame(_)) = rx.next().now_or_never() {}
}

const LIMITS: OutboxLimits = OutboxLimits {
    max_frames: 1024,
    max_bytes: 8 << 20,
};

#[test]
fn a_resident_board_holds_its_document_and_little_else() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let (stored, ids): (Vec<Vec<u8>>, Vec<Vec<String>>) = (0..BOARDS).map(stored_board).unzip();
    let stored_kib = stored.iter().map(Vec::len).sum::<usize>() as f64 / BOARDS as f64 / 1024.0;
    let mut table = vec![format!(
        "{BOARDS} boards of {CARDS} cards, stored state {stored_kib:.1} KiB a board"
    )];
    let mut row = |what: &str, kib: f64| table.push(format!("| {what} | {kib:.1} KiB |"));

    // 1 and 2: the document and the read model alone.
    let start = live_bytes();
    let docs: Vec<Doc> = stored.iter().map(|s| load(s)).collect();
    let doc_kib = per_board_kib(start);
    row("document (yrs `Doc`, loaded from its update)", doc_kib);
    let after_docs = live_bytes();
    let models: Vec<BoardModel> = docs.iter().map(BoardModel::attach).collect();
    let model_kib = per_board_kib(after_docs);
    row("read model (`BoardModel`: index and tracker)", model_kib);
    drop(models);
    drop(docs);

    // 3: the room's state over a loaded document.
    let start = live_bytes();
    let mut rooms: Vec<RoomState> = stored
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let board = BoardId::parse(&format!("b{i}")).unwrap();
            RoomState::new(board, load(s), || 0)
        })
        .collect();
    let room_kib = per_board_kib(start);
    row(
        "`RoomState` (document, model, awareness, recorder)",
        room_kib,
    );

    // 4: four members, the first with an empty document, the others holding the board.
    let after_rooms = live_bytes();
    let mut outboxes: Vec<Vec<OutboxReceiver>> = Vec::new();
    for room in &mut rooms {
        let full = room.doc().transact().state_vector();
        let mut receivers = Vec::new();
        for member in 0..4u64 {
            let (tx, rx) = outbox(LIMITS);
            room.join(ConnId(member), tx, Principal::local_admin());
            let sv = if member == 0 {
                StateVector::default()
            } else {
                full.clone()
            };
            for message in decode_client_frame(&wire::encode_sync_step1(&sv)).unwrap() {
                room.handle(ConnId(member), message);
            }
            receivers.push(rx);
        }
        room.take_updates_to_store();
        room.deliver();
        receivers.iter_mut().for_each(drain);
        outboxes.push(receivers);
    }
    row(
        "four members joined (outboxes; the shared cut for joiners)",
        per_board_kib(after_rooms),
    );

    // 5: the sweep right after the joins keeps the cut (joiners used it); the next one finds
    // no joiner since, and lets it go.
    let busy = live_bytes();
    rooms.iter_mut().for_each(RoomState::release_idle);
    let kept_kib = per_board_kib(busy);
    rooms.iter_mut().for_each(RoomState::release_idle);
    let released_kib = per_board_kib(busy);
    row(
        "`release_idle` twice (two sweeps, no joiner since the first)",
        released_kib,
    );

    // 6: moves by member 1, delivered to the four and taken from their outboxes.
    let after_join = live_bytes();
    for ((room, receivers), cards) in rooms.iter_mut().zip(&mut outboxes).zip(&ids) {
        let writer = load(
            &room
                .doc()
                .transact()
                .encode_state_as_update_v1(&StateVector::default()),
        );
        let stages: Vec<String> = board::stages(&writer.transact())
            .into_iter()
            .map(|s| s.id)
            .collect();
        for m in 0..MOVES {
            let before = writer.transact().state_vector();
            board::move_card(
                &mut writer.transact_mut(),
                &cards[m % cards.len()],
                &stages[(m + 1) % 5],
                CardPlace::Top,
            )
            .unwrap();
            let update = writer.transact().encode_state_as_update_v1(&before);
            for message in decode_client_frame(&wire::encode_update(&update)).unwrap() {
                room.handle(ConnId(1), message);
            }
            room.take_updates_to_store();
            room.deliver();
            receivers.iter_mut().for_each(drain);
        }
    }
    row(
        &format!("{MOVES} moves made and delivered"),
        per_board_kib(after_join),
    );

    let idle_kib = per_board_kib(start);
    row("an idle room with four members, in all", idle_kib);

    // 7: the rooms hibernate: document, model, recorder and upkeep go; members and presence stay.
    let awake = live_bytes();
    assert!(rooms.iter_mut().all(RoomState::hibernate));
    let hibernated_kib = per_board_kib(start);
    row(
        &format!(
            "hibernated (`RoomState::hibernate`): {:.1} KiB let go",
            -per_board_kib(awake)
        ),
        hibernated_kib,
    );

    // 8: the room task's fixed buffers, from the size of one command.
    let command = std::mem::size_of::<RoomCommand>();
    table.push(format!(
        "one command: {command} bytes; {MAX_BATCH} commands (a full batch's capacity): {:.1} KiB; \
         the command channel's first block (32 commands): {:.1} KiB",
        (command * MAX_BATCH) as f64 / 1024.0,
        (command * 32) as f64 / 1024.0
    ));
    println!("{}", table.join("\n"));

    // The budgets (a regression shows here first): the document is most of a board; the read
    // model a fraction of it; an idle room with its members little more than both.
    assert!(
        model_kib < doc_kib / 2.0,
        "model {model_kib:.1} KiB against a document of {doc_kib:.1} KiB"
    );
    // The cut is about the stored state's size.
    assert!(
        kept_kib > -1.0,
        "the sweep after the joins kept the cut: {kept_kib:.1} KiB"
    );
    assert!(
        -released_kib > stored_kib / 2.0,
        "release_idle let go of the joiners' cut: {released_kib:.1} KiB"
    );
    assert!(
        idle_kib < (doc_kib + model_kib) * 1.2,
        "idle {idle_kib:.1} KiB against document + model {:.1} KiB",
        doc_kib + model_kib
    );
    // Payloads are boxed (the channel allocates 32 slots at a time): a command is 32 bytes.
    assert!(command <= 32, "a room command is {command} bytes");
    // A hibernated room keeps its members, not its board.
    assert!(
        hibernated_kib < doc_kib / 10.0,
        "hibernated {hibernated_kib:.1} KiB against a document of {doc_kib:.1} KiB"
    );
    drop(outboxes);
    drop(rooms);
}
