//! [`AccountStore`] on SQLite: writes go through the writer thread (`SqliteStorage::write`), so
//! a read and the write that depends on it (accepting an invite, changing a person) are one
//! step; reads use the read connection.

use super::SqliteStorage;
use crate::storage::StorageError;
use crate::storage::accounts::{
    AccountStore, Invite, Person, PersonChange, Session, apply_change, board_roles_from_text,
    board_roles_text,
};
use async_trait::async_trait;
use funnel_protocol::policy::Role;
use rusqlite::{Connection, OptionalExtension, params};

const PERSON_COLUMNS: &str =
    "id, email, name, role, board_roles, password_hash, disabled_at, created_at, oidc_subject";

fn person_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    let bad = |index: usize, reason: String| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, reason.into())
    };
    let role: String = row.get(3)?;
    let board_roles: String = row.get(4)?;
    Ok(Person {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        role: Role::parse(&role).map_err(|e| bad(3, e.to_string()))?,
        board_roles: board_roles_from_text(&board_roles).map_err(|e| bad(4, e))?,
        password_hash: row.get(5)?,
        disabled_at: row.get(6)?,
        created_at: row.get(7)?,
        oidc_subject: row.get(8)?,
    })
}

fn person_by_id(conn: &Connection, id: &str) -> Result<Option<Person>, StorageError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {PERSON_COLUMNS} FROM people WHERE id = ?1"
        ))?
        .query_row([id], person_from_row)
        .optional()?)
}

fn write_person(conn: &Connection, p: &Person) -> Result<(), StorageError> {
    conn.execute(
        "UPDATE people SET name = ?2, role = ?3, board_roles = ?4, password_hash = ?5,
             disabled_at = ?6
         WHERE id = ?1",
        params![
            p.id,
            p.name,
            p.role.as_str(),
            board_roles_text(&p.board_roles),
            p.password_hash,
            p.disabled_at
        ],
    )?;
    Ok(())
}

fn insert_session(conn: &Connection, s: &Session) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO sessions (digest, person, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![s.digest, s.person, s.expires_at, s.created_at],
    )?;
    Ok(())
}

