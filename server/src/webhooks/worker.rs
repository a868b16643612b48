//! The delivery loop, one per instance: queue what the feed stored since each endpoint's
//! cursor, claim what is due, post it, record the attempt. Wakes when the feed stores an event,
//! when the API asks (a replay, a re-enabled endpoint), when a send finishes, when the next
//! retry is due, and at least every [`POLL`] (another instance's lapsed claims).

use super::address::{GuardedResolver, check_url};
use super::signing::signature_header;
use super::{Payload, WebhookSettings, retry};
use crate::clock::Clock;
use crate::feed::{ChangeEvent, Feed};
use crate::metrics::{Metrics, WebhookOutcomeLabels};
use crate::storage::Storage;
use crate::storage::StorageError;
use crate::storage::webhooks::{AttemptRecord, Delivery, Endpoint, NewDelivery, NextStep, Outcome};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Sends in flight at once, per instance: a slow receiver holds one slot for at most
/// `--webhook-timeout`, and the others go on.
pub const MAX_IN_FLIGHT: usize = 16;

/// Events read from the feed at a time.
pub const FEED_PAGE: usize = 500;

/// Rounds of queueing in one turn before the worker sends what is due (a large backlog is
/// queued over several turns, never starving the sends).
const FEED_ROUNDS: usize = 8;

/// The longest the worker sleeps with nothing due: it then looks at the outbox again for
/// claims that lapsed (an instance died mid-send) and work another instance queued.
pub const POLL: Duration = Duration::from_secs(5);

/// The shortest sleep: a delivery due now that another instance holds is not polled in a
/// tight loop.
const MIN_SLEEP: Duration = Duration::from_millis(20);

/// How much longer than the request timeout a claim lasts: it must outlive the send it covers,
/// or a second instance would send the same delivery while the first still waits.
const CLAIM_MARGIN: Duration = Duration::from_secs(5);

/// How long finished deliveries and the delivery log are kept.
pub const LOG_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How often finished deliveries and old log entries are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);

/// Everything the loop needs.
pub struct WorkerContext {
    pub storage: Arc<dyn Storage>,
    /// Wakes the worker when an event is stored (here or, in a cluster, on another instance).
    pub feed: Feed,
    pub settings: Arc<WebhookSettings>,
    pub metrics: Metrics,
    pub clock: Arc<dyn Clock>,
    /// The API's `Webhooks::wake_worker` notifies it.
    pub wake: Arc<Notify>,
}

/// The HTTP client of deliveries: no redirects followed (a 3xx is a failed attempt), no proxy
/// from the environment (it would bypass the address rule), the timeout, and the resolver that
/// drops internal addresses unless they are allowed.
pub fn http_client(settings: &WebhookSettings) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("funnel-webhooks/", env!("CARGO_PKG_VERSION")));
    let builder = if settings.allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(GuardedResolver))
    };
    builder.build()
}

