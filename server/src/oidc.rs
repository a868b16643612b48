//! Sign-in through a company's identity provider with OpenID Connect (docs/accounts.md, "How a
//! team signs in with an identity provider"): the authorization-code flow with PKCE, a state
//! and a nonce, by the `openidconnect` crate, which discovers the provider from its issuer URL
//! and checks the ID token (signature, issuer, audience, expiry, nonce).
//!
//! - `GET /auth/oidc/start?next=/path`: a new flow. Its state, nonce, PKCE verifier and the page
//!   asked for travel in a short-lived cookie named after the state, signed with a key derived
//!   from `--auth-secret` (so any instance of a cluster can finish the flow, and two tabs signing
//!   in at once do not overwrite each other's), then the browser goes to the provider.
//! - `GET /auth/oidc/callback?code&state`: the cookie must match the state, the code is
//!   exchanged, the ID token verified, and the verified e-mail picks the person of the directory
//!   ([`admit`]): the normal session cookie is then set exactly as a password sign-in sets it,
//!   and the browser goes back to the page asked for (a same-origin path only).
//!
//! Every failure lands on the page asked for with `?signInError=<code>` ([`Refusal`]), which the
//! sign-in page turns into a sentence; the protocol's details go to the log at warn.

use crate::accounts::{Accounts, normalize_email, now_ms};
use crate::app_state::AppState;
use crate::config::{ServeConfig, check_scheme, public_base};
use crate::storage::StorageError;
use crate::storage::accounts::Person;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use funnel_protocol::board::MAX_NAME_CHARS;
use funnel_protocol::ids::new_id;
use funnel_protocol::policy::Role;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// Where the provider sends the browser back: `{--public-url}` + this.
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";
/// Where the sign-in page's button goes.
pub const START_PATH: &str = "/auth/oidc/start";
/// The flow's cookie is `funnel_oidc_<state>`, sent to `/auth/oidc` only.
const FLOW_COOKIE_PREFIX: &str = "funnel_oidc_";
const FLOW_COOKIE_PATH: &str = "/auth/oidc";
/// How long a person has to sign in at the provider (a password, a second factor, a coffee).
pub const FLOW_TTL: Duration = Duration::from_secs(10 * 60);
/// How long discovered metadata and keys are used before they are fetched again: providers
/// rotate their signing keys, announcing new ones in advance, and the crate never refetches.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(60 * 60);
/// After a failed discovery, how long sign-ins are refused before the provider is asked again
/// (a provider that is down is not hammered by every click).
pub const DISCOVERY_RETRY: Duration = Duration::from_secs(5);
/// Calls to the provider (discovery, keys, token, userinfo): a provider slower than this is
/// down as far as a person waiting at the sign-in page is concerned.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest page path kept for after the sign-in.
const MAX_NEXT_BYTES: usize = 2048;
/// The audience of the flow cookie's claims: nothing else signed with the derived key passes.
const FLOW_AUDIENCE: &str = "funnel-oidc-flow";

/// The OpenID Connect settings, from the flags (`--oidc-*`, `--public-url`), checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// `{--public-url}/auth/oidc/callback`: what the provider must have registered.
    pub redirect_uri: String,
    /// The provider's name on the button ("Sign in with Acme"); `None`: a generic label.
    pub name: Option<String>,
    /// Verified e-mails of these domains (lowercase) get an account on their first sign-in.
    pub allowed_domains: Vec<String>,
    /// The role such a new person gets on every board.
    pub default_role: Role,
}

/// The roles `--oidc-default-role` takes: admins are made by an admin, never by a sign-in.
pub const DEFAULT_ROLES: [&str; 2] = ["viewer", "member"];

