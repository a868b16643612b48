//! Deals from e-mail: a raw RFC 5322 message, posted to the API
//! (`POST /api/v1/boards/{boardId}/inbound-email`) or delivered to the SMTP listener
//! (`--smtp-listen`, [`smtp`]), is taken by one path, [`take`]:
//!
//! 1. [`parse`]: the message becomes a [`ParsedMail`] (sender, subject, text, Message-ID, the
//!    Message-IDs it replies to); a malformed one is refused before anything is stored.
//! 2. Its Message-ID is claimed in storage (`inbound_mail`, keyed by board and Message-ID): a
//!    second delivery of the same message is a duplicate and writes nothing.
//! 3. In the board's room, in one write: a reply (In-Reply-To / References naming a message a
//!    card already took) goes to that card; otherwise a sender whose address is an open card's
//!    `email` (ignoring case) goes to that card; otherwise a new deal is created in the initial
//!    stage (title from the subject, `client` from the sender's name, `email` from the address).
//! 4. The text becomes an incoming `email` timeline entry of the card (through the room's
//!    timeline path: an open incoming activity, the avatar rule), and the claim records where the
//!    message went, which is what later replies are matched against.
//!
//! Every write of this module goes through [`write_to_board`].
//!
//! Durability: a delivery is answered (HTTP 201/200, SMTP 250) only once all of it is stored. If
//! the process dies between the card and the record, the claim is abandoned and a new delivery
//! after [`MAIL_IN_FLIGHT_MS`] takes the message again (the sender's address then finds the card
//! it created, so it is appended there rather than duplicated as a second deal).

pub mod parse;
pub mod smtp;

pub use parse::{MalformedMail, ParsedMail};

use crate::api::MAX_EVENT_TEXT_BYTES;
use crate::app_state::AppState;
use crate::auth::Principal;
use crate::feed::Origin;
use crate::room::api_write::{ApiRequest, ApiWriteError};
use crate::room::{RoomCommand, TimelineError};
use crate::storage::{InboundMail, MAIL_IN_FLIGHT_MS, MailClaim, StorageError, TimelineEvent};
use funnel_protocol::BoardId;
use funnel_protocol::board::{self, BoardError, BoardView, MAX_NAME_CHARS, NewCard};
use funnel_protocol::policy::Role;
use funnel_protocol::schema::StageKind;
use funnel_protocol::timeline::{TimelineDirection, TimelineKind};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// The user id of writes made for mail that came in over SMTP (no token names anyone).
pub const MAIL_USER: &str = "mail";

/// The title of a deal from a message without a subject.
pub const NO_SUBJECT: &str = "(no subject)";

/// Messages a board takes a minute on average, on both paths together, and at once above that:
/// a flood to one address slows down (HTTP 429, SMTP 451: senders retry) instead of filling the
/// board. A person's mail, even a busy team's, is far below it.
pub const MAIL_PER_MINUTE: u32 = 120;
pub const MAIL_BURST: u32 = 60;

/// How the server takes mail: limits, the address secret, the domain it shows.
#[derive(Clone)]
pub struct MailSettings {
    /// The largest message taken, in bytes (`--max-mail-bytes`).
    pub max_bytes: usize,
    /// The domain of the inbound addresses shown to admins (`--mail-domain`); any domain is
    /// accepted.
    pub domain: String,
    /// With `--auth-secret`: the key of every board's address secret. `None`: local mode, the
    /// address is the board id alone.
    secret_key: Option<Arc<[u8]>>,
    /// Whether `--smtp-listen` is set (shown in the address resource).
    pub smtp: bool,
    /// Messages per board ([`MAIL_PER_MINUTE`], [`MAIL_BURST`]).
    rate: Arc<crate::limits::CallerRate>,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("max_bytes", &self.max_bytes)
            .field("domain", &self.domain)
            .field("secret", &self.secret_key.is_some())
            .field("smtp", &self.smtp)
            .finish()
    }
}

