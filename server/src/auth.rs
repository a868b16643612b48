//! Who is calling, and what they may open: tokens (HS256 JWTs), the local mode, browser origins.
//!
//! With a secret (`--auth-secret`), every WebSocket and API call carries a token: `?token=` on
//! the WebSocket URL (browsers cannot set headers there), `Authorization: Bearer` on HTTP. Its
//! claims name the user (`sub`, `name`), their `role` on boards and, optionally, the only
//! `boards` it opens. Without a secret the server is in local mode: it listens on loopback
//! addresses only (see `config`) and every caller is the local admin.
//!
//! What a role may write inside a board is judged per update by `funnel_protocol::policy`; this
//! module decides who the caller is and whether they may open a board at all.

use funnel_protocol::BoardId;
use funnel_protocol::policy::Role;
use funnel_protocol::wire::CloseCode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The claims of a funnel token (docs/security.md, "Tokens").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The user's display name.
    #[serde(default)]
    pub name: String,
    /// `viewer`, `member` or `admin`.
    pub role: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// The only boards this token opens; absent: every board.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boards: Option<Vec<String>>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub name: String,
    pub role: Role,
    /// The only boards the caller may open; `None`: all.
    pub boards: Option<Arc<[BoardId]>>,
    /// `user` comes from a verified token (`false`: the local admin, whom anyone may be): the
    /// room then vouches for it, e.g. as the `user.id` of the caller's presence.
    pub from_token: bool,
    /// When the token stops being valid (its `exp` plus the leeway admission allows); `None`
    /// for the local admin. A socket opened with it is closed (4401) at that instant.
    pub expires_at: Option<SystemTime>,
    /// A person signed in with a session (docs/accounts.md): their roles on particular
    /// boards, over `role` ([`Principal::on_board`] applies them).
    pub board_roles: Arc<BTreeMap<BoardId, Role>>,
    /// The digest of the session the caller signed in with; `None` for a token or the local
    /// admin. A cookie's caller must prove a write comes from an allowed page (the API's CSRF
    /// rule), and their sockets close when the session ends.
    pub session: Option<Arc<str>>,
}

/// The user id of the local admin (local mode).
pub const LOCAL_USER: &str = "local";

impl Principal {
    /// Whether a socket of this signed-in principal on `board` holds the role a revocation of
    /// `user`'s role on `on` names: that board's own, or (`None`) the default one, which the
    /// socket holds on a board it has no role of its own for.
    fn holds_role(&self, user: &str, on: &Option<BoardId>, board: &BoardId) -> bool {
        user == self.user
            && self.session.is_some()
            && on
                .as_ref()
                .map_or(!self.board_roles.contains_key(board), |on| on == board)
    }

    /// Everyone in local mode.
    pub fn local_admin() -> Self {
        Principal {
            user: LOCAL_USER.to_owned(),
            name: "Local admin".to_owned(),
            role: Role::Admin,
            boards: None,
            from_token: false,
            expires_at: None,
            board_roles: Arc::default(),
            session: None,
        }
    }

    /// The caller as they act on `board`: with that board's own role, if they have one.
    pub fn on_board(mut self, board: &BoardId) -> Self {
        if let Some(role) = self.board_roles.get(board) {
            self.role = *role;
        }
        self
    }

    /// Whether the token allows `board` at all (its role decides what it may do there).
    pub fn may_open(&self, board: &BoardId) -> bool {
        self.boards
            .as_ref()
            .is_none_or(|boards| boards.contains(board))
    }
}

/// Why a caller was not authenticated. The message goes to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a token is required: pass ?token= on the WebSocket URL or Authorization: Bearer")]
    Missing,
    #[error("the token has expired: get a new one")]
    Expired,
    #[error("the token's signature does not match this server's secret")]
    BadSignature,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    /// A session cookie that names no live session: signed out, expired, or disabled.
    #[error("your session has ended: sign in again")]
    SessionEnded,
    /// One answer for an unknown e-mail, a wrong password and a disabled person.
    #[error("the e-mail address or the password is wrong")]
    BadCredentials,
}

