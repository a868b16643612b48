//! The storage contract, run against SQLite and PostgreSQL alike (one set of test functions,
//! instantiated per backend), then what only PostgreSQL must survive: several instances
//! (several pools, as several server processes have) writing one board at once.
//!
//! PostgreSQL is found through `FUNNEL_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test works in a fresh schema of its own,
//! dropped at the end. A test fails, never skips, when the server is unreachable.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use support::{TestDatabase, connect_postgres};

use bytes::Bytes;
use funnel_protocol::BoardId;
use funnel_protocol::timeline::{TimelineDirection, TimelineKind};
use funnel_server::feed::{ChangeFilter, NewChange};
use funnel_server::storage::postgres::PostgresStorage;
use funnel_server::storage::sqlite::SqliteStorage;
use funnel_server::storage::webhooks::{
    AttemptRecord, Delivery, Disabled, Endpoint, NewDelivery, NextStep, Outcome,
};
use funnel_server::storage::{
    BoardMeta, InboundMail, KEY_IN_FLIGHT_MS, KEY_LIFETIME_MS, KeptResponse, KeyClaim, KeyRequest,
    MAIL_IN_FLIGHT_MS, MailClaim, Seq, Storage, StorageError, StoredBoard, TimelineEvent,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use yrs::{Doc, Map, Transact};

/// The longest a test's loop may run.
const WAIT: Duration = Duration::from_secs(30);

/// Storage under test, and what keeps its data alive between instances (a directory, a schema).
trait Backend {
    /// A new instance over this backend's data: a process (re)starting.
    async fn open(&self) -> Arc<dyn Storage>;
}

struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    async fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Backend for Sqlite {
    async fn open(&self) -> Arc<dyn Storage> {
        Arc::new(SqliteStorage::open(self.dir.path()).unwrap())
    }
}

/// A fresh schema in the test database (`support::TestDatabase`), dropped when this drops.
struct Postgres(TestDatabase);

impl std::ops::Deref for Postgres {
    type Target = TestDatabase;

    fn deref(&self) -> &TestDatabase {
        &self.0
    }
}

impl Postgres {
    async fn new() -> Self {
        Self(TestDatabase::new().await)
    }

    async fn instance(&self) -> PostgresStorage {
        PostgresStorage::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("opening PostgreSQL storage: {e}"))
    }
}

impl Backend for Postgres {
    async fn open(&self) -> Arc<dyn Storage> {
        Arc::new(self.instance().await)
    }
}

fn board(id: &str) -> BoardId {
    BoardId::parse(id).unwrap()
}

fn meta(board: &BoardId) -> BoardMeta {
    BoardMeta {
        id: board.clone(),
        entity: "deal".into(),
        name: format!("Board {board}"),
        created_at: 0,
        archived_at: None,
    }
}

/// An update from a document of its own that sets key `key` of the root map `m`: updates of
/// distinct keys merge into one map holding them all.
fn update_with(key: &str) -> Bytes {
    let doc = Doc::new();
    let map = doc.get_or_insert_map("m");
    let mut txn = doc.transact_mut();
    map.insert(&mut txn, key, true);
    Bytes::from(txn.encode_update_v1())
}

/// The keys of `m` after applying every entry in order.
fn keys_of(stored: &StoredBoard) -> BTreeSet<String> {
    let doc = stored.to_doc(&board("any")).unwrap();
    let map = doc.get_or_insert_map("m");
    let txn = doc.transact();
    map.keys(&txn).map(str::to_owned).collect()
}

