//! The board document: one yrs/Yjs document per pipeline. Root names and field names are a
//! contract shared with the browser client and outside programs (docs/board-document.md, "Root
//! maps"); this module names them once and builds a new board.

use crate::ids::new_id;
use crate::order;
use yrs::{Any, Map, MapPrelim, TransactionMut, WriteTxn};

/// Root `Y.Map`s of a board document.
pub mod root {
    pub const BOARD: &str = "board";
    pub const STAGES: &str = "stages";
    pub const CARDS: &str = "cards";
    pub const ACTIVITIES: &str = "activities";
    pub const FIELDS: &str = "fields";
    pub const FORMS: &str = "forms";
    pub const VIEWS: &str = "views";
}

/// Keys of the `board` map.
pub mod board {
    pub const NAME: &str = "name";
    pub const ENTITY: &str = "entity";
    pub const CURRENCY: &str = "currency";
    pub const COUNTER_THRESHOLD_MIN: &str = "counterThresholdMin";
}

/// Keys of a stage map.
pub mod stage {
    pub const NAME: &str = "name";
    pub const COLOR: &str = "color";
    pub const KIND: &str = "kind";
    pub const POS: &str = "pos";
}

/// The counter threshold a new board starts with: a planned activity lights 15 minutes before
/// its deadline.
pub const DEFAULT_COUNTER_THRESHOLD_MIN: i64 = 15;

/// The currency a new board starts with.
pub const DEFAULT_CURRENCY: &str = "USD";

/// What kind of CRM item a board's cards are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    Lead,
    Deal,
    Invoice,
    Quote,
    /// A custom entity type ("smart process"), by its type id.
    Smart(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown entity {0:?}: use lead, deal, invoice, quote or smart:<typeId>")]
pub struct UnknownEntity(pub String);

impl Entity {
    pub fn parse(raw: &str) -> Result<Self, UnknownEntity> {
        match raw {
            "lead" => Ok(Entity::Lead),
            "deal" => Ok(Entity::Deal),
            "invoice" => Ok(Entity::Invoice),
            "quote" => Ok(Entity::Quote),
            _ => match raw.strip_prefix("smart:") {
                Some(type_id) if !type_id.is_empty() => Ok(Entity::Smart(type_id.to_owned())),
                _ => Err(UnknownEntity(raw.to_owned())),
            },
        }
    }

    /// The value stored in `board.entity`.
    pub fn as_string(&self) -> String {
        match self {
            Entity::Lead => "lead".into(),
            Entity::Deal => "deal".into(),
            Entity::Invoice => "invoice".into(),
            Entity::Quote => "quote".into(),
            Entity::Smart(type_id) => format!("smart:{type_id}"),
        }
    }

    /// The name a new pipeline of this entity gets.
    pub fn default_board_name(&self) -> String {
        match self {
            Entity::Lead => "Leads".into(),
            Entity::Deal => "Deals".into(),
            Entity::Invoice => "Invoices".into(),
            Entity::Quote => "Quotes".into(),
            Entity::Smart(type_id) => format!("Smart process {type_id}"),
        }
    }

    /// The stages a new pipeline of this entity starts with, in order.
    pub fn default_stages(&self) -> &'static [DefaultStage] {
        match self {
            Entity::Deal => DEAL_STAGES,
            Entity::Lead => LEAD_STAGES,
            Entity::Invoice => INVOICE_STAGES,
            Entity::Quote => QUOTE_STAGES,
            Entity::Smart(_) => SMART_STAGES,
        }
    }
}

/// The role of a stage in the funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// The first stage: new items enter it. Exactly one; it can be renamed, never deleted.
    Initial,
    /// Intermediate stages, any number.
    Progress,
    /// The successful end. Exactly one.
    Success,
    /// An unsuccessful end. One or more, so that reasons for a refusal can be told apart.
    Failure,
}

impl StageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Initial => "initial",
            StageKind::Progress => "progress",
            StageKind::Success => "success",
            StageKind::Failure => "failure",
        }
    }
}

/// One stage of a default stage set.
#[derive(Debug, Clone, Copy)]
pub struct DefaultStage {
    pub name: &'static str,
    pub color: &'static str,
    pub kind: StageKind,
}

const fn stage(name: &'static str, color: &'static str, kind: StageKind) -> DefaultStage {
    DefaultStage { name, color, kind }
}

use StageKind::{Failure, Initial, Progress, Success};

