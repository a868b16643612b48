//! People who sign in (docs/accounts.md): passwords, sessions, invites, and who a request's
//! caller is when it carries a session cookie instead of a token.
//!
//! With `--auth-secret`, funnel keeps accounts in its storage: an admin invites a person (a
//! one-time link whose secret is stored only as its SHA-256), the person sets a password
//! (argon2id, the RustCrypto crate) and gets a session: an opaque random id in an `HttpOnly`,
//! `SameSite=Lax` cookie, stored only as its SHA-256, with an expiry. Tokens (`funnel token`)
//! keep working beside sessions, for programs. Without a secret there are no accounts: everyone
//! is the local admin.

use crate::auth::{Auth, AuthError, Principal, Revocation, Revocations};
use crate::config::SecureCookies;
use crate::headers::{bearer_token, header_str};
use crate::limits::CallerRate;
use crate::storage::accounts::{Person, Session};
use crate::storage::{Storage, StorageError};
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "funnel_session";

/// The shortest password taken, in characters (NIST SP 800-63B asks for at least 8; a
/// passphrase is better).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest, in bytes: argon2 hashes any length, but a megabyte password is an attack.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Sign-in attempts a minute per address and per e-mail, and the burst above it: enough for a
/// person's typos, too few for guessing.
pub const LOGINS_PER_MINUTE: u32 = 10;
pub const LOGIN_BURST: u32 = 5;

/// Identity-provider callbacks a minute per address, and the burst above it: each one makes this
/// server call the provider (the code's exchange, the keys), so they are bounded; more than
/// passwords, since a callback guesses nothing and an office signs in from one address.
pub const PROVIDER_CALLBACKS_PER_MINUTE: u32 = 30;
pub const PROVIDER_CALLBACK_BURST: u32 = 20;

/// The accounts of one server: its storage, its settings, and the revocations it sends.
pub struct Accounts {
    storage: Arc<dyn Storage>,
    /// Accounts are on with `--auth-secret` only.
    enabled: bool,
    pub session_ttl: Duration,
    pub invite_ttl: Duration,
    /// `--public-url`'s origin: what invite links are made on (`None`: the address the
    /// inviting request came to).
    public_origin: Option<String>,
    secure_cookies: SecureCookies,
    /// Sign-in attempts per address and per e-mail (keys `ip:…`, `email:…`).
    logins: CallerRate,
    /// Identity-provider callbacks per address (see [`PROVIDER_CALLBACKS_PER_MINUTE`]).
    provider_callbacks: CallerRate,
    /// Every connection of this instance listens; see `auth::Revocation`.
    pub revocations: Revocations,
}

/// A new random secret (an invite's or a session's): 32 bytes from the system's source, in
/// URL-safe base64 without padding (43 characters).
pub fn new_secret() -> Result<String, StorageError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        StorageError::Io(std::io::Error::other(format!(
            "the system's random source failed: {e}"
        )))
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a secret: its SHA-256, in hex. The secrets are 256 random bits, so a fast
/// hash is enough (nothing to brute-force), unlike a password.
pub fn digest(secret: &str) -> String {
    let hash = Sha256::digest(secret.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// An e-mail address as people are looked up by: trimmed and lowercase. `None` for what is not
/// an address at all (one `@` with something on both sides, no spaces, at most 254 bytes).
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let valid = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    valid.then_some(email)
}

/// Why a password is not taken; `None` when it is.
pub fn password_problem(password: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Some(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters (a few words are easy to remember)"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Some(format!(
            "a password may have at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    None
}

/// The argon2id hash of a password (a PHC string with its salt). CPU work: off the runtime.
pub async fn hash_password(password: &str) -> Result<String, StorageError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| StorageError::Io(std::io::Error::other(format!("argon2: {e}"))))
    })
    .await
    .map_err(|_| StorageError::Closed)?
}

/// Whether `password` matches `hash`; with no hash (an unknown e-mail, a person who never set a
/// password) a dummy hash is checked, so that a wrong e-mail takes as long as a wrong password.
async fn verify_password(password: &str, hash: Option<String>) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match hash {
            Some(hash) => (hash, true),
            None => (dummy_hash().to_owned(), false),
        };
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        matches && real
    })
    .await
    .unwrap_or(false)
}

/// A hash of nothing anyone knows, made once, with the same parameters as real ones.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"no password matches this one", &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