fn keys(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn seqs(stored: &StoredBoard) -> Vec<Seq> {
    stored.entries.iter().map(|(seq, _)| *seq).collect()
}

fn event(board: &BoardId, card: &str, text: &str) -> TimelineEvent {
    TimelineEvent {
        id: 0,
        board: board.clone(),
        card: card.into(),
        at: 1_700_000_000_000,
        kind: TimelineKind::Comment,
        direction: TimelineDirection::None,
        user: "u1".into(),
        text: text.into(),
    }
}

/// The contract, one function per behaviour; the macro below runs each against every backend.
mod contract {
    use super::*;

    pub async fn create_then_load(backend: &impl Backend) {
        let storage = backend.open().await;
        let b = board("b1");
        assert!(storage.load(&b).await.unwrap().is_none());
        assert!(storage.load_since(&b, 0).await.unwrap().is_none());
        assert!(storage.meta(&b).await.unwrap().is_none());
        assert!(storage.create(&meta(&b), update_with("a")).await.unwrap());
        let stored = storage.load(&b).await.unwrap().unwrap();
        assert_eq!((seqs(&stored), stored.tail_len), (vec![1], 1));
        assert_eq!(keys_of(&stored), keys(&["a"]));
        let listed = storage.meta(&b).await.unwrap().unwrap();
        assert_eq!(
            (listed.entity.as_str(), listed.name.as_str()),
            ("deal", "Board b1")
        );
        assert!(listed.created_at > 0);
        storage.close().await;
    }

    pub async fn racing_creators_have_one_winner(backend: &impl Backend) {
        let storage = backend.open().await;
        let b = board("raced");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let storage = Arc::clone(&storage);
                let b = b.clone();
                tokio::spawn(async move {
                    storage
                        .create(&meta(&b), update_with(&format!("k{i}")))
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            if task.await.unwrap().unwrap() {
                winners.push(format!("k{i}"));
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        let stored = storage.load(&b).await.unwrap().unwrap();
        assert_eq!(seqs(&stored), [1]);
        assert_eq!(keys_of(&stored), keys(&[winners[0].as_str()]));
        storage.close().await;
    }

    pub async fn append_compact_and_reload(backend: &impl Backend) {
        let storage = backend.open().await;
        let b = board("b1");
        assert!(storage.create(&meta(&b), update_with("a")).await.unwrap());
        assert!(!storage.create(&meta(&b), update_with("z")).await.unwrap());
        let seq = storage
            .append(&b, vec![update_with("b"), update_with("c")])
            .await
            .unwrap();
        assert_eq!(seq, 3);
        assert_eq!(storage.append(&b, vec![]).await.unwrap(), 3);
        storage.compact(&b).await.unwrap();
        assert_eq!(storage.append(&b, vec![update_with("d")]).await.unwrap(), 4);
        let stored = storage.load(&b).await.unwrap().unwrap();
        assert_eq!((seqs(&stored), stored.tail_len), (vec![3, 4], 1));
        assert_eq!(keys_of(&stored), keys(&["a", "b", "c", "d"]));
        storage.close().await;
        assert!(matches!(
            storage.append(&b, vec![update_with("e")]).await,
            Err(StorageError::Closed)
        ));
        assert!(storage.ping().await.is_err());

        // A second process life: seq numbering goes on after the snapshot.
        let storage = backend.open().await;
        storage.ping().await.unwrap();
        storage.compact(&b).await.unwrap();
        let stored = storage.load(&b).await.unwrap().unwrap();
        assert_eq!((seqs(&stored), stored.tail_len), (vec![4], 0));
        // Nothing left to fold: compaction changes nothing.
        storage.compact(&b).await.unwrap();
        assert_eq!(storage.append(&b, vec![update_with("e")]).await.unwrap(), 5);
        let stored = storage.load(&b).await.unwrap().unwrap();
        assert_eq!(keys_of(&stored), keys(&["a", "b", "c", "d", "e"]));
        storage.close().await;
    }

    /// The single writer's compaction: it hands storage its own document's state up to a seq.
    pub async fn put_snapshot_replaces_the_entries_it_covers(backend: &impl Backend) {
        let storage = backend.open().await;
        let b = board("b1");
        assert!(storage.create(&meta(&b), update_with("a")).await.unwrap());
        storage
            .append(&b, vec![update_with("b"), update_with("c")])
            .await
            .unwrap();
        // What a writer holding entries 1 and 2 has: a and b.
        let upto_two = storage.load(&b).await.unwrap().unwrap();
        let two = StoredBoard {
            entries: upto_two.entries[..2].to_vec(),
            tail_len: 2,
        };
        storage
            .put_snapshot(&b, 2, two.fold(&b).unwrap())
            .await
            .unwrap();
        let stored = storage.load(&b).await.unwrap().unwrap();
        assert_eq!((seqs(&stored), stored.tail_len), (vec![2, 3], 1));
        assert_eq!(keys_of(&stored), keys(&["a", "b", "c"]));
        // An older snapshot does not replace a newer one.
        storage.put_snapshot(&b, 1, update_with("a")).await.unwrap();
        let stored = storage.load(&b).await.unwrap().unwrap();
        assert_eq!(seqs(&stored), vec![2, 3]);
        assert_eq!(keys_of(&stored), keys(&["a", "b", "c"]));
        assert_eq!(storage.append(&b, vec![update_with("d")]).await.unwrap(), 4);
        storage.close().await;
    }

    pub async fn load_since_before_and_after_compaction(backend: &impl Backend) {
        let storage = backend.open().await;
        let b = board("b1");
        assert!(storage.load_since(&b, 3).await.unwrap().is_none());
        storage.create(&meta(&b), update_with("a")).await.unwrap();
        let last = storage
            .append(
                &b,
                vec![update_with("b"), update_with("c"), update_with("d")],
            )
            .await
            .unwrap();
        assert_eq!(last, 4);
        let since = storage.load_since(&b, 2).await.unwrap().unwrap();
        assert_eq!((seqs(&since), since.tail_len), (vec![3, 4], 2));
        assert_eq!(keys_of(&since), keys(&["c", "d"]));
        let nothing = storage.load_since(&b, 4).await.unwrap().unwrap();
        assert_eq!((seqs(&nothing), nothing.tail_len), (vec![], 0));

        // Entries 3 and 4 are folded now: the snapshot stands in for them.
        storage.compact(&b).await.unwrap();
        let since = storage.load_since(&b, 2).await.unwrap().unwrap();
        assert_eq!((seqs(&since), since.tail_len), (vec![4], 0));
        storage.append(&b, vec![update_with("e")]).await.unwrap();
        let since = storage.load_since(&b, 2).await.unwrap().unwrap();
        assert_eq!((seqs(&since), since.tail_len), (vec![4, 5], 1));
        assert_eq!(keys_of(&since), keys(&["a", "b", "c", "d", "e"]));
        // Above the snapshot, only the tail.
        let since = storage.load_since(&b, 4).await.unwrap().unwrap();
        assert_eq!((seqs(&since), since.tail_len), (vec![5], 1));
        assert_eq!(keys_of(&since), keys(&["e"]));
        let nothing = storage.load_since(&b, 5).await.unwrap().unwrap();
        assert!(nothing.entries.is_empty());
        // A replica that had applied up to 2 and applies what load_since gives converges.
        let full = storage.load(&b).await.unwrap().unwrap();
        assert_eq!(keys_of(&full), keys(&["a", "b", "c", "d", "e"]));
        storage.close().await;
    }

    pub async fn timeline_pages_newest_first(backend: &impl Backend) {
        let storage = backend.open().await;
        let b = board("b1");
        storage.create(&meta(&b), update_with("a")).await.unwrap();
        let mut added = Vec::new();
        for i in 0..5 {
            added.push(
                storage
                    .add_event(event(&b, "c1", &format!("comment {i}")), None)
                    .await
                    .unwrap(),
            );
        }
        storage
            .add_event(event(&b, "c2", "elsewhere"), None)
            .await
            .unwrap();
        storage
            .add_event(event(&board("other"), "c1", "other board"), None)
            .await
            .unwrap();
        let ids: Vec<i64> = added.iter().map(|e| e.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        // The board's budget counts its own events, as the room counts them.
        let c2 = event(&b, "c2", "elsewhere");
        let expected: usize = added.iter().map(|e| e.stored_len()).sum::<usize>() + c2.stored_len();
        assert_eq!(storage.timeline_bytes(&b).await.unwrap(), expected);
        assert_eq!(storage.timeline_bytes(&board("none")).await.unwrap(), 0);
        let mut pages = Vec::new();
        let mut before = None;
        for _ in 0..10 {
            let page = storage.events(&b, "c1", before, 2).await.unwrap();
            if page.is_empty() {
                break;
            }
            before = page.last().map(|e| e.id);
            pages.push(page.iter().map(|e| e.text.clone()).collect::<Vec<_>>());
        }
        assert_eq!(
            pages,
            [
                vec!["comment 4", "comment 3"],
                vec!["comment 2", "comment 1"],
                vec!["comment 0"]
            ]
        );
        let newest = &storage.events(&b, "c1", None, 1).await.unwrap()[0];
        assert_eq!(newest, &added[4]);
        storage.close().await;
    }

    pub async fn wakeups_are_set_moved_and_cleared(backend: &impl Backend) {
        let storage = backend.open().await;
        let (a, b) = (board("a"), board("b"));
        storage.set_wakeup(&a, Some(100)).await.unwrap();
        storage.set_wakeup(&b, Some(50)).await.unwrap();
        storage.set_wakeup(&a, Some(200)).await.unwrap();
        assert_eq!(
            storage.wakeups().await.unwrap(),
            [(b.clone(), 50), (a.clone(), 200)]
        );
        storage.set_wakeup(&b, None).await.unwrap();
        storage.set_wakeup(&board("never-set"), None).await.unwrap();
        assert_eq!(storage.wakeups().await.unwrap(), [(a, 200)]);
        storage.close().await;
    }

    pub async fn boards_are_renamed_and_listed_oldest_first(backend: &impl Backend) {
        let storage = backend.open().await;
        let (a, b) = (board("a"), board("b"));
        storage.create(&meta(&a), update_with("x")).await.unwrap();
        // Creation times are milliseconds: keep the order unambiguous.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut lead = meta(&b);
        lead.entity = "lead".into();
        storage.create(&lead, update_with("y")).await.unwrap();
        storage.rename(&a, "Q4 deals").await.unwrap();
        let listed: Vec<(String, String, String)> = storage
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.id.to_string(), m.entity, m.name))
            .collect();
        assert_eq!(
            listed,
            [
                ("a".into(), "deal".into(), "Q4 deals".into()),
                ("b".into(), "lead".into(), "Board b".into())
            ]
        );
        assert_eq!(storage.meta(&b).await.unwrap().unwrap().entity, "lead");
        storage.close().await;
    }

    pub async fn append_fenced_refuses_a_lower_fence(backend: &impl Backend) {
        let storage = backend.open().await;
        let b = board("b1");
        storage.create(&meta(&b), update_with("a")).await.unwrap();
        assert_eq!(
            storage
                .append_fenced(&b, vec![update_with("f5")], 5)
                .await
                .unwrap(),
            2
        );
        match storage
            .append_fenced(&b, vec![update_with("f3"), update_with("f3b")], 3)
            .await
        {
            Err(StorageError::Fenced {
                board: refused,
                fence: 3,
                current: 5,
            }) => assert_eq!(refused, b),
            other => panic!("expected a fenced refusal, got {other:?}"),
        }
        // Refused whole: nothing of it was written, and the seq did not move.
        let stored = storage.load(&b).await.unwrap().unwrap();
        assert_eq!(seqs(&stored), [1, 2]);
        assert_eq!(keys_of(&stored), keys(&["a", "f5"]));
        // An equal fence is the same holder; a higher one a newer holder.
        assert_eq!(
            storage
                .append_fenced(&b, vec![update_with("f5b")], 5)
                .await
                .unwrap(),
            3
        );
        assert_eq!(storage.append_fenced(&b, vec![], 7).await.unwrap(), 3);
        assert!(matches!(
            storage.append_fenced(&b, vec![update_with("f6")], 6).await,
            Err(StorageError::Fenced {
                fence: 6,
                current: 7,
                ..
            })
        ));
        // Clients' updates are not fenced.
        assert_eq!(
            storage
                .append(&b, vec![update_with("client")])
                .await
                .unwrap(),
            4
        );
        assert_eq!(
            storage
                .append_fenced(&b, vec![update_with("f8")], 8)
                .await
                .unwrap(),
            5
        );
        let stored = storage.load(&b).await.unwrap().unwrap();
        assert_eq!(keys_of(&stored), keys(&["a", "client", "f5", "f5b", "f8"]));
        let missing = board("missing");
        assert!(matches!(
            storage.append_fenced(&missing, vec![update_with("x")], 1).await,
            Err(StorageError::NoSuchBoard(id)) if id == missing
        ));
        assert!(matches!(
            storage.append(&missing, vec![update_with("x")]).await,
            Err(StorageError::NoSuchBoard(_))
        ));
        assert!(storage.load(&missing).await.unwrap().is_none());
        storage.close().await;
    }

    pub async fn concurrent_calls_get_consecutive_seqs(backend: &impl Backend) {
        let storage = backend.open().await;
        let b = board("b1");
        storage.create(&meta(&b), update_with("a")).await.unwrap();
        let calls = run_appenders(&[Arc::clone(&storage)], &b, 4, 10).await;
        check_seqs_and_content(storage.as_ref(), &b, &calls).await;
        storage.close().await;
    }

    pub async fn a_restart_keeps_everything(backend: &impl Backend) {
        let storage = backend.open().await;
        let b = board("b1");
        storage.create(&meta(&b), update_with("a")).await.unwrap();
        storage.append(&b, vec![update_with("b")]).await.unwrap();
        storage.compact(&b).await.unwrap();
        storage
            .append_fenced(&b, vec![update_with("c")], 4)
            .await
            .unwrap();
        storage.rename(&b, "Renamed").await.unwrap();
        storage.set_wakeup(&b, Some(1234)).await.unwrap();
        let added = storage
            .add_event(event(&b, "c1", "hello"), None)
            .await
            .unwrap();
        storage.close().await;

        let storage = backend.open().await;
        let stored = storage.load(&b).await.unwrap().unwrap();
        assert_eq!((seqs(&stored), stored.tail_len), (vec![2, 3], 1));
        assert_eq!(keys_of(&stored), keys(&["a", "b", "c"]));
        assert_eq!(storage.meta(&b).await.unwrap().unwrap().name, "Renamed");
        assert_eq!(storage.wakeups().await.unwrap(), [(b.clone(), 1234)]);
        assert_eq!(storage.events(&b, "c1", None, 10).await.unwrap(), [added]);
        assert!(matches!(
            storage.append_fenced(&b, vec![update_with("old")], 3).await,
            Err(StorageError::Fenced { current: 4, .. })
        ));
        assert_eq!(storage.append(&b, vec![update_with("d")]).await.unwrap(), 4);
        storage.close().await;
    }

    fn key_request(
        caller: &str,
        key: &str,
        fingerprint: &str,
        token: &str,
        now: i64,
    ) -> KeyRequest {
        KeyRequest {
            caller: caller.into(),
            key: key.into(),
            fingerprint: fingerprint.into(),
            token: token.into(),
            now,
        }
    }

    fn created(body: &str) -> KeptResponse {
        KeptResponse {
            status: 201,
            content_type: Some("application/json".into()),
            location: Some("/api/v1/boards/b1".into()),
            body: Bytes::from(body.to_owned()),
        }
    }

    pub async fn idempotency_keys_hold_their_first_response(backend: &impl Backend) {
        let storage = backend.open().await;
        let now = 1_000_000;
        let first = key_request("ann", "k1", "f1", "t1", now);
        assert_eq!(storage.claim_key(&first).await.unwrap(), KeyClaim::Claimed);
        // In flight: a second request with the key (same or other body) is told so.
        let again = key_request("ann", "k1", "f2", "t2", now + 1);
        assert_eq!(
            storage.claim_key(&again).await.unwrap(),
            KeyClaim::InFlight {
                fingerprint: "f1".into()
            }
        );
        // Another caller's key of the same name is another key.
        let bob = key_request("bob", "k1", "f9", "t3", now);
        assert_eq!(storage.claim_key(&bob).await.unwrap(), KeyClaim::Claimed);
        // Only the claim's own token finishes it.
        storage
            .finish_key("ann", "k1", "t2", &created("wrong"))
            .await
            .unwrap();
        storage
            .finish_key("ann", "k1", "t1", &created("{\"id\":\"b1\"}"))
            .await
            .unwrap();
        let done = KeyClaim::Done {
            fingerprint: "f1".into(),
            response: created("{\"id\":\"b1\"}"),
        };
        assert_eq!(storage.claim_key(&again).await.unwrap(), done);
        // A finished key is not released, and holds across a restart.
        storage.release_key("ann", "k1", "t1").await.unwrap();
        storage.close().await;
        let storage = backend.open().await;
        assert_eq!(storage.claim_key(&again).await.unwrap(), done);
        // Just before its lifetime ends it still holds; then it is free again, and swept.
        let late = key_request("ann", "k1", "f2", "t4", now + KEY_LIFETIME_MS - 1);
        assert_eq!(storage.claim_key(&late).await.unwrap(), done);
        assert_eq!(
            storage.sweep_keys(now + KEY_LIFETIME_MS - 1).await.unwrap(),
            0
        );
        assert_eq!(storage.sweep_keys(now + KEY_LIFETIME_MS).await.unwrap(), 2);
        let expired = key_request("ann", "k1", "f2", "t5", now + KEY_LIFETIME_MS);
        assert_eq!(
            storage.claim_key(&expired).await.unwrap(),
            KeyClaim::Claimed
        );
        storage.close().await;
    }

    pub async fn released_and_abandoned_keys_are_claimed_again(backend: &impl Backend) {
        let storage = backend.open().await;
        let now = 5_000_000;
        let first = key_request("ann", "k", "f1", "t1", now);
        assert_eq!(storage.claim_key(&first).await.unwrap(), KeyClaim::Claimed);
        // A failed request frees its key (only with its token).
        storage.release_key("ann", "k", "other").await.unwrap();
        let retry = key_request("ann", "k", "f1", "t2", now + 10);
        assert!(matches!(
            storage.claim_key(&retry).await.unwrap(),
            KeyClaim::InFlight { .. }
        ));
        storage.release_key("ann", "k", "t1").await.unwrap();
        assert_eq!(storage.claim_key(&retry).await.unwrap(), KeyClaim::Claimed);
        // A claim whose server died stays in flight until KEY_IN_FLIGHT_MS, then is free; the
        // dead claim's late answer is then ignored.
        let soon = key_request("ann", "k", "f1", "t3", now + 10 + KEY_IN_FLIGHT_MS - 1);
        assert!(matches!(
            storage.claim_key(&soon).await.unwrap(),
            KeyClaim::InFlight { .. }
        ));
        let later = key_request("ann", "k", "f1", "t4", now + 10 + KEY_IN_FLIGHT_MS);
        assert_eq!(storage.claim_key(&later).await.unwrap(), KeyClaim::Claimed);
        storage
            .finish_key("ann", "k", "t2", &created("stale"))
            .await
            .unwrap();
        storage
            .finish_key("ann", "k", "t4", &created("fresh"))
            .await
            .unwrap();
        let KeyClaim::Done { response, .. } = storage.claim_key(&retry).await.unwrap() else {
            panic!("the key should be done");
        };
        assert_eq!(response.body, Bytes::from("fresh"));
        storage.close().await;
    }

    fn inbound(
        board: &BoardId,
        message_id: &str,
        card: &str,
        event_id: i64,
        at: i64,
    ) -> InboundMail {
        InboundMail {
            board: board.clone(),
            message_id: message_id.to_owned(),
            card: card.to_owned(),
            event_id,
            subject: format!("subject of {message_id}"),
            from_address: "Ada@Example.com".into(),
            from_name: "Ada".into(),
            at,
        }
    }

    fn endpoint(id: &str, boards: Vec<BoardId>, cursor: i64) -> Endpoint {
        Endpoint {
            id: id.into(),
            url: "https://hooks.example.com/in".into(),
            events: vec!["card.moved".into()],
            boards,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            previous_secret: None,
            previous_until: 0,
            disabled: None,
            cursor,
            created_at: 1_700_000_000_000,
        }
    }

    fn deliveries(events: &[i64]) -> Vec<NewDelivery> {
        events
            .iter()
            .map(|event| NewDelivery {
                event: *event,
                payload: format!("{{\"event\":{event}}}"),
            })
            .collect()
    }

    fn attempt_of(
        delivery: &Delivery,
        outcome: Outcome,
        status: Option<u16>,
        at: i64,
    ) -> AttemptRecord {
        AttemptRecord {
            id: 0,
            endpoint: delivery.endpoint.clone(),
            delivery: delivery.id,
            event: delivery.event,
            attempt: delivery.attempt + 1,
            status,
            latency_ms: 12,
            error: status.is_none().then(|| "connection refused".to_owned()),
            outcome,
            at,
        }
    }

    /// A Message-ID is taken once per board: a second claim finds where the first went (across
    /// a restart); one in flight holds until released or abandoned; replies find their card.
    /// Settles a claimed message with its timeline entry, in one transaction, as the mail path
    /// does; returns the record with the entry's id.
    async fn settle(storage: &dyn Storage, mail: InboundMail) -> InboundMail {
        let entry = TimelineEvent {
            kind: TimelineKind::Email,
            direction: TimelineDirection::Incoming,
            ..event(&mail.board, &mail.card, "the message")
        };
        let stored = storage.add_event(entry, Some(mail.clone())).await.unwrap();
        let settled = InboundMail {
            event_id: stored.id,
            ..mail
        };
        assert_eq!(
            storage
                .mails_of_events(&settled.board, &[stored.id])
                .await
                .unwrap(),
            vec![settled.clone()],
            "the entry is stored with its mail"
        );
        settled
    }

    pub async fn inbound_mail_is_taken_once_per_board(backend: &impl Backend) {
        let storage = backend.open().await;
        let (b1, b2) = (board("mail-1"), board("mail-2"));
        let now = 7_000_000;
        assert_eq!(
            storage.claim_mail(&b1, "m1@x", now).await.unwrap(),
            MailClaim::Claimed
        );
        assert_eq!(
            storage.claim_mail(&b1, "m1@x", now + 5).await.unwrap(),
            MailClaim::InFlight,
            "a second delivery while the first is taken"
        );
        assert_eq!(
            storage.claim_mail(&b2, "m1@x", now).await.unwrap(),
            MailClaim::Claimed,
            "another board takes the same message on its own"
        );
        let first = settle(&*storage, inbound(&b1, "m1@x", "card-a", 0, now)).await;
        assert_eq!(
            storage.claim_mail(&b1, "m1@x", now + 10).await.unwrap(),
            MailClaim::Taken(first.clone())
        );
        // A released claim is free at once; an abandoned one after MAIL_IN_FLIGHT_MS.
        storage.release_mail(&b2, "m1@x").await.unwrap();
        assert_eq!(
            storage.claim_mail(&b2, "m1@x", now + 20).await.unwrap(),
            MailClaim::Claimed
        );
        assert_eq!(
            storage
                .claim_mail(&b2, "m1@x", now + 20 + MAIL_IN_FLIGHT_MS - 1)
                .await
                .unwrap(),
            MailClaim::InFlight
        );
        assert_eq!(
            storage
                .claim_mail(&b2, "m1@x", now + 20 + MAIL_IN_FLIGHT_MS)
                .await
                .unwrap(),
            MailClaim::Claimed
        );
        // Releasing a taken message does nothing.
        storage.release_mail(&b1, "m1@x").await.unwrap();
        assert!(matches!(
            storage.claim_mail(&b1, "m1@x", now + 30).await.unwrap(),
            MailClaim::Taken(_)
        ));
        // Replies: the newest taken message among the ids names the card; in-flight ones and
        // other boards' do not count.
        assert_eq!(
            storage.claim_mail(&b1, "m2@x", now + 40).await.unwrap(),
            MailClaim::Claimed
        );
        let second = settle(&*storage, inbound(&b1, "m2@x", "card-b", 0, now + 40)).await;
        assert_eq!(
            storage.claim_mail(&b1, "m3@x", now + 50).await.unwrap(),
            MailClaim::Claimed
        );
        let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            storage
                .mail_card(&b1, &ids(&["m1@x", "m2@x", "m3@x"]))
                .await
                .unwrap(),
            Some("card-b".to_owned())
        );
        assert_eq!(
            storage
                .mail_card(&b1, &ids(&["nope@x", "m1@x"]))
                .await
                .unwrap(),
            Some("card-a".to_owned())
        );
        assert_eq!(storage.mail_card(&b1, &ids(&["m3@x"])).await.unwrap(), None);
        assert_eq!(storage.mail_card(&b2, &ids(&["m2@x"])).await.unwrap(), None);
        let mut found = storage
            .mails_of_events(&b1, &[second.event_id, first.event_id, 99])
            .await
            .unwrap();
        found.sort_by_key(|m| m.event_id);
        assert_eq!(found, vec![first.clone(), second.clone()]);
        storage.close().await;
        // Durable: a new instance still knows both.
        let reopened = backend.open().await;
        assert_eq!(
            reopened.claim_mail(&b1, "m2@x", now + 60).await.unwrap(),
            MailClaim::Taken(second)
        );
        reopened.close().await;
    }

    pub async fn webhook_endpoints_are_stored_edited_rotated_and_deleted(backend: &impl Backend) {
        let storage = backend.open().await;
        let hooks = storage.webhooks();
        let b = board("b-hooks");
        let first = endpoint("w1", vec![b.clone()], 7);
        hooks.create_endpoint(&first).await.unwrap();
        hooks
            .create_endpoint(&endpoint("w2", vec![], 0))
            .await
            .unwrap();
        assert_eq!(hooks.endpoint("w1").await.unwrap(), Some(first.clone()));
        assert_eq!(hooks.endpoint("nope").await.unwrap(), None);
        let ids: Vec<String> = hooks
            .endpoints()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["w1", "w2"]);
        // An edit changes url, events and boards, never the cursor or the secret.
        let events = vec!["card.created".to_owned(), "card.won".to_owned()];
        assert!(
            hooks
                .edit_endpoint("w1", "https://other.example.com/", &events, &[])
                .await
                .unwrap()
        );
        assert!(
            !hooks
                .edit_endpoint("nope", "https://x.example.com/", &[], &[])
                .await
                .unwrap()
        );
        let edited = hooks.endpoint("w1").await.unwrap().unwrap();
        assert_eq!(edited.url, "https://other.example.com/");
        assert_eq!(edited.events, events);
        assert!(edited.boards.is_empty());
        assert_eq!(
            (edited.cursor, edited.secret.as_str()),
            (7, first.secret.as_str())
        );
        // A rotation keeps the old secret as the previous one, which signs until its time.
        assert!(
            hooks
                .rotate_secret("w1", "whsec_bmV3", 5_000)
                .await
                .unwrap()
        );
        let rotated = hooks.endpoint("w1").await.unwrap().unwrap();
        assert_eq!(rotated.secret, "whsec_bmV3");
        assert_eq!(
            rotated.previous_secret.as_deref(),
            Some(first.secret.as_str())
        );
        assert_eq!(
            rotated.signing_secrets(4_999),
            ["whsec_bmV3", first.secret.as_str()]
        );
        assert_eq!(rotated.signing_secrets(5_000), ["whsec_bmV3"]);
        // Disabled, then enabled from a later cursor; it all survives a restart.
        let off = Disabled {
            at: 42,
            reason: "the receiver answered 410".into(),
        };
        assert!(hooks.disable("w1", &off).await.unwrap());
        assert!(!hooks.disable("nope", &off).await.unwrap());
        storage.close().await;
        let storage = backend.open().await;
        let hooks = storage.webhooks();
        assert_eq!(
            hooks.endpoint("w1").await.unwrap().unwrap().disabled,
            Some(off)
        );
        assert!(hooks.enable("w1", 99).await.unwrap());
        let enabled = hooks.endpoint("w1").await.unwrap().unwrap();
        assert_eq!((enabled.disabled, enabled.cursor), (None, 99));
        // Enabling an enabled endpoint leaves its cursor alone.
        assert!(hooks.enable("w1", 5).await.unwrap());
        assert_eq!(hooks.endpoint("w1").await.unwrap().unwrap().cursor, 99);
        assert!(hooks.delete_endpoint("w1").await.unwrap());
        assert!(!hooks.delete_endpoint("w1").await.unwrap());
        assert_eq!(hooks.endpoints().await.unwrap().len(), 1);
        storage.close().await;
    }

    pub async fn the_webhook_outbox_queues_once_claims_once_and_keeps_its_log(
        backend: &impl Backend,
    ) {
        let storage = backend.open().await;
        let hooks = storage.webhooks();
        hooks
            .create_endpoint(&endpoint("w1", vec![], 10))
            .await
            .unwrap();
        let now = 1_000_000;
        // The cursor moves by compare-and-set: a second reader from the same place queues nothing.
        assert!(
            hooks
                .advance("w1", 10, 13, &deliveries(&[11, 13]), now)
                .await
                .unwrap()
        );
        assert!(
            !hooks
                .advance("w1", 10, 13, &deliveries(&[11, 13]), now)
                .await
                .unwrap()
        );
        assert_eq!(hooks.endpoint("w1").await.unwrap().unwrap().cursor, 13);
        assert_eq!(hooks.queue().await.unwrap(), (2, Some(now)));
        // Claimed once: a second claimer finds nothing until the claim lapses.
        let claimed = hooks.claim_due(now, "a", now + 1_000, 10).await.unwrap();
        let events: Vec<i64> = claimed.iter().map(|d| d.event).collect();
        assert_eq!(events, [11, 13]);
        assert_eq!(claimed[0].payload, "{\"event\":11}");
        assert_eq!(claimed[0].attempt, 0);
        assert!(
            hooks
                .claim_due(now + 999, "b", now + 2_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // 11 is delivered; 13 fails and is scheduled again.
        let (d11, d13) = (&claimed[0], &claimed[1]);
        hooks
            .finish(
                d11,
                &attempt_of(d11, Outcome::Delivered, Some(200), now + 5),
                &NextStep::Delivered,
            )
            .await
            .unwrap();
        hooks
            .finish(
                d13,
                &attempt_of(d13, Outcome::Retry, Some(503), now + 6),
                &NextStep::RetryAt(now + 5_000),
            )
            .await
            .unwrap();
        assert_eq!(hooks.queue().await.unwrap(), (1, Some(now + 5_000)));
        assert!(
            hooks
                .claim_due(now + 4_999, "a", now + 9_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // A restart keeps the pending delivery, with its attempts counted.
        storage.close().await;
        let storage = backend.open().await;
        let hooks = storage.webhooks();
        let again = hooks
            .claim_due(now + 5_000, "c", now + 9_000, 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].event, again[0].attempt), (13, 1));
        // A finish under a claim that lapsed and was taken by another changes nothing but the
        // log.
        let lapsed = hooks
            .claim_due(now + 9_000, "d", now + 20_000, 10)
            .await
            .unwrap();
        assert_eq!(lapsed.len(), 1);
        hooks
            .finish(
                &again[0],
                &attempt_of(&again[0], Outcome::Failed, None, now + 9_001),
                &NextStep::Failed,
            )
            .await
            .unwrap();
        assert_eq!(
            hooks.queue().await.unwrap().0,
            1,
            "still pending under claim d"
        );
        // A replay queues again whatever the cursor; a 410 disables and cancels it all.
        hooks
            .requeue("w1", &deliveries(&[11]), now + 9_500)
            .await
            .unwrap();
        assert_eq!(hooks.queue().await.unwrap().0, 2);
        hooks
            .finish(
                &lapsed[0],
                &attempt_of(&lapsed[0], Outcome::Disabled, Some(410), now + 10_000),
                &NextStep::Disable("gone".into()),
            )
            .await
            .unwrap();
        let endpoint = hooks.endpoint("w1").await.unwrap().unwrap();
        assert_eq!(endpoint.disabled.map(|d| d.reason), Some("gone".to_owned()));
        assert_eq!(hooks.queue().await.unwrap(), (0, None));
        assert!(
            hooks
                .claim_due(now + 20_000, "e", now + 30_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            !hooks
                .advance("w1", 13, 20, &deliveries(&[20]), now)
                .await
                .unwrap(),
            "disabled"
        );
        // The log, newest first, a page at a time.
        let log = hooks.attempts("w1", None, 3).await.unwrap();
        let seen: Vec<(i64, u32, Option<u16>, Outcome)> = log
            .iter()
            .map(|a| (a.event, a.attempt, a.status, a.outcome))
            .collect();
        assert_eq!(
            seen,
            [
                (13, 2, Some(410), Outcome::Disabled),
                (13, 2, None, Outcome::Failed),
                (13, 1, Some(503), Outcome::Retry),
            ]
        );
        assert_eq!(log[1].error.as_deref(), Some("connection refused"));
        assert_eq!(log[0].latency_ms, 12);
        let older = hooks.attempts("w1", Some(log[2].id), 3).await.unwrap();
        assert_eq!(older.len(), 1);
        assert_eq!((older[0].event, older[0].outcome), (11, Outcome::Delivered));
        // Old finished deliveries and log entries are swept.
        assert!(hooks.sweep_deliveries(now + 10_001).await.unwrap() >= 4);
        assert!(hooks.attempts("w1", None, 10).await.unwrap().is_empty());
        storage.close().await;
    }
}

/// Change events of the feed (what the room stores with an update), checked in contract.
fn change(kind: &str, n: i64) -> NewChange {
    NewChange {
        kind: kind.into(),
        timestamp: 1_700_000_000_000 + n,
        data: serde_json::json!({ "n": n }),
    }
}

mod feed_contract {
    use super::*;

    pub async fn change_events_are_stored_with_their_updates_and_listed_in_order(
        backend: &impl Backend,
    ) {
        let storage = backend.open().await;
        let (b1, b2) = (board("b1"), board("b2"));
        for b in [&b1, &b2] {
            storage.create(&meta(b), update_with("a")).await.unwrap();
        }
        assert_eq!(storage.latest_change().await.unwrap(), 0);
        let first = storage
            .append_with_changes(
                &b1,
                vec![update_with("x")],
                None,
                vec![change("card.created", 1), change("card.moved", 2)],
            )
            .await
            .unwrap();
        assert_eq!(first.seq, 2);
        let plain = storage
            .append_with_changes(&b2, vec![update_with("y")], None, Vec::new())
            .await
            .unwrap();
        assert_eq!(plain.last_change, None);
        let second = storage
            .append_with_changes(
                &b2,
                vec![update_with("z")],
                None,
                vec![change("stage.created", 3)],
            )
            .await
            .unwrap();
        let (Some(first_last), Some(second_last)) = (first.last_change, second.last_change) else {
            panic!("appends with events name their last id: {first:?} {second:?}");
        };
        assert!(second_last > first_last);
        assert_eq!(storage.latest_change().await.unwrap(), second_last);

        let all = storage
            .changes_after(0, &ChangeFilter::default(), 100)
            .await
            .unwrap();
        let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["card.created", "card.moved", "stage.created"]);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id), "{all:?}");
        assert_eq!(all[0].board, b1);
        assert_eq!(all[2].board, b2);
        assert_eq!(all[1].timestamp, 1_700_000_000_002);
        assert_eq!(all[1].data, serde_json::json!({ "n": 2 }));
        assert_eq!(all[1].id, first_last);
        // Cursors, limits and filters.
        let after_first = storage
            .changes_after(all[0].id, &ChangeFilter::default(), 1)
            .await
            .unwrap();
        assert_eq!(after_first, all[1..2]);
        let of_b2 = ChangeFilter {
            boards: Some(vec![b2.clone()]),
            types: None,
        };
        assert_eq!(
            storage.changes_after(0, &of_b2, 100).await.unwrap(),
            all[2..]
        );
        let moves = ChangeFilter {
            boards: None,
            types: Some(vec!["card.moved".into(), "stage.deleted".into()]),
        };
        assert_eq!(
            storage.changes_after(0, &moves, 100).await.unwrap(),
            all[1..2]
        );
        let none = ChangeFilter {
            boards: Some(vec![b2.clone()]),
            types: Some(vec!["card.moved".into()]),
        };
        assert!(
            storage
                .changes_after(0, &none, 100)
                .await
                .unwrap()
                .is_empty()
        );
        // A restart keeps them, and the sweep deletes the old ones without reusing their ids.
        storage.close().await;
        let storage = backend.open().await;
        assert_eq!(
            storage
                .changes_after(0, &ChangeFilter::default(), 100)
                .await
                .unwrap(),
            all
        );
        assert_eq!(storage.sweep_changes(1_700_000_000_003).await.unwrap(), 2);
        assert_eq!(storage.sweep_changes(1_700_000_000_004).await.unwrap(), 1);
        assert_eq!(storage.latest_change().await.unwrap(), 0);
        let later = storage
            .append_with_changes(
                &b1,
                vec![update_with("w")],
                None,
                vec![change("card.deleted", 4)],
            )
            .await
            .unwrap();
        assert!(
            later.last_change.unwrap() > second_last,
            "ids are not reused"
        );
        storage.close().await;
    }

    /// A card's history by its index (`card_changes`), the cards changed since a time, and a
    /// board's archive state, kept across a restart.
    pub async fn a_cards_changes_are_read_by_card_and_boards_are_archived(backend: &impl Backend) {
        let storage = backend.open().await;
        let (b1, b2) = (board("b1"), board("b2"));
        for b in [&b1, &b2] {
            storage.create(&meta(b), update_with("a")).await.unwrap();
        }
        let about = |kind: &str, card: &str, at: i64| NewChange {
            kind: kind.into(),
            timestamp: at,
            data: serde_json::json!({ "cardId": card }),
        };
        storage
            .append_with_changes(
                &b1,
                vec![update_with("x")],
                None,
                vec![
                    about("card.created", "c1", 100),
                    about("card.created", "c2", 100),
                    change("stage.created", 3),
                ],
            )
            .await
            .unwrap();
        storage
            .append_with_changes(
                &b1,
                vec![update_with("y")],
                None,
                vec![about("card.moved", "c1", 200), about("card.won", "c1", 200)],
            )
            .await
            .unwrap();
        // The same card id on another board is another card.
        storage
            .append_with_changes(
                &b2,
                vec![update_with("z")],
                None,
                vec![about("card.deleted", "c1", 300)],
            )
            .await
            .unwrap();
        let kinds = |events: &[funnel_server::feed::ChangeEvent]| -> Vec<String> {
            events.iter().map(|e| e.kind.clone()).collect()
        };
        let all = storage.card_changes(&b1, "c1", None, 10).await.unwrap();
        assert_eq!(kinds(&all), ["card.won", "card.moved", "card.created"]);
        assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        let older = storage
            .card_changes(&b1, "c1", Some(all[1].id), 10)
            .await
            .unwrap();
        assert_eq!(kinds(&older), ["card.created"]);
        let first = storage.card_changes(&b1, "c1", None, 1).await.unwrap();
        assert_eq!(kinds(&first), ["card.won"]);
        assert!(
            storage
                .card_changes(&b1, "none", None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let mut since = storage.cards_changed_since(&b1, 150).await.unwrap();
        since.sort();
        assert_eq!(since, ["c1"]);
        let mut all_cards = storage.cards_changed_since(&b1, 0).await.unwrap();
        all_cards.sort();
        assert_eq!(all_cards, ["c1", "c2"]);

        assert!(storage.set_archived(&b2, Some(5_000)).await.unwrap());
        assert!(!storage.set_archived(&board("nope"), Some(1)).await.unwrap());
        storage.close().await;
        let storage = backend.open().await;
        assert_eq!(
            storage.meta(&b2).await.unwrap().unwrap().archived_at,
            Some(5_000)
        );
        let listed: Vec<Option<i64>> = storage
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.archived_at)
            .collect();
        assert_eq!(listed, [None, Some(5_000)]);
        assert!(storage.set_archived(&b2, None).await.unwrap());
        assert_eq!(storage.meta(&b2).await.unwrap().unwrap().archived_at, None);
        storage.close().await;
    }

    pub async fn a_refused_fenced_append_stores_no_change_events(backend: &impl Backend) {
        let storage = backend.open().await;
        let b = board("fenced");
        storage.create(&meta(&b), update_with("a")).await.unwrap();
        storage
            .append_with_changes(
                &b,
                vec![update_with("x")],
                Some(5),
                vec![change("card.updated", 1)],
            )
            .await
            .unwrap();
        let refused = storage
            .append_with_changes(
                &b,
                vec![update_with("y")],
                Some(4),
                vec![change("card.updated", 2)],
            )
            .await;
        assert!(
            matches!(refused, Err(StorageError::Fenced { .. })),
            "{refused:?}"
        );
        let missing = storage
            .append_with_changes(
                &board("nope"),
                vec![update_with("y")],
                None,
                vec![change("card.created", 3)],
            )
            .await;
        assert!(missing.is_err());
        let all = storage
            .changes_after(0, &ChangeFilter::default(), 100)
            .await
            .unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].data, serde_json::json!({ "n": 1 }));
        storage.close().await;
    }
}