/// Checks tokens, or lets everyone in as the local admin.
#[derive(Clone)]
pub struct Auth {
    keys: Option<Arc<Keys>>,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// The shortest secret accepted: HS256 wants at least as many bytes as its 256-bit output.
pub const MIN_SECRET_BYTES: usize = 32;

/// Clock skew tolerated on `exp` between the issuer and this server.
const EXPIRY_LEEWAY_SECS: u64 = 5;

impl Auth {
    /// Local mode: no tokens, every caller is the local admin.
    pub fn local() -> Self {
        Auth { keys: None }
    }

    /// Tokens signed with `secret` (HS256).
    pub fn with_secret(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = EXPIRY_LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Auth {
            keys: Some(Arc::new(Keys {
                encoding: EncodingKey::from_secret(secret.as_bytes()),
                decoding: DecodingKey::from_secret(secret.as_bytes()),
                validation,
            })),
        }
    }

    pub fn is_local(&self) -> bool {
        self.keys.is_none()
    }

    /// The caller behind `token` (in local mode, the local admin whatever it passes).
    pub fn authenticate(&self, token: Option<&str>) -> Result<Principal, AuthError> {
        let Some(keys) = &self.keys else {
            return Ok(Principal::local_admin());
        };
        let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
        let data = jsonwebtoken::decode::<Claims>(token, &keys.decoding, &keys.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::InvalidSignature => AuthError::BadSignature,
                    _ => AuthError::Invalid(e.to_string()),
                }
            })?;
        principal(data.claims)
    }

    /// A signed token for `claims`; `None` in local mode.
    pub fn issue(&self, claims: &Claims) -> Option<Result<String, jsonwebtoken::errors::Error>> {
        let keys = self.keys.as_ref()?;
        Some(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &keys.encoding,
        ))
    }
}

fn principal(claims: Claims) -> Result<Principal, AuthError> {
    let role = Role::parse(&claims.role).map_err(|e| AuthError::Invalid(e.to_string()))?;
    if claims.sub.trim().is_empty() {
        return Err(AuthError::Invalid("sub (the user id) is empty".into()));
    }
    let boards = match claims.boards {
        None => None,
        Some(ids) => Some(
            ids.iter()
                .map(|id| {
                    BoardId::parse(id)
                        .map_err(|e| AuthError::Invalid(format!("boards: {id:?}: {e}")))
                })
                .collect::<Result<Arc<[BoardId]>, _>>()?,
        ),
    };
    let name = if claims.name.trim().is_empty() {
        claims.sub.clone()
    } else {
        claims.name
    };
    // An `exp` beyond what the clock can hold never expires in practice.
    let expires_at = UNIX_EPOCH.checked_add(Duration::from_secs(
        claims.exp.saturating_add(EXPIRY_LEEWAY_SECS),
    ));
    Ok(Principal {
        user: claims.sub,
        name,
        role,
        boards,
        from_token: true,
        expires_at,
        board_roles: Arc::default(),
        session: None,
    })
}

/// Claims for a token that expires `ttl` from now.
pub fn claims_for(
    user: &str,
    name: Option<&str>,
    role: Role,
    boards: &[BoardId],
    ttl: Duration,
) -> Claims {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Claims {
        sub: user.to_owned(),
        name: name.unwrap_or(user).to_owned(),
        role: role.as_str().to_owned(),
        exp: (now + ttl).as_secs(),
        boards: (!boards.is_empty()).then(|| boards.iter().map(|b| b.to_string()).collect()),
    }
}

