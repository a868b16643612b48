//! [`WebhookStore`] on SQLite: writes go through the writer thread (`SqliteStorage::write`), so
//! a claim's read and write are one step; reads use the read connection.

use super::SqliteStorage;
use crate::storage::StorageError;
use crate::storage::webhooks::{
    AttemptRecord, Delivery, Disabled, Endpoint, NewDelivery, NextStep, Outcome, WebhookStore,
};
use async_trait::async_trait;
use funnel_protocol::BoardId;
use rusqlite::{Connection, OptionalExtension, params};

/// Claims left by a process that died: SQLite is one process's storage, so at open no claim can
/// belong to a live one, and its deliveries are sent again at once (a delivery that was in
/// flight at a kill -9 is repeated with the same `webhook-id`).
pub(super) fn release_claims(conn: &Connection) -> Result<(), StorageError> {
    conn.execute(
        "UPDATE webhook_deliveries SET claimed_until = 0, claim = ''
         WHERE state = 'pending' AND claimed_until > 0",
        [],
    )?;
    Ok(())
}

const ENDPOINT_COLUMNS: &str = "id, url, events, boards, secret, previous_secret, previous_until,
     disabled_at, disabled_reason, cursor, created_at";

fn endpoint_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Endpoint> {
    let events: String = row.get(2)?;
    let boards: String = row.get(3)?;
    let disabled_at: Option<i64> = row.get(7)?;
    let disabled_reason: Option<String> = row.get(8)?;
    Ok(Endpoint {
        id: row.get(0)?,
        url: row.get(1)?,
        events: json_column(2, &events)?,
        boards: json_column::<Vec<String>>(3, &boards)?
            .iter()
            .filter_map(|b| BoardId::parse(b).ok())
            .collect(),
        secret: row.get(4)?,
        previous_secret: row.get(5)?,
        previous_until: row.get(6)?,
        disabled: disabled_at.map(|at| Disabled {
            at,
            reason: disabled_reason.unwrap_or_default(),
        }),
        cursor: row.get(9)?,
        created_at: row.get(10)?,
    })
}

/// A list stored as a JSON array (stored from the types, so one that does not parse was
/// written by other means).
fn json_column<T: serde::de::DeserializeOwned>(index: usize, raw: &str) -> rusqlite::Result<T> {
    serde_json::from_str(raw).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn json_list<T: serde::Serialize>(list: &[T]) -> String {
    // A list of strings always serializes.
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn board_list(boards: &[BoardId]) -> String {
    json_list(&boards.iter().map(BoardId::as_str).collect::<Vec<_>>())
}

fn insert_deliveries(
    txn: &rusqlite::Transaction<'_>,
    endpoint: &str,
    deliveries: &[NewDelivery],
    now: i64,
) -> Result<(), StorageError> {
    let mut insert = txn.prepare_cached(
        "INSERT INTO webhook_deliveries (endpoint, event, payload, state, next_at, created_at)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
    )?;
    for delivery in deliveries {
        insert.execute(params![endpoint, delivery.event, delivery.payload, now])?;
    }
    Ok(())
}

fn attempt_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AttemptRecord> {
    let outcome: String = row.get(8)?;
    let status: Option<i64> = row.get(5)?;
    Ok(AttemptRecord {
        id: row.get(0)?,
        endpoint: row.get(1)?,
        delivery: row.get(2)?,
        event: row.get(3)?,
        attempt: u32::try_from(row.get::<_, i64>(4)?).unwrap_or(u32::MAX),
        status: status.and_then(|s| u16::try_from(s).ok()),
        latency_ms: row.get(6)?,
        error: row.get(7)?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                8,
                rusqlite::types::Type::Text,
                format!("unknown outcome {outcome:?}").into(),
            )
        })?,
        at: row.get(9)?,
    })
}