/// Runs one test per contract function against a backend type.
macro_rules! contract_tests {
    ($backend:ident: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = $backend::new().await;
                contract::$name(&backend).await;
            }
        )*
    };
}

macro_rules! all_contract_tests {
    ($backend:ident) => {
        contract_tests!($backend:
            create_then_load,
            racing_creators_have_one_winner,
            append_compact_and_reload,
            put_snapshot_replaces_the_entries_it_covers,
            load_since_before_and_after_compaction,
            timeline_pages_newest_first,
            wakeups_are_set_moved_and_cleared,
            boards_are_renamed_and_listed_oldest_first,
            append_fenced_refuses_a_lower_fence,
            concurrent_calls_get_consecutive_seqs,
            a_restart_keeps_everything,
            idempotency_keys_hold_their_first_response,
            released_and_abandoned_keys_are_claimed_again,
            inbound_mail_is_taken_once_per_board,
            webhook_endpoints_are_stored_edited_rotated_and_deleted,
            the_webhook_outbox_queues_once_claims_once_and_keeps_its_log,
        );
        feed_contract_tests!($backend:
            change_events_are_stored_with_their_updates_and_listed_in_order,
            a_refused_fenced_append_stores_no_change_events,
            a_cards_changes_are_read_by_card_and_boards_are_archived,
        );
        accounts_contract_tests!($backend:
            people_invites_and_sessions_are_kept_and_ended,
            a_person_is_linked_to_one_identity_provider_subject,
        );
    };
}

