//! The hub's hot paths, in process: decoding a client frame, applying and encoding a move
//! (yrs), encoding a big board for a newcomer, and fanning one update out to 1,000
//! connections through the room state machine and their outboxes.
//!
//! `cargo bench -p funnel-server --bench fanout` (results in BENCHMARKS.md).

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use funnel_protocol::board::{self, card_key};
use funnel_protocol::schema::{self, Entity, root};
use funnel_protocol::wire::{self, decode_client_frame};
use funnel_protocol::{BoardId, order};
use funnel_server::outbox::{Next, OutboxLimits, OutboxReceiver, outbox};
use funnel_server::room::ConnId;
use funnel_server::room::state::RoomState;
use futures_util::FutureExt;
use std::hint::black_box;
use std::time::{Duration, Instant};
use yrs::{Any, Doc, Map, MapPrelim, Out, ReadTxn, StateVector, Transact, WriteTxn};

/// Moves prepared ahead: each is applied once, in order, to a fresh board.
const MOVES: usize = 2_000;
const CONNECTIONS: usize = 1_000;

/// A deal pipeline with `cards` cards spread over its stages, as one update.
fn board_update(cards: usize) -> Vec<u8> {
    let doc = Doc::new();
    let mut txn = doc.transact_mut();
    schema::initialize_board(&mut txn, &Entity::Deal, schema::Language::En, "Bench");
    let stages: Vec<String> = board::stages(&txn).into_iter().map(|s| s.id).collect();
    let per_stage = cards.div_ceil(stages.len());
    let keys = order::rebalanced(per_stage);
    let map = txn.get_or_insert_map(root::CARDS);
    for n in 0..cards {
        let stage = &stages[n % stages.len()];
        let card = MapPrelim::from([
            (card_key::TITLE, Any::from(format!("Deal {n}: CRM rollout"))),
            (card_key::STAGE, Any::from(stage.as_str())),
            (card_key::POS, Any::from(keys[n / stages.len()].as_str())),
            (
                card_key::AMOUNT,
                Any::from(((n * 7_919) % 250_000) as i64 * 100),
            ),
            (card_key::CURRENCY, Any::from("USD")),
            (card_key::RESPONSIBLE, Any::from(format!("user-{}", n % 25))),
            (card_key::CLIENT, Any::from(format!("Client {}", n % 400))),
            (card_key::CREATED_AT, Any::from(1_700_000_000_000i64)),
        ]);
        map.insert(&mut txn, format!("c{n:05}"), card);
    }
    txn.encode_update_v1()
}

fn doc_from(update: &[u8]) -> Doc {
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(wire::decode_update_v1(update).expect("a valid board"))
        .expect("the board applies");
    doc
}

/// One move as the load tester makes it: `stage` and `pos` of a card and its stamp, in one
/// transaction.
fn make_move(doc: &Doc, n: usize, stages: &[String]) -> Vec<u8> {
    let card = format!("c{:05}", (n * 37) % 1000);
    let stage = &stages[n % stages.len()];
    let mut txn = doc.transact_mut();
    board::move_card_between(&mut txn, &card, stage, None, Some("a0"))
        .expect("a move to the top of a column");
    let cards = txn.get_or_insert_map(root::CARDS);
    if let Some(Out::YMap(map)) = cards.get(&txn, &card) {
        map.insert(&mut txn, "moveStamp", Any::from(format!("ltm1:7:{n}:1;")));
    }
    txn.encode_update_v1()
}

struct Fixture {
    board: Vec<u8>,
    /// Move update frames (client → server), each building on the ones before.
    moves: Vec<Bytes>,
    client: Doc,
    stages: Vec<String>,
}

fn fixture() -> Fixture {
    let board = board_update(1_000);
    let client = doc_from(&board);
    let stages: Vec<String> = board::stages(&client.transact())
        .into_iter()
        .map(|s| s.id)
        .collect();
    let moves = (0..MOVES)
        .map(|n| wire::client::encode_update(&make_move(&client, n, &stages)))
        .collect();
    Fixture {
        board,
        moves,
        client,
        stages,
    }
}

