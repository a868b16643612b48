//! Presence: the awareness state a client publishes, checked against the shape the board's
//! schema gives it before anyone else sees it.
//!
//! A state travels as JSON text inside an awareness update and every stock client on the board
//! parses it (y-protocols calls `JSON.parse` on each entry and throws on bad text, which stops
//! that client's whole message handler). So a state is relayed only when it is `null` (the
//! client left) or a JSON object of at most [`MAX_STATE_BYTES`] whose known keys have their
//! schema types:
//!
//! | key        | type                                               |
//! |------------|----------------------------------------------------|
//! | `user`     | optional; `{id: string, name: string, color: string}` |
//! | `dragging` | optional; card id (string) or `null`               |
//! | `viewing`  | optional; card id (string) or `null`               |
//!
//! Other keys are allowed and relayed as they are: stock y-websocket integrations add their own
//! (`cursor`, `selection`), and a client that does not know a key ignores it.

use crate::schema::awareness;
use serde_json::{Map, Value};

/// The largest awareness state, in bytes of JSON. Ours is about 150 bytes (a user of three
/// short strings and two card ids); 4 KiB leaves room for an editor's cursor or selection and
/// keeps a board's presence small: every state is held by the room and sent to every joiner.
pub const MAX_STATE_BYTES: usize = 4 * 1024;

/// The JSON text of a removal ("this client left").
pub const REMOVED: &str = "null";

/// Why an awareness state is refused. The message goes to the client in a close reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error(
        "awareness state of client {client} is {bytes} bytes, over the {MAX_STATE_BYTES} byte limit"
    )]
    TooLarge { client: u64, bytes: usize },
    #[error("awareness state of client {client} is not JSON: {reason}")]
    NotJson { client: u64, reason: String },
    #[error("awareness state of client {client} must be a JSON object or null")]
    NotAnObject { client: u64 },
    #[error("awareness state of client {client}: {field} must be {expected}")]
    WrongType {
        client: u64,
        field: &'static str,
        expected: &'static str,
    },
}

/// Checks the state `json` of awareness client `client`: `Ok(None)` for a removal, the parsed
/// object otherwise.
pub fn check_state(client: u64, json: &str) -> Result<Option<Map<String, Value>>, StateError> {
    if json == REMOVED {
        return Ok(None);
    }
    if json.len() > MAX_STATE_BYTES {
        return Err(StateError::TooLarge {
            client,
            bytes: json.len(),
        });
    }
    let value: Value = serde_json::from_str(json).map_err(|e| StateError::NotJson {
        client,
        reason: e.to_string(),
    })?;
    // A `null` spelt otherwise (" null") would be kept by the server as a state yet read by
    // clients as a removal: only the exact text counts as one.
    let Value::Object(state) = value else {
        return Err(StateError::NotAnObject { client });
    };
    let wrong = |field, expected| StateError::WrongType {
        client,
        field,
        expected,
    };
    if let Some(user) = state.get(awareness::USER) {
        let Value::Object(user) = user else {
            return Err(wrong("user", "an object {id, name, color}"));
        };
        for (field, key) in [
            ("user.id", awareness::USER_ID),
            ("user.name", awareness::USER_NAME),
            ("user.color", awareness::USER_COLOR),
        ] {
            if !user.get(key).is_some_and(Value::is_string) {
                return Err(wrong(field, "a string"));
            }
        }
    }
    for field in [awareness::DRAGGING, awareness::VIEWING] {
        if state
            .get(field)
            .is_some_and(|v| !v.is_string() && !v.is_null())
        {
            return Err(wrong(field, "a card id or null"));
        }
    }
    Ok(Some(state))
}

/// The state `json` (already checked) with `user.id` set to `user`, or `None` when it already
/// says so or names no user: the server vouches for who a presence belongs to.
pub fn with_user_id(json: &str, user: &str) -> Option<String> {
    let mut state: Map<String, Value> = serde_json::from_str(json).ok()?;
    let Some(Value::Object(fields)) = state.get_mut(awareness::USER) else {
        return None;
    };
    if fields.get(awareness::USER_ID).and_then(Value::as_str) == Some(user) {
        return None;
    }
    fields.insert(
        awareness::USER_ID.to_owned(),
        Value::String(user.to_owned()),
    );
    Some(Value::Object(state).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str =
        r##"{"user":{"id":"u1","name":"Ann","color":"#39a8ef"},"dragging":null,"viewing":"c1"}"##;

    #[test]
    fn our_states_removals_and_extra_keys_pass() {
        assert!(check_state(1, OURS).unwrap().is_some());
        assert_eq!(check_state(1, "null").unwrap(), None);
        assert!(check_state(1, "{}").unwrap().is_some());
        assert!(check_state(1, r#"{"cursor":{"anchor":3},"dragging":"c2"}"#).is_ok());
    }

    #[test]
    fn bad_states_are_refused_with_a_reason_that_names_the_problem() {
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_STATE_BYTES));
        let cases: &[(&str, &str)] = &[
            ("{not json", "not JSON"),
            (&big, "over the 4096 byte limit"),
            (" null", "must be a JSON object or null"),
            ("[1,2]", "must be a JSON object or null"),
            ("\"hi\"", "must be a JSON object or null"),
            (r#"{"user":"ann"}"#, "user must be"),
            (
                r#"{"user":{"name":"a","color":"b"}}"#,
                "user.id must be a string",
            ),
            (
                r#"{"user":{"id":1,"name":"a","color":"b"}}"#,
                "user.id must be",
            ),
            (
                r#"{"user":{"id":"1","name":"a","color":7}}"#,
                "user.color must be",
            ),
            (r#"{"dragging":5}"#, "dragging must be a card id or null"),
            (r#"{"viewing":{}}"#, "viewing must be a card id or null"),
        ];
        for (json, expected) in cases {
            let err = check_state(7, json).expect_err(json);
            let text = err.to_string();
            assert!(text.contains(expected), "{json}: {text}");
            assert!(text.starts_with("awareness state of client 7"), "{text}");
        }
    }

    #[test]
    fn the_user_id_is_set_to_the_callers() {
        let rewritten = with_user_id(OURS, "sub-1").unwrap();
        let state = check_state(1, &rewritten).unwrap().unwrap();
        assert_eq!(state["user"]["id"], "sub-1");
        assert_eq!(state["user"]["name"], "Ann");
        assert_eq!(state["viewing"], "c1");
        assert_eq!(with_user_id(OURS, "u1"), None, "already right");
        assert_eq!(with_user_id(r#"{"dragging":null}"#, "u1"), None, "no user");
    }
}
