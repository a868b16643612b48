//! Convergence, proven by property: five replicas apply random sequences of the board's write
//! operations and exchange their updates in random order, with duplicates and delays. At the end
//! every replica shows the same board, every card is in exactly one column, and the stage
//! invariants hold.
//!
//! Delivery is in random order but causal: an update reaches a replica once that replica has
//! what its author had when writing it (what a hub gives: a client's updates build on what the
//! server sent it). yrs 0.28.1 does not converge, and can panic, when updates that wait for
//! missing parents ("pending" updates) pile up under arbitrary order; the server therefore never
//! keeps an update that would wait (see `room/state.rs`), and the cluster must deliver causally.
//!
//! Stage additions and deletions come from one replica (an admin): in a deployment the server
//! checks structural edits against its own document, so two admins deleting the last two failure
//! stages offline cannot both win. Everything else (cards, moves, activities, stage renames,
//! colours and reordering, the threshold) comes from any replica.
//!
//! CI runs 2,000 cases. A long soak: `PROPTEST_CASES=200000 cargo test --release -p
//! funnel-protocol --test convergence`.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use funnel_protocol::board::{self, BoardView, CardEdit, CardPlace, NewActivity, NewCard};
use funnel_protocol::index::{BoardIndex, ChangeTracker};
use funnel_protocol::rules::{Direction, MINUTE_MS};
use funnel_protocol::schema::{self, Entity, StageKind};
use proptest::prelude::*;
use std::collections::HashSet;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, TransactionMut, Update};