/// How many hex digits of the HMAC make a board's address secret (80 bits).
const SECRET_HEX_DIGITS: usize = 20;

impl MailSettings {
    pub fn new(max_bytes: usize, domain: String, auth_secret: Option<&str>, smtp: bool) -> Self {
        MailSettings {
            max_bytes,
            domain,
            secret_key: auth_secret.map(|s| Arc::from(s.as_bytes())),
            smtp,
            rate: Arc::new(crate::limits::CallerRate::new(MAIL_PER_MINUTE, MAIL_BURST)),
        }
    }

    /// The board's address secret: HMAC-SHA256 of the board id under the auth secret, so it
    /// needs no storage, is the same on every instance, and changes with the auth secret.
    /// `None` in local mode.
    pub fn board_secret(&self, board: &BoardId) -> Option<String> {
        let key = self.secret_key.as_ref()?;
        // HMAC takes a key of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
        mac.update(b"funnel inbound mail\0");
        mac.update(board.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        Some(
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .chars()
                .take(SECRET_HEX_DIGITS)
                .collect(),
        )
    }

    /// The local part of the board's inbound address: `{boardId}` or `{boardId}+{secret}`.
    pub fn local_part(&self, board: &BoardId) -> String {
        match self.board_secret(board) {
            Some(secret) => format!("{board}+{secret}"),
            None => board.to_string(),
        }
    }

    /// The board a recipient address names, when its secret is right (any domain).
    pub fn board_of_recipient(&self, recipient: &str) -> Result<BoardId, RecipientError> {
        let (local, _domain) = recipient
            .rsplit_once('@')
            .ok_or(RecipientError::NotABoard)?;
        let (id, secret) = match local.split_once('+') {
            Some((id, secret)) => (id, Some(secret)),
            None => (local, None),
        };
        let board = BoardId::parse(id).map_err(|_| RecipientError::NotABoard)?;
        match (self.board_secret(&board), secret) {
            (None, _) => Ok(board),
            (Some(expected), Some(given))
                if constant_time_eq(expected.as_bytes(), given.to_ascii_lowercase().as_bytes()) =>
            {
                Ok(board)
            }
            (Some(_), _) => Err(RecipientError::BadSecret),
        }
    }
}

/// Compares without stopping at the first difference (the secret is a credential).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a recipient address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error("no such mailbox: the address is {{boardId}}@ or {{boardId}}+{{secret}}@ any domain")]
    NotABoard,
    #[error(
        "no such mailbox: the address's secret is wrong (an admin sees the address in the board's settings)"
    )]
    BadSecret,
}

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MailAction {
    /// A new deal was created from it.
    Created,
    /// It was added to an existing card's timeline.
    Appended,
    /// The board took this Message-ID before: nothing was written.
    Duplicate,
    /// Sent by a program (an auto-reply, a bounce, bulk mail) and about no card: a program's
    /// mail makes no deal. Nothing was written.
    Ignored,
}

/// The answer to an inbound message.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailOutcome {
    pub action: MailAction,
    /// The card it created or was added to (none when ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    /// Its Message-ID (without angle brackets), or the one the server made for a message that
    /// had none.
    pub message_id: String,
    /// The timeline entry it became (for a duplicate: the first delivery's; none when
    /// ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<i64>,
}

/// Why a message was not taken. Nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(transparent)]
    Malformed(#[from] MalformedMail),
    #[error("the message is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("no board {0}")]
    NoSuchBoard(String),
    #[error("another delivery of message {0} is being taken; try again in a minute")]
    InFlight(String),
    #[error("the board is at its size limit ({max} bytes)")]
    BoardFull { max: usize },
    #[error("too many messages for this board; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The board refused the card (e.g. a sender address a card cannot hold).
    #[error("the board refused the message: {0}")]
    Refused(String),
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    #[error("the board is busy or shutting down; try again")]
    Busy,
}

/// Who writes for a message, and who the new deal belongs to.
#[derive(Debug, Clone)]
pub struct MailSender {
    /// The writer the board's policy judges (a member at least).
    pub principal: Principal,
    /// The responsible of a deal created from the message: the API caller; empty (nobody yet)
    /// for SMTP.
    pub responsible: String,
}

