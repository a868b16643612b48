//! [`WebhookStore`] on PostgreSQL, where several instances share the outbox: a cursor moves by
//! compare-and-set, and deliveries are claimed with `FOR UPDATE SKIP LOCKED` and an expiry, so
//! one instance sends each delivery at a time and a dead instance's claims lapse.

use super::PostgresStorage;
use crate::storage::StorageError;
use crate::storage::webhooks::{
    AttemptRecord, Delivery, Disabled, Endpoint, NewDelivery, NextStep, Outcome, WebhookStore,
};
use async_trait::async_trait;
use funnel_protocol::BoardId;
use tokio_postgres::GenericClient;

const ENDPOINT_COLUMNS: &str = "id, url, events, boards, secret, previous_secret, previous_until,
     disabled_at, disabled_reason, cursor, created_at";

/// Claims up to `$4` due deliveries for claim `$2` until `$3` (`$1`: now). Rows another
/// instance is claiming at this moment are skipped, not waited for.
const CLAIM_DUE: &str = "
    UPDATE webhook_deliveries SET claim = $2, claimed_until = $3
     WHERE id IN (
         SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.endpoint
          WHERE d.state = 'pending' AND d.next_at <= $1 AND d.claimed_until <= $1
            AND w.disabled_at IS NULL
          ORDER BY d.next_at, d.id LIMIT $4
          FOR UPDATE OF d SKIP LOCKED)
     RETURNING id, endpoint, event, attempt, payload";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::PostgresUnavailable(format!("a stored webhook {what} does not read back: {e}"))
}

fn endpoint_from_row(row: &tokio_postgres::Row) -> Result<Endpoint, StorageError> {
    let events: String = row.try_get(2)?;
    let boards: String = row.try_get(3)?;
    let disabled_at: Option<i64> = row.try_get(7)?;
    let disabled_reason: Option<String> = row.try_get(8)?;
    Ok(Endpoint {
        id: row.try_get(0)?,
        url: row.try_get(1)?,
        events: serde_json::from_str(&events).map_err(|e| corrupt("event list", e))?,
        boards: serde_json::from_str::<Vec<String>>(&boards)
            .map_err(|e| corrupt("board list", e))?
            .iter()
            .filter_map(|b| BoardId::parse(b).ok())
            .collect(),
        secret: row.try_get(4)?,
        previous_secret: row.try_get(5)?,
        previous_until: row.try_get(6)?,
        disabled: disabled_at.map(|at| Disabled {
            at,
            reason: disabled_reason.unwrap_or_default(),
        }),
        cursor: row.try_get(9)?,
        created_at: row.try_get(10)?,
    })
}

fn attempt_from_row(row: &tokio_postgres::Row) -> Result<AttemptRecord, StorageError> {
    let outcome: String = row.try_get(8)?;
    let status: Option<i32> = row.try_get(5)?;
    Ok(AttemptRecord {
        id: row.try_get(0)?,
        endpoint: row.try_get(1)?,
        delivery: row.try_get(2)?,
        event: row.try_get(3)?,
        attempt: u32::try_from(row.try_get::<_, i32>(4)?).unwrap_or(0),
        status: status.and_then(|s| u16::try_from(s).ok()),
        latency_ms: row.try_get(6)?,
        error: row.try_get(7)?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
        at: row.try_get(9)?,
    })
}

fn json_list<T: serde::Serialize>(list: &[T]) -> String {
    // A list of strings always serializes.
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn board_list(boards: &[BoardId]) -> String {
    json_list(&boards.iter().map(BoardId::as_str).collect::<Vec<_>>())
}

fn attempt_column(attempt: u32) -> i32 {
    i32::try_from(attempt).unwrap_or(i32::MAX)
}

async fn insert_deliveries(
    client: &impl GenericClient,
    endpoint: &str,
    deliveries: &[NewDelivery],
    now: i64,
) -> Result<(), StorageError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let events: Vec<i64> = deliveries.iter().map(|d| d.event).collect();
    let payloads: Vec<&str> = deliveries.iter().map(|d| d.payload.as_str()).collect();
    client
        .execute(
            "INSERT INTO webhook_deliveries (endpoint, event, payload, state, next_at, created_at)
             SELECT $1, e, p, 'pending', $4, $4
               FROM unnest($2::BIGINT[], $3::TEXT[]) WITH ORDINALITY AS u(e, p, ord)
              ORDER BY ord",
            &[&endpoint, &events, &payloads, &now],
        )
        .await?;
    Ok(())
}

