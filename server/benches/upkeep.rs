//! The scheduler's work at scale: 1,000 boards with 100 activities each (100,000 activities).
//!
//! - `upkeep/idle run`: one board's upkeep when nothing changed and nothing is due: what every
//!   batch of client updates pays; must not grow with the board.
//! - `upkeep/one activity completed`: the upkeep after one activity changed: it re-reads and
//!   rewrites that one card only.
//! - `upkeep/reminder fires`: the upkeep when one card's reminder comes due.
//! - `wakeups/take due of 1,000 boards`: the server-wide timer structure: set 1,000 boards'
//!   next instants and take the due ones.
//!
//! After building the 1,000 boards the bench prints the process's resident memory, so the
//! memory a loaded board costs can be read off. Run with
//! `cargo bench -p funnel-server --bench upkeep`.

#![allow(clippy::unwrap_used)] // a bench that cannot set itself up has nothing to measure

use criterion::{Criterion, criterion_group, criterion_main};
use funnel_protocol::BoardId;
use funnel_protocol::board::{self, NewActivity, NewCard};
use funnel_protocol::rules::{Direction, MINUTE_MS};
use funnel_protocol::schema::{self, Entity};
use funnel_server::room::model::BoardModel;
use funnel_server::room::upkeep::Upkeep;
use funnel_server::wakeups::Wakeups;
use std::hint::black_box;
use yrs::{Doc, Transact};

const BOARDS: usize = 1_000;
const CARDS_PER_BOARD: usize = 50;
const ACTIVITIES_PER_BOARD: usize = 100;
const T0: i64 = 1_800_000_000_000;

/// A board of 50 cards with 100 planned activities spread over the next 10 hours.
fn board(seed: usize) -> (Doc, Vec<String>) {
    let doc = Doc::new();
    schema::initialize_board(
        &mut doc.transact_mut(),
        &Entity::Deal,
        schema::Language::En,
        "Deals",
    );
    let stage = board::stages(&doc.transact())[0].id.clone();
    let mut activities = Vec::with_capacity(ACTIVITIES_PER_BOARD);
    let mut txn = doc.transact_mut();
    let cards: Vec<String> = (0..CARDS_PER_BOARD)
        .map(|i| {
            let card = NewCard {
                title: format!("deal {seed}-{i}"),
                responsible: format!("user{}", i % 7),
                amount: (i * 100) as i64,
                ..NewCard::default()
            };
            board::create_card(&mut txn, &stage, card, T0).unwrap()
        })
        .collect();
    for i in 0..ACTIVITIES_PER_BOARD {
        let activity = NewActivity {
            card: cards[i % CARDS_PER_BOARD].clone(),
            kind: "call".into(),
            direction: Direction::Outgoing,
            subject: "call back".into(),
            deadline: Some(T0 + 30 * MINUTE_MS + ((seed * 37 + i * 6) as i64 % 600) * MINUTE_MS),
            remind_min: None,
            responsible: "bob".into(),
        };
        activities.push(board::add_activity(&mut txn, activity).unwrap());
    }
    drop(txn);
    (doc, activities)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn benches(c: &mut Criterion) {
    let before = rss_kib();
    let mut boards: Vec<(Doc, BoardModel, Upkeep, Vec<String>)> = (0..BOARDS)
        .map(|seed| {
            let (doc, activities) = board(seed);
            let mut model = BoardModel::attach(&doc);
            let mut upkeep = Upkeep::new(&mut model);
            upkeep.run(&doc, &mut model, T0);
            (doc, model, upkeep, activities)
        })
        .collect();
    let after = rss_kib();
    println!(
        "{BOARDS} boards, {} activities, upkeep running: {} MiB resident ({} KiB a board)",
        BOARDS * ACTIVITIES_PER_BOARD,
        (after - before) / 1024,
        (after - before) / BOARDS as u64
    );

    let mut group = c.benchmark_group("upkeep");
    let (doc, model, upkeep, activities) = &mut boards[0];
    group.bench_function("idle run", |b| {
        b.iter(|| black_box(upkeep.run(doc, model, T0)));
    });
    let mut done = false;
    group.bench_function("one activity completed", |b| {
        b.iter(|| {
            done = !done;
            board::complete_activity(&mut doc.transact_mut(), &activities[0], done).unwrap();
            black_box(upkeep.run(doc, model, T0))
        });
    });
    group.bench_function("reminder fires", |b| {
        // Alternate between before and after the earliest reminder of the board.
        let fires = upkeep.next_wake().unwrap();
        let (doc2, _) = board(1);
        b.iter_batched(
            || {
                let mut model = BoardModel::attach(&doc2);
                let mut fresh = Upkeep::new(&mut model);
                fresh.run(&doc2, &mut model, T0);
                (model, fresh)
            },
            |(mut model, mut fresh)| black_box(fresh.run(&doc2, &mut model, fires)),
            criterion::BatchSize::SmallInput,
        );
    });
    group.finish();

    let mut group = c.benchmark_group("wakeups");
    let ids: Vec<BoardId> = (0..BOARDS)
        .map(|i| BoardId::parse(&format!("board-{i}")).unwrap())
        .collect();
    group.bench_function("take due of 1,000 boards", |b| {
        b.iter(|| {
            let wakeups = Wakeups::default();
            for (i, id) in ids.iter().enumerate() {
                wakeups.set(id, Some(T0 + i as i64));
            }
            black_box(wakeups.take_due(T0 + BOARDS as i64 / 2))
        });
    });
    group.finish();
}

criterion_group! {
    name = upkeep_benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(upkeep_benches);