impl MailSender {
    /// Mail from the SMTP listener: a member that may open only this board; new deals are
    /// nobody's yet.
    pub fn smtp(board: &BoardId) -> Self {
        MailSender {
            principal: Principal {
                user: MAIL_USER.to_owned(),
                name: "Inbound e-mail".to_owned(),
                role: Role::Member,
                boards: Some(Arc::from(vec![board.clone()])),
                from_token: false,
                expires_at: None,
                board_roles: Arc::default(),
                session: None,
            },
            responsible: String::new(),
        }
    }
}

/// Takes one raw message for `board`: the one path of the API and SMTP (see the module doc).
/// Counted in `funnel_inbound_mail_total{outcome}`.
pub async fn take(
    state: &AppState,
    board: &BoardId,
    raw: &[u8],
    sender: MailSender,
) -> Result<MailOutcome, MailError> {
    let result = take_message(state, board, raw, sender).await;
    let outcome = match &result {
        Ok(outcome) => match outcome.action {
            MailAction::Created => "created",
            MailAction::Appended => "appended",
            MailAction::Duplicate => "duplicate",
            MailAction::Ignored => "ignored",
        },
        Err(MailError::Malformed(_)) => "malformed",
        Err(MailError::TooLarge { .. }) => "too_large",
        Err(MailError::NoSuchBoard(_)) => "no_board",
        Err(MailError::InFlight(_)) => "in_flight",
        Err(MailError::BoardFull { .. }) => "board_full",
        Err(MailError::RateLimited { .. }) => "rate_limited",
        Err(MailError::Refused(_)) => "refused",
        Err(MailError::Storage(_)) => "storage",
        Err(MailError::Busy) => "busy",
    };
    state
        .connections
        .metrics
        .inbound_mail
        .get_or_create(&crate::metrics::MailLabels { outcome })
        .inc();
    result
}

async fn take_message(
    state: &AppState,
    board: &BoardId,
    raw: &[u8],
    sender: MailSender,
) -> Result<MailOutcome, MailError> {
    if raw.len() > state.mail.max_bytes {
        return Err(MailError::TooLarge {
            max: state.mail.max_bytes,
        });
    }
    state
        .mail
        .rate
        .take(board.as_str())
        .map_err(|wait| MailError::RateLimited {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        })?;
    let mail = ParsedMail::parse(raw)?;
    if state.storage.meta(board).await?.is_none() {
        return Err(MailError::NoSuchBoard(board.to_string()));
    }
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    match state
        .storage
        .claim_mail(board, &mail.message_id, now)
        .await?
    {
        MailClaim::Claimed => {}
        MailClaim::Taken(taken) => {
            tracing::debug!(board = %board, message_id = taken.message_id, "inbound mail: duplicate");
            return Ok(MailOutcome {
                action: MailAction::Duplicate,
                card_id: Some(taken.card),
                message_id: taken.message_id,
                event_id: Some(taken.event_id),
            });
        }
        MailClaim::InFlight => return Err(MailError::InFlight(mail.message_id)),
    }
    match place(state, board, &mail, sender, now).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            if let Err(release) = state.storage.release_mail(board, &mail.message_id).await {
                tracing::warn!(board = %board, error = %release, "inbound mail: cannot release a failed claim (it expires in {MAIL_IN_FLIGHT_MS} ms)");
            }
            Err(e)
        }
    }
}

