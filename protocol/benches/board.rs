//! How fast the typed board API is on a big board: 10,000 deal cards over the 7 default stages,
//! 2,000 activities with deadlines around `NOW`. See BENCHMARKS.md for the method and results.
//!
//! - `move/after`, `move/top`: [`board::move_card`] in one transaction, plus the
//!   `encode_update_v1` of that transaction (the bytes a client sends) and the commit.
//! - `move/between`: the same move with [`board::move_card_between`], for a caller that already
//!   has the neighbours' keys.
//! - `whole board/column view`: the view (columns, sums, workload, counters) from a kept
//!   [`BoardIndex`], what a room or a client renders after each change.
//! - `whole board/full read`: [`BoardView::read`], parsing the whole document first (what
//!   building that index costs, once).
//! - `whole board/index after a move`: applying one move's changes to a kept index.
//! - `whole board/encode full state`: the whole document as one update (what a new client is
//!   sent).
//! - `whole board/apply full state`: that update applied to an empty document (what loading a
//!   board costs).
//!
//! Run with `cargo bench -p funnel-protocol --bench board`.

// Clippy counts a bench as non-test code: a failure here can only mean the bench itself is
// broken, so each one is an `expect` that says what was assumed.

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use funnel_protocol::board::{self, BoardView, CardPlace, activity_key, card_key};
use funnel_protocol::ids::new_id;
use funnel_protocol::index::{BoardIndex, Changes};
use funnel_protocol::order;
use funnel_protocol::rules::{MINUTE_MS, Millis};
use funnel_protocol::schema::{self, Entity, root};
use std::hint::black_box;
use std::time::Duration;
use yrs::updates::decoder::Decode;
use yrs::{Any, Doc, Map, MapPrelim, ReadTxn, StateVector, Transact, Update, WriteTxn};

/// A fixed "now" (2027-01-15T08:00:00Z), so counters, and the work they take, are the same on
/// every run.
const NOW: Millis = 1_800_000_000_000;
const HOUR_MS: Millis = 60 * MINUTE_MS;
const DAY_MS: Millis = 24 * HOUR_MS;

const CARDS: usize = 10_000;
const ACTIVITIES: usize = 2_000;

/// Share of the cards in each default deal stage, in board order (sums to 100): most deals sit
/// in the early stages, the closed ones in the three final stages.
const STAGE_SHARE_PERCENT: [usize; 7] = [30, 20, 15, 15, 10, 6, 4];

const COMPANIES: [&str; 16] = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli",
    "Vandelay Imports",
    "Soylent Foods",
    "Tyrell Systems",
    "Cyberdyne",
    "Wonka Confectionery",
    "Oceanic Airlines",
    "Gringotts Bank",
    "Pied Piper",
    "Massive Dynamic",
];
const DEALS: [&str; 10] = [
    "annual licence renewal",
    "50 seats, Pro plan",
    "onboarding and training package",
    "warehouse scanners",
    "support contract 2027",
    "pilot in the Berlin office",
    "CRM migration",
    "hardware refresh, 120 laptops",
    "API integration",
    "upsell: analytics module",
];
const MANAGERS: usize = 25;
const ACTIVITY_KINDS: [&str; 5] = ["call", "meeting", "task", "email", "chat"];

/// SplitMix64: a fixed seed gives the same board shape on every run, with no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// A number in `low..high`.
    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low) as u64) as i64
    }
}

/// The benchmark board, and the ids the move benches use.
struct BigBoard {
    doc: Doc,
    /// Stage ids in board order.
    stages: Vec<String>,
    /// Card ids per stage, in column order.
    columns: Vec<Vec<String>>,
}