#[async_trait]
impl AccountStore for SqliteStorage {
    async fn create_person(&self, person: &Person) -> Result<bool, StorageError> {
        let p = person.clone();
        self.write(move |txn| {
            let inserted = txn.execute(
                "INSERT INTO people (id, email, name, role, board_roles, password_hash,
                     disabled_at, created_at, oidc_subject)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
                params![
                    p.id,
                    p.email,
                    p.name,
                    p.role.as_str(),
                    board_roles_text(&p.board_roles),
                    p.password_hash,
                    p.disabled_at,
                    p.created_at,
                    p.oidc_subject
                ],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn people(&self) -> Result<Vec<Person>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {PERSON_COLUMNS} FROM people ORDER BY created_at, id"
            ))?;
            let people = stmt
                .query_map([], person_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(people)
        })
        .await
    }

    async fn person(&self, id: &str) -> Result<Option<Person>, StorageError> {
        let id = id.to_owned();
        self.read(move |conn| person_by_id(conn, &id)).await
    }

    async fn person_by_email(&self, email: &str) -> Result<Option<Person>, StorageError> {
        let email = email.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {PERSON_COLUMNS} FROM people WHERE email = ?1"
                ))?
                .query_row([email], person_from_row)
                .optional()?)
        })
        .await
    }

    async fn person_by_oidc_subject(&self, subject: &str) -> Result<Option<Person>, StorageError> {
        let subject = subject.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {PERSON_COLUMNS} FROM people WHERE oidc_subject = ?1"
                ))?
                .query_row([subject], person_from_row)
                .optional()?)
        })
        .await
    }

    async fn link_oidc_subject(&self, id: &str, subject: &str) -> Result<bool, StorageError> {
        let (id, subject) = (id.to_owned(), subject.to_owned());
        self.write(move |txn| {
            let changed = txn.execute(
                "UPDATE people SET oidc_subject = ?2 WHERE id = ?1",
                params![id, subject],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn change_person(
        &self,
        id: &str,
        change: &PersonChange,
    ) -> Result<Option<(Person, Person)>, StorageError> {
        let (id, change) = (id.to_owned(), change.clone());
        self.write(move |txn| {
            let Some(before) = person_by_id(txn, &id)? else {
                return Ok(None);
            };
            let after = apply_change(before.clone(), &change);
            write_person(txn, &after)?;
            if after.disabled_at.is_some() {
                txn.execute("DELETE FROM sessions WHERE person = ?1", [&id])?;
            }
            Ok(Some((before, after)))
        })
        .await
    }

    async fn create_invite(&self, invite: &Invite) -> Result<(), StorageError> {
        let i = invite.clone();
        self.write(move |txn| {
            txn.execute(
                "INSERT INTO invites (digest, person, expires_at, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![i.digest, i.person, i.expires_at, i.created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn invite(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<(Invite, Person)>, StorageError> {
        let digest = digest.to_owned();
        self.read(move |conn| {
            let invite = conn
                .prepare_cached(
                    "SELECT digest, person, expires_at, created_at FROM invites
                     WHERE digest = ?1 AND expires_at > ?2",
                )?
                .query_row(params![digest, now], |row| {
                    Ok(Invite {
                        digest: row.get(0)?,
                        person: row.get(1)?,
                        expires_at: row.get(2)?,
                        created_at: row.get(3)?,
                    })
                })
                .optional()?;
            let Some(invite) = invite else {
                return Ok(None);
            };
            Ok(person_by_id(conn, &invite.person)?.map(|person| (invite, person)))
        })
        .await
    }

    async fn accept_invite(
        &self,
        digest: &str,
        now: i64,
        password_hash: &str,
        name: Option<&str>,
        session: &Session,
    ) -> Result<Option<Person>, StorageError> {
        let digest = digest.to_owned();
        let hash = password_hash.to_owned();
        let name = name.map(str::to_owned);
        let session = session.clone();
        self.write(move |txn| {
            let person: Option<String> = txn
                .query_row(
                    "DELETE FROM invites WHERE digest = ?1 AND expires_at > ?2 RETURNING person",
                    params![digest, now],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(id) = person else { return Ok(None) };
            let Some(mut person) = person_by_id(txn, &id)? else {
                return Ok(None);
            };
            if person.disabled_at.is_some() {
                return Ok(None);
            }
            person.password_hash = Some(hash);
            if let Some(name) = name {
                person.name = name;
            }
            write_person(txn, &person)?;
            insert_session(
                txn,
                &Session {
                    person: person.id.clone(),
                    ..session
                },
            )?;
            Ok(Some(person))
        })
        .await
    }

    async fn create_session(&self, session: &Session) -> Result<(), StorageError> {
        let s = session.clone();
        self.write(move |txn| insert_session(txn, &s)).await
    }

    async fn session(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<(Session, Person)>, StorageError> {
        let digest = digest.to_owned();
        self.read(move |conn| {
            let session = conn
                .prepare_cached(
                    "SELECT digest, person, expires_at, created_at FROM sessions
                     WHERE digest = ?1 AND expires_at > ?2",
                )?
                .query_row(params![digest, now], |row| {
                    Ok(Session {
                        digest: row.get(0)?,
                        person: row.get(1)?,
                        expires_at: row.get(2)?,
                        created_at: row.get(3)?,
                    })
                })
                .optional()?;
            let Some(session) = session else {
                return Ok(None);
            };
            Ok(person_by_id(conn, &session.person)?
                .filter(|p| p.disabled_at.is_none())
                .map(|person| (session, person)))
        })
        .await
    }

    async fn delete_session(&self, digest: &str) -> Result<bool, StorageError> {
        let digest = digest.to_owned();
        self.write(move |txn| {
            Ok(txn.execute("DELETE FROM sessions WHERE digest = ?1", [digest])? > 0)
        })
        .await
    }

    async fn sweep_accounts(&self, now: i64) -> Result<u64, StorageError> {
        self.write(move |txn| {
            let sessions = txn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
            let invites = txn.execute("DELETE FROM invites WHERE expires_at <= ?1", [now])?;
            Ok((sessions + invites) as u64)
        })
        .await
    }
}
