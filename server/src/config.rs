//! `funnel serve` configuration: every flag has an environment variable. Parsed once in `main`
//! and passed down.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Every flag's default, written once: the flag (`--help` shows it) and
/// [`ServeConfig::with_defaults`] both take it from here.
pub mod defaults {
    use std::time::Duration;

    pub const LISTEN: &str = "127.0.0.1:8080";
    pub const DATA_DIR: &str = "./data";
    /// The lease's own default, with its reasons beside it.
    pub const LEASE_TTL: Duration = crate::lease::redis::LEASE_TTL;
    pub const WEB_DIR: &str = "clients/web/dist";
    pub const ROOM_IDLE: Duration = Duration::from_secs(30);
    pub const HIBERNATE_AFTER: Duration = Duration::from_secs(60);
    pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
    pub const OUTBOX_FRAMES: usize = 4096;
    pub const OUTBOX_BYTES: usize = 16 * 1024 * 1024;
    pub const PING_INTERVAL: Duration = Duration::from_secs(30);
    pub const COMPACT_AFTER: usize = 1000;
    pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
    /// One machine has nowhere else to send clients: its stop is immediate.
    pub const DRAIN_DELAY: Duration = Duration::ZERO;
    pub const DRAIN_WINDOW: Duration = Duration::ZERO;
    pub const MAX_BOARD_BYTES: usize = 64 * 1024 * 1024;
    pub const MESSAGE_RATE: u32 = 200;
    pub const MESSAGE_BURST: u32 = 1000;
    pub const MAX_CONNECTIONS_PER_USER: usize = 64;
    pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 1024;
    /// The connection's own default, with its reasons beside it.
    pub const API_RATE: u32 = 1200;
    pub const API_BURST: u32 = 200;
    pub const JOINS_AT_ONCE: usize = crate::connection::JOINS_AT_ONCE;
    pub const MAX_MAIL_BYTES: usize = 10 * 1024 * 1024;
    pub const MAIL_DOMAIN: &str = "localhost";
    /// A month: long enough for an integrator's outage to be resumed from its cursor.
    pub const CHANGE_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);
    pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
    pub const WEBHOOK_RETRY_SCALE: f64 = 1.0;
    pub const WEBHOOK_SECRET_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);
    /// Two weeks: a person signs in about twice a month on the same browser.
    pub const SESSION_TTL: Duration = Duration::from_secs(14 * 24 * 60 * 60);
    /// A week: time to find the mail, short enough that an old link in a mailbox is dead.
    pub const INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
    /// People let in by their e-mail's domain work on boards; an admin makes admins.
    pub const OIDC_DEFAULT_ROLE: &str = "member";
}

/// When the session cookie carries `Secure` (sent over https only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecureCookies {
    /// When the request came over https: a proxy's `X-Forwarded-Proto: https`.
    Auto,
    Always,
    Never,
}