/// Builds the board with direct inserts under the key names of [`card_key`] and [`activity_key`]
/// (the shape [`board::create_card`] and [`board::add_activity`] write), in one transaction:
/// `create_card` reads the whole board to place each card, which would make setup quadratic.
fn big_board() -> BigBoard {
    let mut rng = Rng(0x00f0_0d5e_ed00_0001);
    let doc = Doc::new();
    schema::initialize_board(
        &mut doc.transact_mut(),
        &Entity::Deal,
        schema::Language::En,
        "Deals",
    );
    let stages: Vec<String> = board::stages(&doc.transact())
        .into_iter()
        .map(|stage| stage.id)
        .collect();
    assert_eq!(stages.len(), STAGE_SHARE_PERCENT.len(), "7 deal stages");
    let managers: Vec<String> = (1..=MANAGERS).map(|n| format!("user-{n:03}")).collect();
    let mut columns = Vec::with_capacity(stages.len());
    {
        let mut txn = doc.transact_mut();
        let cards = txn.get_or_insert_map(root::CARDS);
        for (stage, share) in stages.iter().zip(STAGE_SHARE_PERCENT) {
            let count = CARDS * share / 100;
            let mut column = Vec::with_capacity(count);
            for pos in order::rebalanced(count) {
                let id = new_id();
                let company = rng.pick(&COMPANIES);
                let title = format!("{company}: {}", rng.pick(&DEALS));
                // Most deals in the board's currency, a quarter in euros; minor units, whole amounts.
                let currency = if rng.below(4) == 0 { "EUR" } else { "USD" };
                let amount = rng.between(500, 250_000) * 100;
                let responsible = managers[rng.below(MANAGERS)].as_str();
                let created_at = NOW - rng.between(0, 180 * DAY_MS);
                let card = cards.insert(
                    &mut txn,
                    id.clone(),
                    MapPrelim::from([
                        (card_key::TITLE, Any::from(title)),
                        (card_key::STAGE, Any::from(stage.as_str())),
                        (card_key::POS, Any::from(pos)),
                        (card_key::AMOUNT, Any::from(amount)),
                        (card_key::CURRENCY, Any::from(currency)),
                        (card_key::RESPONSIBLE, Any::from(responsible)),
                        (card_key::CLIENT, Any::from(company)),
                        (card_key::CREATED_AT, Any::from(created_at)),
                    ]),
                );
                card.insert(&mut txn, card_key::FIELDS, MapPrelim::default());
                column.push(id);
            }
            columns.push(column);
        }
        let all_cards: Vec<&String> = columns.iter().flatten().collect();
        let activities = txn.get_or_insert_map(root::ACTIVITIES);
        for _ in 0..ACTIVITIES {
            let card = all_cards[rng.below(all_cards.len())].as_str();
            // Deadlines from two days ago to five days ahead, a tenth of them within the hour
            // around now (so some counters are lit, some about to be); one in ten incoming,
            // one in eight done.
            let deadline = if rng.below(10) == 0 {
                NOW + rng.between(-HOUR_MS, HOUR_MS)
            } else {
                NOW + rng.between(-2 * DAY_MS, 5 * DAY_MS)
            };
            let direction = if rng.below(10) == 0 {
                "incoming"
            } else {
                "outgoing"
            };
            let kind = rng.pick(&ACTIVITY_KINDS);
            let activity = activities.insert(
                &mut txn,
                new_id(),
                MapPrelim::from([
                    (activity_key::CARD, Any::from(card)),
                    (activity_key::KIND, Any::from(kind)),
                    (activity_key::DIRECTION, Any::from(direction)),
                    (
                        activity_key::SUBJECT,
                        Any::from(format!("Follow-up {kind}")),
                    ),
                    (
                        activity_key::RESPONSIBLE,
                        Any::from(managers[rng.below(MANAGERS)].as_str()),
                    ),
                    (activity_key::DONE, Any::from(rng.below(8) == 0)),
                    (activity_key::DEADLINE, Any::from(deadline)),
                ]),
            );
            if rng.below(3) == 0 {
                activity.insert(&mut txn, activity_key::REMIND_MIN, Any::from(30_i64));
            }
        }
    }
    let view = BoardView::read(&doc.transact(), NOW);
    let read: Vec<usize> = view.columns.iter().map(|c| c.cards.len()).collect();
    let built: Vec<usize> = columns.iter().map(Vec::len).collect();
    assert_eq!(read, built, "every card reads back in its column");
    assert_eq!(read.iter().sum::<usize>(), CARDS);
    board::check_invariants(&doc.transact()).expect("a deal board keeps its stage invariants");
    BigBoard {
        doc,
        stages,
        columns,
    }
}

/// Moves `card` to `stage` at `place` in one transaction and returns the update it makes. The
/// transaction commits when it drops at the end, inside the measured time, as for any caller.
fn move_and_encode(doc: &Doc, card: &str, stage: &str, place: CardPlace<'_>) -> Vec<u8> {
    let mut txn = doc.transact_mut();
    board::move_card(&mut txn, card, stage, place).expect("the card and the stage exist");
    txn.encode_update_v1()
}

