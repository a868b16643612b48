//! The board document: one yrs/Yjs document per pipeline. Root names and field names are a
//! contract shared with the browser client and outside programs (docs/board-document.md, "Root
//! maps"); this module names them once, one module of constants per kind of map ([`root`],
//! [`board`], [`stage`], [`card`], [`counter`], [`activity`], [`field`], [`forms`]), and builds a
//! new board. Code that reads or writes a key uses these constants, never a literal of its own.

use crate::ids::{BoardId, new_id};
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
    /// The reasons a card may be lost for (a plain array of strings): when it holds any, a
    /// card's `lostReason` counts as given only when it is one of them.
    pub const LOST_REASONS: &str = "lostReasons";
    /// The board's language (`en` or `fr`, [`super::Language`]): the one its default stages
    /// were named in, and the web client's default for the board.
    pub const LANGUAGE: &str = "language";
}

/// Keys of a stage map.
pub mod stage {
    pub const NAME: &str = "name";
    pub const COLOR: &str = "color";
    pub const KIND: &str = "kind";
    pub const POS: &str = "pos";
    /// What a card must carry to enter the stage: a plain array of card keys
    /// ([`super::REQUIRABLE_CARD_KEYS`]) and custom field ids.
    pub const REQUIRED: &str = "required";
    /// The chance, in percent (0 to 100), that a card in this stage is won: the weighted sum
    /// and the forecast use it. Missing: 100 in the success stage, 0 elsewhere.
    pub const PROBABILITY: &str = "probability";
    /// Days without activity after which a card in this stage is stale (rotting); missing or
    /// 0: never.
    pub const ROT_DAYS: &str = "rotDays";
}

/// The card keys a stage may require (beside custom field ids).
pub const REQUIRABLE_CARD_KEYS: [&str; 6] = [
    card::AMOUNT,
    card::CLIENT,
    card::EMAIL,
    card::RESPONSIBLE,
    card::CLOSE_DATE,
    card::LOST_REASON,
];

/// Keys of a card map.
pub mod card {
    pub const TITLE: &str = "title";
    pub const STAGE: &str = "stage";
    pub const POS: &str = "pos";
    pub const AMOUNT: &str = "amount";
    pub const CURRENCY: &str = "currency";
    pub const RESPONSIBLE: &str = "responsible";
    pub const CLIENT: &str = "client";
    /// The client's e-mail address (empty: none), checked by the typed writes.
    pub const EMAIL: &str = "email";
    pub const CREATED_AT: &str = "createdAt";
    /// When the card was last changed, as its writer saw it (ms): the board API's writes set it;
    /// a card without it reads as changed at `createdAt`.
    pub const UPDATED_AT: &str = "updatedAt";
    /// When the card was archived (ms); absent (or not a number): not archived. An archived
    /// card keeps its stage, place and activities, and the board's reads leave it out (no
    /// column, sum, workload or counter shows it) until it is restored (the key removed).
    pub const ARCHIVED_AT: &str = "archivedAt";
    pub const FIELDS: &str = "fields";
    /// The expected close date (ms): the forecast groups cards by its month.
    pub const CLOSE_DATE: &str = "closeDate";
    /// Why the card was lost (string; one of the board's `lostReasons` when it has any).
    pub const LOST_REASON: &str = "lostReason";
    /// Written by the server: whose avatar the card shows.
    pub const AVATAR: &str = "avatar";
    /// Written by the server: when the avatar last changed.
    pub const AVATAR_AT: &str = "avatarAt";
    /// Written by the server: why the card shows that avatar.
    pub const AVATAR_REASON: &str = "avatarReason";
    /// Written by the server: the activity counter, a map of the keys in [`super::counter`].
    pub const COUNTER: &str = "counter";
    /// Written by the server: when the card's timeline last got an event.
    pub const TIMELINE_AT: &str = "timelineAt";
}

/// Keys of a card's `counter` map (written by the server).
pub mod counter {
    pub const COUNT: &str = "count";
    pub const LIT: &str = "lit";
    pub const INCOMING: &str = "incoming";
    pub const NEXT: &str = "next";
    pub const STATE: &str = "state";
}

/// Keys of an activity map.
pub mod activity {
    pub const CARD: &str = "card";
    pub const KIND: &str = "kind";
    pub const DIRECTION: &str = "direction";
    pub const SUBJECT: &str = "subject";
    pub const DEADLINE: &str = "deadline";
    pub const REMIND_MIN: &str = "remindMin";
    pub const RESPONSIBLE: &str = "responsible";
    pub const DONE: &str = "done";
    /// When it was marked done (ms), as its writer saw it: the card's last activity.
    pub const DONE_AT: &str = "doneAt";
}