/// A duration default as a flag shows and parses it (`30s`).
fn flag_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on. Without authentication only loopback addresses are allowed.
    #[arg(long, env = "FUNNEL_LISTEN", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,

    /// Address of a listener of its own for `/metrics` (then the main one no longer serves
    /// it). Without it, `/metrics` is on the main listener and, with `--auth-secret`, needs an
    /// admin token.
    #[arg(long, env = "FUNNEL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Directory of the embedded SQLite database.
    #[arg(long, env = "FUNNEL_DATA_DIR", default_value = defaults::DATA_DIR)]
    pub data_dir: PathBuf,

    /// A `postgres://` (or `postgresql://`) URL: store boards in PostgreSQL instead of SQLite
    /// (what several instances of a cluster share). Empty is the same as unset.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// A `redis://` URL: run as one instance of a cluster. Boards' updates and presence cross
    /// instances over Redis pub/sub, and one instance at a time maintains a board's counters (a
    /// Redis lease). Needs `--database-url`: the instances must share one log. Empty is unset.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// How long a board's scheduler lease lives without renewal (cluster only): after an
    /// instance dies, its boards' counters wait at most this long for another holder. Hidden:
    /// tests shorten it; operators keep the default.
    #[arg(long, env = "FUNNEL_LEASE_TTL", default_value = flag_duration(defaults::LEASE_TTL), value_parser = humantime::parse_duration, hide = true)]
    pub lease_ttl: Duration,

    /// Directory of the built web client (`npm --prefix clients/web run build` makes it).
    #[arg(long, env = "FUNNEL_WEB_DIR", default_value = defaults::WEB_DIR)]
    pub web_dir: PathBuf,

    /// How long a board with no connection stays loaded before it is saved and unloaded.
    #[arg(long, env = "FUNNEL_ROOM_IDLE", default_value = flag_duration(defaults::ROOM_IDLE), value_parser = humantime::parse_duration)]
    pub room_idle: Duration,

    /// How long a board with connections but nothing read or written (presence aside) keeps
    /// its document in memory; then it lets go of it and reloads it from storage at the next
    /// edit, join or wake-up. `0s`: never.
    #[arg(long, env = "FUNNEL_HIBERNATE_AFTER", default_value = flag_duration(defaults::HIBERNATE_AFTER), value_parser = humantime::parse_duration)]
    pub hibernate_after: Duration,

    /// Largest WebSocket frame (and message) a client may send, in bytes; larger ones close the
    /// connection with 4414 (and a client that keeps sending them is backed off).
    #[arg(long, env = "FUNNEL_MAX_FRAME_BYTES", default_value_t = defaults::MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,

    /// Most frames waiting to be sent to one connection before it is closed as a slow consumer.
    #[arg(long, env = "FUNNEL_OUTBOX_FRAMES", default_value_t = defaults::OUTBOX_FRAMES)]
    pub outbox_frames: usize,

    /// Most bytes waiting to be sent to one connection before it is closed as a slow consumer.
    #[arg(long, env = "FUNNEL_OUTBOX_BYTES", default_value_t = defaults::OUTBOX_BYTES)]
    pub outbox_bytes: usize,

    /// How often the server pings each connection; a client silent for three intervals is
    /// disconnected (its network died without closing the socket).
    #[arg(long, env = "FUNNEL_PING_INTERVAL", default_value = flag_duration(defaults::PING_INTERVAL), value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// Log entries a board accumulates before they are folded into its snapshot.
    #[arg(long, env = "FUNNEL_COMPACT_AFTER", default_value_t = defaults::COMPACT_AFTER)]
    pub compact_after: usize,

    /// How long a graceful shutdown may take before the process exits anyway.
    #[arg(long, env = "FUNNEL_SHUTDOWN_DEADLINE", default_value = flag_duration(defaults::SHUTDOWN_DEADLINE), value_parser = humantime::parse_duration)]
    pub shutdown_deadline: Duration,

    /// On SIGTERM, how long `/readyz` answers 503 before sockets start closing: the time the
    /// load balancer takes to stop sending clients here (a few probe intervals).
    #[arg(long, env = "FUNNEL_DRAIN_DELAY", default_value = flag_duration(defaults::DRAIN_DELAY), value_parser = humantime::parse_duration)]
    pub drain_delay: Duration,

    /// After the drain delay, the time over which open sockets are closed (1012) in jittered
    /// waves, so their clients reconnect to other instances a few at a time. The process stops
    /// after it (then `--shutdown-deadline` bounds the flush).
    #[arg(long, env = "FUNNEL_DRAIN_WINDOW", default_value = flag_duration(defaults::DRAIN_WINDOW), value_parser = humantime::parse_duration)]
    pub drain_window: Duration,

    /// The secret that signs tokens (HS256, at least 32 bytes). Without it funnel is in local
    /// mode: loopback addresses only, every caller an admin.
    #[arg(long, env = "FUNNEL_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,

    /// Browser origins allowed besides the server's own (its `Host`, and `--public-url`'s
    /// origin when set; comma-separated, e.g.
    /// `https://crm.example.com`; `*` for any). A browser page from any other origin is refused.
    #[arg(long, env = "FUNNEL_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// The most a board may hold, in bytes: its document's encoded size (not every byte ever
    /// written) plus its timeline events; an update that would take it over is refused (close
    /// 4413), a timeline event too (413).
    #[arg(long, env = "FUNNEL_MAX_BOARD_BYTES", default_value_t = defaults::MAX_BOARD_BYTES)]
    pub max_board_bytes: usize,

    /// Messages a second one connection may send, on average; a connection over it (beyond
    /// `--message-burst`) is closed with 4429.
    #[arg(long, env = "FUNNEL_MESSAGE_RATE", default_value_t = defaults::MESSAGE_RATE)]
    pub message_rate: u32,

    /// Messages one connection may send at once above `--message-rate`.
    #[arg(long, env = "FUNNEL_MESSAGE_BURST", default_value_t = defaults::MESSAGE_BURST)]
    pub message_burst: u32,

    /// Open connections per user (with tokens; 0: no limit). One more is closed with 4429.
    #[arg(long, env = "FUNNEL_MAX_CONNECTIONS_PER_USER", default_value_t = defaults::MAX_CONNECTIONS_PER_USER)]
    pub max_connections_per_user: usize,

    /// Open connections per client address (0: no limit). One more is closed with 4429.
    #[arg(
        long,
        env = "FUNNEL_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = defaults::MAX_CONNECTIONS_PER_ADDRESS
    )]
    pub max_connections_per_address: usize,

    /// API calls one caller (a token's user; an address without a token) may make a minute,
    /// on average; one over it (beyond `--api-burst`) gets 429 with Retry-After. 0: no limit.
    #[arg(long, env = "FUNNEL_API_RATE", default_value_t = defaults::API_RATE)]
    pub api_rate: u32,

    /// API calls one caller may make at once above `--api-rate`.
    #[arg(long, env = "FUNNEL_API_BURST", default_value_t = defaults::API_BURST)]
    pub api_burst: u32,

    /// Initial syncs served at once, server-wide: a joining client waits its turn on its open
    /// socket from its first step 1 until the answer (a whole board for a new client) is written
    /// to it. Few turns keep a reconnect storm from slowing the clients already live; more help
    /// when boards load slowly (PostgreSQL far away).
    #[arg(long, env = "FUNNEL_JOINS_AT_ONCE", default_value_t = defaults::JOINS_AT_ONCE)]
    pub joins_at_once: usize,

    /// Address of an SMTP listener taking mail for `{boardId}@any-domain` (with
    /// `--auth-secret`: `{boardId}+{secret}@...`, the secret shown to admins). Without
    /// `--auth-secret`, loopback addresses only.
    #[arg(long, env = "FUNNEL_SMTP_LISTEN")]
    pub smtp_listen: Option<SocketAddr>,

    /// The largest inbound e-mail taken, in bytes (SMTP answers 552, the API 413, above it).
    #[arg(long, env = "FUNNEL_MAX_MAIL_BYTES", default_value_t = defaults::MAX_MAIL_BYTES)]
    pub max_mail_bytes: usize,

    /// The domain shown in boards' inbound addresses (mail to any domain is taken).
    #[arg(long, env = "FUNNEL_MAIL_DOMAIN", default_value = defaults::MAIL_DOMAIN)]
    pub mail_domain: String,
    /// How long change events (`GET /api/v1/events`, webhooks) are kept; older ones are
    /// deleted, and a reader whose cursor is older resumes at the oldest kept event.
    #[arg(long, env = "FUNNEL_CHANGE_RETENTION", default_value = flag_duration(defaults::CHANGE_RETENTION), value_parser = humantime::parse_duration)]
    pub change_retention: Duration,
    /// Let webhooks reach private, loopback, link-local and other internal addresses (a
    /// receiver on this machine or the local network). Off: such URLs are refused when saved,
    /// and names that resolve to such addresses are not called.
    #[arg(long, env = "FUNNEL_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,

    /// How long a webhook receiver has to answer a delivery before it counts as failed (and is
    /// retried).
    #[arg(long, env = "FUNNEL_WEBHOOK_TIMEOUT", default_value = flag_duration(defaults::WEBHOOK_TIMEOUT), value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,

    /// A factor on the webhook retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h): 0.001
    /// makes it milliseconds. Hidden: tests shrink it; operators keep the default.
    #[arg(long, env = "FUNNEL_WEBHOOK_RETRY_SCALE", default_value_t = defaults::WEBHOOK_RETRY_SCALE, hide = true)]
    pub webhook_retry_scale: f64,

    /// After a webhook's secret is rotated, how long the old secret still signs deliveries
    /// beside the new one (receivers switch within this time).
    #[arg(long, env = "FUNNEL_WEBHOOK_SECRET_OVERLAP", default_value = flag_duration(defaults::WEBHOOK_SECRET_OVERLAP), value_parser = humantime::parse_duration)]
    pub webhook_secret_overlap: Duration,

    /// How long a sign-in lasts (accounts, with `--auth-secret`): its session cookie and its
    /// sockets end then.
    #[arg(long, env = "FUNNEL_SESSION_TTL", default_value = flag_duration(defaults::SESSION_TTL), value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,

    /// How long an invite link stays valid (it works once).
    #[arg(long, env = "FUNNEL_INVITE_TTL", default_value = flag_duration(defaults::INVITE_TTL), value_parser = humantime::parse_duration)]
    pub invite_ttl: Duration,

    /// When the session cookie is marked `Secure`: `auto` when the request came over https
    /// (`X-Forwarded-Proto: https` from the proxy in front), `always`, or `never`.
    #[arg(
        long,
        env = "FUNNEL_SECURE_COOKIES",
        value_enum,
        default_value = "auto"
    )]
    pub secure_cookies: SecureCookies,

    /// The address people open funnel at, such as `https://crm.example.com` (no path): invite
    /// links are made on it (without it, on the address the inviting request came to), and the
    /// OpenID Connect redirect URI is `{this}/auth/oidc/callback`.
    #[arg(long, env = "FUNNEL_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Sign-in through an identity provider (OpenID Connect): its issuer URL, such as
    /// `https://id.example.com/realms/acme` (its metadata is discovered from it). Needs
    /// `--auth-secret`, `--oidc-client-id`, a client secret and `--public-url`.
    #[arg(long, env = "FUNNEL_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The client id the identity provider gave funnel.
    #[arg(long, env = "FUNNEL_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// The client secret the identity provider gave funnel (better: `--oidc-client-secret-file`,
    /// which keeps it out of the process list).
    #[arg(long, env = "FUNNEL_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,

    /// A file holding the client secret (a trailing newline is ignored).
    #[arg(long, env = "FUNNEL_OIDC_CLIENT_SECRET_FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,

    /// The identity provider's name on the sign-in page's button: `Acme` shows "Sign in with
    /// Acme". Unset: "Sign in with single sign-on".
    #[arg(long, env = "FUNNEL_OIDC_NAME")]
    pub oidc_name: Option<String>,

    /// Who may sign in through the provider besides the people of the directory (invited or
    /// active, matched by their verified e-mail): anyone whose verified e-mail is of one of
    /// these domains (comma-separated, e.g. `acme.com`) gets an account with
    /// `--oidc-default-role` on first sign-in. Unset: only the directory's people.
    #[arg(long, env = "FUNNEL_OIDC_ALLOWED_DOMAINS", value_delimiter = ',')]
    pub oidc_allowed_domains: Vec<String>,

    /// The role on every board of someone let in by `--oidc-allowed-domains`: `viewer` or
    /// `member`.
    #[arg(long, env = "FUNNEL_OIDC_DEFAULT_ROLE", default_value = defaults::OIDC_DEFAULT_ROLE)]
    pub oidc_default_role: String,
}

