//! What the server maintains on a board's cards: each card's `counter` and its `avatar`,
//! `avatarAt`, `avatarReason` (docs/board-document.md, "Counters, avatars…"). Pure logic over the
//! document and an explicit `now`: the room calls [`Upkeep::run`] after each batch of client
//! updates and when [`Upkeep::next_wake`] comes, and stores and broadcasts what it writes like
//! any update. It re-reads only what changed (the room's one board index, `model.rs`) and writes
//! only what differs.

use super::model::BoardModel;
use funnel_protocol::board::card_key;
use funnel_protocol::index::{BoardIndex, UPKEEP_ORIGIN};
use funnel_protocol::rules::{self, AvatarEvent, AvatarReason, Counter, Millis};
use funnel_protocol::schema::{self, root};
use std::collections::{BTreeSet, HashMap, HashSet};
use yrs::{Any, Doc, Map, Out, ReadTxn, Transact};

/// The avatar a card shows, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Avatar {
    user: String,
    at: Millis,
    reason: AvatarReason,
}

pub struct Upkeep {
    /// When each card's counter changes next without any edit (an activity lighting), and the
    /// same as a set ordered by time.
    next_of: HashMap<String, Millis>,
    due: BTreeSet<(Millis, String)>,
    /// The responsible each card had when last seen, to notice a change of responsible.
    responsible: HashMap<String, String>,
    /// Activities whose reminder has fired and moved the avatar (or had fired before this board
    /// was loaded): a reminder moves the avatar once.
    reminded: HashSet<String>,
    /// Timeline events not yet applied to their card's avatar.
    events: HashMap<String, Vec<AvatarEvent>>,
    /// Before the first run every card is checked (after a load, a restart, an unload across a
    /// reminder). Set at the end of that run: during it, a reminder older than the card's stored
    /// avatar is taken as having fired before the load, and moves nothing.
    checked_all: bool,
}

/// What one card should hold.
struct Wanted {
    card: String,
    counter: Option<Any>,
    avatar: Option<Avatar>,
}

impl Upkeep {
    /// Starts the upkeep of the board `model` reads (it notes what changes for the upkeep from
    /// now on).
    pub fn new(model: &mut BoardModel) -> Self {
        model.track_for_upkeep(true);
        Self {
            next_of: HashMap::new(),
            due: BTreeSet::new(),
            responsible: HashMap::new(),
            events: HashMap::new(),
            reminded: HashSet::new(),
            checked_all: false,
        }
    }