macro_rules! accounts_contract_tests {
    ($backend:ident: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = $backend::new().await;
                accounts_contract::$name(&backend).await;
            }
        )*
    };
}

/// People, invites and sessions (storage/accounts.rs), on both backends.
mod accounts_contract {
    use super::*;
    use funnel_protocol::policy::Role;
    use funnel_server::storage::accounts::{Invite, Person, PersonChange, Session};

    fn person(id: &str, email: &str) -> Person {
        Person {
            id: id.into(),
            email: email.into(),
            name: format!("Person {id}"),
            role: Role::Member,
            board_roles: Default::default(),
            password_hash: None,
            disabled_at: None,
            created_at: 1_000,
            oidc_subject: None,
        }
    }

    fn session(digest: &str, person: &str, expires_at: i64) -> Session {
        Session {
            digest: digest.into(),
            person: person.into(),
            expires_at,
            created_at: 1_000,
        }
    }

    pub async fn people_invites_and_sessions_are_kept_and_ended(backend: &impl Backend) {
        let storage = backend.open().await;
        let accounts = storage.accounts();
        let ann = person("p-ann", "ann@example.com");
        assert!(accounts.create_person(&ann).await.unwrap());
        // An e-mail is one person's.
        assert!(
            !accounts
                .create_person(&person("p-other", "ann@example.com"))
                .await
                .unwrap()
        );
        assert!(
            accounts
                .create_person(&person("p-bob", "bob@example.com"))
                .await
                .unwrap()
        );
        let ids: Vec<String> = accounts
            .people()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, ["p-ann", "p-bob"]);
        assert_eq!(
            accounts.person_by_email("ann@example.com").await.unwrap(),
            Some(ann.clone())
        );
        assert_eq!(accounts.person("nobody").await.unwrap(), None);