/// The caller a session cookie names.
fn principal_of(session: &Session, person: Person) -> Principal {
    let expires_at = u64::try_from(session.expires_at)
        .ok()
        .and_then(|at| UNIX_EPOCH.checked_add(Duration::from_millis(at)));
    Principal {
        user: person.id,
        name: person.name,
        role: person.role,
        boards: None,
        from_token: true,
        expires_at,
        board_roles: Arc::new(person.board_roles),
        session: Some(Arc::from(session.digest.as_str())),
    }
}

/// The value of the cookie `name` in a request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// What a sign-in attempt came to.
#[derive(Debug)]
pub enum SignIn {
    /// The session's cookie value, and the person.
    Welcome { secret: String, person: Person },
    /// A wrong e-mail or password (one answer for both), or a disabled person.
    Refused,
    /// Over the rate: retry after this long.
    Slow(Duration),
}

impl Accounts {
    pub fn new(
        storage: Arc<dyn Storage>,
        auth: &Auth,
        config: &crate::config::ServeConfig,
    ) -> Self {
        Accounts {
            storage,
            enabled: !auth.is_local(),
            session_ttl: config.session_ttl,
            invite_ttl: config.invite_ttl,
            // `validate` refused a wrong one before the server started.
            public_origin: config.public_origin().ok().flatten(),
            secure_cookies: config.secure_cookies,
            logins: CallerRate::new(LOGINS_PER_MINUTE, LOGIN_BURST),
            provider_callbacks: CallerRate::new(
                PROVIDER_CALLBACKS_PER_MINUTE,
                PROVIDER_CALLBACK_BURST,
            ),
            revocations: Revocations::default(),
        }
    }

    /// Accounts are on (`--auth-secret`); off, everyone is the local admin.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Who calls: a token (`token`, from `?token=`, or `Authorization: Bearer`) wins; else the
    /// session cookie; in local mode, the local admin. The outer error: storage did not answer.
    pub async fn authenticate(
        &self,
        auth: &Auth,
        headers: &HeaderMap,
        token: Option<&str>,
    ) -> Result<Result<Principal, AuthError>, StorageError> {
        if auth.is_local() {
            return Ok(Ok(Principal::local_admin()));
        }
        let token = token
            .filter(|t| !t.is_empty())
            .or_else(|| bearer_token(headers));
        if let Some(token) = token {
            return Ok(auth.authenticate(Some(token)));
        }
        let Some(secret) = cookie(headers, SESSION_COOKIE).filter(|s| !s.is_empty()) else {
            return Ok(Err(AuthError::Missing));
        };
        let found = self
            .storage
            .accounts()
            .session(&digest(secret), now_ms())
            .await?;
        Ok(found
            .map(|(session, person)| principal_of(&session, person))
            .ok_or(AuthError::SessionEnded))
    }

    /// Takes one identity-provider callback from `peer`'s budget
    /// ([`PROVIDER_CALLBACKS_PER_MINUTE`]); `Err` holds how long to wait.
    pub fn take_provider_callback(&self, peer: std::net::IpAddr) -> Result<(), Duration> {
        self.provider_callbacks.take(&peer.to_string())
    }

    /// Checks an e-mail and password and, when they match an enabled person, starts a session.
    pub async fn sign_in(
        &self,
        peer: std::net::IpAddr,
        email: &str,
        password: &str,
    ) -> Result<SignIn, StorageError> {
        let email = normalize_email(email).unwrap_or_default();
        for key in [format!("ip:{peer}"), format!("email:{email}")] {
            if let Err(wait) = self.logins.take(&key) {
                return Ok(SignIn::Slow(wait));
            }
        }
        let person = if email.is_empty() {
            None
        } else {
            self.storage.accounts().person_by_email(&email).await?
        };
        let hash = person.as_ref().and_then(|p| p.password_hash.clone());
        // Checked whatever was found, so that every refusal costs the same.
        let matches = verify_password(password, hash).await;
        let Some(person) = person.filter(|p| matches && p.disabled_at.is_none()) else {
            tracing::info!(%peer, "a sign-in was refused");
            return Ok(SignIn::Refused);
        };
        let (secret, session) = self.new_session(&person.id)?;
        self.storage.accounts().create_session(&session).await?;
        tracing::info!(user = person.id, "signed in");
        Ok(SignIn::Welcome { secret, person })
    }

    /// A new session for `person`: the cookie's value, and what is stored of it.
    /// The origin invite links are made on, when `--public-url` gives one.
    pub fn public_origin(&self) -> Option<&str> {
        self.public_origin.as_deref()
    }

