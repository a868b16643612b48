//! Typed reads and writes over a board document.
//!
//! Reads ([`BoardView::read`], [`stages`], [`card`]) turn the document into plain structs, applying
//! the rules every replica applies the same way: order by (`pos`, id); final stages after the
//! others and the initial stage first, whatever the keys say; a card whose stage is gone shows in
//! the initial column; counts and sums per column; workload per responsible; unprocessed cards.
//!
//! Writes are one function per user action, each in the caller's transaction, so that one action
//! is one update. They refuse what would break a stage invariant (see [`BoardError`]) before
//! writing anything. A move sets `stage` and `pos` of one card and nothing else: never a delete
//! and re-insert, which would duplicate or lose a card moved twice concurrently.
//!
//! Concurrent structural edits made offline by two admins (say, each deletes a different one of
//! the last two failure stages) can merge into a document that breaks a counting invariant; the
//! server checks every incoming update against these rules, so a board it serves stays valid.
//!
//! Files: `board/read.rs` (the read types and reads), `board/write.rs` (the writes),
//! `board/error.rs` (why a write is refused, and the limits it names), `board/requirements.rs`
//! (a stage's required fields, probability and rotting). Everything is used
//! through this module: `funnel_protocol::board::X`. The arrows run one way: writes use reads,
//! both use the error; reads know nothing of writes or of the index.

mod error;
mod read;
mod requirements;
mod write;

pub use error::{
    BoardError, MAX_AMOUNT, MAX_LOST_REASONS, MAX_NAME_CHARS, MAX_ROT_DAYS, MAX_THRESHOLD_MIN,
};
pub use read::{
    Activity, BoardView, Card, Column, Settings, Stage, Workload, activities_by_card, card,
    check_invariants, display_fields, quick_create_fields, settings, stages,
};
pub(crate) use read::{child_map, read_activity, read_card};
pub use requirements::{DAY_MS, is_stale, last_activity_at, missing_required, weighted};
pub use write::{
    ActivityEdit, CardEdit, CardPlace, FIELD_TYPES, NewActivity, NewCard, StageRules, add_activity,
    add_stage, archive_card, complete_activity, complete_activity_at, create_card, define_field,
    delete_card, delete_stage, edit_activity, edit_card, move_card, move_card_between, move_stage,
    recolor_stage, remove_activity, rename_stage, set_counter_threshold, set_display_fields,
    set_lost_reasons, set_quick_create_fields, set_stage_rules, touch_card,
};

/// Keys of a card map, by the name the board API has always used: [`crate::schema::card`].
pub use crate::schema::card as card_key;

/// Keys of an activity map, by the name the board API has always used:
/// [`crate::schema::activity`].
pub use crate::schema::activity as activity_key;

/// Keys of a custom field definition, by the name the board API has always used:
/// [`crate::schema::field`].
pub use crate::schema::field as field_key;

/// The key of the quick-create form in `forms`: [`crate::schema::forms::QUICK_CREATE`].
pub use crate::schema::forms::QUICK_CREATE;
