//! [`AccountStore`] on PostgreSQL, which every instance of a cluster shares: a session ended or
//! a person disabled on one instance is refused by all of them at their next request. A change
//! reads the person `FOR UPDATE`, so two admins' changes at once apply one after the other.

use super::PostgresStorage;
use crate::storage::StorageError;
use crate::storage::accounts::{
    AccountStore, Invite, Person, PersonChange, Session, apply_change, board_roles_from_text,
    board_roles_text,
};
use async_trait::async_trait;
use funnel_protocol::policy::Role;
use tokio_postgres::GenericClient;

const PERSON_COLUMNS: &str =
    "id, email, name, role, board_roles, password_hash, disabled_at, created_at, oidc_subject";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::PostgresUnavailable(format!("a stored person's {what} does not read back: {e}"))
}

fn person_from_row(row: &tokio_postgres::Row) -> Result<Person, StorageError> {
    let role: String = row.try_get(3)?;
    let board_roles: String = row.try_get(4)?;
    Ok(Person {
        id: row.try_get(0)?,
        email: row.try_get(1)?,
        name: row.try_get(2)?,
        role: Role::parse(&role).map_err(|e| corrupt("role", e))?,
        board_roles: board_roles_from_text(&board_roles).map_err(|e| corrupt("board roles", e))?,
        password_hash: row.try_get(5)?,
        disabled_at: row.try_get(6)?,
        created_at: row.try_get(7)?,
        oidc_subject: row.try_get(8)?,
    })
}

async fn person_by_id(
    client: &impl GenericClient,
    id: &str,
    lock: bool,
) -> Result<Option<Person>, StorageError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    client
        .query_opt(
            &format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = $1{lock}"),
            &[&id],
        )
        .await?
        .as_ref()
        .map(person_from_row)
        .transpose()
}

async fn write_person(client: &impl GenericClient, p: &Person) -> Result<(), StorageError> {
    client
        .execute(
            "UPDATE people SET name = $2, role = $3, board_roles = $4, password_hash = $5,
                 disabled_at = $6
              WHERE id = $1",
            &[
                &p.id,
                &p.name,
                &p.role.as_str(),
                &board_roles_text(&p.board_roles),
                &p.password_hash,
                &p.disabled_at,
            ],
        )
        .await?;
    Ok(())
}

async fn insert_session(client: &impl GenericClient, s: &Session) -> Result<(), StorageError> {
    client
        .execute(
            "INSERT INTO sessions (digest, person, expires_at, created_at) VALUES ($1, $2, $3, $4)",
            &[&s.digest, &s.person, &s.expires_at, &s.created_at],
        )
        .await?;
    Ok(())
}