/// Runs until `shutdown`. Sends in flight then are dropped: their claims lapse (or, on SQLite,
/// are released at the next start) and they are sent again, with the same `webhook-id`.
pub async fn run(ctx: WorkerContext, shutdown: CancellationToken) {
    let client = match http_client(&ctx.settings) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: cannot build the HTTP client; no deliveries");
            return;
        }
    };
    let ctx = Arc::new(ctx);
    // Names this process's claims.
    let claim = funnel_protocol::ids::new_id();
    let mut feed = ctx.feed.clone();
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let mut next_sweep = Instant::now();
    loop {
        for _ in 0..FEED_ROUNDS {
            match queue_new_events(&ctx).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: cannot queue new events; retrying");
                    break;
                }
            }
        }
        // The outbox first (a read): a claim is a write, made only when something is due.
        let now = ctx.clock.now_ms();
        let next_due = match ctx.storage.webhooks().queue().await {
            Ok((depth, next)) => {
                ctx.metrics
                    .webhook_queue_depth
                    .set(i64::try_from(depth).unwrap_or(i64::MAX));
                next
            }
            Err(e) => {
                tracing::warn!(error = %e, "webhooks: cannot read the outbox; retrying");
                None
            }
        };
        let room = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
        let mut claimed_any = false;
        if room > 0 && next_due.is_some_and(|at| at <= now) {
            match claim_due(&ctx, &claim, room).await {
                Ok(claimed) => {
                    claimed_any = !claimed.is_empty();
                    for (endpoint, delivery) in claimed {
                        let (ctx, client) = (Arc::clone(&ctx), client.clone());
                        in_flight
                            .spawn(async move { attempt(&ctx, &client, endpoint, delivery).await });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "webhooks: cannot claim deliveries; retrying"),
            }
        }
        // After a claim, look again at once: more may be due than there was room for.
        let sleep = match next_due {
            _ if claimed_any => Duration::ZERO,
            Some(at) => Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(POLL),
            None => POLL,
        };
        if Instant::now() >= next_sweep {
            next_sweep = Instant::now() + SWEEP_EVERY;
            let before = now.saturating_sub(LOG_RETENTION.as_millis() as i64);
            match ctx.storage.webhooks().sweep_deliveries(before).await {
                Ok(0) => {}
                Ok(swept) => {
                    tracing::debug!(swept, "webhooks: old deliveries and log entries deleted")
                }
                Err(e) => tracing::warn!(error = %e, "webhooks: cannot sweep old deliveries"),
            }
        }
        // With every slot busy, a due delivery waits for a send to finish, not for the clock.
        let sleep = if in_flight.len() >= MAX_IN_FLIGHT {
            POLL
        } else {
            sleep.max(MIN_SLEEP)
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = feed.changed() => {}
            () = ctx.wake.notified() => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Moves every enabled endpoint's cursor past the events stored since, queueing those it
/// wants; true when a full batch was read (more may follow).
async fn queue_new_events(ctx: &WorkerContext) -> Result<bool, StorageError> {
    let endpoints: Vec<Endpoint> = ctx
        .storage
        .webhooks()
        .endpoints()
        .await?
        .into_iter()
        .filter(|e| e.disabled.is_none())
        .collect();
    let Some(from) = endpoints.iter().map(|e| e.cursor).min() else {
        return Ok(false);
    };
    let events = ctx
        .storage
        .changes_after(from, &Default::default(), FEED_PAGE)
        .await?;
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok(false);
    };
    let now = ctx.clock.now_ms();
    for endpoint in endpoints.iter().filter(|e| e.cursor < last) {
        let wanted = deliveries_for(endpoint, &events);
        let queued = wanted.len();
        let moved = ctx
            .storage
            .webhooks()
            .advance(&endpoint.id, endpoint.cursor, last, &wanted, now)
            .await?;
        if moved && queued > 0 {
            tracing::debug!(endpoint = %endpoint.id, queued, "webhooks: deliveries queued");
        }
    }
    Ok(events.len() == FEED_PAGE)
}

/// The deliveries of `events` that `endpoint` wants and has not queued yet (above its cursor).
pub fn deliveries_for(endpoint: &Endpoint, events: &[ChangeEvent]) -> Vec<NewDelivery> {
    events
        .iter()
        .filter(|e| e.id > endpoint.cursor && endpoint.wants(&e.kind, &e.board))
        .map(delivery_of)
        .collect()
}

/// An event as a delivery: its id and the body every attempt sends.
pub fn delivery_of(event: &ChangeEvent) -> NewDelivery {
    NewDelivery {
        event: event.id,
        payload: Payload::new(&event.kind, event.timestamp, &event.data).to_body(),
    }
}

/// Claims up to `room` due deliveries, each with its endpoint (read after the claim, so a
/// rotation or an edit made before it counts).
async fn claim_due(
    ctx: &WorkerContext,
    claim: &str,
    room: usize,
) -> Result<Vec<(Endpoint, Delivery)>, StorageError> {
    let now = ctx.clock.now_ms();
    let until = now + (ctx.settings.timeout + CLAIM_MARGIN).as_millis() as i64;
    let claimed = ctx
        .storage
        .webhooks()
        .claim_due(now, claim, until, room)
        .await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let endpoints: HashMap<String, Endpoint> = ctx
        .storage
        .webhooks()
        .endpoints()
        .await?
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    Ok(claimed
        .into_iter()
        .filter_map(|d| endpoints.get(&d.endpoint).map(|e| (e.clone(), d)))
        .collect())
}

/// What an attempt came to: the answer's status, or why none came.
enum Answer {
    Status(u16),
    Error(String),
}

/// Makes one attempt of `delivery` and records it.
async fn attempt(
    ctx: &WorkerContext,
    client: &reqwest::Client,
    endpoint: Endpoint,
    delivery: Delivery,
) {
    let at = ctx.clock.now_ms();
    let started = Instant::now();
    let answer = send(ctx, client, &endpoint, &delivery, at).await;
    let latency = started.elapsed();
    let made = delivery.attempt.saturating_add(1);
    let (status, error) = match &answer {
        Answer::Status(status) => (Some(*status), None),
        Answer::Error(error) => (None, Some(error.clone())),
    };
    let next = match answer {
        Answer::Status(status) if (200..300).contains(&status) => NextStep::Delivered,
        Answer::Status(410) => NextStep::Disable(
            "the receiver answered 410 Gone: it asked for no more deliveries".into(),
        ),
        _ => match retry::next_delay(made, ctx.settings.retry_scale, retry::random_unit()) {
            Some(delay) => NextStep::RetryAt(at + delay.as_millis() as i64),
            None => NextStep::Failed,
        },
    };
    let outcome = match &next {
        NextStep::Delivered => Outcome::Delivered,
        NextStep::RetryAt(_) => Outcome::Retry,
        NextStep::Failed => Outcome::Failed,
        NextStep::Disable(_) => Outcome::Disabled,
    };
    ctx.metrics
        .webhook_delivery_seconds
        .observe(latency.as_secs_f64());
    ctx.metrics
        .webhook_attempts
        .get_or_create(&WebhookOutcomeLabels {
            outcome: outcome.as_str().to_owned(),
        })
        .inc();
    match outcome {
        Outcome::Delivered | Outcome::Retry => tracing::debug!(
            endpoint = %endpoint.id, event = delivery.event, attempt = made, ?status, ?error,
            outcome = outcome.as_str(), "webhook attempt"
        ),
        Outcome::Failed => tracing::warn!(
            endpoint = %endpoint.id, event = delivery.event, attempts = made, ?status, ?error,
            "webhook delivery failed after its last attempt"
        ),
        Outcome::Disabled => tracing::warn!(
            endpoint = %endpoint.id, url = %endpoint.url,
            "webhook endpoint disabled: its receiver answered 410 Gone"
        ),
    }
    let record = AttemptRecord {
        id: 0,
        endpoint: endpoint.id.clone(),
        delivery: delivery.id,
        event: delivery.event,
        attempt: made,
        status,
        latency_ms: latency.as_millis() as i64,
        error,
        outcome,
        at,
    };
    if let Err(e) = ctx
        .storage
        .webhooks()
        .finish(&delivery, &record, &next)
        .await
    {
        // The claim lapses and the delivery is made again: at least once, never lost.
        tracing::warn!(error = %e, endpoint = %endpoint.id, event = delivery.event,
            "webhooks: cannot record an attempt; it will be repeated");
    }
}

/// Posts the delivery, signed with the endpoint's secrets at `now`.
async fn send(
    ctx: &WorkerContext,
    client: &reqwest::Client,
    endpoint: &Endpoint,
    delivery: &Delivery,
    now: i64,
) -> Answer {
    // Saved URLs were checked, but a flag can change across a restart.
    let url = match check_url(&endpoint.url, ctx.settings.allow_private) {
        Ok(url) => url,
        Err(e) => return Answer::Error(e.to_string()),
    };
    let id = delivery.event.to_string();
    let timestamp = now.div_euclid(1000);
    let signature = match signature_header(
        &endpoint.signing_secrets(now),
        &id,
        timestamp,
        &delivery.payload,
    ) {
        Ok(signature) => signature,
        Err(e) => return Answer::Error(e.to_string()),
    };
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.payload.clone())
        .send()
        .await;
    match sent {
        Ok(response) => Answer::Status(response.status().as_u16()),
        Err(e) => Answer::Error(describe(&e)),
    }
}