    pub fn new_session(&self, person: &str) -> Result<(String, Session), StorageError> {
        let secret = new_secret()?;
        let now = now_ms();
        let session = Session {
            digest: digest(&secret),
            person: person.to_owned(),
            expires_at: now.saturating_add(ms(self.session_ttl)),
            created_at: now,
        };
        Ok((secret, session))
    }

    /// Ends the session of this cookie value, and closes its sockets.
    pub async fn sign_out(&self, secret: &str) -> Result<(), StorageError> {
        let digest = digest(secret);
        self.storage.accounts().delete_session(&digest).await?;
        self.revocations.send(Revocation::SessionEnded {
            session: Arc::from(digest.as_str()),
        });
        Ok(())
    }

    /// The `Set-Cookie` value that hands a browser its session.
    pub fn session_cookie(&self, secret: &str, request: &HeaderMap) -> HeaderValue {
        let max_age = self.session_ttl.as_secs();
        let secure = if self.secure(request) { "; Secure" } else { "" };
        let value = format!(
            "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        );
        // The secret is URL-safe base64, the rest ASCII: always a valid header value.
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The `Set-Cookie` value that makes a browser forget its session.
    pub fn cleared_cookie(&self, request: &HeaderMap) -> HeaderValue {
        let secure = if self.secure(request) { "; Secure" } else { "" };
        let value = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}");
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Whether cookies set in answer to `request` carry `Secure` (`--secure-cookies`).
    pub fn secure(&self, request: &HeaderMap) -> bool {
        match self.secure_cookies {
            SecureCookies::Always => true,
            SecureCookies::Never => false,
            SecureCookies::Auto => header_str(
                request,
                header::HeaderName::from_static("x-forwarded-proto"),
            )
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https")),
        }
    }
}

/// The initials a person's avatar shows: the first letters of their first and last words
/// ("Ann Lee" → "AL", "cher" → "C"), uppercase.
pub fn initials(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let first = words.first().and_then(|w| w.chars().next());
    let last = (words.len() > 1)
        .then(|| words.last().and_then(|w| w.chars().next()))
        .flatten();
    first
        .into_iter()
        .chain(last)
        .flat_map(char::to_uppercase)
        .collect()
}

/// A person's colour: the web client's `colorFor` (clients/web/src/ui/users.ts), the same
/// for the same id everywhere: a hue from FNV-1a over the id's UTF-16 units, saturation 0.65,
/// lightness 0.28 (dark enough for white initials at 4.5:1 whatever the hue).
pub fn color_for(id: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for unit in id.encode_utf16() {
        hash ^= u32::from(unit);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let hue = f64::from(hash % 360);
    let (s, l) = (0.65_f64, 0.28_f64);
    let a = s * l.min(1.0 - l);
    let channel = |n: f64| {
        let k = (n + hue / 30.0) % 12.0;
        let value = l - a * (-1.0_f64).max((k - 3.0).min(9.0 - k).min(1.0));
        // JavaScript's Math.round: halves go up.
        let byte = (value * 255.0 + 0.5).floor().clamp(0.0, 255.0);
        format!("{:02x}", byte as u8)
    };
    format!("#{}{}{}", channel(0.0), channel(8.0), channel(4.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_take_the_first_and_last_words() {
        assert_eq!(initials("Ann Lee"), "AL");
        assert_eq!(initials("  maria de la cruz "), "MC");
        assert_eq!(initials("cher"), "C");
        assert_eq!(initials(""), "");
    }

    #[test]
    fn colours_match_the_web_clients() {
        // clients/web/test/people.test.ts pins colorFor to the same colours for the same ids.
        assert_eq!(color_for("ann"), "#761957");
        assert_eq!(color_for("bob"), "#5d1976");
        assert_eq!(color_for("x"), "#197630");
    }

    #[test]
    fn emails_are_normalized_or_refused() {
        assert_eq!(
            normalize_email(" Ann@Example.COM "),
            Some("ann@example.com".into())
        );
        assert_eq!(normalize_email("ann"), None);
        assert_eq!(normalize_email("@example.com"), None);
        assert_eq!(normalize_email("a b@example.com"), None);
        assert_eq!(normalize_email("a@b@c"), None);
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; funnel_session=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[tokio::test]
    async fn passwords_verify_against_their_hash_only() {
        let hash = hash_password("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(hash.clone())).await);
        assert!(!verify_password("wrong horse battery", Some(hash)).await);
        assert!(!verify_password("no password matches this one", None).await);
    }
}
