//! An incremental read model of a board: the cards, activities, stages and settings parsed once
//! and kept in step with the document by re-reading only what each transaction touched.
//!
//! [`BoardView::read`] parses the whole document (about 40 ms for 10,000 cards here); a room or
//! a client that keeps a [`BoardIndex`] and a [`ChangeTracker`] pays that once, then only for
//! what changed, and renders the view from plain Rust data. `BoardView::read` is
//! `BoardIndex::build(txn).view(now)`, defined here: one code path, so the index can never read
//! a board differently from the reference. The index depends on the board's read types, never
//! the other way round.

use crate::board::{self, Activity, BoardView, Card, Column, Settings, Stage, Workload, child_map};
use crate::rules::{self, ActivityFacts, CounterState, Millis};
use crate::schema::{StageKind, root};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use yrs::types::{EntryChange, Event, PathSegment};
use yrs::{DeepObservable, Doc, Map, Origin, ReadTxn, Transact};

/// What a set of transactions touched.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Cards added, removed or edited (any field).
    pub cards: HashSet<String>,
    /// Activities added, removed or edited.
    pub activities: HashSet<String>,
    /// Any stage.
    pub stages: bool,
    /// The board's settings.
    pub settings: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.cards.is_empty() && self.activities.is_empty() && !self.stages && !self.settings
    }
}

/// Records what every transaction on a document touches, from yrs' deep observers, until
/// [`ChangeTracker::take`]. Detaches on drop.
pub struct ChangeTracker {
    doc: Doc,
    changes: Arc<Mutex<Changes>>,
    /// The observer key: one tracker per key and document.
    key: &'static str,
}

/// The observer key of the tracker (one per document).
const TRACKER: &str = "funnel-board-index";

/// The origin of the server's upkeep transactions (counters, avatars). They change nothing the
/// index reads, so the tracker skips them: the upkeep does not wake itself up.
pub const UPKEEP_ORIGIN: &str = "funnel-upkeep";

impl ChangeTracker {
    pub fn attach(doc: &Doc) -> Self {
        Self::attach_as(doc, TRACKER)
    }

    /// A tracker under its own observer `key`, beside others on the same document (a second
    /// tracker under the same key would replace the first one's observers).
    pub fn attach_as(doc: &Doc, key: &'static str) -> Self {
        let changes = Arc::new(Mutex::new(Changes::default()));
        let (cards, activities, stages, settings) = {
            let mut txn = doc.transact_mut();
            use yrs::WriteTxn;
            (
                txn.get_or_insert_map(root::CARDS),
                txn.get_or_insert_map(root::ACTIVITIES),
                txn.get_or_insert_map(root::STAGES),
                txn.get_or_insert_map(root::BOARD),
            )
        };
        let record = |target: fn(&mut Changes, &str)| {
            let changes = Arc::clone(&changes);
            move |txn: &yrs::TransactionMut, events: &yrs::types::Events| {
                if txn.origin() == Some(&Origin::from(UPKEEP_ORIGIN)) {
                    return;
                }
                let mut changes = changes.lock().unwrap_or_else(|p| p.into_inner());
                for event in events.iter() {
                    match event.path().front() {
                        // A change inside one entry (a card's field): the entry's key.
                        Some(PathSegment::Key(key)) => target(&mut changes, key),
                        Some(PathSegment::Index(_)) => {}
                        // Entries added, replaced or removed in the root map itself.
                        None => {
                            if let Event::Map(map) = event {
                                for (key, change) in map.keys(txn) {
                                    let _: &EntryChange = change;
                                    target(&mut changes, key);
                                }
                            }
                        }
                    }
                }
            }
        };
        cards.observe_deep(
            key,
            record(|c, key| {
                c.cards.insert(key.to_owned());
            }),
        );
        activities.observe_deep(
            key,
            record(|c, key| {
                c.activities.insert(key.to_owned());
            }),
        );
        stages.observe_deep(key, record(|c, _| c.stages = true));
        settings.observe_deep(key, record(|c, _| c.settings = true));
        Self {
            doc: doc.clone(),
            changes,
            key,
        }
    }