fn session_from_row(row: &tokio_postgres::Row) -> Result<Session, StorageError> {
    Ok(Session {
        digest: row.try_get(0)?,
        person: row.try_get(1)?,
        expires_at: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

#[async_trait]
impl AccountStore for PostgresStorage {
    async fn create_person(&self, p: &Person) -> Result<bool, StorageError> {
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO people (id, email, name, role, board_roles, password_hash,
                     disabled_at, created_at, oidc_subject)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                &[
                    &p.id,
                    &p.email,
                    &p.name,
                    &p.role.as_str(),
                    &board_roles_text(&p.board_roles),
                    &p.password_hash,
                    &p.disabled_at,
                    &p.created_at,
                    &p.oidc_subject,
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn people(&self) -> Result<Vec<Person>, StorageError> {
        let client = self.client().await?;
        client
            .query(
                &format!("SELECT {PERSON_COLUMNS} FROM people ORDER BY created_at, id"),
                &[],
            )
            .await?
            .iter()
            .map(person_from_row)
            .collect()
    }

    async fn person(&self, id: &str) -> Result<Option<Person>, StorageError> {
        let client = self.client().await?;
        person_by_id(&**client, id, false).await
    }

    async fn person_by_email(&self, email: &str) -> Result<Option<Person>, StorageError> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!("SELECT {PERSON_COLUMNS} FROM people WHERE email = $1"),
                &[&email],
            )
            .await?
            .as_ref()
            .map(person_from_row)
            .transpose()
    }

    async fn person_by_oidc_subject(&self, subject: &str) -> Result<Option<Person>, StorageError> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!("SELECT {PERSON_COLUMNS} FROM people WHERE oidc_subject = $1"),
                &[&subject],
            )
            .await?
            .as_ref()
            .map(person_from_row)
            .transpose()
    }

    async fn link_oidc_subject(&self, id: &str, subject: &str) -> Result<bool, StorageError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE people SET oidc_subject = $2 WHERE id = $1",
                &[&id, &subject],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn change_person(
        &self,
        id: &str,
        change: &PersonChange,
    ) -> Result<Option<(Person, Person)>, StorageError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let Some(before) = person_by_id(&*txn, id, true).await? else {
            return Ok(None);
        };
        let after = apply_change(before.clone(), change);
        write_person(&*txn, &after).await?;
        if after.disabled_at.is_some() {
            txn.execute("DELETE FROM sessions WHERE person = $1", &[&id])
                .await?;
        }
        txn.commit().await?;
        Ok(Some((before, after)))
    }

    async fn create_invite(&self, i: &Invite) -> Result<(), StorageError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO invites (digest, person, expires_at, created_at)
                 VALUES ($1, $2, $3, $4)",
                &[&i.digest, &i.person, &i.expires_at, &i.created_at],
            )
            .await?;
        Ok(())
    }

    async fn invite(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<(Invite, Person)>, StorageError> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                "SELECT digest, person, expires_at, created_at FROM invites
                  WHERE digest = $1 AND expires_at > $2",
                &[&digest, &now],
            )
            .await?
        else {
            return Ok(None);
        };
        let invite = Invite {
            digest: row.try_get(0)?,
            person: row.try_get(1)?,
            expires_at: row.try_get(2)?,
            created_at: row.try_get(3)?,
        };
        Ok(person_by_id(&**client, &invite.person, false)
            .await?
            .map(|person| (invite, person)))
    }

    async fn accept_invite(
        &self,
        digest: &str,
        now: i64,
        password_hash: &str,
        name: Option<&str>,
        session: &Session,
    ) -> Result<Option<Person>, StorageError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let Some(row) = txn
            .query_opt(
                "DELETE FROM invites WHERE digest = $1 AND expires_at > $2 RETURNING person",
                &[&digest, &now],
            )
            .await?
        else {
            return Ok(None);
        };
        let id: String = row.try_get(0)?;
        let Some(mut person) = person_by_id(&*txn, &id, true).await? else {
            return Ok(None);
        };
        if person.disabled_at.is_some() {
            // Rolled back: the invite stays for when they are enabled again.
            return Ok(None);
        }
        person.password_hash = Some(password_hash.to_owned());
        if let Some(name) = name {
            person.name = name.to_owned();
        }
        write_person(&*txn, &person).await?;
        insert_session(
            &*txn,
            &Session {
                person: person.id.clone(),
                ..session.clone()
            },
        )
        .await?;
        txn.commit().await?;
        Ok(Some(person))
    }

    async fn create_session(&self, session: &Session) -> Result<(), StorageError> {
        let client = self.client().await?;
        insert_session(&**client, session).await
    }

    async fn session(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<(Session, Person)>, StorageError> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                "SELECT digest, person, expires_at, created_at FROM sessions
                  WHERE digest = $1 AND expires_at > $2",
                &[&digest, &now],
            )
            .await?
        else {
            return Ok(None);
        };
        let session = session_from_row(&row)?;
        Ok(person_by_id(&**client, &session.person, false)
            .await?
            .filter(|p| p.disabled_at.is_none())
            .map(|person| (session, person)))
    }

    async fn delete_session(&self, digest: &str) -> Result<bool, StorageError> {
        let client = self.client().await?;
        Ok(client
            .execute("DELETE FROM sessions WHERE digest = $1", &[&digest])
            .await?
            > 0)
    }

    async fn sweep_accounts(&self, now: i64) -> Result<u64, StorageError> {
        let client = self.client().await?;
        let sessions = client
            .execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now])
            .await?;
        let invites = client
            .execute("DELETE FROM invites WHERE expires_at <= $1", &[&now])
            .await?;
        Ok(sessions + invites)
    }
}