/// What ends open sockets at once (docs/accounts.md, "Closing sockets"): an admin disabling a
/// person or lowering their role, a sign-out. Every connection subscribes and closes itself when
/// a revocation names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The person was disabled: every socket of theirs closes (4401).
    Disabled { user: String },
    /// The person's role was lowered on `board` (`None`: their default role, every board
    /// without one of its own): their sockets there close (4403) and reopen with the new role.
    RoleLowered {
        user: String,
        board: Option<BoardId>,
    },
    /// The person's role on `board` (`None`: their default role, every board without one of
    /// its own) changed without lowering what they may do there: raised, or a board role added
    /// or removed at the same rights. Their sockets there reconnect (1012), so that each holds
    /// the roles that are true now, and a later lowering finds it.
    RoleChanged {
        user: String,
        board: Option<BoardId>,
    },
    /// The session ended (sign-out): the sockets opened with it close (4401).
    SessionEnded { session: Arc<str> },
    /// The board was archived or restored: every socket on it closes (1012) and reconnects,
    /// read-only on an archived board, with its role on a restored one. Tokens' sockets too.
    BoardReopened { board: BoardId },
}

impl Revocation {
    /// The reason and close code a connection of `who` on `board` gets, if this revocation
    /// names it.
    pub fn closes(
        &self,
        who: &Principal,
        board: &BoardId,
    ) -> Option<(&'static str, Option<CloseCode>)> {
        match self {
            Revocation::Disabled { user } if *user == who.user && who.session.is_some() => Some((
                "your account was disabled by an administrator",
                Some(CloseCode::Unauthenticated),
            )),
            Revocation::RoleLowered { user, board: on } if who.holds_role(user, on, board) => {
                Some((
                    "an administrator changed your role on this board: reload the page",
                    Some(CloseCode::Forbidden),
                ))
            }
            Revocation::RoleChanged { user, board: on } if who.holds_role(user, on, board) => {
                Some((
                    "your role on this board changed: reconnecting",
                    Some(CloseCode::ServiceRestart),
                ))
            }
            Revocation::SessionEnded { session } if who.session.as_ref() == Some(session) => {
                Some(("you signed out", Some(CloseCode::Unauthenticated)))
            }
            Revocation::BoardReopened { board: on } if on == board => Some((
                "the board was archived or restored: reconnecting",
                Some(CloseCode::ServiceRestart),
            )),
            _ => None,
        }
    }
}

/// The bounded channel of [`Revocation`]s: the accounts API sends, every connection holds a
/// receiver. A connection that falls [`REVOCATIONS_QUEUED`] behind (it missed some) closes with
/// 1013 and reconnects, authenticated again, rather than risk keeping a revoked socket.
#[derive(Clone)]
pub struct Revocations {
    sender: tokio::sync::broadcast::Sender<Revocation>,
    /// In a cluster, the bus that carries revocations to the other instances (set once at
    /// start, see [`Revocations::publish_on`]); `bus::revocations::listen` hears theirs.
    bus: Arc<std::sync::OnceLock<Arc<dyn crate::bus::Bus>>>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("listeners", &self.sender.receiver_count())
            .field("cluster", &self.bus.get().is_some())
            .finish()
    }
}

/// Revocations a connection may be behind before it must reconnect.
pub const REVOCATIONS_QUEUED: usize = 256;

impl Default for Revocations {
    fn default() -> Self {
        Self {
            sender: tokio::sync::broadcast::channel(REVOCATIONS_QUEUED).0,
            bus: Arc::default(),
        }
    }
}

impl Revocations {
    /// Tells every connection of this instance (none listening is fine: nothing to close) and,
    /// in a cluster, publishes it for the other instances' connections.
    pub fn send(&self, revocation: Revocation) {
        if let Some(bus) = self.bus.get() {
            bus.publish(
                &crate::bus::revocations::channel(),
                crate::bus::BusPayload::Revocation(revocation.clone()),
            );
        }
        self.close_here(revocation);
    }

    /// Tells this instance's connections only: what another instance published.
    pub fn close_here(&self, revocation: Revocation) {
        let _ = self.sender.send(revocation);
    }