impl OidcSettings {
    /// The settings the flags ask for: `None` when `--oidc-issuer` is unset (OpenID Connect
    /// off), an error that says what to fix when they cannot work.
    pub fn from_config(config: &ServeConfig) -> Result<Option<OidcSettings>, String> {
        let Some(issuer) = config.oidc_issuer.as_deref().filter(|i| !i.is_empty()) else {
            // Empty is unset (deployment templates leave variables empty).
            let set =
                |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
            let others = set(&config.oidc_client_id)
                || set(&config.oidc_client_secret)
                || config
                    .oidc_client_secret_file
                    .as_ref()
                    .is_some_and(|path| !path.as_os_str().is_empty())
                || set(&config.oidc_name)
                || config
                    .oidc_allowed_domains
                    .iter()
                    .any(|d| !d.trim().is_empty());
            if others {
                return Err(
                    "the --oidc-* flags need --oidc-issuer (the identity provider's \
                            issuer URL, such as https://id.example.com/realms/acme)"
                        .into(),
                );
            }
            return Ok(None);
        };
        if config.auth_secret.is_none() {
            return Err(
                "--oidc-issuer needs --auth-secret: people who sign in get accounts, which exist \
                 only with a secret"
                    .into(),
            );
        }
        let issuer = provider_url("--oidc-issuer", issuer)?;
        let client_id = config
            .oidc_client_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or("--oidc-issuer needs --oidc-client-id: the client id the provider gave funnel")?
            .to_owned();
        let secret = config
            .oidc_client_secret
            .as_ref()
            .filter(|s| !s.trim().is_empty());
        let secret_file = config
            .oidc_client_secret_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty());
        let client_secret = match (secret, secret_file) {
            (Some(_), Some(_)) => {
                return Err(
                    "give --oidc-client-secret or --oidc-client-secret-file, not both".into(),
                );
            }
            (Some(secret), None) => secret.trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| {
                    format!(
                        "--oidc-client-secret-file: cannot read {}: {e}",
                        path.display()
                    )
                })?
                .trim()
                .to_owned(),
            (None, None) => {
                return Err("--oidc-issuer needs --oidc-client-secret (or \
                            --oidc-client-secret-file): the secret the provider gave funnel's \
                            client"
                    .into());
            }
        };
        if client_secret.is_empty() {
            return Err("the OpenID Connect client secret is empty".into());
        }
        let public_url = config
            .public_url
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or(
                "--oidc-issuer needs --public-url: the address people open funnel at (such as \
             https://crm.example.com), to build the redirect URI the provider sends them back to",
            )?;
        let public_url = public_base("--public-url", public_url)?;
        let name = match config.oidc_name.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) if name.chars().count() > 60 => {
                return Err("--oidc-name must have at most 60 characters".into());
            }
            Some(name) => Some(name.to_owned()),
        };
        let mut allowed_domains = Vec::new();
        for raw in &config.oidc_allowed_domains {
            let domain = raw.trim().trim_start_matches('@').to_lowercase();
            if domain.is_empty() {
                continue;
            }
            let valid = domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
            if !valid {
                return Err(format!(
                    "--oidc-allowed-domains: {raw:?} is not a domain name such as example.com"
                ));
            }
            allowed_domains.push(domain);
        }
        let default_role = Role::parse(&config.oidc_default_role)
            .ok()
            .filter(|role| *role < Role::Admin)
            .ok_or("--oidc-default-role must be viewer or member (admins are made by an admin)")?;
        Ok(Some(OidcSettings {
            issuer,
            client_id,
            client_secret,
            redirect_uri: format!("{public_url}{CALLBACK_PATH}"),
            name,
            allowed_domains,
            default_role,
        }))
    }
}

/// An issuer URL as the specification wants it: https (http on a loopback address, for a
/// provider on the same machine), no query or fragment. Kept as written but for a trailing
/// slash: the provider's metadata must name the very same issuer.
fn provider_url(flag: &str, raw: &str) -> Result<String, String> {
    let url =
        url::Url::parse(raw.trim()).map_err(|e| format!("{flag}: {raw:?} is not a URL: {e}"))?;
    check_scheme(flag, &url)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{flag} must not have a query or a fragment"));
    }
    Ok(raw.trim().trim_end_matches('/').to_owned())
}

/// Why a sign-in through the provider failed, as the sign-in page is told
/// (`?signInError=<code>`): each code is a sentence in the web client's catalogue
/// (clients/web/src/i18n, `signIn.error.<code>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The flow's cookie is missing, expired or does not match the state: it took more than
    /// ten minutes, was started in another browser, or someone tampered with it.
    State,
    /// The person cancelled, or the provider refused them (`access_denied`).
    Denied,
    /// The provider answered something that does not check out (an error, a bad token).
    Provider,
    /// The provider cannot be reached (discovery failed).
    Unavailable,
    /// No verified e-mail came with the sign-in.
    Unverified,
    /// The e-mail is not in the directory, and its domain is not let in.
    Unknown,
    /// The e-mail's person is linked to another account at the provider (the provider gave the
    /// address to someone else).
    Taken,
    /// The person was disabled by an admin.
    Disabled,
    /// Too many sign-ins from this address in a short time (`accounts::PROVIDER_CALLBACKS_PER_MINUTE`):
    /// the callback cannot be used to make this server call the provider without end.
    Slow,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::State => "state",
            Refusal::Denied => "denied",
            Refusal::Provider => "provider",
            Refusal::Unavailable => "unavailable",
            Refusal::Unverified => "unverified",
            Refusal::Unknown => "unknown",
            Refusal::Taken => "taken",
            Refusal::Disabled => "disabled",
            Refusal::Slow => "slow",
        }
    }
}

/// Who a verified sign-in lets in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A person of the directory (invited or active); `link`: their first sign-in through the
    /// provider, whose subject is to be kept with them.
    Known {
        person: Person,
        link: bool,
    },
    /// Nobody yet, but the domain is let in: a new person with this e-mail.
    New {
        email: String,
    },
    Refused(Refusal),
}

/// The provider's subject as a person keeps it: `{issuer} {sub}` (an issuer has no spaces).
pub fn subject_key(issuer: &str, subject: &str) -> String {
    format!("{issuer} {subject}")
}

/// The issuer part of a [`subject_key`].
fn issuer_of(key: &str) -> &str {
    key.split_once(' ').map_or(key, |(issuer, _)| issuer)
}

