//! The room's one read model of its board: a [`BoardIndex`] kept current from one
//! [`ChangeTracker`], shared by the change feed (`changes.rs`, which reads the cards as they were
//! before a change) and the upkeep (`upkeep.rs`, which needs the cards touched since it last
//! ran). A loaded board used to keep two copies of it, one for each.
//!
//! Whoever brings the index up to date ([`BoardModel::update`], [`BoardModel::sync`]) also
//! notes, while the upkeep runs, what it touched for the upkeep's next run
//! ([`BoardModel::take_for_upkeep`]).

use funnel_protocol::index::{BoardIndex, ChangeTracker, Changes};
use std::collections::HashSet;
use yrs::{Doc, Transact};

/// What changed since the upkeep last looked.
#[derive(Debug, Default)]
pub struct Touched {
    /// Cards whose own fields or activities changed.
    pub cards: HashSet<String>,
    /// Stages or settings changed: every card's counter may differ.
    pub all: bool,
}

pub struct BoardModel {
    index: BoardIndex,
    /// What changed since the index was last brought up to date (detaches on drop).
    tracker: ChangeTracker,
    /// `Some` while the upkeep runs: what it has not seen yet.
    for_upkeep: Option<Touched>,
}

impl BoardModel {
    /// Reads the whole board once, then follows its transactions.
    pub fn attach(doc: &Doc) -> Self {
        let tracker = ChangeTracker::attach(doc);
        let index = BoardIndex::build(&doc.transact());
        Self {
            index,
            tracker,
            for_upkeep: None,
        }
    }

    pub fn index(&self) -> &BoardIndex {
        &self.index
    }

    /// Brings the index up to date with `doc`. `before` sees the index as it was and what
    /// changed, before the changes are applied (the feed reads the old cards there); `None`
    /// when nothing changed.
    pub fn update<R>(
        &mut self,
        doc: &Doc,
        before: impl FnOnce(&BoardIndex, &Changes) -> R,
    ) -> Option<(Changes, R)> {
        let changed = self.tracker.take();
        if changed.is_empty() {
            return None;
        }
        let seen = before(&self.index, &changed);
        let touched = self.index.apply(&doc.transact(), &changed);
        if let Some(pending) = self.for_upkeep.as_mut() {
            pending.cards.extend(touched);
            pending.all |= changed.stages || changed.settings;
        }
        Some((changed, seen))
    }

    /// Brings the index up to date with `doc`, with no one looking at what changed.
    pub fn sync(&mut self, doc: &Doc) {
        let _ = self.update(doc, |_, _| ());
    }

    /// The upkeep starts (`true`: from now on, what changes is noted for it) or stops.
    pub fn track_for_upkeep(&mut self, on: bool) {
        match (on, self.for_upkeep.is_some()) {
            (true, false) => self.for_upkeep = Some(Touched::default()),
            (false, true) => self.for_upkeep = None,
            _ => {}
        }
    }

    /// What changed since the last call (nothing while the upkeep is off).
    pub fn take_for_upkeep(&mut self) -> Touched {
        self.for_upkeep
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }
}