/// Keys of a custom field definition.
pub mod field {
    pub const LABEL: &str = "label";
    pub const TYPE: &str = "type";
    pub const OPTIONS: &str = "options";
}

/// Keys of the `forms` map.
pub mod forms {
    /// The quick-create form: a `Y.Array` of field ids.
    pub const QUICK_CREATE: &str = "quickCreate";
}

/// Keys of a client's awareness (presence) state, a JSON object beside the document:
/// `{ user: {id, name, color}, dragging: cardId | null, viewing: cardId | null }`.
pub mod awareness {
    pub const USER: &str = "user";
    pub const DRAGGING: &str = "dragging";
    pub const VIEWING: &str = "viewing";
    /// Keys of `user`.
    pub const USER_ID: &str = "id";
    pub const USER_NAME: &str = "name";
    pub const USER_COLOR: &str = "color";
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

    /// The name a new pipeline of this entity gets, in `language`.
    pub fn default_board_name(&self, language: Language) -> String {
        match (language, self) {
            (Language::En, Entity::Lead) => "Leads".into(),
            (Language::En, Entity::Deal) => "Deals".into(),
            (Language::En, Entity::Invoice) => "Invoices".into(),
            (Language::En, Entity::Quote) => "Quotes".into(),
            (Language::En, Entity::Smart(type_id)) => format!("Smart process {type_id}"),
            (Language::Fr, Entity::Lead) => "Prospects".into(),
            (Language::Fr, Entity::Deal) => "Transactions".into(),
            (Language::Fr, Entity::Invoice) => "Factures".into(),
            (Language::Fr, Entity::Quote) => "Devis".into(),
            (Language::Fr, Entity::Smart(type_id)) => format!("Processus intelligent {type_id}"),
        }
    }

    /// The stages a new pipeline of this entity starts with, in order, named in `language`
    /// (the same kinds and colours in every language).
    pub fn default_stages(&self, language: Language) -> Vec<DefaultStage> {
        let defs = match self {
            Entity::Deal => DEAL_STAGES,
            Entity::Lead => LEAD_STAGES,
            Entity::Invoice => INVOICE_STAGES,
            Entity::Quote => QUOTE_STAGES,
            Entity::Smart(_) => SMART_STAGES,
        };
        defs.iter()
            .map(|def| DefaultStage {
                name: match language {
                    Language::En => def.en,
                    Language::Fr => def.fr,
                },
                color: def.color,
                kind: def.kind,
            })
            .collect()
    }
}

/// A language funnel names a new board's defaults in (its stages and name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    En,
    Fr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?}: use en or fr")]
pub struct UnknownLanguage(pub String);

impl Language {
    /// Every language, in the order a picker lists them.
    pub const ALL: [Language; 2] = [Language::En, Language::Fr];

    /// The value stored in `board.language` (a BCP 47 primary tag).
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
        }
    }

    /// Reads `en` or `fr`, ignoring case and a region (`fr-CA` is French).
    pub fn parse(raw: &str) -> Result<Self, UnknownLanguage> {
        let primary = raw.split(['-', '_']).next().unwrap_or_default();
        match primary.to_ascii_lowercase().as_str() {
            "en" => Ok(Language::En),
            "fr" => Ok(Language::Fr),
            _ => Err(UnknownLanguage(raw.to_owned())),
        }
    }

    /// The first language of an `Accept-Language` header funnel has, by the header's weights
    /// (RFC 9110 section 12.5.4); `None` when it names none of them.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut ranges: Vec<(f32, usize, Language)> = header
            .split(',')
            .enumerate()
            .filter_map(|(index, item)| {
                let mut parts = item.split(';');
                let tag = parts.next()?.trim();
                let weight = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                let language = Language::parse(tag).ok()?;
                (weight > 0.0).then_some((weight, index, language))
            })
            .collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranges.first().map(|(_, _, language)| *language)
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage kind {0:?}: use initial, progress, success or failure")]
pub struct UnknownStageKind(pub String);

impl StageKind {
    /// The value stored in a stage's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Initial => "initial",
            StageKind::Progress => "progress",
            StageKind::Success => "success",
            StageKind::Failure => "failure",
        }
    }

    /// Reads a stored `kind`.
    pub fn parse(raw: &str) -> Result<Self, UnknownStageKind> {
        match raw {
            "initial" => Ok(StageKind::Initial),
            "progress" => Ok(StageKind::Progress),
            "success" => Ok(StageKind::Success),
            "failure" => Ok(StageKind::Failure),
            _ => Err(UnknownStageKind(raw.to_owned())),
        }
    }

    /// Whether cards in a stage of this kind are open deals (initial or progress), not won or
    /// lost: the workload and the board's open totals count only those.
    pub fn is_open(self) -> bool {
        matches!(self, StageKind::Initial | StageKind::Progress)
    }
}