/// The rule of who may sign in (`subject`: [`subject_key`]):
/// - the person already linked to this subject, unless disabled (their e-mail may have changed
///   at the provider since: the subject is what the provider never reassigns);
/// - else the person of the directory with this e-mail, if the provider verified it, the person
///   is not disabled and is not linked to another subject of the same provider;
/// - else, for an e-mail nobody has, a new person when its domain is of `allowed_domains`.
pub fn admit(
    subject: &str,
    email: Option<&str>,
    verified: bool,
    by_subject: Option<Person>,
    by_email: Option<Person>,
    allowed_domains: &[String],
) -> Admission {
    if let Some(person) = by_subject {
        return if person.disabled_at.is_some() {
            Admission::Refused(Refusal::Disabled)
        } else {
            Admission::Known {
                person,
                link: false,
            }
        };
    }
    let Some(email) = email.and_then(normalize_email).filter(|_| verified) else {
        return Admission::Refused(Refusal::Unverified);
    };
    match by_email {
        Some(person) if person.disabled_at.is_some() => Admission::Refused(Refusal::Disabled),
        // Linked at this provider to someone else: a reused address is not that person.
        Some(person)
            if person.oidc_subject.as_deref().is_some_and(|linked| {
                linked != subject && issuer_of(linked) == issuer_of(subject)
            }) =>
        {
            Admission::Refused(Refusal::Taken)
        }
        Some(person) => Admission::Known {
            link: person.oidc_subject.as_deref() != Some(subject),
            person,
        },
        None => {
            let domain = email.rsplit_once('@').map_or("", |(_, domain)| domain);
            if allowed_domains.iter().any(|allowed| allowed == domain) {
                Admission::New { email }
            } else {
                Admission::Refused(Refusal::Unknown)
            }
        }
    }
}

/// The page to go back to after the sign-in: a path of this origin (`/…`, never `//host` or
/// `/\host`, which browsers take for another site) in visible ASCII, without its fragment; else
/// the home page.
pub fn safe_next(raw: Option<&str>) -> String {
    let Some(raw) = raw else {
        return "/".into();
    };
    let path = raw.split('#').next().unwrap_or_default();
    // Visible ASCII only, as a `Location` header takes it (a browser's path and query come
    // percent-encoded).
    let same_origin = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && path.bytes().all(|b| b.is_ascii_graphic())
        && path.len() <= MAX_NEXT_BYTES
        && !path.starts_with(FLOW_COOKIE_PATH);
    if same_origin { path.into() } else { "/".into() }
}

/// `next` with `?signInError=<code>` added, for the sign-in page to show.
pub fn with_refusal(next: &str, refusal: Refusal) -> String {
    let joiner = if next.contains('?') { '&' } else { '?' };
    format!("{next}{joiner}signInError={}", refusal.code())
}

/// What the flow's cookie carries from the start to the callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// The page asked for, checked by [`safe_next`].
    pub next: String,
    /// Seconds since the Unix epoch.
    pub exp: u64,
    pub aud: String,
}

/// Signs and checks flow cookies with a key of their own, derived from `--auth-secret` (a
/// flow cookie is never a token, nor a token a flow cookie).
pub struct FlowSeal {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl FlowSeal {
    pub fn new(auth_secret: &str) -> Self {
        let key = derive_key(auth_secret, b"funnel oidc flow cookie");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_audience(&[FLOW_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        FlowSeal {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
        }
    }

    /// A new flow for `next`, and its cookie's value.
    pub fn open(
        &self,
        state: String,
        nonce: String,
        verifier: String,
        next: String,
    ) -> Result<(Flow, String), jsonwebtoken::errors::Error> {
        let exp = jsonwebtoken::get_current_timestamp().saturating_add(FLOW_TTL.as_secs());
        let flow = Flow {
            state,
            nonce,
            verifier,
            next,
            exp,
            aud: FLOW_AUDIENCE.into(),
        };
        let sealed = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &flow, &self.encoding)?;
        Ok((flow, sealed))
    }

    /// The flow of a cookie value, if it is ours, unexpired, and for `state`.
    pub fn check(&self, sealed: &str, state: &str) -> Result<Flow, String> {
        let flow = jsonwebtoken::decode::<Flow>(sealed, &self.decoding, &self.validation)
            .map_err(|e| e.to_string())?
            .claims;
        if flow.state != state {
            return Err("the cookie is for another state".into());
        }
        Ok(flow)
    }
}

fn derive_key(secret: &str, label: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(label);
    mac.finalize().into_bytes().to_vec()
}

/// Whether a state is one we could have made (URL-safe base64, like `CsrfToken::new_random`'s),
/// so that it can name a cookie.
fn plausible_state(state: &str) -> bool {
    (16..=128).contains(&state.len())
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The client the discovered metadata makes.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

enum Discovered {
    None,
    Ready { client: Arc<Client>, at: Instant },
    Failed { at: Instant },
}

/// The server's OpenID Connect side: its settings, the provider's discovered client (cached
/// for [`DISCOVERY_TTL`]) and the flow cookies' seal.
pub struct Oidc {
    pub settings: OidcSettings,
    http: openidconnect::reqwest::Client,
    /// Held across a discovery: one at a time, the others wait for its outcome.
    discovered: tokio::sync::Mutex<Discovered>,
    seal: FlowSeal,
}

/// What went wrong talking to the provider: logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("discovery of {issuer} failed: {detail}")]
    Discovery { issuer: String, detail: String },
    #[error("discovery failed moments ago; not asking again yet")]
    RecentlyFailed,
    #[error("{0}")]
    Other(String),
}

impl Oidc {
    pub fn new(settings: OidcSettings, auth_secret: &str) -> Result<Self, String> {
        // No redirects: the crate's advice against SSRF (a provider's answer must come from it).
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .user_agent(concat!("funnel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make the OpenID Connect HTTP client: {e}"))?;
        Ok(Oidc {
            settings,
            http,
            discovered: tokio::sync::Mutex::new(Discovered::None),
            seal: FlowSeal::new(auth_secret),
        })
    }

