//! Why a board write is refused, and the limits its messages name. Its own file because both
//! halves of the board module use it: the writes refuse with it, and
//! [`check_invariants`](super::check_invariants) (a read) reports a broken document with it.

use crate::order::OrderError;

/// The longest stage name, card title or field label, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// The largest amount, in minor units, either way: the largest integer a JavaScript number (what
/// the browser reads) holds exactly, 2^53 - 1.
pub const MAX_AMOUNT: i64 = (1 << 53) - 1;

/// The largest counter threshold: a week, in minutes.
pub const MAX_THRESHOLD_MIN: i64 = 7 * 24 * 60;

/// The most days a stage may let a card sit before it is stale (ten years).
pub const MAX_ROT_DAYS: i64 = 3650;

/// The most lost reasons a board lists.
pub const MAX_LOST_REASONS: usize = 100;

/// Why a write was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    #[error("no stage {0}")]
    NoSuchStage(String),
    #[error("no card {0}")]
    NoSuchCard(String),
    #[error("no activity {0}")]
    NoSuchActivity(String),
    #[error("the initial stage cannot be deleted, only renamed")]
    InitialStageIsPermanent,
    #[error("a board has exactly one success stage: it cannot be added or deleted")]
    SuccessStageIsUnique,
    #[error("a board has exactly one initial stage: it cannot be added")]
    InitialStageIsUnique,
    #[error("the last failure stage cannot be deleted")]
    LastFailureStage,
    #[error("stage order: {0}")]
    StageOrder(&'static str),
    #[error("cards of a deleted stage must go to another stage")]
    CardsNeedAnotherStage,
    #[error("{what} must be 1 to {MAX_NAME_CHARS} characters")]
    BadName { what: &'static str },
    #[error("colour must be #rrggbb, got {0:?}")]
    BadColor(String),
    #[error("{0:?} is not an e-mail address (name@example.com)")]
    BadEmail(String),
    #[error("an amount must be within ±{MAX_AMOUNT} minor units")]
    BadAmount,
    #[error("counter threshold must be 0 to {MAX_THRESHOLD_MIN} minutes")]
    BadThreshold,
    #[error("unknown field type {0:?}: use string, number, money, date, enum, user or bool")]
    BadFieldType(String),
    #[error("a probability must be 0 to 100 (percent)")]
    BadProbability,
    #[error("days before a card rots must be 0 (never) to {MAX_ROT_DAYS}")]
    BadRotDays,
    #[error(
        "a stage can require amount, client, email, responsible, closeDate, lostReason or a \
         custom field of the board, not {0:?}"
    )]
    UnknownRequiredField(String),
    #[error("the initial stage requires nothing: every new card (by mail, by the API) enters it")]
    InitialStageRequiresNothing,
    #[error("{0:?} is not one of the board's lost reasons")]
    BadLostReason(String),
    #[error(
        "lost reasons must be 1 to {MAX_NAME_CHARS} characters each, at most {MAX_LOST_REASONS}, no repeats"
    )]
    BadLostReasons,
    #[error("the neighbours' order keys are too long to split; move with a rebalance")]
    NeedsRebalance,
    #[error(transparent)]
    Order(#[from] OrderError),
}