const REPLICAS: usize = 5;
const NOW: i64 = 1_800_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    CreateCard {
        replica: usize,
        stage: usize,
        amount: i64,
        euro: bool,
    },
    MoveCard {
        replica: usize,
        card: usize,
        stage: usize,
        place: Place,
    },
    EditCard {
        replica: usize,
        card: usize,
        amount: i64,
    },
    AddActivity {
        replica: usize,
        card: usize,
        minutes: i64,
        incoming: bool,
    },
    CompleteActivity {
        replica: usize,
        activity: usize,
    },
    RenameStage {
        replica: usize,
        stage: usize,
        name: u8,
    },
    RecolorStage {
        replica: usize,
        stage: usize,
        color: u8,
    },
    MoveStage {
        replica: usize,
        stage: usize,
        after: usize,
    },
    AddStage {
        after: usize,
        failure: bool,
    },
    DeleteStage {
        stage: usize,
        to: usize,
    },
    SetThreshold {
        replica: usize,
        minutes: i64,
    },
    /// Delivers some queued updates; `keep` leaves them queued too (a duplicate later).
    Deliver {
        picks: Vec<usize>,
        keep: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum Place {
    Top,
    Bottom,
    After(usize),
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        Just(Place::Top),
        Just(Place::Bottom),
        (0usize..50).prop_map(Place::After)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let r = 0..REPLICAS;
    prop_oneof![
        4 => (r.clone(), 0usize..10, 0i64..100_000, any::<bool>())
            .prop_map(|(replica, stage, amount, euro)| Op::CreateCard { replica, stage, amount, euro }),
        6 => (r.clone(), 0usize..50, 0usize..10, place())
            .prop_map(|(replica, card, stage, place)| Op::MoveCard { replica, card, stage, place }),
        2 => (r.clone(), 0usize..50, 0i64..100_000)
            .prop_map(|(replica, card, amount)| Op::EditCard { replica, card, amount }),
        2 => (r.clone(), 0usize..50, -120i64..600, any::<bool>())
            .prop_map(|(replica, card, minutes, incoming)| Op::AddActivity { replica, card, minutes, incoming }),
        1 => (r.clone(), 0usize..50).prop_map(|(replica, activity)| Op::CompleteActivity { replica, activity }),
        1 => (r.clone(), 0usize..10, any::<u8>()).prop_map(|(replica, stage, name)| Op::RenameStage { replica, stage, name }),
        1 => (r.clone(), 0usize..10, any::<u8>()).prop_map(|(replica, stage, color)| Op::RecolorStage { replica, stage, color }),
        1 => (r.clone(), 0usize..10, 0usize..10).prop_map(|(replica, stage, after)| Op::MoveStage { replica, stage, after }),
        1 => (0usize..10, any::<bool>()).prop_map(|(after, failure)| Op::AddStage { after, failure }),
        1 => (0usize..10, 0usize..10).prop_map(|(stage, to)| Op::DeleteStage { stage, to }),
        1 => (r, prop_oneof![Just(0i64), Just(15), Just(60)]).prop_map(|(replica, minutes)| Op::SetThreshold { replica, minutes }),
        5 => (prop::collection::vec(0usize..1000, 1..8), any::<bool>())
            .prop_map(|(picks, keep)| Op::Deliver { picks, keep }),
    ]
}

#[derive(Clone)]
struct InFlight {
    to: usize,
    update: Vec<u8>,
    /// What the author had when it wrote the update: the recipient must have it first.
    needs: StateVector,
}

/// Five documents and the updates in flight between them.
struct Network {
    replicas: Vec<Doc>,
    /// Each replica's incremental index, kept current from its change tracker: it must always
    /// read the board exactly as a full read does.
    indexes: Vec<(ChangeTracker, BoardIndex)>,
    /// Updates not yet delivered.
    in_flight: Vec<InFlight>,
}

impl Network {
    fn new() -> Self {
        let origin = Doc::new();
        schema::initialize_board(
            &mut origin.transact_mut(),
            &Entity::Deal,
            schema::Language::En,
            "Deals",
        );
        let state = origin
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let replicas: Vec<Doc> = (0..REPLICAS)
            .map(|_| {
                let doc = Doc::new();
                doc.transact_mut()
                    .apply_update(Update::decode_v1(&state).unwrap())
                    .unwrap();
                doc
            })
            .collect();
        let indexes = replicas
            .iter()
            .map(|doc| {
                (
                    ChangeTracker::attach(doc),
                    BoardIndex::build(&doc.transact()),
                )
            })
            .collect();
        Self {
            replicas,
            indexes,
            in_flight: Vec::new(),
        }
    }

    /// Runs one write on a replica and queues its update for every other replica.
    fn write(&mut self, replica: usize, change: impl FnOnce(&mut TransactionMut)) {
        let (update, needs) = {
            let mut txn = self.replicas[replica].transact_mut();
            let needs = txn.state_vector();
            change(&mut txn);
            (txn.encode_update_v1(), needs)
        };
        self.refresh_index(replica);
        if Update::decode_v1(&update).is_ok_and(|u| !u.is_empty()) {
            for to in (0..REPLICAS).filter(|&to| to != replica) {
                self.in_flight.push(InFlight {
                    to,
                    update: update.clone(),
                    needs: needs.clone(),
                });
            }
        }
    }

    /// Delivers the first deliverable update at or after `index` (wrapping); `keep` leaves it
    /// in flight, to arrive again later. Returns whether anything was delivered.
    fn deliver(&mut self, index: usize, keep: bool) -> bool {
        let len = self.in_flight.len();
        let ready = (0..len).map(|k| (index + k) % len.max(1)).find(|&i| {
            let message = &self.in_flight[i];
            let has = self.replicas[message.to].transact().state_vector();
            message
                .needs
                .iter()
                .all(|(client, clock)| has.get(client) >= *clock)
        });
        let Some(index) = ready else { return false };
        let message = if keep {
            self.in_flight[index].clone()
        } else {
            self.in_flight.swap_remove(index)
        };
        self.replicas[message.to]
            .transact_mut()
            .apply_update(Update::decode_v1(&message.update).unwrap())
            .unwrap();
        self.refresh_index(message.to);
        true
    }

    fn refresh_index(&mut self, replica: usize) {
        let (tracker, index) = &mut self.indexes[replica];
        let changes = tracker.take();
        index.apply(&self.replicas[replica].transact(), &changes);
    }

    fn stage_ids(&self, replica: usize) -> Vec<String> {
        board::stages(&self.replicas[replica].transact())
            .into_iter()
            .map(|s| s.id)
            .collect()
    }

    fn card_ids(&self, replica: usize) -> Vec<String> {
        let view = BoardView::read(&self.replicas[replica].transact(), NOW);
        view.columns
            .into_iter()
            .flat_map(|c| c.cards.into_iter().map(|card| card.id.clone()))
            .collect()
    }

    fn activity_ids(&self, replica: usize) -> Vec<String> {
        let mut ids: Vec<String> = board::activities_by_card(&self.replicas[replica].transact())
            .into_values()
            .flatten()
            .map(|a| a.id)
            .collect();
        ids.sort();
        ids
    }

    fn apply(&mut self, op: Op) {
        let pick =
            |list: &[String], i: usize| (!list.is_empty()).then(|| list[i % list.len()].clone());
        // Refused writes (an invariant, a missing card) write nothing: that is their contract.
        match op {
            Op::CreateCard {
                replica,
                stage,
                amount,
                euro,
            } => {
                let Some(stage) = pick(&self.stage_ids(replica), stage) else {
                    return;
                };
                let card = NewCard {
                    title: format!("card {amount}"),
                    amount,
                    currency: if euro { "EUR".into() } else { "USD".into() },
                    responsible: format!("user{}", amount % 3),
                    ..NewCard::default()
                };
                self.write(replica, |txn| {
                    let _ = board::create_card(txn, &stage, card, NOW);
                });
            }
            Op::MoveCard {
                replica,
                card,
                stage,
                place,
            } => {
                let cards = self.card_ids(replica);
                let (Some(card), Some(stage)) =
                    (pick(&cards, card), pick(&self.stage_ids(replica), stage))
                else {
                    return;
                };
                let after = match place {
                    Place::After(i) => pick(&cards, i),
                    _ => None,
                };
                self.write(replica, |txn| {
                    let place = match (place, &after) {
                        (Place::Top, _) => CardPlace::Top,
                        (Place::Bottom, _) => CardPlace::Bottom,
                        (Place::After(_), Some(after)) => CardPlace::After(after),
                        (Place::After(_), None) => CardPlace::Top,
                    };
                    let _ = board::move_card(txn, &card, &stage, place);
                });
            }
            Op::EditCard {
                replica,
                card,
                amount,
            } => {
                let Some(card) = pick(&self.card_ids(replica), card) else {
                    return;
                };
                self.write(replica, |txn| {
                    let edit = CardEdit {
                        amount: Some(amount),
                        ..CardEdit::default()
                    };
                    let _ = board::edit_card(txn, &card, edit);
                });
            }
            Op::AddActivity {
                replica,
                card,
                minutes,
                incoming,
            } => {
                let Some(card) = pick(&self.card_ids(replica), card) else {
                    return;
                };
                self.write(replica, |txn| {
                    let activity = NewActivity {
                        card,
                        kind: "call".into(),
                        direction: if incoming {
                            Direction::Incoming
                        } else {
                            Direction::Outgoing
                        },
                        subject: "call".into(),
                        deadline: Some(NOW + minutes * MINUTE_MS),
                        remind_min: None,
                        responsible: "user1".into(),
                    };
                    let _ = board::add_activity(txn, activity);
                });
            }
            Op::CompleteActivity { replica, activity } => {
                let Some(activity) = pick(&self.activity_ids(replica), activity) else {
                    return;
                };
                self.write(replica, |txn| {
                    let _ = board::complete_activity(txn, &activity, true);
                });
            }
            Op::RenameStage {
                replica,
                stage,
                name,
            } => {
                let Some(stage) = pick(&self.stage_ids(replica), stage) else {
                    return;
                };
                self.write(replica, |txn| {
                    let _ = board::rename_stage(txn, &stage, &format!("stage {name}"));
                });
            }
            Op::RecolorStage {
                replica,
                stage,
                color,
            } => {
                let Some(stage) = pick(&self.stage_ids(replica), stage) else {
                    return;
                };
                self.write(replica, |txn| {
                    let _ =
                        board::recolor_stage(txn, &stage, &format!("#{color:02x}{color:02x}00"));
                });
            }
            Op::MoveStage {
                replica,
                stage,
                after,
            } => {
                let stages = self.stage_ids(replica);
                let (Some(stage), Some(after)) = (pick(&stages, stage), pick(&stages, after))
                else {
                    return;
                };
                self.write(replica, |txn| {
                    let _ = board::move_stage(txn, &stage, &after);
                });
            }
            Op::AddStage { after, failure } => {
                let Some(after) = pick(&self.stage_ids(0), after) else {
                    return;
                };
                let kind = if failure {
                    StageKind::Failure
                } else {
                    StageKind::Progress
                };
                self.write(0, |txn| {
                    let _ = board::add_stage(txn, "added", "#336699", kind, &after);
                });
            }
            Op::DeleteStage { stage, to } => {
                let stages = self.stage_ids(0);
                let (Some(stage), Some(to)) = (pick(&stages, stage), pick(&stages, to)) else {
                    return;
                };
                self.write(0, |txn| {
                    let _ = board::delete_stage(txn, &stage, &to);
                });
            }
            Op::SetThreshold { replica, minutes } => {
                self.write(replica, |txn| {
                    let _ = board::set_counter_threshold(txn, minutes);
                });
            }
            Op::Deliver { picks, keep } => {
                for index in picks {
                    self.deliver(index, keep);
                }
            }
        }
    }

    /// Delivers everything still in flight, in an order drawn from `seed`. Every round delivers
    /// one update (some update is always deliverable), so this ends.
    fn settle(&mut self, mut seed: u64) {
        while !self.in_flight.is_empty() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.deliver((seed >> 33) as usize, false);
        }
    }
}