async fn disable(
    client: &impl GenericClient,
    id: &str,
    disabled: &Disabled,
) -> Result<bool, StorageError> {
    let exists = client
        .query_opt(
            "UPDATE webhooks
                SET disabled_at = COALESCE(disabled_at, $2),
                    disabled_reason = COALESCE(disabled_reason, $3)
              WHERE id = $1 RETURNING 1",
            &[&id, &disabled.at, &disabled.reason],
        )
        .await?
        .is_some();
    client
        .execute(
            "UPDATE webhook_deliveries SET state = 'cancelled', done_at = $2, claim = '',
                 claimed_until = 0
              WHERE endpoint = $1 AND state = 'pending'",
            &[&id, &disabled.at],
        )
        .await?;
    Ok(exists)
}

#[async_trait]
impl WebhookStore for PostgresStorage {
    async fn create_endpoint(&self, e: &Endpoint) -> Result<(), StorageError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO webhooks (id, url, events, boards, secret, previous_secret,
                     previous_until, disabled_at, disabled_reason, cursor, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &e.id,
                    &e.url,
                    &json_list(&e.events),
                    &board_list(&e.boards),
                    &e.secret,
                    &e.previous_secret,
                    &e.previous_until,
                    &e.disabled.as_ref().map(|d| d.at),
                    &e.disabled.as_ref().map(|d| d.reason.clone()),
                    &e.cursor,
                    &e.created_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, StorageError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {ENDPOINT_COLUMNS} FROM webhooks ORDER BY created_at, id"),
                &[],
            )
            .await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>, StorageError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {ENDPOINT_COLUMNS} FROM webhooks WHERE id = $1"),
                &[&id],
            )
            .await?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    async fn edit_endpoint(
        &self,
        id: &str,
        url: &str,
        events: &[String],
        boards: &[BoardId],
    ) -> Result<bool, StorageError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE webhooks SET url = $2, events = $3, boards = $4 WHERE id = $1",
                &[&id, &url, &json_list(events), &board_list(boards)],
            )
            .await?
            > 0)
    }

    async fn enable(&self, id: &str, cursor: i64) -> Result<bool, StorageError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE webhooks SET disabled_at = NULL, disabled_reason = NULL,
                     cursor = CASE WHEN disabled_at IS NULL THEN cursor ELSE $2 END
                 WHERE id = $1",
                &[&id, &cursor],
            )
            .await?
            > 0)
    }

    async fn disable(&self, id: &str, disabled: &Disabled) -> Result<bool, StorageError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let exists = disable(&*txn, id, disabled).await?;
        txn.commit().await?;
        Ok(exists)
    }

    async fn rotate_secret(
        &self,
        id: &str,
        secret: &str,
        previous_until: i64,
    ) -> Result<bool, StorageError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE webhooks SET previous_secret = secret, previous_until = $3, secret = $2
                 WHERE id = $1",
                &[&id, &secret, &previous_until],
            )
            .await?
            > 0)
    }

    async fn delete_endpoint(&self, id: &str) -> Result<bool, StorageError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        txn.execute("DELETE FROM webhook_deliveries WHERE endpoint = $1", &[&id])
            .await?;
        txn.execute("DELETE FROM webhook_attempts WHERE endpoint = $1", &[&id])
            .await?;
        let deleted = txn
            .execute("DELETE FROM webhooks WHERE id = $1", &[&id])
            .await?;
        txn.commit().await?;
        Ok(deleted > 0)
    }

    async fn advance(
        &self,
        endpoint: &str,
        from: i64,
        to: i64,
        deliveries: &[NewDelivery],
        now: i64,
    ) -> Result<bool, StorageError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        // The row lock of this UPDATE makes a second reader wait, then find the cursor moved.
        let moved = txn
            .execute(
                "UPDATE webhooks SET cursor = $3
                  WHERE id = $1 AND cursor = $2 AND disabled_at IS NULL",
                &[&endpoint, &from, &to],
            )
            .await?;
        if moved == 0 {
            return Ok(false);
        }
        insert_deliveries(&*txn, endpoint, deliveries, now).await?;
        txn.commit().await?;
        Ok(true)
    }

    async fn requeue(
        &self,
        endpoint: &str,
        deliveries: &[NewDelivery],
        now: i64,
    ) -> Result<(), StorageError> {
        let client = self.client().await?;
        insert_deliveries(&**client, endpoint, deliveries, now).await
    }

    async fn claim_due(
        &self,
        now: i64,
        claim: &str,
        until: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StorageError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(CLAIM_DUE).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(&statement, &[&now, &claim, &until, &limit])
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                Ok(Delivery {
                    id: row.try_get(0)?,
                    endpoint: row.try_get(1)?,
                    event: row.try_get(2)?,
                    attempt: u32::try_from(row.try_get::<_, i32>(3)?).unwrap_or(0),
                    payload: row.try_get(4)?,
                    claim: claim.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        // RETURNING gives no order: send the oldest due first.
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    async fn finish(
        &self,
        delivery: &Delivery,
        attempt: &AttemptRecord,
        next: &NextStep,
    ) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        txn.execute(
            "INSERT INTO webhook_attempts
                 (endpoint, delivery, event, attempt, status, latency_ms, error, outcome, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &attempt.endpoint,
                &attempt.delivery,
                &attempt.event,
                &attempt_column(attempt.attempt),
                &attempt.status.map(i32::from),
                &attempt.latency_ms,
                &attempt.error,
                &attempt.outcome.as_str(),
                &attempt.at,
            ],
        )
        .await?;
        let (state, next_at, done_at) = match next {
            NextStep::Delivered => ("delivered", 0, Some(attempt.at)),
            NextStep::RetryAt(at) => ("pending", *at, None),
            NextStep::Failed | NextStep::Disable(_) => ("failed", 0, Some(attempt.at)),
        };
        let changed = txn
            .execute(
                "UPDATE webhook_deliveries
                    SET state = $3, attempt = $4, next_at = $5, done_at = $6,
                        claim = '', claimed_until = 0
                  WHERE id = $1 AND claim = $2 AND state = 'pending'",
                &[
                    &delivery.id,
                    &delivery.claim,
                    &state,
                    &attempt_column(attempt.attempt),
                    &next_at,
                    &done_at,
                ],
            )
            .await?;
        if changed > 0
            && let NextStep::Disable(reason) = next
        {
            disable(
                &*txn,
                &delivery.endpoint,
                &Disabled {
                    at: attempt.at,
                    reason: reason.clone(),
                },
            )
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    async fn attempts(
        &self,
        endpoint: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StorageError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT id, endpoint, delivery, event, attempt, status, latency_ms, error,
                        outcome, at
                   FROM webhook_attempts WHERE endpoint = $1 AND id < $2
                  ORDER BY id DESC LIMIT $3",
                &[&endpoint, &before.unwrap_or(i64::MAX), &limit],
            )
            .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn queue(&self) -> Result<(u64, Option<i64>), StorageError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*), MIN(GREATEST(d.next_at, d.claimed_until))
                   FROM webhook_deliveries d JOIN webhooks w ON w.id = d.endpoint
                  WHERE d.state = 'pending' AND w.disabled_at IS NULL",
                &[],
            )
            .await?;
        let count: i64 = row.try_get(0)?;
        Ok((u64::try_from(count).unwrap_or(0), row.try_get(1)?))
    }

    async fn sweep_deliveries(&self, before: i64) -> Result<u64, StorageError> {
        let client = self.client().await?;
        let deliveries = client
            .execute(
                "DELETE FROM webhook_deliveries WHERE done_at IS NOT NULL AND done_at < $1",
                &[&before],
            )
            .await?;
        let attempts = client
            .execute("DELETE FROM webhook_attempts WHERE at < $1", &[&before])
            .await?;
        Ok(deliveries + attempts)
    }
}