/// Steps 3 and 4 of [`take`], under the claim.
async fn place(
    state: &AppState,
    board: &BoardId,
    mail: &ParsedMail,
    sender: MailSender,
    now: i64,
) -> Result<MailOutcome, MailError> {
    let reply_card = if mail.replies_to.is_empty() {
        None
    } else {
        state.storage.mail_card(board, &mail.replies_to).await?
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let request = ApiRequest::Write {
        principal: sender.principal.clone(),
        origin: Origin::Email,
        write: Box::new({
            let mail = mail.clone();
            let responsible = sender.responsible.clone();
            move |txn| find_or_create_card(txn, reply_card, &mail, responsible, now)
        }),
        read: Box::new(|txn, target| {
            let (action, card) = target.split_once(':').unwrap_or(("appended", target));
            let responsible = board::card(txn, card)
                .map(|c| c.responsible)
                .unwrap_or_default();
            Ok(serde_json::json!({"action": action, "card": card, "responsible": responsible}))
        }),
    };
    write_to_board(
        state,
        board,
        RoomCommand::Api {
            request: Box::new(request),
            reply,
        },
    )
    .await?;
    let placed = answer
        .await
        .map_err(|_| MailError::Busy)?
        .map_err(from_write_error)?;
    if placed["action"] == "ignored" {
        tracing::info!(board = %board, message_id = mail.message_id, "inbound mail: a program's mail about no card, ignored");
        if let Err(e) = state.storage.release_mail(board, &mail.message_id).await {
            tracing::warn!(board = %board, error = %e, "inbound mail: cannot release the claim of an ignored message");
        }
        return Ok(MailOutcome {
            action: MailAction::Ignored,
            card_id: None,
            message_id: mail.message_id.clone(),
            event_id: None,
        });
    }
    let card = placed["card"].as_str().unwrap_or_default().to_owned();
    let action = if placed["action"] == "created" {
        MailAction::Created
    } else {
        MailAction::Appended
    };
    let responsible = placed["responsible"].as_str().unwrap_or_default();
    let event = TimelineEvent {
        id: 0,
        board: board.clone(),
        card: card.clone(),
        at: now,
        kind: TimelineKind::Email,
        direction: TimelineDirection::Incoming,
        // The employee who got the e-mail: the card's responsible (the avatar rule follows).
        user: responsible.to_owned(),
        text: parse::truncate_to(&mail.text, MAX_EVENT_TEXT_BYTES).to_owned(),
    };
    // The mail's record is settled with its timeline entry, in one storage transaction: the
    // page that refetches the timeline on the entry's `timelineAt` sees its subject and sender.
    let record = InboundMail {
        board: board.clone(),
        message_id: mail.message_id.clone(),
        card: card.clone(),
        event_id: 0,
        subject: mail.subject.clone(),
        from_address: mail.from_address.clone(),
        from_name: mail.from_name.clone(),
        at: now,
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    write_to_board(
        state,
        board,
        RoomCommand::Timeline {
            event: Box::new(event),
            origin: Origin::Email,
            mail: Some(Box::new(record)),
            reply,
        },
    )
    .await?;
    let event = answer
        .await
        .map_err(|_| MailError::Busy)?
        .map_err(|e| match e {
            TimelineError::BoardFull { max } => MailError::BoardFull { max },
            TimelineError::NoSuchCard(card) => {
                MailError::Refused(format!("card {card} was deleted meanwhile"))
            }
            TimelineError::Storage(e) => MailError::Storage(e),
        })?;
    tracing::info!(board = %board, card, action = ?action, "inbound mail taken");
    Ok(MailOutcome {
        action,
        card_id: Some(card),
        message_id: mail.message_id.clone(),
        event_id: Some(event.id),
    })
}

/// Every write of inbound mail reaches its board's room here (a card created or found, then
/// its timeline entry), so that what marks a write as coming from e-mail is set in one place.
async fn write_to_board(
    state: &AppState,
    board: &BoardId,
    command: RoomCommand,
) -> Result<(), MailError> {
    let room = state.connections.rooms.get_or_spawn(board);
    room.send(command).await.map_err(|_| MailError::Busy)
}

/// The room's half of placing a message, in one transaction: the card a reply names, else an
/// open card with the sender's address, else a new deal. Returns `created:ID` or `appended:ID`.
fn find_or_create_card(
    txn: &mut yrs::TransactionMut<'_>,
    reply_card: Option<String>,
    mail: &ParsedMail,
    responsible: String,
    now: i64,
) -> Result<String, ApiWriteError> {
    if let Some(card) = reply_card
        && board::card(txn, &card).is_some()
    {
        return Ok(format!("appended:{card}"));
    }
    let view = BoardView::read(txn, now);
    let sender = mail.from_address.to_lowercase();
    let open_match = view
        .columns
        .iter()
        .filter(|column| matches!(column.stage.kind, StageKind::Initial | StageKind::Progress))
        .flat_map(|column| column.cards.iter())
        .filter(|card| !card.email.is_empty() && card.email.to_lowercase() == sender)
        .max_by_key(|card| (card.updated_at, card.id.clone()));
    if let Some(card) = open_match {
        return Ok(format!("appended:{}", card.id));
    }
    if mail.automatic {
        // Nothing written: the transaction stays empty.
        return Ok("ignored:".to_owned());
    }
    let initial = view
        .columns
        .iter()
        .find(|column| column.stage.kind == StageKind::Initial)
        .or(view.columns.first())
        .map(|column| column.stage.id.clone())
        .ok_or_else(|| ApiWriteError::Conflict("the board has no stage".into()))?;
    let title: String = if mail.subject.is_empty() {
        NO_SUBJECT.to_owned()
    } else {
        mail.subject.chars().take(MAX_NAME_CHARS).collect()
    };
    let card = NewCard {
        title,
        amount: 0,
        currency: String::new(),
        responsible,
        client: mail.from_name.chars().take(MAX_NAME_CHARS).collect(),
        email: mail.from_address.clone(),
        fields: BTreeMap::new(),
        ..NewCard::default()
    };
    let id = board::create_card(txn, &initial, card, now)?;
    board::touch_card(txn, &id, now)?;
    Ok(format!("created:{id}"))
}

fn from_write_error(error: ApiWriteError) -> MailError {
    match error {
        ApiWriteError::BoardFull { max } => MailError::BoardFull { max },
        ApiWriteError::Storage => MailError::Busy,
        ApiWriteError::Board(BoardError::BadEmail(address)) => MailError::Refused(format!(
            "a card cannot hold the sender's address {address:?}"
        )),
        other => MailError::Refused(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_carry_the_board_and_its_secret() {
        let board = BoardId::parse("pipeline-1").unwrap();
        let local = MailSettings::new(1024, "crm.example".into(), None, true);
        assert_eq!(local.local_part(&board), "pipeline-1");
        assert_eq!(
            local.board_of_recipient("pipeline-1@anything.example"),
            Ok(board.clone())
        );
        assert_eq!(
            local.board_of_recipient("pipe line@x"),
            Err(RecipientError::NotABoard)
        );

        let secret = "s".repeat(32);
        let tokens = MailSettings::new(1024, "crm.example".into(), Some(&secret), true);
        let part = tokens.local_part(&board);
        let (id, code) = part.split_once('+').unwrap();
        assert_eq!(id, "pipeline-1");
        assert_eq!(code.len(), SECRET_HEX_DIGITS);
        assert_eq!(
            tokens.board_of_recipient(&format!("{part}@mx.example")),
            Ok(board.clone())
        );
        assert_eq!(
            tokens.board_of_recipient(&format!(
                "{}@mx.example",
                part.to_uppercase().replace("PIPELINE", "pipeline")
            )),
            Ok(board.clone()),
            "the secret ignores case"
        );
        assert_eq!(
            tokens.board_of_recipient("pipeline-1@mx.example"),
            Err(RecipientError::BadSecret)
        );
        assert_eq!(
            tokens.board_of_recipient("pipeline-1+0000000000@mx.example"),
            Err(RecipientError::BadSecret)
        );
        let other = BoardId::parse("pipeline-2").unwrap();
        assert_ne!(tokens.board_secret(&other), tokens.board_secret(&board));
        let rotated = MailSettings::new(1024, "x".into(), Some(&"t".repeat(32)), true);
        assert_ne!(rotated.board_secret(&board), tokens.board_secret(&board));
    }
}