        // An invite works once, while it lives, and signs its person in.
        let invite = Invite {
            digest: "inv-1".into(),
            person: "p-ann".into(),
            expires_at: 5_000,
            created_at: 1_000,
        };
        accounts.create_invite(&invite).await.unwrap();
        assert_eq!(
            accounts.invite("inv-1", 6_000).await.unwrap(),
            None,
            "expired"
        );
        let (found, who) = accounts.invite("inv-1", 2_000).await.unwrap().unwrap();
        assert_eq!((found, who.id.as_str()), (invite.clone(), "p-ann"));
        let accepted = accounts
            .accept_invite(
                "inv-1",
                2_000,
                "$argon2id$hash",
                Some("Ann Lee"),
                &session("s-1", "", 9_000),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(accepted.name, "Ann Lee");
        assert_eq!(accepted.password_hash.as_deref(), Some("$argon2id$hash"));
        assert!(
            accounts
                .accept_invite("inv-1", 2_000, "other", None, &session("s-2", "", 9_000))
                .await
                .unwrap()
                .is_none(),
            "an invite is used once"
        );
        let (live, who) = accounts.session("s-1", 3_000).await.unwrap().unwrap();
        assert_eq!(
            (live.person.as_str(), who.name.as_str()),
            ("p-ann", "Ann Lee")
        );
        assert_eq!(accounts.session("s-2", 3_000).await.unwrap(), None);
        assert_eq!(
            accounts.session("s-1", 9_000).await.unwrap(),
            None,
            "expired"
        );

        // Roles: a default and one per board; a board's role can be removed again.
        let q4 = board("q4");
        let change = PersonChange {
            role: Some(Role::Viewer),
            board_roles: vec![(q4.clone(), Some(Role::Admin))],
            ..PersonChange::default()
        };
        let (before, after) = accounts
            .change_person("p-ann", &change)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((before.role, after.role), (Role::Member, Role::Viewer));
        assert_eq!(after.role_on(&q4), Role::Admin);
        assert_eq!(after.role_on(&board("other")), Role::Viewer);
        let reread = accounts.person("p-ann").await.unwrap().unwrap();
        assert_eq!(reread, after);
        let removed = PersonChange {
            board_roles: vec![(q4.clone(), None)],
            ..PersonChange::default()
        };
        let (_, after) = accounts
            .change_person("p-ann", &removed)
            .await
            .unwrap()
            .unwrap();
        assert!(after.board_roles.is_empty());
        assert!(
            accounts
                .change_person("nobody", &removed)
                .await
                .unwrap()
                .is_none()
        );

        // Disabling ends every session; a disabled person's invite signs nobody in.
        accounts
            .create_session(&session("s-3", "p-ann", 9_000))
            .await
            .unwrap();
        assert!(accounts.session("s-3", 3_000).await.unwrap().is_some());
        let disable = PersonChange {
            disabled_at: Some(Some(3_000)),
            ..PersonChange::default()
        };
        accounts
            .change_person("p-ann", &disable)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(accounts.session("s-3", 3_000).await.unwrap(), None);
        accounts
            .create_invite(&Invite {
                digest: "inv-2".into(),
                ..invite.clone()
            })
            .await
            .unwrap();
        assert!(
            accounts
                .accept_invite("inv-2", 2_000, "h", None, &session("s-4", "", 9_000))
                .await
                .unwrap()
                .is_none()
        );
        let enable = PersonChange {
            disabled_at: Some(None),
            ..PersonChange::default()
        };
        let (_, enabled) = accounts
            .change_person("p-ann", &enable)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(enabled.disabled_at, None);

        // Sign-out, the sweep, and a restart that keeps what is live.
        accounts
            .create_session(&session("s-5", "p-bob", 9_000))
            .await
            .unwrap();
        accounts
            .create_session(&session("s-6", "p-bob", 4_000))
            .await
            .unwrap();
        assert!(accounts.delete_session("s-5").await.unwrap());
        assert!(!accounts.delete_session("s-5").await.unwrap());
        assert_eq!(
            accounts.sweep_accounts(4_500).await.unwrap(),
            1,
            "s-6 expired"
        );
        accounts
            .create_session(&session("s-7", "p-bob", 9_000))
            .await
            .unwrap();
        storage.close().await;
        let storage = backend.open().await;
        let accounts = storage.accounts();
        assert!(accounts.session("s-7", 5_000).await.unwrap().is_some());
        assert_eq!(accounts.people().await.unwrap().len(), 2);
        storage.close().await;
    }