const DEAL_STAGES: &[DefaultStage] = &[
    stage("New", "#39a8ef", Initial),
    stage("Preparing documents", "#2fc6f6", Progress),
    stage("Invoice sent", "#55d0e0", Progress),
    stage("In progress", "#47e4c2", Progress),
    stage("Won", "#7bd500", Success),
    stage("Lost", "#ff5752", Failure),
    stage("Failure analysis", "#ff8f8c", Failure),
];
const LEAD_STAGES: &[DefaultStage] = &[
    stage("Not processed", "#39a8ef", Initial),
    stage("In progress", "#2fc6f6", Progress),
    stage("Processed", "#47e4c2", Progress),
    stage("Converted", "#7bd500", Success),
    stage("Junk", "#ff5752", Failure),
];
const INVOICE_STAGES: &[DefaultStage] = &[
    stage("New", "#39a8ef", Initial),
    stage("Sent", "#2fc6f6", Progress),
    stage("Paid", "#7bd500", Success),
    stage("Cancelled", "#ff5752", Failure),
];
const QUOTE_STAGES: &[DefaultStage] = &[
    stage("Draft", "#39a8ef", Initial),
    stage("Sent", "#2fc6f6", Progress),
    stage("Approved", "#7bd500", Success),
    stage("Declined", "#ff5752", Failure),
];
const SMART_STAGES: &[DefaultStage] = &[
    stage("New", "#39a8ef", Initial),
    stage("In progress", "#2fc6f6", Progress),
    stage("Success", "#7bd500", Success),
    stage("Failure", "#ff5752", Failure),
];

/// Writes a new board of `entity` into an empty document, in the caller's transaction: the
/// `board` settings and the entity's default stages with fresh ids and fresh order keys.
pub fn initialize_board(txn: &mut TransactionMut, entity: &Entity, name: &str) {
    let board = txn.get_or_insert_map(root::BOARD);
    board.insert(txn, board::NAME, name);
    board.insert(txn, board::ENTITY, entity.as_string());
    board.insert(txn, board::CURRENCY, DEFAULT_CURRENCY);
    board.insert(
        txn,
        board::COUNTER_THRESHOLD_MIN,
        Any::from(DEFAULT_COUNTER_THRESHOLD_MIN),
    );
    let stages = txn.get_or_insert_map(root::STAGES);
    let defaults = entity.default_stages();
    for (default, pos) in defaults.iter().zip(order::rebalanced(defaults.len())) {
        let prelim = MapPrelim::from([
            (stage::NAME, Any::from(default.name)),
            (stage::COLOR, Any::from(default.color)),
            (stage::KIND, Any::from(default.kind.as_str())),
            (stage::POS, Any::from(pos)),
        ]);
        stages.insert(txn, new_id(), prelim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, Out, ReadTxn, Transact};

    #[test]
    fn entities_round_trip() {
        for raw in ["lead", "deal", "invoice", "quote", "smart:42"] {
            assert_eq!(
                Entity::parse(raw).map(|e| e.as_string()),
                Ok(raw.to_owned())
            );
        }
        for bad in ["", "deals", "smart:", "Deal"] {
            assert!(Entity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_default_stage_set_has_one_initial_one_success_and_a_failure_last() {
        for entity in [
            Entity::Lead,
            Entity::Deal,
            Entity::Invoice,
            Entity::Quote,
            Entity::Smart("7".into()),
        ] {
            let stages = entity.default_stages();
            let count = |kind| stages.iter().filter(|s| s.kind == kind).count();
            assert_eq!(stages[0].kind, Initial, "{entity:?}");
            assert_eq!(count(Initial), 1);
            assert_eq!(count(Success), 1);
            assert!(count(Failure) >= 1);
            let first_final = stages
                .iter()
                .position(|s| matches!(s.kind, Success | Failure))
                .unwrap_or(stages.len());
            assert!(
                stages[first_final..]
                    .iter()
                    .all(|s| matches!(s.kind, Success | Failure))
            );
        }
    }

    #[test]
    fn a_new_deal_board_has_its_seven_stages_in_order() {
        let doc = Doc::new();
        initialize_board(&mut doc.transact_mut(), &Entity::Deal, "Deals");
        let txn = doc.transact();
        let stages = txn.get_map(root::STAGES).unwrap();
        let mut named: Vec<(String, String)> = stages
            .iter(&txn)
            .map(|(_, value)| {
                let Out::YMap(stage_map) = value else {
                    panic!("a stage is a map")
                };
                let get = |key| stage_map.get(&txn, key).unwrap().to_string(&txn);
                (get(stage::POS), get(stage::NAME))
            })
            .collect();
        named.sort();
        let names: Vec<&str> = named.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "New",
                "Preparing documents",
                "Invoice sent",
                "In progress",
                "Won",
                "Lost",
                "Failure analysis"
            ]
        );
        let board = txn.get_map(root::BOARD).unwrap();
        assert_eq!(
            board.get(&txn, board::ENTITY).unwrap().to_string(&txn),
            "deal"
        );
    }
}