/// A failed request with its causes ("error sending request" alone says nothing).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "the receiver did not answer within --webhook-timeout".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

    use super::*;
    use funnel_protocol::BoardId;

    fn event(id: i64, board: &str, kind: &str) -> ChangeEvent {
        ChangeEvent {
            id,
            board: BoardId::parse(board).unwrap(),
            kind: kind.into(),
            timestamp: 1_000 + id,
            data: serde_json::json!({"boardId": board}),
        }
    }

    fn endpoint(events: &[&str], boards: &[&str], cursor: i64) -> Endpoint {
        Endpoint {
            id: "w".into(),
            url: "https://hooks.example.com/".into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            boards: boards.iter().map(|b| BoardId::parse(b).unwrap()).collect(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            previous_secret: None,
            previous_until: 0,
            disabled: None,
            cursor,
            created_at: 0,
        }
    }

    #[test]
    fn an_endpoint_gets_its_types_and_boards_above_its_cursor() {
        let events = [
            event(1, "a", "card.moved"),
            event(2, "a", "card.created"),
            event(3, "b", "card.moved"),
            event(4, "a", "card.moved"),
        ];
        let ids = |e: &Endpoint| -> Vec<i64> {
            deliveries_for(e, &events).iter().map(|d| d.event).collect()
        };
        assert_eq!(ids(&endpoint(&[], &[], 0)), [1, 2, 3, 4]);
        assert_eq!(ids(&endpoint(&["card.moved"], &[], 0)), [1, 3, 4]);
        assert_eq!(ids(&endpoint(&["card.moved"], &["a"], 0)), [1, 4]);
        assert_eq!(
            ids(&endpoint(&[], &["a"], 2)),
            [4],
            "at or below the cursor: queued already"
        );
        assert_eq!(
            ids(&endpoint(&["stage.created"], &[], 0)),
            Vec::<i64>::new()
        );
    }

    #[test]
    fn a_delivery_carries_the_body_it_will_always_send() {
        let delivery = delivery_of(&event(7, "a", "card.won"));
        assert_eq!(delivery.event, 7);
        assert_eq!(
            delivery.payload,
            r#"{"type":"card.won","timestamp":1007,"data":{"boardId":"a"}}"#
        );
    }
}