    pub async fn a_person_is_linked_to_one_identity_provider_subject(backend: &impl Backend) {
        let storage = backend.open().await;
        let accounts = storage.accounts();
        assert!(
            accounts
                .create_person(&person("p-ivy", "ivy@example.com"))
                .await
                .unwrap()
        );
        assert!(
            accounts
                .create_person(&person("p-una", "una@example.com"))
                .await
                .unwrap()
        );
        let subject = "https://id.example.com sub-1";
        assert_eq!(
            accounts.person_by_oidc_subject(subject).await.unwrap(),
            None
        );
        assert!(accounts.link_oidc_subject("p-ivy", subject).await.unwrap());
        assert!(!accounts.link_oidc_subject("nobody", subject).await.unwrap());
        let ivy = accounts
            .person_by_oidc_subject(subject)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (ivy.id.as_str(), ivy.oidc_subject.as_deref()),
            ("p-ivy", Some(subject))
        );
        assert_eq!(
            accounts
                .person_by_email("ivy@example.com")
                .await
                .unwrap()
                .unwrap()
                .oidc_subject
                .as_deref(),
            Some(subject)
        );
        // One person per subject: linking it to another fails and changes nothing.
        assert!(accounts.link_oidc_subject("p-una", subject).await.is_err());
        assert_eq!(
            accounts
                .person("p-una")
                .await
                .unwrap()
                .unwrap()
                .oidc_subject,
            None
        );
        // A change by an admin keeps the link; a new subject replaces it.
        let change = PersonChange {
            name: Some("Ivy Lee".into()),
            ..PersonChange::default()
        };
        let (_, after) = accounts
            .change_person("p-ivy", &change)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.oidc_subject.as_deref(), Some(subject));
        assert!(
            accounts
                .link_oidc_subject("p-ivy", "https://id.example.com sub-2")
                .await
                .unwrap()
        );
        assert_eq!(
            accounts.person_by_oidc_subject(subject).await.unwrap(),
            None
        );
        // A person made with a subject (the first sign-in of an allowed domain) has it.
        let mut sam = person("p-sam", "sam@staff.test");
        sam.oidc_subject = Some("https://id.example.com sub-3".into());
        assert!(accounts.create_person(&sam).await.unwrap());
        assert_eq!(
            accounts
                .person_by_oidc_subject("https://id.example.com sub-3")
                .await
                .unwrap(),
            Some(sam)
        );
    }
}

macro_rules! feed_contract_tests {
    ($backend:ident: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = $backend::new().await;
                feed_contract::$name(&backend).await;
            }
        )*
    };
}

mod sqlite {
    use super::*;
    all_contract_tests!(Sqlite);
}

mod postgres {
    use super::*;
    all_contract_tests!(Postgres);
}

/// One append call's result: the last seq, the keys it wrote.
type Call = (Seq, Vec<String>);