fn benches(c: &mut Criterion) {
    let board = big_board();
    let doc = &board.doc;
    let full_state = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    // The moves write to a copy: 3 µs moves run a million times leave a million replaced entries
    // behind, which would slow the whole-document benches down tenfold.
    let moves_doc = &Doc::new();
    moves_doc
        .transact_mut()
        .apply_update(Update::decode_v1(&full_state).expect("a valid update"))
        .expect("the board's own state applies to an empty document");
    let middle = |column: usize| board.columns[column][board.columns[column].len() / 2].as_str();

    // One card from "New" goes back and forth between the middle of "In progress" and the middle
    // of "New", so every iteration is a real move and the order keys never grow.
    let (new, in_progress) = (0, 3);
    let mover = board.columns[new][0].as_str();
    let there = (board.stages[in_progress].as_str(), middle(in_progress));
    let back = (board.stages[new].as_str(), middle(new));
    let update = move_and_encode(moves_doc, mover, there.0, CardPlace::After(there.1));
    println!(
        "board: {CARDS} cards, {ACTIVITIES} activities, full state {} bytes, one move {} bytes",
        full_state.len(),
        update.len()
    );
    let mut group = c.benchmark_group("move");
    let mut forth = false;
    group.bench_function("after", |b| {
        b.iter(|| {
            forth = !forth;
            let (stage, after) = if forth { there } else { back };
            move_and_encode(moves_doc, mover, stage, CardPlace::After(after))
        });
    });
    // A card from "Preparing documents" goes to the top of "Invoice sent" and back to the top.
    let (preparing, invoice_sent) = (1, 2);
    let mover = board.columns[preparing][0].as_str();
    let mut forth = false;
    group.bench_function("top", |b| {
        b.iter(|| {
            forth = !forth;
            let stage = if forth { invoice_sent } else { preparing };
            move_and_encode(moves_doc, mover, &board.stages[stage], CardPlace::Top)
        });
    });
    // The "after" move again, with the neighbours' keys known (a client that has the column on
    // screen sends them): no scan of the board.
    let mover = board.columns[new][0].as_str();
    let pos_of = |card: &str| {
        board::card(&moves_doc.transact(), card)
            .expect("the card exists")
            .pos
    };
    let next_of = |column: usize| {
        let cards = &board.columns[column];
        cards[cards.len() / 2 + 1].as_str()
    };
    let there = (
        board.stages[in_progress].as_str(),
        pos_of(middle(in_progress)),
        pos_of(next_of(in_progress)),
    );
    let back = (
        board.stages[new].as_str(),
        pos_of(middle(new)),
        pos_of(next_of(new)),
    );
    let mut forth = false;
    group.bench_function("between", |b| {
        b.iter(|| {
            forth = !forth;
            let (stage, prev, next) = if forth { &there } else { &back };
            let mut txn = moves_doc.transact_mut();
            board::move_card_between(&mut txn, mover, stage, Some(prev), Some(next))
                .expect("the neighbours' keys are short and in order");
            txn.encode_update_v1()
        });
    });
    group.finish();

    // Tens of milliseconds each: flat sampling (the same number of iterations in every sample)
    // fits 20 samples into the measurement time, where criterion's default would need twice it.
    let mut group = c.benchmark_group("whole board");
    group.sampling_mode(SamplingMode::Flat);
    let index = BoardIndex::build(&doc.transact());
    group.bench_function("column view", |b| {
        b.iter(|| index.view(black_box(NOW)));
    });
    group.bench_function("full read", |b| {
        let txn = doc.transact();
        b.iter(|| BoardView::read(&txn, black_box(NOW)));
    });
    group.bench_function("index after a move", |b| {
        let mut index = BoardIndex::build(&doc.transact());
        let mut changes = Changes::default();
        let card = index
            .view(NOW)
            .columns
            .first()
            .and_then(|c| c.cards.first())
            .map(|c| c.id.clone())
            .expect("the board has cards");
        changes.cards.insert(card);
        let txn = doc.transact();
        b.iter(|| index.apply(&txn, black_box(&changes)));
    });

    group.bench_function("encode full state", |b| {
        let txn = doc.transact();
        b.iter(|| txn.encode_state_as_update_v1(&StateVector::default()));
    });

    // Decoding is part of applying; dropping the finished document is not, and happens outside
    // the measured time.
    group.bench_function("apply full state", |b| {
        b.iter_batched(
            Doc::new,
            |doc| {
                let update = Update::decode_v1(black_box(&full_state)).expect("a valid update");
                doc.transact_mut()
                    .apply_update(update)
                    .expect("the update applies to an empty document");
                doc
            },
            // One 10,000-card document alive at a time, not a batch of them.
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group! {
    name = board_benches;
    // Few samples over a short time: the whole suite runs in about a minute on 2 cores, and the
    // interesting numbers are milliseconds or microseconds, far from the noise floor.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(board_benches);