    /// What changed since the last call.
    pub fn take(&self) -> Changes {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for ChangeTracker {
    fn drop(&mut self) {
        let txn = self.doc.transact();
        for name in [root::CARDS, root::ACTIVITIES, root::STAGES, root::BOARD] {
            if let Some(map) = txn.get_map(name) {
                map.unobserve_deep(Origin::from(self.key));
            }
        }
    }
}

/// The board as plain data, kept current by [`BoardIndex::apply`].
#[derive(Debug, Clone, Default)]
pub struct BoardIndex {
    settings: Settings,
    stages: Vec<Stage>,
    cards: FxHashMap<String, Arc<Card>>,
    activities: FxHashMap<String, Activity>,
    /// Card id → the facts of its activities, in activity id order.
    facts: FxHashMap<String, Vec<ActivityFacts>>,
    /// Card id → its activity ids.
    card_activities: FxHashMap<String, BTreeSet<String>>,
    /// Stage id (as cards name it, existing or not) → its cards in board order (`pos`, id),
    /// kept sorted as cards change, so a view sorts nothing.
    ordered: FxHashMap<String, Vec<Arc<Card>>>,
}

impl BoardView {
    /// Reads the whole board as it stands at `now` (counters depend on the time). To read the
    /// same board again and again, keep a [`BoardIndex`] instead.
    ///
    /// Here rather than beside [`BoardView`] so that the board's reads do not depend on the
    /// index, which is built from them.
    pub fn read<T: ReadTxn>(txn: &T, now: Millis) -> Self {
        BoardIndex::build(txn).view(now)
    }
}

/// One responsible's load while a view is made.
#[derive(Default)]
struct Load {
    cards: usize,
    amounts: FxHashMap<String, i64>,
    lit: usize,
}

/// The entry of `key`, copying the key only the first time it is seen.
fn entry_of<'m, V: Default>(map: &'m mut FxHashMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    // Present: inserted just above if it was not.
    map.get_mut(key)
        .unwrap_or_else(|| unreachable!("inserted above"))
}

/// Board order of two cards: (`pos`, id) as bytes.
fn card_order(a: &Card, b: &Card) -> std::cmp::Ordering {
    (a.pos.as_bytes(), a.id.as_bytes()).cmp(&(b.pos.as_bytes(), b.id.as_bytes()))
}

impl BoardIndex {
    /// Parses the whole document.
    pub fn build<T: ReadTxn>(txn: &T) -> Self {
        let mut index = BoardIndex {
            settings: board::settings(txn),
            stages: board::stages(txn),
            ..BoardIndex::default()
        };
        if let Some(cards) = txn.get_map(root::CARDS) {
            for (id, value) in cards.iter(txn) {
                if let yrs::Out::YMap(map) = value {
                    index
                        .cards
                        .insert(id.to_owned(), Arc::new(board::read_card(txn, id, &map)));
                }
            }
        }
        for activity in board::activities_by_card(txn).into_values().flatten() {
            index
                .card_activities
                .entry(activity.card.clone())
                .or_default()
                .insert(activity.id.clone());
            index.activities.insert(activity.id.clone(), activity);
        }
        let cards: Vec<String> = index.card_activities.keys().cloned().collect();
        for card in cards {
            index.refresh_facts(&card);
        }
        // An archived card is kept (reads by id find it) but shown in no column.
        for card in index
            .cards
            .values()
            .filter(|card| card.archived_at.is_none())
        {
            index
                .ordered
                .entry(card.stage.clone())
                .or_default()
                .push(Arc::clone(card));
        }
        for column in index.ordered.values_mut() {
            column.sort_unstable_by(|a, b| card_order(a, b));
        }
        index
    }

    /// Moves a card within `ordered`: out of where `old` sat, into where `new` goes.
    fn reorder(&mut self, old: Option<&Arc<Card>>, new: Option<&Arc<Card>>) {
        // Archived cards have no place in a column.
        let old = old.filter(|card| card.archived_at.is_none());
        let new = new.filter(|card| card.archived_at.is_none());
        if let Some(old) = old
            && let Some(column) = self.ordered.get_mut(&old.stage)
        {
            if let Ok(at) = column.binary_search_by(|c| card_order(c, old)) {
                column.remove(at);
            }
            if column.is_empty() {
                self.ordered.remove(&old.stage);
            }
        }
        if let Some(new) = new {
            let column = self.ordered.entry(new.stage.clone()).or_default();
            let at = column
                .binary_search_by(|c| card_order(c, new))
                .unwrap_or_else(|at| at);
            column.insert(at, Arc::clone(new));
        }
    }

    /// Re-reads what `changes` names; returns the ids of the cards whose own fields or
    /// activities changed (what a caller maintaining per-card state must recompute).
    pub fn apply<T: ReadTxn>(&mut self, txn: &T, changes: &Changes) -> HashSet<String> {
        let mut touched: HashSet<String> = changes.cards.clone();
        if changes.settings {
            self.settings = board::settings(txn);
        }
        if changes.stages {
            self.stages = board::stages(txn);
        }
        let cards = txn.get_map(root::CARDS);
        for id in &changes.cards {
            let new = cards
                .as_ref()
                .and_then(|c| child_map(c, txn, id))
                .map(|map| Arc::new(board::read_card(txn, id, &map)));
            let old = match &new {
                Some(new) => self.cards.insert(id.clone(), Arc::clone(new)),
                None => self.cards.remove(id),
            };
            self.reorder(old.as_ref(), new.as_ref());
        }
        let activities = txn.get_map(root::ACTIVITIES);
        for id in &changes.activities {
            if let Some(old) = self.activities.remove(id) {
                if let Some(set) = self.card_activities.get_mut(&old.card) {
                    set.remove(id);
                }
                touched.insert(old.card);
            }
            let Some(map) = activities.as_ref().and_then(|a| child_map(a, txn, id)) else {
                continue;
            };
            if let Some(activity) = board::read_activity(txn, id, &map) {
                self.card_activities
                    .entry(activity.card.clone())
                    .or_default()
                    .insert(id.clone());
                touched.insert(activity.card.clone());
                self.activities.insert(id.clone(), activity);
            }
        }
        for card in &touched {
            self.refresh_facts(card);
        }
        touched
    }