    /// The next instant at which some counter changes by itself.
    pub fn next_wake(&self) -> Option<Millis> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Whether every timeline event noted was applied (a new upkeep over a reloaded board
    /// would not know of the others).
    pub fn is_settled(&self) -> bool {
        self.events.is_empty()
    }

    /// An event that moves a card's avatar (a timeline comment, call, e-mail, chat), applied at
    /// the next run.
    pub fn note_event(&mut self, card: &str, event: AvatarEvent) {
        self.events.entry(card.to_owned()).or_default().push(event);
    }

    /// Brings the server fields of every card that changed, or whose counter was due to change,
    /// up to date at `now`, in one transaction; returns that transaction's update, or `None`
    /// when nothing differed (nothing is written then).
    pub fn run(&mut self, doc: &Doc, model: &mut BoardModel, now: Millis) -> Option<Vec<u8>> {
        model.sync(doc);
        let changes = model.take_for_upkeep();
        let index = model.index();
        let wanted = {
            let txn = doc.transact();
            let mut touched = changes.cards;
            if !self.checked_all || changes.all {
                // The threshold or a stage kind changes every card's counter; so does a load.
                touched = self.all_cards(&txn);
            }
            touched.extend(self.events.keys().cloned());
            while let Some((at, card)) = self.due.first().cloned() {
                if at > now {
                    break;
                }
                self.due.pop_first();
                self.next_of.remove(&card);
                touched.insert(card);
            }
            let mut touched: Vec<String> = touched.into_iter().collect();
            touched.sort();
            touched
                .into_iter()
                .filter_map(|card| self.wanted(&txn, index, &card, now))
                .collect::<Vec<Wanted>>()
        };
        // Only now: `wanted` tells the first run (a load) from the later ones by this flag.
        self.checked_all = true;
        if wanted.is_empty() {
            return None;
        }
        let mut txn = doc.transact_mut_with(UPKEEP_ORIGIN);
        let cards = txn.get_map(root::CARDS)?;
        for want in wanted {
            let Some(Out::YMap(card)) = cards.get(&txn, &want.card) else {
                continue;
            };
            if let Some(counter) = want.counter {
                card.insert(&mut txn, card_key::COUNTER, counter);
            }
            if let Some(avatar) = want.avatar {
                card.insert(&mut txn, card_key::AVATAR, avatar.user);
                card.insert(&mut txn, card_key::AVATAR_AT, avatar.at);
                card.insert(&mut txn, card_key::AVATAR_REASON, avatar.reason.as_str());
            }
        }
        Some(txn.encode_update_v1())
    }

    fn all_cards<T: ReadTxn>(&self, txn: &T) -> HashSet<String> {
        txn.get_map(root::CARDS)
            .map(|cards| cards.keys(txn).map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// What card `id` should hold at `now`, where it differs from what it holds; schedules its
    /// next counter change. `None`: nothing to write (or the card is gone).
    fn wanted<T: ReadTxn>(
        &mut self,
        txn: &T,
        index: &BoardIndex,
        id: &str,
        now: Millis,
    ) -> Option<Wanted> {
        self.unschedule(id);
        let events = self.events.remove(id).unwrap_or_default();
        let Some(card) = index.card(id).cloned() else {
            self.responsible.remove(id);
            return None;
        };
        let map = match txn.get_map(root::CARDS)?.get(txn, id)? {
            Out::YMap(map) => map,
            _ => return None,
        };
        let threshold = index.settings().counter_threshold_min;
        let facts = index.facts(id);
        let stage = index.shown_stage(&card)?.kind;
        let counter = rules::counter(facts, stage, threshold, now);
        if let Some(next) = rules::next_counter_change(facts, threshold, now) {
            self.next_of.insert(id.to_owned(), next);
            self.due.insert((next, id.to_owned()));
        }
        let wanted_counter = counter_any(&counter);
        let stored_counter = match map.get(txn, card_key::COUNTER) {
            Some(Out::Any(any)) => Some(any),
            _ => None,
        };

        // The avatar: the stored one (or the responsible) unless a later event took over.
        let stored = stored_avatar(txn, &map);
        let mut avatar = stored.clone().unwrap_or_else(|| Avatar {
            user: card.responsible.clone(),
            at: card.created_at,
            reason: AvatarReason::Responsible,
        });
        let mut candidates: Vec<AvatarEvent> = Vec::new();
        if let Some(seen) = self.responsible.get(id)
            && *seen != card.responsible
        {
            candidates.push(AvatarEvent {
                at: now,
                user: card.responsible.clone(),
                reason: AvatarReason::Responsible,
            });
        }
        self.responsible
            .insert(id.to_owned(), card.responsible.clone());
        // A reminder fires at its instant; one that was already due when its activity appeared
        // (or was moved earlier) fires now. After a load, reminders older than the stored avatar
        // are taken as having fired already.
        for activity in index.activities_of(id) {
            let Some(lights) = rules::lights_at(&activity.facts, threshold) else {
                continue;
            };
            if lights > now || self.reminded.contains(&activity.id) {
                continue;
            }
            self.reminded.insert(activity.id.clone());
            let at = if lights > avatar.at {
                lights
            } else if self.checked_all {
                now
            } else {
                continue;
            };
            candidates.push(AvatarEvent {
                at,
                user: activity.facts.responsible.clone(),
                reason: AvatarReason::Reminder,
            });
        }
        candidates.extend(events);
        candidates.sort_by_key(|event| event.at);
        for event in candidates {
            if event.at >= avatar.at {
                avatar = Avatar {
                    user: event.user,
                    at: event.at,
                    reason: event.reason,
                };
            }
        }
        let wanted = Wanted {
            card: id.to_owned(),
            counter: (stored_counter.as_ref() != Some(&wanted_counter)).then_some(wanted_counter),
            avatar: (stored.as_ref() != Some(&avatar)).then_some(avatar),
        };
        (wanted.counter.is_some() || wanted.avatar.is_some()).then_some(wanted)
    }

    fn unschedule(&mut self, id: &str) {
        if let Some(at) = self.next_of.remove(id) {
            self.due.remove(&(at, id.to_owned()));
        }
    }
}

/// The stored form of a counter: a plain map, so a browser reads `card.get('counter').state`.
fn counter_any(counter: &Counter) -> Any {
    let mut map = std::collections::HashMap::new();
    map.insert(
        schema::counter::COUNT.to_owned(),
        Any::from(i64::from(counter.count)),
    );
    map.insert(
        schema::counter::LIT.to_owned(),
        Any::from(i64::from(counter.lit)),
    );
    map.insert(
        schema::counter::INCOMING.to_owned(),
        Any::from(i64::from(counter.incoming)),
    );
    map.insert(
        schema::counter::NEXT.to_owned(),
        counter.next.map_or(Any::Null, Any::from),
    );
    map.insert(
        schema::counter::STATE.to_owned(),
        Any::from(counter.state.as_str()),
    );
    Any::from(map)
}

fn stored_avatar<T: ReadTxn>(txn: &T, card: &yrs::MapRef) -> Option<Avatar> {
    let user = match card.get(txn, card_key::AVATAR)? {
        Out::Any(Any::String(user)) => user.to_string(),
        _ => return None,
    };
    let at = match card.get(txn, card_key::AVATAR_AT)? {
        Out::Any(Any::Number(n)) => n.as_i64()?,
        _ => return None,
    };
    let reason = match card.get(txn, card_key::AVATAR_REASON)? {
        Out::Any(Any::String(reason)) => AvatarReason::parse(&reason).ok()?,
        _ => return None,
    };
    Some(Avatar { user, at, reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use funnel_protocol::board::{self, CardEdit, CardPlace, NewActivity, NewCard};
    use funnel_protocol::rules::{Direction, MINUTE_MS};
    use funnel_protocol::schema::{self, Entity};
    use funnel_protocol::wire;

    const T0: Millis = 1_800_000_000_000;

    struct Board {
        doc: Doc,
        model: BoardModel,
        upkeep: Upkeep,
        card: String,
    }

    impl Board {
        fn new() -> Self {
            let doc = Doc::new();
            schema::initialize_board(
                &mut doc.transact_mut(),
                &Entity::Deal,
                schema::Language::En,
                "Deals",
            );
            let new = board::stages(&doc.transact())[0].id.clone();
            let card = NewCard {
                title: "deal".into(),
                responsible: "ann".into(),
                ..NewCard::default()
            };
            let card = board::create_card(&mut doc.transact_mut(), &new, card, T0).unwrap();
            let mut model = BoardModel::attach(&doc);
            let upkeep = Upkeep::new(&mut model);
            Self {
                doc,
                model,
                upkeep,
                card,
            }
        }

        /// The board as a new process loads it from storage, with a fresh upkeep.
        fn reloaded(self) -> Self {
            let update = {
                let txn = self.doc.transact();
                txn.encode_state_as_update_v1(&yrs::StateVector::default())
            };
            let doc = Doc::new();
            doc.transact_mut()
                .apply_update(wire::decode_update_v1(&update).unwrap())
                .unwrap();
            let mut model = BoardModel::attach(&doc);
            Self {
                upkeep: Upkeep::new(&mut model),
                model,
                doc,
                card: self.card,
            }
        }

        fn run(&mut self, now: Millis) -> bool {
            self.upkeep.run(&self.doc, &mut self.model, now).is_some()
        }

        fn field(&self, key: &str) -> serde_json::Value {
            let txn = self.doc.transact();
            let cards = txn.get_map(root::CARDS).unwrap();
            let Some(Out::YMap(card)) = cards.get(&txn, &self.card) else {
                panic!("no card")
            };
            card.get(&txn, key)
                .map(|v| serde_json::to_value(yrs::types::ToJson::to_json(&v, &txn)).unwrap())
                .unwrap_or(serde_json::Value::Null)
        }

        fn state(&self) -> String {
            self.field("counter")["state"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        }

        fn avatar(&self) -> (String, i64, String) {
            (
                self.field("avatar").as_str().unwrap_or("").to_owned(),
                self.field("avatarAt").as_i64().unwrap_or(-1),
                self.field("avatarReason").as_str().unwrap_or("").to_owned(),
            )
        }

        fn add_activity(&self, minutes: i64, direction: Direction, responsible: &str) -> String {
            let activity = NewActivity {
                card: self.card.clone(),
                kind: "call".into(),
                direction,
                subject: "call".into(),
                deadline: Some(T0 + minutes * MINUTE_MS),
                remind_min: None,
                responsible: responsible.into(),
            };
            board::add_activity(&mut self.doc.transact_mut(), activity).unwrap()
        }

        fn stage(&self, name: &str) -> String {
            board::stages(&self.doc.transact())
                .into_iter()
                .find(|s| s.name == name)
                .unwrap()
                .id
        }
    }

    #[test]
    fn a_new_card_is_idle_and_shows_its_responsible_and_nothing_is_rewritten() {
        let mut b = Board::new();
        assert!(b.run(T0));
        assert_eq!(b.state(), "idle");
        assert_eq!(b.avatar(), ("ann".into(), T0, "responsible".into()));
        assert_eq!(b.field("counter")["count"], 0);
        assert!(!b.run(T0), "nothing changed: nothing written");
        assert!(
            !b.run(T0 + 60 * MINUTE_MS),
            "no activity: time changes nothing"
        );
        assert_eq!(b.upkeep.next_wake(), None);
    }

    #[test]
    fn a_call_due_in_ten_minutes_lights_now_and_switches_the_avatar_to_its_responsible() {
        let mut b = Board::new();
        b.run(T0);
        b.add_activity(10, Direction::Outgoing, "bob");
        assert!(b.run(T0));
        assert_eq!(b.state(), "due");
        assert_eq!(b.field("counter")["lit"], 1);
        // Its reminder time (15 minutes before the deadline) had passed when it was added: it
        // fires now.
        assert_eq!(b.avatar(), ("bob".into(), T0, "reminder".into()));
    }

    #[test]
    fn a_later_deadline_wakes_the_board_when_its_reminder_fires() {
        let mut b = Board::new();
        b.run(T0);
        b.add_activity(60, Direction::Outgoing, "bob");
        b.run(T0);
        assert_eq!(b.state(), "planned");
        let fires = T0 + 45 * MINUTE_MS;
        assert_eq!(b.upkeep.next_wake(), Some(fires));
        assert!(!b.run(fires - 1), "a millisecond early: nothing");
        assert!(b.run(fires));
        assert_eq!(b.state(), "due");
        assert_eq!(b.avatar(), ("bob".into(), fires, "reminder".into()));
        assert_eq!(b.upkeep.next_wake(), None);
    }

    #[test]
    fn threshold_completion_incoming_and_final_stages_change_the_counter() {
        let mut b = Board::new();
        b.run(T0);
        let call = b.add_activity(10, Direction::Outgoing, "bob");
        b.run(T0);
        assert_eq!(b.state(), "due");
        board::set_counter_threshold(&mut b.doc.transact_mut(), 0).unwrap();
        b.run(T0);
        assert_eq!(b.state(), "planned", "threshold 0: lights at the deadline");
        assert_eq!(b.upkeep.next_wake(), Some(T0 + 10 * MINUTE_MS));
        b.add_activity(-30, Direction::Incoming, "eve");
        b.run(T0);
        assert_eq!(b.state(), "incoming");
        assert_eq!(b.field("counter")["count"], 2);
        board::complete_activity(&mut b.doc.transact_mut(), &call, true).unwrap();
        b.run(T0);
        assert_eq!(b.state(), "incoming");
        let won = b.stage("Won");
        let incoming: Vec<String> = board::activities_by_card(&b.doc.transact())
            .remove(&b.card)
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        for id in incoming {
            board::complete_activity(&mut b.doc.transact_mut(), &id, true).unwrap();
        }
        b.run(T0);
        assert_eq!(b.state(), "idle");
        board::move_card(&mut b.doc.transact_mut(), &b.card, &won, CardPlace::Top).unwrap();
        b.run(T0);
        assert_eq!(b.state(), "none", "final stages are never idle");
    }

    #[test]
    fn the_avatar_follows_a_new_responsible_and_timeline_events() {
        let mut b = Board::new();
        b.run(T0);
        let edit = CardEdit {
            responsible: Some("carl".into()),
            ..CardEdit::default()
        };
        board::edit_card(&mut b.doc.transact_mut(), &b.card, edit).unwrap();
        b.run(T0 + 1000);
        assert_eq!(b.avatar(), ("carl".into(), T0 + 1000, "responsible".into()));
        let card = b.card.clone();
        b.upkeep.note_event(
            &card,
            AvatarEvent {
                at: T0 + 2000,
                user: "dora".into(),
                reason: AvatarReason::Comment,
            },
        );
        b.run(T0 + 2000);
        assert_eq!(b.avatar(), ("dora".into(), T0 + 2000, "comment".into()));
    }

    #[test]
    fn an_old_reminder_does_not_take_the_avatar_back_from_a_later_comment_after_a_reload() {
        let mut b = Board::new();
        b.run(T0);
        // Added while the board is open, with its reminder time already past: it fires now.
        b.add_activity(10, Direction::Outgoing, "bob");
        b.run(T0);
        assert_eq!(b.avatar(), ("bob".into(), T0, "reminder".into()));
        let card = b.card.clone();
        b.upkeep.note_event(
            &card,
            AvatarEvent {
                at: T0 + 4000,
                user: "dora".into(),
                reason: AvatarReason::Comment,
            },
        );
        b.run(T0 + 4000);
        assert_eq!(b.avatar(), ("dora".into(), T0 + 4000, "comment".into()));
        // The board unloads and is opened again: a fresh upkeep must not fire the old reminder
        // again (it did: the load's flag was set before the cards were read).
        let mut b = b.reloaded();
        assert!(!b.run(T0 + 10_000), "nothing is rewritten at the load");
        assert_eq!(b.avatar(), ("dora".into(), T0 + 4000, "comment".into()));
    }

    #[test]
    fn a_fresh_upkeep_corrects_what_was_stale_after_a_restart() {
        let mut b = Board::new();
        b.add_activity(60, Direction::Outgoing, "bob");
        b.run(T0);
        assert_eq!(b.state(), "planned");
        // The server stops; two hours later it loads the board again.
        let mut b = b.reloaded();
        assert!(b.run(T0 + 120 * MINUTE_MS));
        assert_eq!(b.state(), "due");
        assert_eq!(
            b.avatar(),
            ("bob".into(), T0 + 45 * MINUTE_MS, "reminder".into())
        );
    }
}