    /// The provider's client: discovered now, or the cached one while it is fresh.
    pub async fn client(&self) -> Result<Arc<Client>, ProviderError> {
        let mut discovered = self.discovered.lock().await;
        match &*discovered {
            Discovered::Ready { client, at } if at.elapsed() < DISCOVERY_TTL => {
                return Ok(Arc::clone(client));
            }
            Discovered::Failed { at } if at.elapsed() < DISCOVERY_RETRY => {
                return Err(ProviderError::RecentlyFailed);
            }
            _ => {}
        }
        match self.discover().await {
            Ok(client) => {
                let client = Arc::new(client);
                *discovered = Discovered::Ready {
                    client: Arc::clone(&client),
                    at: Instant::now(),
                };
                tracing::info!(issuer = self.settings.issuer, "oidc: provider discovered");
                Ok(client)
            }
            Err(e) => {
                *discovered = Discovered::Failed { at: Instant::now() };
                Err(e)
            }
        }
    }

    /// Forgets the discovered client: the next sign-in fetches metadata and keys again (after
    /// a token that did not verify: the provider may have rotated its keys).
    pub async fn forget_provider(&self) {
        *self.discovered.lock().await = Discovered::None;
    }

    async fn discover(&self) -> Result<Client, ProviderError> {
        let settings = &self.settings;
        let failed = |detail: String| ProviderError::Discovery {
            issuer: settings.issuer.clone(),
            detail,
        };
        let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(|e| failed(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| failed(error_chain(&e)))?;
        // client_secret_basic is the default of the specification; a provider that announces
        // only client_secret_post gets the secret in the body.
        let post_only = metadata
            .token_endpoint_auth_methods_supported()
            .is_some_and(|methods| {
                !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                    && methods.contains(&CoreClientAuthMethod::ClientSecretPost)
            });
        let redirect =
            RedirectUrl::new(settings.redirect_uri.clone()).map_err(|e| failed(e.to_string()))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            Some(ClientSecret::new(settings.client_secret.clone())),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(if post_only {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        });
        Ok(client)
    }

    /// The provider's address to send a browser to, and the flow cookie's value.
    pub async fn start(&self, next: String) -> Result<(String, Flow, String), ProviderError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let (flow, sealed) = self
            .seal
            .open(
                state.secret().clone(),
                nonce.secret().clone(),
                verifier.secret().clone(),
                next,
            )
            .map_err(|e| ProviderError::Other(format!("cannot sign the flow cookie: {e}")))?;
        Ok((url.to_string(), flow, sealed))
    }

    /// Exchanges the code of a checked flow and verifies the ID token: who the provider says
    /// the person is.
    pub async fn finish(&self, flow: &Flow, code: String) -> Result<Identity, ProviderError> {
        let client = self.client().await?;
        let other = |what: &str, e: &dyn std::error::Error| {
            ProviderError::Other(format!("{what}: {}", error_chain(e)))
        };
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| other("no token endpoint", &e))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| other("the code exchange failed", &e))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| ProviderError::Other("the token response has no ID token".into()))?;
        let verifier = client.id_token_verifier();
        let nonce = Nonce::new(flow.nonce.clone());
        let claims = match id_token.claims(&verifier, &nonce) {
            Ok(claims) => claims.clone(),
            Err(e) => {
                // Perhaps new keys: the next attempt discovers them.
                self.forget_provider().await;
                return Err(other("the ID token does not verify", &e));
            }
        };
        if let Some(expected) = claims.access_token_hash() {
            let algorithm = id_token
                .signing_alg()
                .map_err(|e| other("the ID token's algorithm", &e))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| other("the ID token's key", &e))?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), algorithm, key)
                .map_err(|e| other("the access token's hash", &e))?;
            if actual != *expected {
                return Err(ProviderError::Other(
                    "the access token does not match the ID token's at_hash".into(),
                ));
            }
        }
        let mut identity = Identity {
            subject: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|name| name.get(None))
                .map(|n| n.to_string())
                .or_else(|| claims.preferred_username().map(|u| u.to_string())),
        };
        // Many providers put the e-mail in the userinfo answer only (the ID token of the code
        // flow carries the claims of the scopes only when asked to).
        if identity.email.is_none()
            && let Ok(request) = client.user_info(
                tokens.access_token().clone(),
                Some(claims.subject().clone()),
            )
        {
            let info: CoreUserInfoClaims = request
                .request_async(&self.http)
                .await
                .map_err(|e| other("the userinfo call failed", &e))?;
            identity.email = info.email().map(|e| e.to_string());
            identity.email_verified = info.email_verified().unwrap_or(false);
            if identity.name.is_none() {
                identity.name = info
                    .name()
                    .and_then(|name| name.get(None))
                    .map(|n| n.to_string());
            }
        }
        Ok(identity)
    }
}