impl ServeConfig {
    /// The configuration with every default, for tests and embedding.
    pub fn with_defaults(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            metrics_listen: None,
            data_dir,
            database_url: None,
            redis_url: None,
            lease_ttl: defaults::LEASE_TTL,
            web_dir: PathBuf::from(defaults::WEB_DIR),
            room_idle: defaults::ROOM_IDLE,
            hibernate_after: defaults::HIBERNATE_AFTER,
            max_frame_bytes: defaults::MAX_FRAME_BYTES,
            outbox_frames: defaults::OUTBOX_FRAMES,
            outbox_bytes: defaults::OUTBOX_BYTES,
            ping_interval: defaults::PING_INTERVAL,
            compact_after: defaults::COMPACT_AFTER,
            shutdown_deadline: defaults::SHUTDOWN_DEADLINE,
            drain_delay: defaults::DRAIN_DELAY,
            drain_window: defaults::DRAIN_WINDOW,
            auth_secret: None,
            allowed_origins: Vec::new(),
            max_board_bytes: defaults::MAX_BOARD_BYTES,
            message_rate: defaults::MESSAGE_RATE,
            message_burst: defaults::MESSAGE_BURST,
            max_connections_per_user: defaults::MAX_CONNECTIONS_PER_USER,
            max_connections_per_address: defaults::MAX_CONNECTIONS_PER_ADDRESS,
            joins_at_once: defaults::JOINS_AT_ONCE,
            api_rate: defaults::API_RATE,
            api_burst: defaults::API_BURST,
            smtp_listen: None,
            max_mail_bytes: defaults::MAX_MAIL_BYTES,
            mail_domain: defaults::MAIL_DOMAIN.to_owned(),
            change_retention: defaults::CHANGE_RETENTION,
            webhook_allow_private: false,
            webhook_timeout: defaults::WEBHOOK_TIMEOUT,
            webhook_retry_scale: defaults::WEBHOOK_RETRY_SCALE,
            webhook_secret_overlap: defaults::WEBHOOK_SECRET_OVERLAP,
            session_ttl: defaults::SESSION_TTL,
            invite_ttl: defaults::INVITE_TTL,
            secure_cookies: SecureCookies::Auto,
            public_url: None,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_client_secret_file: None,
            oidc_name: None,
            oidc_allowed_domains: Vec::new(),
            oidc_default_role: defaults::OIDC_DEFAULT_ROLE.to_owned(),
        }
    }

    /// The PostgreSQL URL to store boards with, if one is given (an empty `DATABASE_URL`, as
    /// deployment templates often leave it, means SQLite).
    pub fn postgres_url(&self) -> Option<&str> {
        self.database_url.as_deref().filter(|url| !url.is_empty())
    }

    /// The Redis URL of the cluster, if one is given (empty means a single instance).
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_deref().filter(|url| !url.is_empty())
    }

    /// `--public-url` as an origin (`https://crm.example.com`), if one is given (empty is
    /// unset); an error says what is wrong with it.
    pub fn public_origin(&self) -> Result<Option<String>, String> {
        match self.public_url.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(raw) => public_base("--public-url", raw).map(Some),
        }
    }

    /// Refuses what cannot work, with what to do instead.
    pub fn validate(&self) -> Result<(), String> {
        self.public_origin()?;
        if let Some(secret) = &self.auth_secret
            && secret.len() < crate::auth::MIN_SECRET_BYTES
        {
            return Err(format!(
                "--auth-secret must be at least {} bytes (e.g. `openssl rand -hex 32`)",
                crate::auth::MIN_SECRET_BYTES
            ));
        }
        if self.session_ttl < Duration::from_secs(60) || self.invite_ttl < Duration::from_secs(60) {
            return Err("--session-ttl and --invite-ttl must be at least a minute".into());
        }
        if self.auth_secret.is_none() && !self.listen.ip().is_loopback() {
            return Err(format!(
                "refusing to listen on {}: without authentication funnel is in local mode, where \
                 every caller is an admin, so it listens on loopback addresses only \
                 (use --listen 127.0.0.1:PORT, or set --auth-secret to require tokens)",
                self.listen
            ));
        }
        if let Some(smtp) = self.smtp_listen
            && self.auth_secret.is_none()
            && !smtp.ip().is_loopback()
        {
            return Err(format!(
                "refusing to take SMTP on {smtp}: without --auth-secret a board's address has no \
                 secret, so anyone could write to any board; use a loopback address or set \
                 --auth-secret"
            ));
        }
        if self.max_mail_bytes < 1024 {
            return Err("--max-mail-bytes must be at least 1024".into());
        }
        if self.mail_domain.is_empty() || self.mail_domain.contains(['@', ' ', '\r', '\n']) {
            return Err("--mail-domain must be a domain name such as crm.example.com".into());
        }
        if self.max_frame_bytes < 1024 {
            return Err("--max-frame-bytes must be at least 1024".into());
        }
        if self.outbox_frames == 0 || self.outbox_bytes == 0 {
            return Err("--outbox-frames and --outbox-bytes must be above 0".into());
        }
        if self.ping_interval < Duration::from_millis(10) {
            return Err("--ping-interval must be at least 10ms".into());
        }
        if self.compact_after == 0 {
            return Err("--compact-after must be above 0".into());
        }
        if self.max_board_bytes < 64 * 1024 {
            return Err("--max-board-bytes must be at least 65536".into());
        }
        if self.api_rate > 0 && self.api_burst == 0 {
            return Err("--api-burst must be above 0 (or --api-rate 0 for no limit)".into());
        }
        if self.joins_at_once == 0 {
            return Err("--joins-at-once must be above 0".into());
        }
        if self.change_retention < Duration::from_secs(60) {
            // Shorter, an integrator that pauses a moment finds its cursor swept away.
            return Err("--change-retention must be at least 1m".into());
        }
        if self.message_rate == 0 || self.message_burst == 0 {
            return Err("--message-rate and --message-burst must be above 0".into());
        }
        if let Some(url) = self.postgres_url()
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(
                "--database-url (DATABASE_URL) must be a postgres:// or postgresql:// URL, such \
                 as postgres://USER@HOST:5432/DATABASE; leave it unset to use SQLite in --data-dir"
                    .into(),
            );
        }
        if let Some(url) = self.redis_url() {
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://")
                || url.starts_with("redis+unix://"))
            {
                return Err("--redis-url (REDIS_URL) must be a redis:// URL, such as \
                     redis://127.0.0.1:6379/; leave it unset to run a single instance"
                    .into());
            }
            if self.postgres_url().is_none() {
                return Err(
                    "--redis-url needs --database-url too: the instances of a cluster must share \
                     one update log in PostgreSQL (each one's SQLite file would diverge); set \
                     --database-url postgres://..., or drop --redis-url to run a single instance"
                        .into(),
                );
            }
        }
        if self.webhook_timeout < Duration::from_millis(100) {
            return Err("--webhook-timeout must be at least 100ms".into());
        }
        if !(self.webhook_retry_scale.is_finite() && self.webhook_retry_scale > 0.0) {
            return Err(
                "--webhook-retry-scale must be a number above 0 (1 is the schedule)".into(),
            );
        }
        if self.lease_ttl < Duration::from_millis(500) {
            return Err("--lease-ttl must be at least 500ms".into());
        }
        crate::oidc::OidcSettings::from_config(self)?;
        Ok(())
    }
}