    fn refresh_facts(&mut self, card: &str) {
        let facts: Vec<ActivityFacts> = self
            .card_activities
            .get(card)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.activities.get(id))
                    .map(|a| a.facts.clone())
                    .collect()
            })
            .unwrap_or_default();
        if facts.is_empty() {
            self.facts.remove(card);
            self.card_activities.remove(card);
        } else {
            self.facts.insert(card.to_owned(), facts);
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    pub fn card(&self, id: &str) -> Option<&Arc<Card>> {
        self.cards.get(id)
    }

    pub fn activity(&self, id: &str) -> Option<&Activity> {
        self.activities.get(id)
    }

    /// The facts of a card's activities.
    pub fn facts(&self, card: &str) -> &[ActivityFacts] {
        self.facts.get(card).map_or(&[], Vec::as_slice)
    }

    /// The activities of a card, in id order.
    pub fn activities_of(&self, card: &str) -> Vec<&Activity> {
        self.card_activities
            .get(card)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.activities.get(id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The stage a card is shown in: its own, or the initial stage when its stage is gone.
    pub fn shown_stage(&self, card: &Card) -> Option<&Stage> {
        self.stages
            .iter()
            .find(|s| s.id == card.stage)
            .or_else(|| self.stages.iter().find(|s| s.kind == StageKind::Initial))
            .or_else(|| self.stages.first())
    }

    /// The board as it stands at `now` (counters depend on the time).
    pub fn view(&self, now: Millis) -> BoardView {
        let initial = self
            .stages
            .iter()
            .position(|s| s.kind == StageKind::Initial)
            .unwrap_or(0);
        let position: FxHashMap<&str, usize> = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        // Each column's cards, already in order; cards whose stage is gone (deleted
        // concurrently) count in the initial stage, merged into its order.
        let mut placed: Vec<Vec<Arc<Card>>> = self
            .stages
            .iter()
            .map(|stage| self.ordered.get(&stage.id).cloned().unwrap_or_default())
            .collect();
        if !placed.is_empty() {
            let mut orphans = false;
            for (stage, cards) in &self.ordered {
                if !position.contains_key(stage.as_str()) {
                    placed[initial].extend(cards.iter().cloned());
                    orphans = true;
                }
            }
            if orphans {
                placed[initial].sort_unstable_by(|a, b| card_order(a, b));
            }
        }
        let mut counters = HashMap::with_capacity_and_hasher(self.cards.len(), Default::default());
        let mut loads: FxHashMap<String, Load> = FxHashMap::default();
        let mut unprocessed = Vec::new();
        let mut columns = Vec::with_capacity(self.stages.len());
        for (stage, cards) in self.stages.iter().zip(placed) {
            let cards: Vec<(Arc<Card>, rules::Counter)> = cards
                .into_iter()
                .map(|card| {
                    let counter = rules::counter(
                        self.facts(&card.id),
                        stage.kind,
                        self.settings.counter_threshold_min,
                        now,
                    );
                    (card, counter)
                })
                .collect();
            // Accumulated with borrowed keys (no copy of a currency or user id per card), then
            // turned into the view's sorted maps: a column has few currencies, a board few users.
            let mut sums: FxHashMap<String, i64> = FxHashMap::default();
            for (card, counter) in &cards {
                // Saturating: any peer can write an absurd amount; a sum must not wrap or panic.
                let sum = entry_of(&mut sums, &card.currency);
                *sum = sum.saturating_add(card.amount);
                if counter.state == CounterState::Idle {
                    unprocessed.push(card.id.clone());
                }
                // A manager's load is their open deals: won and lost cards are done.
                if !stage.kind.is_open() {
                    continue;
                }
                let load = entry_of(&mut loads, &card.responsible);
                load.cards += 1;
                let amount = entry_of(&mut load.amounts, &card.currency);
                *amount = amount.saturating_add(card.amount);
                if counter.state == CounterState::Due {
                    load.lit += 1;
                }
            }
            let sums: BTreeMap<String, i64> = sums.into_iter().collect();
            let mut column_cards = Vec::with_capacity(cards.len());
            for (card, counter) in cards {
                counters.insert(card.id.clone(), counter);
                column_cards.push(card);
            }
            columns.push(Column {
                stage: stage.clone(),
                cards: column_cards,
                sums,
            });
        }
        let mut workload: Vec<Workload> = loads
            .into_iter()
            .map(|(responsible, load)| Workload {
                responsible,
                cards: load.cards,
                amounts: load.amounts.into_iter().collect(),
                lit: load.lit,
            })
            .collect();
        workload.sort_by(|a, b| a.responsible.cmp(&b.responsible));
        BoardView {
            settings: self.settings.clone(),
            columns,
            workload,
            unprocessed,
            counters,
        }
    }
}