/// Who the provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// An error with its sources, for the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What the sign-in page offers (`GET /api/v1/auth/methods`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthMethods {
    /// E-mail and password (accounts are on: `--auth-secret`).
    pub password: bool,
    /// Sign-in through the identity provider, when it is set up.
    pub oidc: Option<OidcMethod>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcMethod {
    /// The provider's name for the button ("Sign in with Acme"); null: a generic label.
    pub name: Option<String>,
    /// Where the button goes; add `?next=/path` for the page to land on.
    pub start: String,
}

/// How people may sign in here: the sign-in page asks before it shows its form. Open to
/// everyone (the page asks before anyone signs in).
#[utoipa::path(
    get,
    path = "/api/v1/auth/methods",
    responses((status = 200, body = AuthMethods))
)]
pub async fn auth_methods(State(state): State<AppState>) -> Json<AuthMethods> {
    Json(AuthMethods {
        password: state.accounts.enabled(),
        oidc: state.oidc.as_ref().map(|oidc| OidcMethod {
            name: oidc.settings.name.clone(),
            start: START_PATH.into(),
        }),
    })
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

fn off() -> Response {
    (
        StatusCode::NOT_FOUND,
        "OpenID Connect sign-in is off on this server (see --oidc-issuer)",
    )
        .into_response()
}

/// Sends the browser to the identity provider to sign in, then back to `next`.
#[utoipa::path(
    get,
    path = "/auth/oidc/start",
    params(("next" = Option<String>, Query, description = "the page to land on after signing in: a path of this server, such as /boards/ID")),
    responses(
        (status = 303, description = "to the identity provider (or, when it cannot be reached, back to `next` with `signInError`)"),
        (status = 404, description = "OpenID Connect sign-in is off")
    )
)]
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StartQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(oidc) = &state.oidc else {
        return off();
    };
    let next = safe_next(query.ok().and_then(|q| q.0.next).as_deref());
    match oidc.start(next.clone()).await {
        Ok((url, flow, sealed)) => {
            let cookie = flow_cookie(&state.accounts, &flow.state, &sealed, &headers);
            (
                AppendHeaders([(header::SET_COOKIE, cookie)]),
                Redirect::to(&url),
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "oidc: cannot start a sign-in");
            Redirect::to(&with_refusal(&next, Refusal::Unavailable)).into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Where the identity provider sends the browser back: checks the flow, exchanges the code,
/// verifies the ID token, signs the person in (the session cookie) and goes to the page they
/// asked for; a refusal goes there too, with `signInError`.
#[utoipa::path(
    get,
    path = "/auth/oidc/callback",
    params(
        ("code" = Option<String>, Query, description = "the authorization code"),
        ("state" = Option<String>, Query, description = "the state of the flow, from /auth/oidc/start"),
        ("error" = Option<String>, Query, description = "the provider's error code")
    ),
    responses(
        (status = 303, description = "signed in (the session is in the Set-Cookie header), or refused: to the page asked for, with `signInError=state|denied|provider|unavailable|unverified|unknown|taken|disabled|slow`"),
        (status = 404, description = "OpenID Connect sign-in is off")
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(oidc) = &state.oidc else {
        return off();
    };
    // One attempt per sign-in, taken where this server calls the provider (the code's
    // exchange), before anything is read: the start only redirects, and its provider metadata
    // is cached.
    if state.accounts.take_provider_callback(peer.ip()).is_err() {
        tracing::info!(%peer, "oidc: too many sign-ins from one address");
        return Redirect::to(&with_refusal("/", Refusal::Slow)).into_response();
    }
    let Ok(Query(query)) = query else {
        tracing::warn!("oidc: a callback with an unreadable query");
        return Redirect::to(&with_refusal("/", Refusal::State)).into_response();
    };
    let given_state = query.state.clone().unwrap_or_default();
    let cookie_name = format!("{FLOW_COOKIE_PREFIX}{given_state}");
    let sealed = plausible_state(&given_state)
        .then(|| crate::accounts::cookie(&headers, &cookie_name))
        .flatten();
    let flow = match sealed.map(|sealed| oidc.seal.check(sealed, &given_state)) {
        Some(Ok(flow)) => flow,
        problem => {
            let why = match problem {
                Some(Err(e)) => e,
                _ => "no flow cookie for this state (expired, another browser, or a changed state)"
                    .into(),
            };
            tracing::warn!(
                reason = why,
                "oidc: a callback with no matching flow was refused"
            );
            return Redirect::to(&with_refusal("/", Refusal::State)).into_response();
        }
    };
    let clear = cleared_flow_cookie(&state.accounts, &flow.state, &headers);
    let outcome = finish(&state, oidc, &flow, query).await;
    match outcome {
        Ok((secret, person)) => {
            tracing::info!(user = person.id, "signed in through the identity provider");
            let session = state.accounts.session_cookie(&secret, &headers);
            (
                AppendHeaders([(header::SET_COOKIE, clear), (header::SET_COOKIE, session)]),
                Redirect::to(&flow.next),
            )
                .into_response()
        }
        Err(refusal) => (
            AppendHeaders([(header::SET_COOKIE, clear)]),
            Redirect::to(&with_refusal(&flow.next, refusal)),
        )
            .into_response(),
    }
}

/// The callback after its flow checked out: the person and their session's cookie value.
async fn finish(
    state: &AppState,
    oidc: &Oidc,
    flow: &Flow,
    query: CallbackQuery,
) -> Result<(String, Person), Refusal> {
    if let Some(error) = query.error {
        tracing::warn!(
            error,
            description = query.error_description.unwrap_or_default(),
            "oidc: the identity provider refused the sign-in"
        );
        return Err(match error.as_str() {
            "access_denied" | "login_required" | "consent_required" | "interaction_required" => {
                Refusal::Denied
            }
            _ => Refusal::Provider,
        });
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        tracing::warn!("oidc: a callback with neither a code nor an error");
        return Err(Refusal::Provider);
    };
    let identity = oidc.finish(flow, code).await.map_err(|e| {
        tracing::warn!(error = %e, "oidc: the sign-in did not check out");
        match e {
            ProviderError::Discovery { .. } | ProviderError::RecentlyFailed => Refusal::Unavailable,
            ProviderError::Other(_) => Refusal::Provider,
        }
    })?;
    let storage_failed = |e: StorageError| {
        tracing::warn!(error = %e, "oidc: storage failed during a sign-in");
        Refusal::Unavailable
    };
    let store = state.storage.accounts();
    let subject = subject_key(&oidc.settings.issuer, &identity.subject);
    let by_subject = store
        .person_by_oidc_subject(&subject)
        .await
        .map_err(storage_failed)?;
    let by_email = match identity.email.as_deref().and_then(normalize_email) {
        Some(email) if by_subject.is_none() => store
            .person_by_email(&email)
            .await
            .map_err(storage_failed)?,
        _ => None,
    };
    let person = match admit(
        &subject,
        identity.email.as_deref(),
        identity.email_verified,
        by_subject,
        by_email,
        &oidc.settings.allowed_domains,
    ) {
        Admission::Known { person, link } => {
            if link {
                store
                    .link_oidc_subject(&person.id, &subject)
                    .await
                    .map_err(storage_failed)?;
                tracing::info!(user = person.id, "oidc: linked to the provider's subject");
            }
            person
        }
        Admission::New { email } => {
            let person = new_person(
                &email,
                identity.name.as_deref(),
                oidc.settings.default_role,
                &subject,
            );
            if store.create_person(&person).await.map_err(storage_failed)? {
                tracing::info!(
                    user = person.id,
                    "oidc: a new person from an allowed domain"
                );
                person
            } else {
                // Made meanwhile (another sign-in, an invite): that one, if it may come in.
                match store
                    .person_by_email(&email)
                    .await
                    .map_err(storage_failed)?
                {
                    Some(p) if p.disabled_at.is_none() => p,
                    Some(_) => return Err(Refusal::Disabled),
                    None => return Err(Refusal::Unknown),
                }
            }
        }
        Admission::Refused(refusal) => {
            tracing::warn!(
                subject = identity.subject,
                email = identity.email.unwrap_or_default(),
                verified = identity.email_verified,
                reason = refusal.code(),
                "oidc: a sign-in was refused"
            );
            return Err(refusal);
        }
    };
    let (secret, session) = state
        .accounts
        .new_session(&person.id)
        .map_err(storage_failed)?;
    store
        .create_session(&session)
        .await
        .map_err(storage_failed)?;
    Ok((secret, person))
}

/// A person from a sign-in: named as the provider names them (else by the e-mail's first part).
fn new_person(email: &str, name: Option<&str>, role: Role, subject: &str) -> Person {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.chars().take(MAX_NAME_CHARS).collect::<String>())
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
    Person {
        id: new_id(),
        email: email.to_owned(),
        name,
        role,
        board_roles: BTreeMap::new(),
        password_hash: None,
        disabled_at: None,
        created_at: now_ms(),
        oidc_subject: Some(subject.to_owned()),
    }
}

fn flow_cookie(accounts: &Accounts, state: &str, sealed: &str, request: &HeaderMap) -> HeaderValue {
    let secure = if accounts.secure(request) {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{FLOW_COOKIE_PREFIX}{state}={sealed}; Path={FLOW_COOKIE_PATH}; HttpOnly; SameSite=Lax; \
         Max-Age={}{secure}",
        FLOW_TTL.as_secs()
    );
    // The state is URL-safe base64 and the seal a JWT (base64url and dots): a valid value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn cleared_flow_cookie(accounts: &Accounts, state: &str, request: &HeaderMap) -> HeaderValue {
    let secure = if accounts.secure(request) {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{FLOW_COOKIE_PREFIX}{state}=; Path={FLOW_COOKIE_PATH}; HttpOnly; SameSite=Lax; \
         Max-Age=0{secure}"
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The flow's two routes (outside `/api`: browsers navigate to them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(START_PATH, get(start))
        .route(CALLBACK_PATH, get(callback))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(email: &str, disabled: bool) -> Person {
        Person {
            id: "p1".into(),
            email: email.into(),
            name: "Pat".into(),
            role: Role::Member,
            board_roles: BTreeMap::new(),
            password_hash: None,
            disabled_at: disabled.then_some(1),
            created_at: 0,
            oidc_subject: None,
        }
    }

    const SUB: &str = "https://id.acme.test sub-1";

    #[test]
    fn only_verified_emails_of_the_directory_come_in_by_default() {
        let pat = person("pat@acme.test", false);
        assert_eq!(
            admit(
                SUB,
                Some("Pat@Acme.test"),
                true,
                None,
                Some(pat.clone()),
                &[]
            ),
            Admission::Known {
                person: pat.clone(),
                link: true
            },
            "matched by e-mail, whatever its case, and linked"
        );
        assert_eq!(
            admit(
                SUB,
                Some("pat@acme.test"),
                false,
                None,
                Some(pat.clone()),
                &[]
            ),
            Admission::Refused(Refusal::Unverified),
            "an unverified e-mail is nobody's, even a known one"
        );
        assert_eq!(
            admit(SUB, None, true, None, None, &[]),
            Admission::Refused(Refusal::Unverified)
        );
        assert_eq!(
            admit(SUB, Some("eve@acme.test"), true, None, None, &[]),
            Admission::Refused(Refusal::Unknown)
        );
        assert_eq!(
            admit(
                SUB,
                Some("pat@acme.test"),
                true,
                None,
                Some(person("pat@acme.test", true)),
                &["acme.test".into()]
            ),
            Admission::Refused(Refusal::Disabled),
            "a disabled person stays out whatever the domain"
        );
    }

    #[test]
    fn the_provider_subject_is_who_a_person_is_after_their_first_sign_in() {
        let mut pat = person("pat@acme.test", false);
        pat.oidc_subject = Some(SUB.into());
        assert_eq!(
            admit(
                SUB,
                Some("pat@acme.test"),
                true,
                None,
                Some(pat.clone()),
                &[]
            ),
            Admission::Known {
                person: pat.clone(),
                link: false
            }
        );
        assert_eq!(
            admit(
                SUB,
                Some("pat.new@acme.test"),
                false,
                Some(pat.clone()),
                None,
                &[]
            ),
            Admission::Known {
                person: pat.clone(),
                link: false
            },
            "linked: the subject is enough (the e-mail changed at the provider)"
        );
        let mut gone = pat.clone();
        gone.disabled_at = Some(1);
        assert_eq!(
            admit(SUB, Some("pat@acme.test"), true, Some(gone), None, &[]),
            Admission::Refused(Refusal::Disabled)
        );
        assert_eq!(
            admit(
                "https://id.acme.test sub-2",
                Some("pat@acme.test"),
                true,
                None,
                Some(pat.clone()),
                &["acme.test".into()]
            ),
            Admission::Refused(Refusal::Taken),
            "the address given to someone else at the same provider"
        );
        assert_eq!(
            admit(
                "https://new-id.acme.test sub-9",
                Some("pat@acme.test"),
                true,
                None,
                Some(pat.clone()),
                &[]
            ),
            Admission::Known {
                person: pat,
                link: true
            },
            "a new provider links anew"
        );
    }

    #[test]
    fn allowed_domains_let_new_verified_people_in() {
        let domains = ["acme.test".to_owned()];
        assert_eq!(
            admit(SUB, Some("New@ACME.test"), true, None, None, &domains),
            Admission::New {
                email: "new@acme.test".into()
            }
        );
        assert_eq!(
            admit(SUB, Some("new@evil-acme.test"), true, None, None, &domains),
            Admission::Refused(Refusal::Unknown)
        );
        assert_eq!(
            admit(SUB, Some("new@sub.acme.test"), true, None, None, &domains),
            Admission::Refused(Refusal::Unknown),
            "a subdomain is another domain"
        );
        assert_eq!(
            admit(SUB, Some("new@acme.test"), false, None, None, &domains),
            Admission::Refused(Refusal::Unverified)
        );
    }

    #[test]
    fn next_is_a_path_of_this_origin() {
        assert_eq!(safe_next(Some("/boards/b1?view=x")), "/boards/b1?view=x");
        assert_eq!(safe_next(Some("/boards/b1#card")), "/boards/b1");
        for bad in [
            "https://evil.test/",
            "//evil.test/x",
            "/\\evil.test",
            "boards",
            "/auth/oidc/start",
            "/a\nb",
            "/café",
            "/a b",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
        assert_eq!(safe_next(None), "/");
        assert_eq!(
            with_refusal("/boards/b1", Refusal::Unknown),
            "/boards/b1?signInError=unknown"
        );
        assert_eq!(
            with_refusal("/?x=1", Refusal::State),
            "/?x=1&signInError=state"
        );
    }

    #[test]
    fn a_flow_cookie_opens_for_its_state_only() {
        let seal = FlowSeal::new(&"s".repeat(32));
        let (flow, sealed) = seal
            .open(
                "state-aaaaaaaaaaaaaaaa".into(),
                "n".into(),
                "v".into(),
                "/b".into(),
            )
            .unwrap();
        assert_eq!(seal.check(&sealed, "state-aaaaaaaaaaaaaaaa").unwrap(), flow);
        assert!(seal.check(&sealed, "state-bbbbbbbbbbbbbbbb").is_err());
        let other = FlowSeal::new(&"t".repeat(32));
        assert!(
            other.check(&sealed, "state-aaaaaaaaaaaaaaaa").is_err(),
            "another secret"
        );
        let mut tampered = sealed.clone();
        tampered.insert(sealed.len() - 3, 'x');
        assert!(seal.check(&tampered, "state-aaaaaaaaaaaaaaaa").is_err());
        // A token signed with the auth secret itself is not a flow cookie.
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &flow,
            &EncodingKey::from_secret("s".repeat(32).as_bytes()),
        )
        .unwrap();
        assert!(seal.check(&token, "state-aaaaaaaaaaaaaaaa").is_err());
    }

    #[test]
    fn an_expired_flow_cookie_is_refused() {
        let seal = FlowSeal::new(&"s".repeat(32));
        let expired = Flow {
            state: "state-aaaaaaaaaaaaaaaa".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            next: "/".into(),
            exp: jsonwebtoken::get_current_timestamp() - 1,
            aud: FLOW_AUDIENCE.into(),
        };
        let sealed =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &expired, &seal.encoding).unwrap();
        assert!(seal.check(&sealed, "state-aaaaaaaaaaaaaaaa").is_err());
    }

    #[test]
    fn states_that_could_name_a_cookie() {
        assert!(plausible_state("abcdEFGH1234-_xyzabcd"));
        assert!(!plausible_state("short"));
        assert!(!plausible_state("abcdEFGH1234;xyzabcd=1"));
    }

    fn config() -> ServeConfig {
        let mut config = ServeConfig::with_defaults(
            "127.0.0.1:0".parse().unwrap(),
            std::path::PathBuf::from("data"),
        );
        config.auth_secret = Some("x".repeat(32));
        config.oidc_issuer = Some("https://id.acme.test/realms/acme/".into());
        config.oidc_client_id = Some("funnel".into());
        config.oidc_client_secret = Some("shh".into());
        config.public_url = Some("https://crm.acme.test/".into());
        config
    }

    #[test]
    fn the_settings_come_from_the_flags() {
        let settings = OidcSettings::from_config(&config()).unwrap().unwrap();
        assert_eq!(settings.issuer, "https://id.acme.test/realms/acme");
        assert_eq!(
            settings.redirect_uri,
            "https://crm.acme.test/auth/oidc/callback"
        );
        assert_eq!(settings.default_role, Role::Member);
        assert!(settings.allowed_domains.is_empty());
        let mut plain = config();
        plain.oidc_issuer = None;
        plain.oidc_client_id = None;
        plain.oidc_client_secret = None;
        assert_eq!(OidcSettings::from_config(&plain).unwrap(), None);
    }

    #[test]
    fn settings_that_cannot_work_say_what_to_fix() {
        let fails = |change: &dyn Fn(&mut ServeConfig), wanted: &str| {
            let mut config = config();
            change(&mut config);
            let err = OidcSettings::from_config(&config).unwrap_err();
            assert!(err.contains(wanted), "{wanted}: {err}");
        };
        fails(&|c| c.auth_secret = None, "--auth-secret");
        fails(&|c| c.oidc_client_id = None, "--oidc-client-id");
        fails(&|c| c.oidc_client_secret = None, "--oidc-client-secret");
        fails(
            &|c| c.oidc_client_secret_file = Some("/nonexistent/secret".into()),
            "not both",
        );
        fails(&|c| c.public_url = None, "--public-url");
        fails(
            &|c| c.public_url = Some("https://crm.acme.test/app".into()),
            "no path",
        );
        fails(
            &|c| c.oidc_issuer = Some("http://id.acme.test".into()),
            "https://",
        );
        fails(
            &|c| c.oidc_allowed_domains = vec!["not a domain".into()],
            "--oidc-allowed-domains",
        );
        fails(
            &|c| c.oidc_default_role = "admin".into(),
            "viewer or member",
        );
        fails(
            &|c| {
                c.oidc_issuer = None;
            },
            "need --oidc-issuer",
        );
        let mut empty = config();
        empty.oidc_issuer = Some(String::new());
        empty.oidc_client_id = Some(String::new());
        empty.oidc_client_secret = None;
        empty.oidc_name = Some(String::new());
        empty.oidc_allowed_domains = vec![String::new()];
        assert_eq!(
            OidcSettings::from_config(&empty).unwrap(),
            None,
            "empty variables are unset"
        );
        let mut local = config();
        local.oidc_issuer = Some("http://127.0.0.1:9000".into());
        local.oidc_allowed_domains = vec!["@Acme.test".into()];
        let settings = OidcSettings::from_config(&local).unwrap().unwrap();
        assert_eq!(settings.allowed_domains, vec!["acme.test".to_owned()]);
    }

    #[test]
    fn the_secret_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-a-file\n").unwrap();
        let mut config = config();
        config.oidc_client_secret = None;
        config.oidc_client_secret_file = Some(path);
        let settings = OidcSettings::from_config(&config).unwrap().unwrap();
        assert_eq!(settings.client_secret, "from-a-file");
    }
}