impl std::str::FromStr for StageKind {
    type Err = UnknownStageKind;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        StageKind::parse(raw)
    }
}

/// One stage of a default stage set.
#[derive(Debug, Clone, Copy)]
pub struct DefaultStage {
    pub name: &'static str,
    pub color: &'static str,
    pub kind: StageKind,
}

/// A default stage in every language: one row per stage, so that its colour and kind are
/// written once. The French names follow the vocabulary of the French help page the product
/// started from (a deal is "une transaction": feminine).
struct StageDef {
    en: &'static str,
    fr: &'static str,
    color: &'static str,
    kind: StageKind,
}

const fn stage(
    en: &'static str,
    fr: &'static str,
    color: &'static str,
    kind: StageKind,
) -> StageDef {
    StageDef {
        en,
        fr,
        color,
        kind,
    }
}

use StageKind::{Failure, Initial, Progress, Success};

const DEAL_STAGES: &[StageDef] = &[
    stage("New", "Nouvelle", "#39a8ef", Initial),
    stage(
        "Preparing documents",
        "Préparation des documents",
        "#2fc6f6",
        Progress,
    ),
    stage("Invoice sent", "Facture envoyée", "#55d0e0", Progress),
    stage("In progress", "En cours", "#47e4c2", Progress),
    stage("Won", "Gagnée", "#7bd500", Success),
    stage("Lost", "Perdue", "#ff5752", Failure),
    stage("Failure analysis", "Analyse de l'échec", "#ff8f8c", Failure),
];
const LEAD_STAGES: &[StageDef] = &[
    stage("Not processed", "Non traité", "#39a8ef", Initial),
    stage("In progress", "En cours", "#2fc6f6", Progress),
    stage("Processed", "Traité", "#47e4c2", Progress),
    stage("Converted", "Converti", "#7bd500", Success),
    stage("Junk", "Prospect de mauvaise qualité", "#ff5752", Failure),
];
const INVOICE_STAGES: &[StageDef] = &[
    stage("New", "Nouvelle", "#39a8ef", Initial),
    stage("Sent", "Envoyée", "#2fc6f6", Progress),
    stage("Paid", "Payée", "#7bd500", Success),
    stage("Cancelled", "Annulée", "#ff5752", Failure),
];
const QUOTE_STAGES: &[StageDef] = &[
    stage("Draft", "Brouillon", "#39a8ef", Initial),
    stage("Sent", "Envoyé", "#2fc6f6", Progress),
    stage("Approved", "Approuvé", "#7bd500", Success),
    stage("Declined", "Refusé", "#ff5752", Failure),
];
const SMART_STAGES: &[StageDef] = &[
    stage("New", "Nouveau", "#39a8ef", Initial),
    stage("In progress", "En cours", "#2fc6f6", Progress),
    stage("Success", "Succès", "#7bd500", Success),
    stage("Failure", "Échec", "#ff5752", Failure),
];

/// Writes a new board of `entity` into an empty document, in the caller's transaction: the
/// `board` settings and the entity's default stages with fresh ids and fresh order keys.
pub fn initialize_board(txn: &mut TransactionMut, entity: &Entity, language: Language, name: &str) {
    write_new_board(txn, entity, language, name, |_| new_id());
}

/// Writes the new board `board` of `entity`, as [`initialize_board`], with the default stages'
/// ids derived from the board id ([`default_stage_id`]): a board wiped and created again has
/// the same stage ids, so a client's copy of the old one merges into it without a second
/// initial stage (docs/storage.md, "Recovery").
pub fn initialize_board_for(
    txn: &mut TransactionMut,
    board: &BoardId,
    entity: &Entity,
    language: Language,
    name: &str,
) {
    write_new_board(txn, entity, language, name, |index| {
        default_stage_id(board, index)
    });
}

/// The id of default stage `index` (from 0, in [`Entity::default_stages`] order) of board
/// `board`: a name-based UUID (version 5) of the board id and the index, the same whenever the
/// board is created.
pub fn default_stage_id(board: &BoardId, index: usize) -> String {
    let name = format!("funnel/board/{board}/default-stage/{index}");
    uuid::Uuid::new_v5(&DEFAULT_STAGE_NAMESPACE, name.as_bytes()).to_string()
}

/// The namespace of [`default_stage_id`]'s UUIDs (a fixed, random UUID).
const DEFAULT_STAGE_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5d0f_4c1e_9a3b_4f7e_8c21_6b0a_d2e4_97f3);

