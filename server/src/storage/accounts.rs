//! What accounts keep in storage (docs/accounts.md): the people, their one-time invites and
//! their sign-in sessions. [`AccountStore`] is implemented by both backends
//! (`sqlite/accounts.rs`, `postgres/accounts.rs`); `Storage::accounts` hands it out.
//!
//! Secrets are never stored: an invite or a session is kept under the SHA-256 of its random
//! value (`crate::accounts::digest`), so a copy of the database opens nobody's account.

use super::StorageError;
use async_trait::async_trait;
use funnel_protocol::BoardId;
use funnel_protocol::policy::Role;
use std::collections::BTreeMap;

/// A person of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Opaque (UUIDv7): the user id on cards, activities and presence.
    pub id: String,
    /// Lowercase, unique.
    pub email: String,
    pub name: String,
    /// The role on every board without a role of its own.
    pub role: Role,
    /// Roles on particular boards, over `role`.
    pub board_roles: BTreeMap<BoardId, Role>,
    /// The argon2 PHC string; `None` until the person accepts an invite.
    pub password_hash: Option<String>,
    /// Milliseconds since the Unix epoch, when an admin disabled them.
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    /// Who the identity provider says they are (`{issuer} {sub}`), from their first sign-in
    /// there on (`crate::oidc`); `None` until then.
    pub oidc_subject: Option<String>,
}

impl Person {
    /// Their role on `board`.
    pub fn role_on(&self, board: &BoardId) -> Role {
        self.board_roles.get(board).copied().unwrap_or(self.role)
    }
}

/// An admin's change to a person; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonChange {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// Per board: `Some(role)` sets it, `None` removes it (the default role applies again).
    pub board_roles: Vec<(BoardId, Option<Role>)>,
    /// `Some(Some(at))` disables, `Some(None)` enables.
    pub disabled_at: Option<Option<i64>>,
}

/// A one-time invite, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The SHA-256 (hex) of the link's secret.
    pub digest: String,
    pub person: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
    pub created_at: i64,
}

/// A sign-in session, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The SHA-256 (hex) of the cookie's value.
    pub digest: String,
    pub person: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
    pub created_at: i64,
}

/// The roles of a person's boards as both databases store them: a JSON object, board id →
/// role (written from the types, so one that does not read back was written by other means).
pub(crate) fn board_roles_text(roles: &BTreeMap<BoardId, Role>) -> String {
    let map: BTreeMap<&str, &str> = roles
        .iter()
        .map(|(board, role)| (board.as_str(), role.as_str()))
        .collect();
    // A map of strings always serializes.
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn board_roles_from_text(raw: &str) -> Result<BTreeMap<BoardId, Role>, String> {
    let map: BTreeMap<String, String> = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    map.into_iter()
        .map(|(board, role)| {
            Ok((
                BoardId::parse(&board).map_err(|e| format!("board {board:?}: {e}"))?,
                Role::parse(&role).map_err(|e| e.to_string())?,
            ))
        })
        .collect()
}

/// `person` with `change` applied (both backends read, apply and write in one transaction).
pub(crate) fn apply_change(mut person: Person, change: &PersonChange) -> Person {
    if let Some(name) = &change.name {
        person.name.clone_from(name);
    }
    if let Some(role) = change.role {
        person.role = role;
    }
    for (board, role) in &change.board_roles {
        match role {
            Some(role) => person.board_roles.insert(board.clone(), *role),
            None => person.board_roles.remove(board),
        };
    }
    if let Some(disabled_at) = change.disabled_at {
        person.disabled_at = disabled_at;
    }
    person
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Stores a new person; false (nothing stored) when their e-mail is taken.
    async fn create_person(&self, person: &Person) -> Result<bool, StorageError>;

    /// Every person, oldest first.
    async fn people(&self) -> Result<Vec<Person>, StorageError>;

    async fn person(&self, id: &str) -> Result<Option<Person>, StorageError>;

    /// The person with this e-mail (lowercase).
    async fn person_by_email(&self, email: &str) -> Result<Option<Person>, StorageError>;

    /// The person the identity provider's subject (`{issuer} {sub}`) was linked to.
    async fn person_by_oidc_subject(&self, subject: &str) -> Result<Option<Person>, StorageError>;

    /// Links a person to the identity provider's subject (replacing an earlier one); false when
    /// there is no such person.
    async fn link_oidc_subject(&self, id: &str, subject: &str) -> Result<bool, StorageError>;

    /// Applies `change` in one transaction and returns the person before and after it; `None`
    /// when there is no such person. Disabling also ends every session of theirs.
    async fn change_person(
        &self,
        id: &str,
        change: &PersonChange,
    ) -> Result<Option<(Person, Person)>, StorageError>;

    /// Stores an invite (earlier invites of the person stay valid until used or expired).
    async fn create_invite(&self, invite: &Invite) -> Result<(), StorageError>;

    /// The live invite with this digest, and its person (for the acceptance page).
    async fn invite(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<(Invite, Person)>, StorageError>;

    /// Uses up the live invite with this digest: in one transaction, deletes it, sets its
    /// person's password hash (and name, when given) and stores `session`. `None` when no live
    /// invite has this digest (used, expired, never made) or its person is disabled; then
    /// nothing changes. Two acceptances of one link: one wins.
    async fn accept_invite(
        &self,
        digest: &str,
        now: i64,
        password_hash: &str,
        name: Option<&str>,
        session: &Session,
    ) -> Result<Option<Person>, StorageError>;

    async fn create_session(&self, session: &Session) -> Result<(), StorageError>;

    /// The live session with this digest and its person, if they are not disabled.
    async fn session(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<(Session, Person)>, StorageError>;

    /// Ends a session (sign-out); false when there was none.
    async fn delete_session(&self, digest: &str) -> Result<bool, StorageError>;

    /// Deletes sessions and invites that expired by `now`; returns how many.
    async fn sweep_accounts(&self, now: i64) -> Result<u64, StorageError>;
}