fn decode(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("decode");
    let frame = f.moves[0].clone();
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("move_update_frame", |b| {
        b.iter(|| decode_client_frame(black_box(&frame)).expect("decodes"))
    });
    let step1 = wire::client::encode_sync_step1(&f.client.transact().state_vector());
    group.throughput(Throughput::Bytes(step1.len() as u64));
    group.bench_function("sync_step1_frame", |b| {
        b.iter(|| decode_client_frame(black_box(&step1)).expect("decodes"))
    });
    group.finish();
}

fn yrs_paths(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("yrs");
    // Applying each prepared move once, in order, to the 1,000-card board; a fresh board
    // (not timed) after every MOVES iterations.
    group.bench_function("apply_move_1000_cards", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut doc = doc_from(&f.board);
            for i in 0..iters as usize {
                if i > 0 && i % MOVES == 0 {
                    doc = doc_from(&f.board);
                }
                let frame = &f.moves[i % MOVES];
                let started = Instant::now();
                let Ok(Some(wire::ClientMessage::Update(incoming))) =
                    decode_client_frame(frame).map(|m| m.into_iter().next())
                else {
                    panic!("a move is an update");
                };
                doc.transact_mut()
                    .apply_update(incoming.update)
                    .expect("applies");
                total += started.elapsed();
            }
            total
        })
    });
    group.bench_function("make_and_encode_move_1000_cards", |b| {
        let doc = doc_from(&f.board);
        let mut n = 0;
        b.iter(|| {
            n += 1;
            black_box(make_move(&doc, n, &f.stages))
        })
    });
    let big = doc_from(&board_update(5_000));
    group.bench_function("encode_full_state_5000_cards", |b| {
        b.iter(|| {
            black_box(
                big.transact()
                    .encode_state_as_update_v1(&StateVector::default()),
            )
        })
    });
    group.finish();
}

/// A room with `CONNECTIONS` members whose join frames were drained.
fn room_with_members(f: &Fixture) -> (RoomState, Vec<OutboxReceiver>) {
    let board = BoardId::parse("bench").expect("a valid board id");
    let mut room = RoomState::new(board, doc_from(&f.board), || 0u64);
    let limits = OutboxLimits {
        max_frames: 4096,
        max_bytes: 16 << 20,
    };
    let mut receivers = Vec::with_capacity(CONNECTIONS);
    for id in 0..CONNECTIONS {
        let (tx, rx) = outbox(limits);
        room.join(
            ConnId(id as u64 + 1),
            tx,
            funnel_server::auth::Principal::local_admin(),
        );
        receivers.push(rx);
    }
    room.take_updates_to_store();
    room.deliver();
    for rx in &mut receivers {
        drain(rx);
    }
    (room, receivers)
}

/// Takes every queued frame; returns how many.
fn drain(rx: &mut OutboxReceiver) -> usize {
    let mut frames = 0;
    while let Some(Next::Frame(frame)) = rx.next().now_or_never() {
        black_box(frame);
        frames += 1;
    }
    frames
}

fn fanout(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(CONNECTIONS as u64 - 1));
    // One update from connection 1 through the room (apply, store list, deliver to the 999
    // others' outboxes), then every receiver drained: the in-process cost of one move.
    group.bench_function("one_update_to_1000_connections", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let (mut room, mut receivers) = room_with_members(f);
            for i in 0..iters as usize {
                if i > 0 && i % MOVES == 0 {
                    (room, receivers) = room_with_members(f);
                }
                let Ok(messages) = decode_client_frame(&f.moves[i % MOVES]) else {
                    panic!("a move decodes");
                };
                let started = Instant::now();
                for message in messages {
                    room.handle(ConnId(1), message);
                }
                black_box(room.take_updates_to_store());
                room.deliver();
                let mut delivered = 0;
                for rx in &mut receivers {
                    delivered += drain(rx);
                }
                total += started.elapsed();
                assert_eq!(
                    delivered,
                    CONNECTIONS - 1,
                    "every other member gets the move"
                );
            }
            total
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    decode(c, &f);
    yrs_paths(c, &f);
    fanout(c, &f);
}

criterion_group! {
    name = hub;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(hub);