/// An address funnel's pages are served at (`--public-url`): an origin, without a path (funnel
/// serves its pages from `/`), https but on this machine.
pub(crate) fn public_base(flag: &str, raw: &str) -> Result<String, String> {
    let url =
        url::Url::parse(raw.trim()).map_err(|e| format!("{flag}: {raw:?} is not a URL: {e}"))?;
    check_scheme(flag, &url)?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{flag} is the address funnel's home page is at, such as https://crm.example.com \
             (no path, query or fragment)"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// https, or http on a loopback address (a server or a provider on the same machine).
pub(crate) fn check_scheme(flag: &str, url: &url::Url) -> Result<(), String> {
    let loopback = match url.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{flag} must be an https:// URL (http:// only on this machine: localhost, 127.0.0.1)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags' defaults are the ones `with_defaults` gives (durations survive their round
    /// trip through the flag's text). Any `FUNNEL_*` variable set in the environment would show
    /// here as a difference.
    #[test]
    fn the_flags_default_to_with_defaults() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeConfig,
        }
        let parsed = <Cli as clap::Parser>::try_parse_from(["funnel"])
            .unwrap()
            .serve;
        let expected = ServeConfig::with_defaults(
            defaults::LISTEN.parse().unwrap(),
            PathBuf::from(defaults::DATA_DIR),
        );
        assert_eq!(format!("{parsed:?}"), format!("{expected:?}"));
    }

    #[test]
    fn local_mode_listens_on_loopback_only() {
        let dir = PathBuf::from("data");
        assert!(
            ServeConfig::with_defaults("127.0.0.1:0".parse().unwrap(), dir.clone())
                .validate()
                .is_ok()
        );
        assert!(
            ServeConfig::with_defaults("[::1]:0".parse().unwrap(), dir.clone())
                .validate()
                .is_ok()
        );
        let mut open = ServeConfig::with_defaults("0.0.0.0:8080".parse().unwrap(), dir);
        let err = open.validate().unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        open.auth_secret = Some("short".into());
        assert!(open.validate().unwrap_err().contains("32 bytes"));
        open.auth_secret = Some("x".repeat(32));
        assert!(open.validate().is_ok(), "with tokens, any address");
    }

    #[test]
    fn smtp_without_tokens_listens_on_loopback_only() {
        let mut config =
            ServeConfig::with_defaults("127.0.0.1:0".parse().unwrap(), PathBuf::from("data"));
        config.smtp_listen = Some("127.0.0.1:2525".parse().unwrap());
        assert!(config.validate().is_ok());
        config.smtp_listen = Some("0.0.0.0:25".parse().unwrap());
        let err = config.validate().unwrap_err();
        assert!(err.contains("--auth-secret"), "{err}");
        config.auth_secret = Some("x".repeat(32));
        assert!(
            config.validate().is_ok(),
            "with tokens the address has a secret"
        );
        config.max_mail_bytes = 10;
        assert!(config.validate().unwrap_err().contains("--max-mail-bytes"));
        config.max_mail_bytes = defaults::MAX_MAIL_BYTES;
        config.mail_domain = "bad domain".into();
        assert!(config.validate().unwrap_err().contains("--mail-domain"));
    }

    #[test]
    fn a_public_url_is_an_origin_or_the_server_does_not_start() {
        let mut config =
            ServeConfig::with_defaults("127.0.0.1:0".parse().unwrap(), PathBuf::from("data"));
        assert_eq!(config.public_origin(), Ok(None));
        config.public_url = Some(String::new());
        assert_eq!(config.public_origin(), Ok(None), "empty is unset");
        config.public_url = Some(" https://crm.example.com/ ".into());
        assert_eq!(
            config.public_origin(),
            Ok(Some("https://crm.example.com".into()))
        );
        assert!(config.validate().is_ok());
        for (bad, says) in [
            ("https://crm.example.com/app", "no path"),
            ("http://crm.example.com", "https://"),
            ("crm.example.com", "not a URL"),
        ] {
            config.public_url = Some(bad.into());
            let err = config.validate().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn only_postgres_urls_select_a_database() {
        let with_url = |url: &str| {
            let mut config =
                ServeConfig::with_defaults("127.0.0.1:0".parse().unwrap(), PathBuf::from("data"));
            config.database_url = Some(url.to_owned());
            config.validate()
        };
        assert!(with_url("postgres://postgres@127.0.0.1:5432/test").is_ok());
        assert!(with_url("postgresql://funnel:secret@db/funnel?sslmode=disable").is_ok());
        assert!(with_url("").is_ok(), "empty is unset: SQLite");
        for bad in [
            "sqlite://data/funnel.db",
            "mysql://db/funnel",
            "127.0.0.1:5432",
        ] {
            let err = with_url(bad).unwrap_err();
            assert!(err.contains("postgres://"), "{bad}: {err}");
        }
    }

    #[test]
    fn change_events_are_kept_for_a_minute_at_least() {
        let mut config =
            ServeConfig::with_defaults("127.0.0.1:0".parse().unwrap(), PathBuf::from("data"));
        assert_eq!(config.change_retention, Duration::from_secs(30 * 24 * 3600));
        config.change_retention = Duration::from_secs(59);
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("--change-retention")
        );
        config.change_retention = humantime::parse_duration("7days").unwrap();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn a_cluster_needs_a_shared_database() {
        let mut config =
            ServeConfig::with_defaults("127.0.0.1:0".parse().unwrap(), PathBuf::from("data"));
        config.redis_url = Some("redis://127.0.0.1:6379/".into());
        let err = config.validate().unwrap_err();
        assert!(err.contains("--database-url"), "{err}");
        config.database_url = Some("postgres://postgres@127.0.0.1:5432/test".into());
        assert!(config.validate().is_ok());
        config.redis_url = Some("http://127.0.0.1:6379".into());
        assert!(config.validate().unwrap_err().contains("redis://"));
        config.redis_url = Some(String::new());
        config.database_url = None;
        assert!(config.validate().is_ok(), "empty is unset: one instance");
    }
}