    /// From now on, [`Revocations::send`] publishes on `bus` too (once: a second bus is
    /// ignored, there is one per process).
    pub fn publish_on(&self, bus: Arc<dyn crate::bus::Bus>) {
        let _ = self.bus.set(bus);
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Revocation> {
        self.sender.subscribe()
    }
}

/// Which browser origins may open sockets and call the API. A request without an `Origin`
/// header is not from a browser page and passes; a browser page's origin must be the server's
/// own (its authority equals the `Host` the browser used) or one of the configured ones.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    allowed: Arc<[String]>,
    any: bool,
}

impl Origins {
    /// `allowed`: exact origins (`https://crm.example.com`), or `*` for any.
    pub fn new(allowed: &[String]) -> Self {
        let any = allowed.iter().any(|o| o == "*");
        Origins {
            allowed: allowed
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            any,
        }
    }

    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        if self.any {
            return true;
        }
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        if let (Some(authority), Some(host)) = (authority, host)
            && authority.eq_ignore_ascii_case(host)
        {
            return true;
        }
        self.allowed.contains(&origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn board(id: &str) -> BoardId {
        BoardId::parse(id).unwrap()
    }

    #[test]
    fn a_token_round_trips_into_its_principal() {
        let auth = Auth::with_secret(SECRET);
        let claims = claims_for(
            "u1",
            Some("Ann"),
            Role::Member,
            &[board("q4")],
            Duration::from_secs(60),
        );
        let token = auth.issue(&claims).unwrap().unwrap();
        let who = auth.authenticate(Some(&token)).unwrap();
        assert_eq!(who.user, "u1");
        assert_eq!(who.name, "Ann");
        assert_eq!(who.role, Role::Member);
        assert!(who.may_open(&board("q4")));
        assert!(!who.may_open(&board("other")));
    }

    #[test]
    fn missing_expired_forged_and_malformed_tokens_are_refused() {
        let auth = Auth::with_secret(SECRET);
        assert_eq!(auth.authenticate(None), Err(AuthError::Missing));
        let mut claims = claims_for("u1", None, Role::Admin, &[], Duration::ZERO);
        claims.exp -= 60;
        let expired = auth.issue(&claims).unwrap().unwrap();
        assert_eq!(auth.authenticate(Some(&expired)), Err(AuthError::Expired));
        let other = Auth::with_secret("another secret of thirty-two bytes!!");
        let forged = other
            .issue(&claims_for(
                "u1",
                None,
                Role::Admin,
                &[],
                Duration::from_secs(60),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(
            auth.authenticate(Some(&forged)),
            Err(AuthError::BadSignature)
        );
        assert!(matches!(
            auth.authenticate(Some("not.a.token")),
            Err(AuthError::Invalid(_))
        ));
        let mut bad_role = claims_for("u1", None, Role::Admin, &[], Duration::from_secs(60));
        bad_role.role = "owner".into();
        let token = auth.issue(&bad_role).unwrap().unwrap();
        assert!(matches!(
            auth.authenticate(Some(&token)),
            Err(AuthError::Invalid(reason)) if reason.contains("owner")
        ));
    }

    #[test]
    fn local_mode_makes_everyone_the_local_admin() {
        let who = Auth::local().authenticate(None).unwrap();
        assert_eq!(who, Principal::local_admin());
    }

    #[test]
    fn origins_allow_the_servers_own_and_the_configured_ones() {
        let origins = Origins::new(&["https://crm.example.com".to_owned()]);
        assert!(origins.allows(None, Some("127.0.0.1:8080")));
        assert!(origins.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
        assert!(origins.allows(Some("https://CRM.example.com/"), Some("funnel:8080")));
        assert!(!origins.allows(Some("https://evil.example"), Some("127.0.0.1:8080")));
        assert!(!origins.allows(Some("null"), Some("127.0.0.1:8080")));
        assert!(Origins::new(&["*".to_owned()]).allows(Some("https://x"), None));
    }
}