fn write_new_board(
    txn: &mut TransactionMut,
    entity: &Entity,
    language: Language,
    name: &str,
    stage_id: impl Fn(usize) -> String,
) {
    let board = txn.get_or_insert_map(root::BOARD);
    board.insert(txn, board::NAME, name);
    board.insert(txn, board::ENTITY, entity.as_string());
    board.insert(txn, board::LANGUAGE, language.as_str());
    board.insert(txn, board::CURRENCY, DEFAULT_CURRENCY);
    board.insert(
        txn,
        board::COUNTER_THRESHOLD_MIN,
        Any::from(DEFAULT_COUNTER_THRESHOLD_MIN),
    );
    let stages = txn.get_or_insert_map(root::STAGES);
    let defaults = entity.default_stages(language);
    for (index, (default, pos)) in defaults
        .iter()
        .zip(order::rebalanced(defaults.len()))
        .enumerate()
    {
        let prelim = MapPrelim::from([
            (stage::NAME, Any::from(default.name)),
            (stage::COLOR, Any::from(default.color)),
            (stage::KIND, Any::from(default.kind.as_str())),
            (stage::POS, Any::from(pos)),
        ]);
        stages.insert(txn, stage_id(index), prelim);
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
    fn stage_kinds_round_trip() {
        for kind in [Initial, Progress, Success, Failure] {
            assert_eq!(StageKind::parse(kind.as_str()), Ok(kind));
        }
        for bad in ["", "Initial", "final"] {
            assert!(bad.parse::<StageKind>().is_err(), "{bad}");
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
            let stages = entity.default_stages(Language::En);
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
    fn each_language_names_the_same_stages_of_the_same_kinds_and_colours() {
        for entity in [
            Entity::Lead,
            Entity::Deal,
            Entity::Invoice,
            Entity::Quote,
            Entity::Smart("7".into()),
        ] {
            let english = entity.default_stages(Language::En);
            for language in Language::ALL {
                let stages = entity.default_stages(language);
                assert_eq!(stages.len(), english.len(), "{entity:?} {language:?}");
                for (stage, en) in stages.iter().zip(&english) {
                    assert_eq!((stage.kind, stage.color), (en.kind, en.color));
                    assert!(!stage.name.trim().is_empty());
                }
                let mut names: Vec<_> = stages.iter().map(|s| s.name).collect();
                names.sort_unstable();
                names.dedup();
                assert_eq!(
                    names.len(),
                    stages.len(),
                    "distinct names: {entity:?} {language:?}"
                );
                assert!(!entity.default_board_name(language).is_empty());
            }
        }
        assert_eq!(Entity::Deal.default_stages(Language::Fr)[4].name, "Gagnée");
    }

    #[test]
    fn languages_parse_from_tags_and_accept_language() {
        for (raw, language) in [
            ("en", Language::En),
            ("FR", Language::Fr),
            ("fr-CA", Language::Fr),
            ("en_GB", Language::En),
        ] {
            assert_eq!(Language::parse(raw), Ok(language), "{raw}");
        }
        for bad in ["", "de", "français", "-fr"] {
            assert!(Language::parse(bad).is_err(), "{bad}");
        }
        for (header, language) in [
            ("fr-FR,fr;q=0.9,en;q=0.8", Some(Language::Fr)),
            ("de-DE, en;q=0.5, fr;q=0.7", Some(Language::Fr)),
            ("en-US,en;q=0.9", Some(Language::En)),
            ("de, it", None),
            ("fr;q=0, en;q=0.1", Some(Language::En)),
            ("fr;q=bad, en", Some(Language::En)),
            ("", None),
            ("*", None),
        ] {
            assert_eq!(Language::from_accept_language(header), language, "{header}");
        }
        for language in Language::ALL {
            assert_eq!(Language::parse(language.as_str()), Ok(language));
        }
    }

    #[test]
    fn a_new_deal_board_has_its_seven_stages_in_order() {
        let doc = Doc::new();
        initialize_board(
            &mut doc.transact_mut(),
            &Entity::Deal,
            Language::En,
            "Deals",
        );
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

    #[test]
    fn a_board_created_again_has_the_same_default_stage_ids() {
        let board = BoardId::parse("q4").unwrap();
        let ids = |board: &BoardId| {
            let doc = Doc::new();
            initialize_board_for(
                &mut doc.transact_mut(),
                board,
                &Entity::Deal,
                Language::En,
                "Deals",
            );
            let txn = doc.transact();
            let mut ids: Vec<String> = txn
                .get_map(root::STAGES)
                .unwrap()
                .keys(&txn)
                .map(str::to_owned)
                .collect();
            ids.sort();
            ids
        };
        let first = ids(&board);
        assert_eq!(first.len(), 7);
        assert_eq!(first, ids(&board));
        assert!(first.contains(&default_stage_id(&board, 0)));
        let other = ids(&BoardId::parse("q5").unwrap());
        assert!(
            first.iter().all(|id| !other.contains(id)),
            "{first:?} {other:?}"
        );
    }
}
