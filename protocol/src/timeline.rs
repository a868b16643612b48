//! The vocabulary of a card's timeline: what kind of event it is (a comment, a call, an e-mail, a
//! chat message) and which way it went, with the rule of what each event does to its card.
//!
//! Timeline events are stored by the server, not in the board document
//! (docs/board-document.md, "Counters, avatars, unprocessed cards"), and travel through the JSON API. The strings here are that
//! contract: the API accepts and returns them, and storage keeps them as text, so `as_str` and
//! `FromStr` (and serde, which uses the same strings) must never change a spelling.

use crate::rules::AvatarReason;
use serde::{Deserialize, Serialize};

/// What a timeline event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimelineKind {
    Comment,
    Call,
    Email,
    Chat,
}

/// Which way a timeline event went. A comment has no direction: [`TimelineDirection::None`],
/// stored and served as the empty string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimelineDirection {
    /// A comment's: no direction.
    #[serde(rename = "")]
    None,
    Incoming,
    Outgoing,
    /// A call nobody took.
    Missed,
}

/// A kind that is not one of [`TimelineKind`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind {0:?}: use comment, call, email or chat")]
pub struct UnknownTimelineKind(pub String);

/// A direction that is not one of [`TimelineDirection`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown direction {0:?}: use incoming, outgoing, missed or none (\"\")")]
pub struct UnknownTimelineDirection(pub String);

/// A direction that an event of this kind cannot have (or no direction at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("direction of a {}: {}", .kind.as_str(), .kind.directions_text())]
pub struct DirectionNotAllowed {
    pub kind: TimelineKind,
    /// The direction as given.
    pub raw: String,
}

impl TimelineKind {
    /// The value the API and storage use.
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Comment => "comment",
            TimelineKind::Call => "call",
            TimelineKind::Email => "email",
            TimelineKind::Chat => "chat",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, UnknownTimelineKind> {
        match raw {
            "comment" => Ok(TimelineKind::Comment),
            "call" => Ok(TimelineKind::Call),
            "email" => Ok(TimelineKind::Email),
            "chat" => Ok(TimelineKind::Chat),
            _ => Err(UnknownTimelineKind(raw.to_owned())),
        }
    }

    /// The directions an event of this kind may have: none for a comment; a call may also be
    /// missed.
    pub fn directions(self) -> &'static [TimelineDirection] {
        use TimelineDirection::{Incoming, Missed, None, Outgoing};
        match self {
            TimelineKind::Comment => &[None],
            TimelineKind::Call => &[Incoming, Outgoing, Missed],
            TimelineKind::Email | TimelineKind::Chat => &[Incoming, Outgoing],
        }
    }

    /// Reads the direction of an event of this kind (`""` for none), refusing one the kind
    /// cannot have.
    pub fn parse_direction(self, raw: &str) -> Result<TimelineDirection, DirectionNotAllowed> {
        TimelineDirection::parse(raw)
            .ok()
            .filter(|direction| self.directions().contains(direction))
            .ok_or_else(|| DirectionNotAllowed {
                kind: self,
                raw: raw.to_owned(),
            })
    }

    /// Whether an event of this kind going `direction` adds an open incoming activity to its
    /// card: an incoming or missed call, an incoming e-mail, an incoming chat message.
    pub fn adds_incoming_activity(self, direction: TimelineDirection) -> bool {
        use TimelineDirection::{Incoming, Missed};
        matches!(
            (self, direction),
            (TimelineKind::Call, Incoming | Missed)
                | (TimelineKind::Email | TimelineKind::Chat, Incoming)
        )
    }

    /// Why an event of this kind going `direction` moves its card's avatar to the event's user,
    /// or `None` when it does not: a comment, an incoming or missed call, an incoming e-mail, a
    /// chat message either way.
    pub fn avatar_reason(self, direction: TimelineDirection) -> Option<AvatarReason> {
        use TimelineDirection::{Incoming, Missed};
        match (self, direction) {
            (TimelineKind::Comment, _) => Some(AvatarReason::Comment),
            (TimelineKind::Call, Incoming | Missed) => Some(AvatarReason::Call),
            (TimelineKind::Email, Incoming) => Some(AvatarReason::Email),
            (TimelineKind::Chat, _) => Some(AvatarReason::Chat),
            _ => None,
        }
    }

    /// The allowed directions as the error message lists them.
    fn directions_text(self) -> String {
        match self {
            TimelineKind::Comment => "none".to_owned(),
            _ => self
                .directions()
                .iter()
                .map(|direction| direction.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl TimelineDirection {
    /// The value the API and storage use (`""` for none).
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineDirection::None => "",
            TimelineDirection::Incoming => "incoming",
            TimelineDirection::Outgoing => "outgoing",
            TimelineDirection::Missed => "missed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, UnknownTimelineDirection> {
        match raw {
            "" => Ok(TimelineDirection::None),
            "incoming" => Ok(TimelineDirection::Incoming),
            "outgoing" => Ok(TimelineDirection::Outgoing),
            "missed" => Ok(TimelineDirection::Missed),
            _ => Err(UnknownTimelineDirection(raw.to_owned())),
        }
    }
}

impl std::str::FromStr for TimelineKind {
    type Err = UnknownTimelineKind;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        TimelineKind::parse(raw)
    }
}

impl std::str::FromStr for TimelineDirection {
    type Err = UnknownTimelineDirection;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        TimelineDirection::parse(raw)
    }
}