#[async_trait]
impl WebhookStore for SqliteStorage {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<(), StorageError> {
        let e = endpoint.clone();
        self.write(move |txn| {
            txn.execute(
                "INSERT INTO webhooks (id, url, events, boards, secret, previous_secret,
                     previous_until, disabled_at, disabled_reason, cursor, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    e.id,
                    e.url,
                    json_list(&e.events),
                    board_list(&e.boards),
                    e.secret,
                    e.previous_secret,
                    e.previous_until,
                    e.disabled.as_ref().map(|d| d.at),
                    e.disabled.as_ref().map(|d| d.reason.clone()),
                    e.cursor,
                    e.created_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhooks ORDER BY created_at, id"
            ))?;
            let rows = stmt.query_map([], endpoint_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>, StorageError> {
        let id = id.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhooks WHERE id = ?1"
                ))?
                .query_row([id], endpoint_from_row)
                .optional()?)
        })
        .await
    }

    async fn edit_endpoint(
        &self,
        id: &str,
        url: &str,
        events: &[String],
        boards: &[BoardId],
    ) -> Result<bool, StorageError> {
        let (id, url) = (id.to_owned(), url.to_owned());
        let (events, boards) = (json_list(events), board_list(boards));
        self.write(move |txn| {
            Ok(txn.execute(
                "UPDATE webhooks SET url = ?2, events = ?3, boards = ?4 WHERE id = ?1",
                params![id, url, events, boards],
            )? > 0)
        })
        .await
    }

    async fn enable(&self, id: &str, cursor: i64) -> Result<bool, StorageError> {
        let id = id.to_owned();
        self.write(move |txn| {
            Ok(txn.execute(
                "UPDATE webhooks SET disabled_at = NULL, disabled_reason = NULL,
                     cursor = CASE WHEN disabled_at IS NULL THEN cursor ELSE ?2 END
                 WHERE id = ?1",
                params![id, cursor],
            )? > 0)
        })
        .await
    }

    async fn disable(&self, id: &str, disabled: &Disabled) -> Result<bool, StorageError> {
        let id = id.to_owned();
        let disabled = disabled.clone();
        self.write(move |txn| disable(txn, &id, &disabled)).await
    }

    async fn rotate_secret(
        &self,
        id: &str,
        secret: &str,
        previous_until: i64,
    ) -> Result<bool, StorageError> {
        let (id, secret) = (id.to_owned(), secret.to_owned());
        self.write(move |txn| {
            Ok(txn.execute(
                "UPDATE webhooks SET previous_secret = secret, previous_until = ?3, secret = ?2
                 WHERE id = ?1",
                params![id, secret, previous_until],
            )? > 0)
        })
        .await
    }

    async fn delete_endpoint(&self, id: &str) -> Result<bool, StorageError> {
        let id = id.to_owned();
        self.write(move |txn| {
            txn.execute("DELETE FROM webhook_deliveries WHERE endpoint = ?1", [&id])?;
            txn.execute("DELETE FROM webhook_attempts WHERE endpoint = ?1", [&id])?;
            Ok(txn.execute("DELETE FROM webhooks WHERE id = ?1", [&id])? > 0)
        })
        .await
    }

    async fn advance(
        &self,
        endpoint: &str,
        from: i64,
        to: i64,
        deliveries: &[NewDelivery],
        now: i64,
    ) -> Result<bool, StorageError> {
        let endpoint = endpoint.to_owned();
        let deliveries = deliveries.to_vec();
        self.write(move |txn| {
            let moved = txn.execute(
                "UPDATE webhooks SET cursor = ?3
                 WHERE id = ?1 AND cursor = ?2 AND disabled_at IS NULL",
                params![endpoint, from, to],
            )?;
            if moved == 0 {
                return Ok(false);
            }
            insert_deliveries(txn, &endpoint, &deliveries, now)?;
            Ok(true)
        })
        .await
    }

    async fn requeue(
        &self,
        endpoint: &str,
        deliveries: &[NewDelivery],
        now: i64,
    ) -> Result<(), StorageError> {
        let endpoint = endpoint.to_owned();
        let deliveries = deliveries.to_vec();
        self.write(move |txn| insert_deliveries(txn, &endpoint, &deliveries, now))
            .await
    }

    async fn claim_due(
        &self,
        now: i64,
        claim: &str,
        until: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StorageError> {
        let claim = claim.to_owned();
        self.write(move |txn| {
            let mut stmt = txn.prepare_cached(
                "UPDATE webhook_deliveries SET claim = ?2, claimed_until = ?3
                 WHERE id IN (
                     SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.endpoint
                      WHERE d.state = 'pending' AND d.next_at <= ?1 AND d.claimed_until <= ?1
                        AND w.disabled_at IS NULL
                      ORDER BY d.next_at, d.id LIMIT ?4)
                 RETURNING id, endpoint, event, attempt, payload",
            )?;
            let rows = stmt.query_map(params![now, claim, until, limit as i64], |row| {
                Ok(Delivery {
                    id: row.get(0)?,
                    endpoint: row.get(1)?,
                    event: row.get(2)?,
                    attempt: u32::try_from(row.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                    payload: row.get(4)?,
                    claim: claim.clone(),
                })
            })?;
            let mut claimed = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            // RETURNING gives no order: send the oldest due first.
            claimed.sort_by_key(|d| d.id);
            Ok(claimed)
        })
        .await
    }

    async fn finish(
        &self,
        delivery: &Delivery,
        attempt: &AttemptRecord,
        next: &NextStep,
    ) -> Result<(), StorageError> {
        let delivery = delivery.clone();
        let attempt = attempt.clone();
        let next = next.clone();
        self.write(move |txn| {
            txn.prepare_cached(
                "INSERT INTO webhook_attempts
                     (endpoint, delivery, event, attempt, status, latency_ms, error, outcome, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                attempt.endpoint,
                attempt.delivery,
                attempt.event,
                i64::from(attempt.attempt),
                attempt.status.map(i64::from),
                attempt.latency_ms,
                attempt.error,
                attempt.outcome.as_str(),
                attempt.at
            ])?;
            let (state, next_at, done_at) = match &next {
                NextStep::Delivered => ("delivered", 0, Some(attempt.at)),
                NextStep::RetryAt(at) => ("pending", *at, None),
                NextStep::Failed | NextStep::Disable(_) => ("failed", 0, Some(attempt.at)),
            };
            let changed = txn
                .prepare_cached(
                    "UPDATE webhook_deliveries
                        SET state = ?3, attempt = ?4, next_at = ?5, done_at = ?6,
                            claim = '', claimed_until = 0
                      WHERE id = ?1 AND claim = ?2 AND state = 'pending'",
                )?
                .execute(params![
                    delivery.id,
                    delivery.claim,
                    state,
                    i64::from(attempt.attempt),
                    next_at,
                    done_at
                ])?;
            if changed > 0
                && let NextStep::Disable(reason) = &next
            {
                disable(
                    txn,
                    &delivery.endpoint,
                    &Disabled {
                        at: attempt.at,
                        reason: reason.clone(),
                    },
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn attempts(
        &self,
        endpoint: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StorageError> {
        let endpoint = endpoint.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, endpoint, delivery, event, attempt, status, latency_ms, error, outcome, at
                   FROM webhook_attempts WHERE endpoint = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![endpoint, before.unwrap_or(i64::MAX), limit as i64],
                attempt_from_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn queue(&self) -> Result<(u64, Option<i64>), StorageError> {
        self.read(|conn| {
            let (count, next): (i64, Option<i64>) = conn
                .prepare_cached(
                    "SELECT count(*), MIN(MAX(d.next_at, d.claimed_until))
                       FROM webhook_deliveries d JOIN webhooks w ON w.id = d.endpoint
                      WHERE d.state = 'pending' AND w.disabled_at IS NULL",
                )?
                .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok((u64::try_from(count).unwrap_or(0), next))
        })
        .await
    }

    async fn sweep_deliveries(&self, before: i64) -> Result<u64, StorageError> {
        self.write(move |txn| {
            let deliveries = txn.execute(
                "DELETE FROM webhook_deliveries WHERE done_at IS NOT NULL AND done_at < ?1",
                [before],
            )?;
            let attempts = txn.execute("DELETE FROM webhook_attempts WHERE at < ?1", [before])?;
            Ok((deliveries + attempts) as u64)
        })
        .await
    }
}

fn disable(
    txn: &rusqlite::Transaction<'_>,
    id: &str,
    disabled: &Disabled,
) -> Result<bool, StorageError> {
    let changed = txn.execute(
        "UPDATE webhooks SET disabled_at = ?2, disabled_reason = ?3
         WHERE id = ?1 AND disabled_at IS NULL",
        params![id, disabled.at, disabled.reason],
    )?;
    txn.execute(
        "UPDATE webhook_deliveries SET state = 'cancelled', done_at = ?2, claim = '',
             claimed_until = 0
         WHERE endpoint = ?1 AND state = 'pending'",
        params![id, disabled.at],
    )?;
    let exists = changed > 0
        || txn
            .query_row("SELECT 1 FROM webhooks WHERE id = ?1", [id], |_| Ok(()))
            .optional()?
            .is_some();
    Ok(exists)
}
