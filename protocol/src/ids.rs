//! Id newtypes. Ids are opaque strings (UUIDv7 or similar); they are checked once, where they
//! enter (an URL, a message), and carried typed from then on.

use std::fmt;
use std::sync::Arc;

/// The longest board id we accept, in bytes: room names, storage keys and log fields stay small.
pub const MAX_BOARD_ID_LEN: usize = 64;

/// The id of a board (one pipeline, one CRDT document, one room).
///
/// Allowed: 1 to [`MAX_BOARD_ID_LEN`] ASCII letters, digits, `-` and `_`, so that an id is safe in
/// a URL path, a Redis channel name and a log line without escaping.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BoardId(Arc<str>);

/// Why a string is not a board id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBoardId {
    #[error("board id is empty")]
    Empty,
    #[error("board id is longer than {MAX_BOARD_ID_LEN} bytes")]
    TooLong,
    #[error("board id may hold only ASCII letters, digits, '-' and '_'")]
    BadCharacter,
}

impl BoardId {
    pub fn parse(raw: &str) -> Result<Self, InvalidBoardId> {
        if raw.is_empty() {
            return Err(InvalidBoardId::Empty);
        }
        if raw.len() > MAX_BOARD_ID_LEN {
            return Err(InvalidBoardId::TooLong);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(InvalidBoardId::BadCharacter);
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BoardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BoardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BoardId({})", self.0)
    }
}

impl std::str::FromStr for BoardId {
    type Err = InvalidBoardId;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

/// A fresh opaque id for a stage, a card or an activity: a UUIDv7, so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_slugs() {
        for ok in [
            "0192f0e4-7a4b-7c3e-9f00-123456789abc",
            "deals",
            "q4_pipeline-2",
        ] {
            assert_eq!(
                BoardId::parse(ok).map(|id| id.to_string()),
                Ok(ok.to_owned())
            );
        }
    }

    #[test]
    fn refuses_what_is_unsafe_in_paths_channels_or_logs() {
        assert_eq!(BoardId::parse(""), Err(InvalidBoardId::Empty));
        assert_eq!(
            BoardId::parse(&"a".repeat(65)),
            Err(InvalidBoardId::TooLong)
        );
        assert!(BoardId::parse(&"a".repeat(64)).is_ok());
        for bad in ["a/b", "a b", "..", "é", "a\nb", "a%20b"] {
            assert_eq!(
                BoardId::parse(bad),
                Err(InvalidBoardId::BadCharacter),
                "{bad:?}"
            );
        }
    }
}