/// `tasks` tasks per instance, each making `calls` appends of 1 to 3 updates (distinct keys)
/// to board `b` at once; returns every call's result.
async fn run_appenders(
    instances: &[Arc<dyn Storage>],
    b: &BoardId,
    tasks: usize,
    calls: usize,
) -> Vec<Call> {
    let mut handles = Vec::new();
    for (instance_index, storage) in instances.iter().enumerate() {
        for task in 0..tasks {
            let storage = Arc::clone(storage);
            let b = b.clone();
            handles.push(tokio::spawn(async move {
                let mut results = Vec::new();
                for call in 0..calls {
                    let names: Vec<String> = (0..=(call + task) % 3)
                        .map(|i| format!("i{instance_index}-t{task}-c{call}-u{i}"))
                        .collect();
                    let updates = names.iter().map(|name| update_with(name)).collect();
                    let last = storage.append(&b, updates).await.unwrap();
                    results.push((last, names));
                }
                results
            }));
        }
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    all
}

/// Every call's seqs are consecutive and unique, together they are 2..=last (seq 1 is the
/// initial update), `load` yields every update, and `load_since` from any seq is exactly the
/// rest of the log.
async fn check_seqs_and_content(storage: &dyn Storage, b: &BoardId, calls: &[Call]) {
    let mut expected: Vec<(Seq, String)> = Vec::new();
    for (last, names) in calls {
        let first = last + 1 - names.len() as Seq;
        expected.extend((first..=*last).zip(names.iter().cloned()));
    }
    expected.sort();
    let seqs_given: Vec<Seq> = expected.iter().map(|(seq, _)| *seq).collect();
    let total = seqs_given.len() as Seq;
    assert_eq!(
        seqs_given,
        (2..=total + 1).collect::<Vec<_>>(),
        "seqs overlap or have gaps"
    );

    let full = storage.load(b).await.unwrap().unwrap();
    let mut all_keys: BTreeSet<String> = expected.iter().map(|(_, name)| name.clone()).collect();
    assert!(keys_of(&full).is_superset(&all_keys));
    all_keys.insert("a".into());
    assert_eq!(keys_of(&full), all_keys);
    // Without compaction, the log is every entry; with it, load_since above the snapshot is
    // still exactly the rest.
    let snapshot_seq = if full.tail_len == full.entries.len() {
        0
    } else {
        full.entries[0].0
    };
    for after in snapshot_seq..=total + 1 {
        let since = storage.load_since(b, after).await.unwrap().unwrap();
        let rest: Vec<(Seq, Bytes)> = full
            .entries
            .iter()
            .filter(|(seq, _)| *seq > after)
            .cloned()
            .collect();
        let rest_len = rest.len();
        assert_eq!(since.entries, rest, "load_since({after})");
        assert_eq!(since.tail_len, rest_len);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_append_to_one_board_at_once() {
    let pg = Postgres::new().await;
    let first: Arc<dyn Storage> = Arc::new(pg.instance().await);
    let second: Arc<dyn Storage> = Arc::new(pg.instance().await);
    let b = board("shared");
    first.create(&meta(&b), update_with("a")).await.unwrap();
    let calls = run_appenders(&[Arc::clone(&first), Arc::clone(&second)], &b, 3, 20).await;
    check_seqs_and_content(first.as_ref(), &b, &calls).await;
    check_seqs_and_content(second.as_ref(), &b, &calls).await;
    first.close().await;
    second.close().await;
}

/// Two instances store change events at once while a reader follows the feed from its
/// cursor: the reader sees every event exactly once, in increasing id order, and never gets an
/// id below one it already passed (which PostgreSQL's out-of-order commits would cause
/// without the feed's lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_sees_change_ids_in_order_while_two_instances_write() {
    let pg = Postgres::new().await;
    let instances: Vec<Arc<dyn Storage>> =
        vec![Arc::new(pg.instance().await), Arc::new(pg.instance().await)];
    let reader: Arc<dyn Storage> = Arc::new(pg.instance().await);
    let boards = [board("one"), board("two"), board("three")];
    for b in &boards {
        instances[0]
            .create(&meta(b), update_with("a"))
            .await
            .unwrap();
    }
    const CALLS: usize = 40;
    let mut writers = Vec::new();
    for (i, storage) in instances.iter().enumerate() {
        for (j, b) in boards.iter().enumerate() {
            let storage = Arc::clone(storage);
            let b = b.clone();
            writers.push(tokio::spawn(async move {
                for call in 0..CALLS {
                    let n = (i * 1000 + j * 100 + call) as i64;
                    storage
                        .append_with_changes(
                            &b,
                            vec![update_with(&format!("k{n}"))],
                            None,
                            vec![change("card.updated", n), change("card.moved", n)],
                        )
                        .await
                        .unwrap();
                }
            }));
        }
    }
    let expected = instances.len() * boards.len() * CALLS * 2;
    let mut seen: Vec<i64> = Vec::new();
    let mut cursor = 0;
    let started = Instant::now();
    while seen.len() < expected {
        assert!(
            started.elapsed() < WAIT,
            "only {} of {expected} events seen",
            seen.len()
        );
        let page = reader
            .changes_after(cursor, &ChangeFilter::default(), 7)
            .await
            .unwrap();
        for event in &page {
            assert!(event.id > cursor, "id {} came after {cursor}", event.id);
            cursor = event.id;
            seen.push(event.id);
        }
        if page.is_empty() {
            // Everything is written and the reader is at the newest id: whatever it lacks
            // now, it skipped.
            if writers.iter().all(|w| w.is_finished())
                && cursor >= reader.latest_change().await.unwrap()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    assert_eq!(
        seen.len(),
        expected,
        "the reader skipped events committed late"
    );
    for writer in writers {
        writer.await.unwrap();
    }
    // Nothing was skipped: a full read from 0 is exactly what the follower saw.
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = reader
            .changes_after(after, &ChangeFilter::default(), 1000)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        all.extend(page.iter().map(|e| e.id));
    }
    assert_eq!(all, seen);
    for storage in instances.iter().chain([&reader]) {
        storage.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_on_one_instance_while_the_other_appends_loses_nothing() {
    let pg = Postgres::new().await;
    let appender: Arc<dyn Storage> = Arc::new(pg.instance().await);
    let compactor: Arc<dyn Storage> = Arc::new(pg.instance().await);
    let b = board("shared");
    appender.create(&meta(&b), update_with("a")).await.unwrap();
    let appending = tokio::spawn({
        let appender = Arc::clone(&appender);
        let b = b.clone();
        async move { run_appenders(&[appender], &b, 2, 40).await }
    });
    let started = Instant::now();
    let mut compactions = 0;
    while !appending.is_finished() && started.elapsed() < WAIT {
        compactor.compact(&b).await.unwrap();
        compactions += 1;
        // Every read in between sees a whole prefix of the log: snapshot and tail agree.
        let stored = compactor.load(&b).await.unwrap().unwrap();
        let tail: Vec<Seq> = seqs(&stored)
            .into_iter()
            .skip(stored.entries.len() - stored.tail_len)
            .collect();
        if let (Some(first), Some(last)) = (tail.first(), tail.last()) {
            assert_eq!(tail, (*first..=*last).collect::<Vec<_>>());
        }
    }
    let calls = appending.await.unwrap();
    assert!(compactions > 1, "compaction never overlapped the appends");
    compactor.compact(&b).await.unwrap();
    check_seqs_and_content(appender.as_ref(), &b, &calls).await;
    let stored = compactor.load(&b).await.unwrap().unwrap();
    let total: usize = calls.iter().map(|(_, names)| names.len()).sum();
    assert_eq!(
        (seqs(&stored), stored.tail_len),
        (vec![total as Seq + 1], 0)
    );
    appender.close().await;
    compactor.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_scheduler_on_another_instance_is_fenced_out() {
    let pg = Postgres::new().await;
    let old = pg.instance().await;
    let new = pg.instance().await;
    let b = board("leased");
    old.create(&meta(&b), update_with("a")).await.unwrap();
    assert_eq!(
        old.append_fenced(&b, vec![update_with("old-1")], 5)
            .await
            .unwrap(),
        2
    );
    // The lease moved: the new holder writes with a higher fence, from its own pool.
    assert_eq!(
        new.append_fenced(&b, vec![update_with("new-1")], 6)
            .await
            .unwrap(),
        3
    );
    // The old holder wakes up from a pause and tries again: refused whole, whichever instance.
    assert!(matches!(
        old.append_fenced(&b, vec![update_with("old-2"), update_with("old-3")], 5)
            .await,
        Err(StorageError::Fenced {
            fence: 5,
            current: 6,
            ..
        })
    ));
    // Clients' updates through the old instance still go in.
    assert_eq!(
        old.append(&b, vec![update_with("client")]).await.unwrap(),
        4
    );
    let stored = new.load(&b).await.unwrap().unwrap();
    assert_eq!(keys_of(&stored), keys(&["a", "client", "new-1", "old-1"]));
    old.close().await;
    new.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_race_to_claim_one_idempotency_key() {
    let pg = Postgres::new().await;
    let instances = [pg.open().await, pg.open().await];
    let mut tasks = Vec::new();
    for round in 0..4 {
        for (index, storage) in instances.iter().enumerate() {
            let storage = Arc::clone(storage);
            let token = format!("i{index}-r{round}");
            tasks.push(tokio::spawn(async move {
                let request = KeyRequest {
                    caller: "ann".into(),
                    key: "raced".into(),
                    fingerprint: "f".into(),
                    token: token.clone(),
                    now: 1_000,
                };
                (storage.claim_key(&request).await.unwrap(), token)
            }));
        }
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (claim, token) = task.await.unwrap();
        match claim {
            KeyClaim::Claimed => winners.push(token),
            KeyClaim::InFlight { fingerprint } => assert_eq!(fingerprint, "f"),
            KeyClaim::Done { .. } => panic!("nobody finished the key"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    for storage in &instances {
        storage.close().await;
    }
}

/// Two instances' webhook workers over one outbox: each event is queued once (the cursor's
/// compare-and-set) and each delivery claimed by one instance at a time (`SKIP LOCKED`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_webhook_outbox_without_doubles() {
    let pg = Postgres::new().await;
    let instances = [pg.open().await, pg.open().await];
    let endpoint = Endpoint {
        id: "w".into(),
        url: "https://hooks.example.com/".into(),
        events: Vec::new(),
        boards: Vec::new(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        previous_secret: None,
        previous_until: 0,
        disabled: None,
        cursor: 0,
        created_at: 0,
    };
    instances[0]
        .webhooks()
        .create_endpoint(&endpoint)
        .await
        .unwrap();
    // Both read the same events and race to queue them, batch after batch.
    let mut wins = 0;
    for batch in 0..10_i64 {
        let from = batch * 20;
        let events: Vec<NewDelivery> = (from + 1..=from + 20)
            .map(|event| NewDelivery {
                event,
                payload: "{}".into(),
            })
            .collect();
        let races: Vec<_> = instances
            .iter()
            .map(|storage| {
                let (storage, events) = (Arc::clone(storage), events.clone());
                tokio::spawn(async move {
                    storage
                        .webhooks()
                        .advance("w", from, from + 20, &events, 1_000)
                        .await
                        .unwrap()
                })
            })
            .collect();
        for race in races {
            wins += usize::from(race.await.unwrap());
        }
    }
    assert_eq!(wins, 10, "one winner per batch");
    assert_eq!(instances[1].webhooks().queue().await.unwrap().0, 200);
    // Both claim in small bites at once until nothing is left.
    let claimers: Vec<_> = instances
        .iter()
        .enumerate()
        .map(|(index, storage)| {
            let storage = Arc::clone(storage);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..200 {
                    let claimed = storage
                        .webhooks()
                        .claim_due(2_000, &format!("i{index}"), 60_000, 7)
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    mine.extend(claimed.into_iter().map(|d| d.event));
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=200).collect::<Vec<i64>>(),
        "each delivery claimed exactly once"
    );
    for storage in &instances {
        storage.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_race_to_create_a_board() {
    let pg = Postgres::new().await;
    let instances = [pg.open().await, pg.open().await];
    let b = board("raced");
    let mut tasks = Vec::new();
    for round in 0..4 {
        for (index, storage) in instances.iter().enumerate() {
            let storage = Arc::clone(storage);
            let b = b.clone();
            let key = format!("i{index}-r{round}");
            tasks.push(tokio::spawn(async move {
                (
                    storage.create(&meta(&b), update_with(&key)).await.unwrap(),
                    key,
                )
            }));
        }
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (created, key) = task.await.unwrap();
        if created {
            winners.push(key);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    for storage in &instances {
        let stored = storage.load(&b).await.unwrap().unwrap();
        assert_eq!(keys_of(&stored), keys(&[winners[0].as_str()]));
        storage.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_apply_each_migration_once() {
    let pg = Postgres::new().await;
    let opened =
        futures_util::future::join_all((0..4).map(|_| PostgresStorage::open(&pg.url))).await;
    let mut instances = Vec::new();
    for storage in opened {
        instances.push(storage.unwrap_or_else(|e| panic!("opening: {e}")));
    }
    let admin = connect_postgres(&pg.admin_url).await;
    let row = admin
        .query_one(
            &format!(
                "SELECT count(*), count(DISTINCT version), min(version), max(version) \
                 FROM {}.funnel_migrations",
                pg.schema
            ),
            &[],
        )
        .await
        .unwrap();
    let (count, distinct, min, max): (i64, i64, i32, i32) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert!(count >= 1);
    assert_eq!((distinct, min, i64::from(max)), (count, 1, count));
    for storage in instances {
        storage.ping().await.unwrap();
        storage.close().await;
    }
}

// One thread: the writer task runs only once the test awaits, so every write below is queued
// before it takes them, and they share one batch.
#[tokio::test(flavor = "current_thread")]
async fn a_failing_write_fails_alone_in_its_batch() {
    let pg = Postgres::new().await;
    let storage = pg.instance().await;
    let b = board("b1");
    storage.create(&meta(&b), update_with("a")).await.unwrap();
    // PostgreSQL text cannot hold a NUL character: this event is refused by the server.
    // Queued together with the appends, it shares their batch, and runs first in it (board "a0"
    // sorts before "b1"), so the appends pipelined behind it fail with it.
    let bad = storage.add_event(event(&board("a0"), "c1", "nul \0 inside"), None);
    let appends = futures_util::future::join_all(
        (0..8).map(|i| storage.append(&b, vec![update_with(&format!("k{i}"))])),
    );
    let (bad, appended) = tokio::join!(bad, appends);
    let err = bad.unwrap_err();
    assert!(matches!(err, StorageError::Postgres(_)), "{err:?}");
    assert!(err.to_string().contains("0x00"), "{err}");
    let mut seqs_given: Vec<Seq> = appended.into_iter().map(Result::unwrap).collect();
    seqs_given.sort();
    assert_eq!(seqs_given, (2..=9).collect::<Vec<_>>());
    assert!(
        storage
            .events(&board("a0"), "c1", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    storage.close().await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres:secret@127.0.0.1:{port}/test");
    let Err(err) = PostgresStorage::open(&url).await else {
        panic!("opened storage at a closed port");
    };
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "cannot connect to PostgreSQL at postgres@127.0.0.1:{port}/test"
        )),
        "{message}"
    );
    assert!(message.contains("check that the server runs"), "{message}");
    assert!(
        !message.contains("secret"),
        "the password leaked: {message}"
    );
}

#[tokio::test]
async fn a_bad_url_is_a_clear_error() {
    let Err(err) = PostgresStorage::open("postgres://postgres@127.0.0.1:notaport/test").await
    else {
        panic!("opened storage with a bad url");
    };
    let message = err.to_string();
    assert!(message.contains("invalid database url"), "{message}");
    assert!(message.contains("postgres://USER"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_keeps_boards_in_postgres_across_a_restart() {
    use support::{Client, TestServer, add_card};
    let pg = Postgres::new().await;
    // The data directory stays empty: with a database URL, SQLite is not opened.
    let dir = tempfile::tempdir().unwrap();
    let with_database = |config: &mut funnel_server::config::ServeConfig| {
        config.database_url = Some(pg.url.clone());
    };
    let server = TestServer::start_with(dir.path(), with_database).await;
    let url = server.url("pg-board");
    let mut writer = Client::connect(&url).await;
    for i in 0..20 {
        writer
            .write(|txn| add_card(txn, &format!("c{i}"), &format!("card {i:02}")))
            .await;
    }
    // The last write is stored once another client sees it.
    let mut reader = Client::connect(&url).await;
    reader.wait_for_card("card 19").await;
    let before = reader.card_titles();
    server.stop().await;
    assert!(!dir.path().join("funnel.db").exists());

    let server = TestServer::start_with(dir.path(), with_database).await;
    let (status, body) = support::http(server.addr, "GET", "/api/v1/boards", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("pg-board"), "{body}");
    let after = Client::connect(&server.url("pg-board")).await;
    assert_eq!(after.card_titles(), before);
    server.stop().await;
}

/// A rollback to an older funnel: a database migrated by a newer build is refused with a clear
/// error, and nothing in it is touched (the newer build opens it again as it was).
#[tokio::test]
async fn a_database_from_a_newer_funnel_is_refused_and_left_as_it_was() {
    const AHEAD: i64 = 1000;
    let sqlite = Sqlite::new().await;
    let b = board("b-newer");
    {
        let storage = sqlite.open().await;
        assert!(storage.create(&meta(&b), update_with("a")).await.unwrap());
        storage.close().await;
    }
    let path = sqlite
        .dir
        .path()
        .join(funnel_server::storage::sqlite::DB_FILE);
    let known: i64 = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let known: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        conn.pragma_update(None, "user_version", AHEAD).unwrap();
        known
    };
    let Err(err) = SqliteStorage::open(sqlite.dir.path()) else {
        panic!("opened a database migrated by a newer funnel");
    };
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "schema is at version {AHEAD}, newer than this funnel knows ({known})"
        )),
        "{message}"
    );
    assert!(message.contains("run a newer funnel"), "{message}");
    // Untouched: back at its version, the board is there.
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", known)
        .unwrap();
    let storage = sqlite.open().await;
    assert!(storage.load(&b).await.unwrap().is_some());
    storage.close().await;

    let pg = TestDatabase::new().await;
    PostgresStorage::open(&pg.url).await.unwrap().close().await;
    let admin = connect_postgres(&pg.admin_url).await;
    admin
        .batch_execute(&format!(
            "INSERT INTO {}.funnel_migrations (version) VALUES ({AHEAD})",
            pg.schema
        ))
        .await
        .unwrap();
    let Err(err) = PostgresStorage::open(&pg.url).await else {
        panic!("opened a PostgreSQL schema migrated by a newer funnel");
    };
    assert!(
        err.to_string().contains(&format!(
            "schema is at version {AHEAD}, newer than this funnel knows"
        )),
        "{err}"
    );
}

/// A database migrated by another build (a branch whose migration 1 differs) is refused with a
/// clear error and left as it was; a database from before checksums were kept gets them.
#[tokio::test]
async fn a_database_migrated_by_another_build_is_refused_and_an_older_one_gets_checksums() {
    let sqlite = Sqlite::new().await;
    let b = board("b-foreign");
    {
        let storage = sqlite.open().await;
        assert!(storage.create(&meta(&b), update_with("a")).await.unwrap());
        storage.close().await;
    }
    let path = sqlite
        .dir
        .path()
        .join(funnel_server::storage::sqlite::DB_FILE);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let ours: String = conn
        .query_row(
            "SELECT checksum FROM funnel_migrations WHERE version = 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE funnel_migrations SET checksum = 'another' WHERE version = 1",
        [],
    )
    .unwrap();
    let Err(err) = SqliteStorage::open(sqlite.dir.path()) else {
        panic!("opened a database another build migrated");
    };
    assert!(
        err.to_string()
            .contains("migration 1 is not this funnel's (it was migrated by another build"),
        "{err}"
    );
    // From before checksums: none recorded. It opens, gets them, and keeps its board.
    conn.execute("DELETE FROM funnel_migrations", []).unwrap();
    drop(conn);
    let storage = sqlite.open().await;
    assert!(storage.load(&b).await.unwrap().is_some());
    storage.close().await;
    let recorded: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT checksum FROM funnel_migrations WHERE version = 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(recorded, ours);

    let pg = TestDatabase::new().await;
    PostgresStorage::open(&pg.url).await.unwrap().close().await;
    let admin = connect_postgres(&pg.admin_url).await;
    let table = format!("{}.funnel_migrations", pg.schema);
    admin
        .batch_execute(&format!(
            "UPDATE {table} SET checksum = 'another' WHERE version = 2"
        ))
        .await
        .unwrap();
    let Err(err) = PostgresStorage::open(&pg.url).await else {
        panic!("opened a PostgreSQL schema another build migrated");
    };
    assert!(
        err.to_string().contains("migration 2 is not this funnel's"),
        "{err}"
    );
    admin
        .batch_execute(&format!("UPDATE {table} SET checksum = NULL"))
        .await
        .unwrap();
    PostgresStorage::open(&pg.url).await.unwrap().close().await;
    let nulls = admin
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE checksum IS NULL"),
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(nulls, 0, "the checksums were recorded");
}