fn assert_converged(network: &Network) {
    let views: Vec<BoardView> = network
        .replicas
        .iter()
        .map(|doc| BoardView::read(&doc.transact(), NOW))
        .collect();
    for (i, view) in views.iter().enumerate().skip(1) {
        assert_eq!(view, &views[0], "replica {i} differs from replica 0");
    }
    for (i, (_, index)) in network.indexes.iter().enumerate() {
        assert_eq!(
            index.view(NOW),
            views[i],
            "replica {i}'s incremental index drifted"
        );
    }
    let txn = network.replicas[0].transact();
    board::check_invariants(&txn).unwrap();
    let stored = txn
        .get_map(schema::root::CARDS)
        .map_or(0, |cards| cards.len(&txn)) as usize;
    let mut seen = HashSet::new();
    for column in &views[0].columns {
        for card in &column.cards {
            assert!(
                seen.insert(card.id.clone()),
                "card {} is in two columns",
                card.id
            );
        }
    }
    assert_eq!(seen.len(), stored, "every card is in exactly one column");
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge(ops in prop::collection::vec(op(), 1..60), seed in any::<u64>()) {
        let mut network = Network::new();
        for op in ops {
            network.apply(op);
            // Invariants hold on the admin's replica after every mutation.
            board::check_invariants(&network.replicas[0].transact()).unwrap();
        }
        network.settle(seed);
        assert_converged(&network);
    }
}

use yrs::Map;