impl std::fmt::Display for TimelineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for TimelineDirection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TimelineDirection::{Incoming, Missed, None, Outgoing};
    use TimelineKind::{Call, Chat, Comment, Email};

    const KINDS: [TimelineKind; 4] = [Comment, Call, Email, Chat];
    const DIRECTIONS: [TimelineDirection; 4] = [None, Incoming, Outgoing, Missed];

    #[test]
    fn kinds_and_directions_round_trip_through_strings_and_serde() {
        for kind in KINDS {
            assert_eq!(kind.as_str().parse(), Ok(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<TimelineKind>(&json).unwrap(), kind);
        }
        for direction in DIRECTIONS {
            assert_eq!(direction.as_str().parse(), Ok(direction));
            let json = serde_json::to_string(&direction).unwrap();
            assert_eq!(json, format!("\"{}\"", direction.as_str()));
            assert_eq!(
                serde_json::from_str::<TimelineDirection>(&json).unwrap(),
                direction
            );
        }
        for bad in ["fax", "Comment", " call"] {
            assert!(bad.parse::<TimelineKind>().is_err(), "{bad}");
        }
        for bad in ["none", "Incoming", "in"] {
            assert!(bad.parse::<TimelineDirection>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_strings_are_the_stored_ones() {
        let kinds: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, ["comment", "call", "email", "chat"]);
        let directions: Vec<&str> = DIRECTIONS.iter().map(|d| d.as_str()).collect();
        assert_eq!(directions, ["", "incoming", "outgoing", "missed"]);
    }

    #[test]
    fn each_kind_takes_its_own_directions() {
        assert_eq!(Comment.parse_direction(""), Ok(None));
        assert_eq!(Call.parse_direction("missed"), Ok(Missed));
        assert_eq!(Email.parse_direction("outgoing"), Ok(Outgoing));
        assert_eq!(Chat.parse_direction("incoming"), Ok(Incoming));
        let refused = |kind: TimelineKind, raw: &str| {
            kind.parse_direction(raw).expect_err("refused").to_string()
        };
        assert_eq!(refused(Comment, "incoming"), "direction of a comment: none");
        assert_eq!(
            refused(Call, ""),
            "direction of a call: incoming, outgoing, missed"
        );
        assert_eq!(
            refused(Email, "missed"),
            "direction of a email: incoming, outgoing"
        );
        assert_eq!(
            refused(Chat, "sideways"),
            "direction of a chat: incoming, outgoing"
        );
        assert_eq!(
            "fax".parse::<TimelineKind>().unwrap_err().to_string(),
            "unknown kind \"fax\": use comment, call, email or chat"
        );
    }

    #[test]
    fn incoming_events_add_an_activity_and_move_the_avatar() {
        assert!(Call.adds_incoming_activity(Incoming));
        assert!(Call.adds_incoming_activity(Missed));
        assert!(Email.adds_incoming_activity(Incoming));
        assert!(Chat.adds_incoming_activity(Incoming));
        assert!(!Call.adds_incoming_activity(Outgoing));
        assert!(!Email.adds_incoming_activity(Outgoing));
        assert!(!Chat.adds_incoming_activity(Outgoing));
        assert!(!Comment.adds_incoming_activity(None));

        assert_eq!(Comment.avatar_reason(None), Some(AvatarReason::Comment));
        assert_eq!(Call.avatar_reason(Incoming), Some(AvatarReason::Call));
        assert_eq!(Call.avatar_reason(Missed), Some(AvatarReason::Call));
        assert_eq!(Call.avatar_reason(Outgoing), Option::None);
        assert_eq!(Email.avatar_reason(Incoming), Some(AvatarReason::Email));
        assert_eq!(Email.avatar_reason(Outgoing), Option::None);
        assert_eq!(Chat.avatar_reason(Incoming), Some(AvatarReason::Chat));
        assert_eq!(Chat.avatar_reason(Outgoing), Some(AvatarReason::Chat));
    }
}
