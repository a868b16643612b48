//! funnel's shared vocabulary: what crosses the wire and what a board document holds.
//!
//! This crate does no I/O (no sockets, no files, no clocks of its own) so that the server, the load
//! tester and any Rust client agree on the same bytes and the same rules.
//!
//! Modules:
//! - [`ids`]: id newtypes ([`BoardId`]) that are validated once, at the edge.
//! - [`wire`]: the y-websocket framing (sync step 1 / step 2 / update, awareness, query-awareness),
//!   one message per binary frame, decoded into one closed enum per direction, and the close codes.
//! - [`presence`]: the awareness state a client publishes, checked against the schema's shape
//!   (size, JSON, the types of `user`, `dragging`, `viewing`) before it is relayed.
//! - [`schema`]: every root name and map key of the board document (the one place they are
//!   spelled), the stage kinds and entities, and the default stages a new board starts with.
//! - [`order`]: base-62 order keys (`pos`) for stages and cards, byte-compatible with the npm
//!   `fractional-indexing` package the browser uses.
//! - [`rules`]: card counters, when they next change, fired reminders and avatars; pure, time is
//!   a parameter.
//! - [`timeline`]: the kinds and directions of a card's timeline events (the JSON API's and
//!   storage's strings) and what each event does to its card.
//! - [`board`]: typed reads (columns, sums, workload, unprocessed) and writes (one function per
//!   user action, refusing what breaks a stage invariant) over a board document; split into
//!   `board/read.rs`, `board/write.rs` and `board/error.rs` behind the one `board::` path.
//! - [`index`]: an incremental read model of a board, kept current from what each transaction
//!   touched (yrs deep observers), for views that must stay fast on large boards; it makes
//!   [`board::BoardView::read`].
//! - [`pieces`]: a large update cut into causally ordered pieces (a joiner's full state in small
//!   frames).
//! - [`changes`]: typed changes (the change feed's events) from a card, an activity or the
//!   stages before and after a stored change.
//! - [`policy`]: who may change what (viewer, member, admin; the server-written fields), judged
//!   on what an update did, recorded by yrs deep observers.
//!
//! Dependencies between modules run one way: `ids`, `order` and `wire` at the bottom, `schema` on
//! the first two, `rules` on `schema`, `timeline` on `rules`, `board` on those, `index` and
//! `policy` on `board`, `changes` on `board` and `schema`. No two modules use each other.

pub mod board;
pub mod changes;
pub mod ids;
pub mod index;
pub mod order;
pub mod pieces;
pub mod policy;
pub mod presence;
pub mod rules;
pub mod schema;
pub mod timeline;
pub mod wire;

pub use ids::{BoardId, InvalidBoardId};
