//! What every HTTP handler gets: the shared state of the router. Its own module so that the
//! router (`http`) and the JSON API (`api`) both use it without naming each other.

use crate::bus::Bus;
use crate::connection::ConnectionContext;
use crate::storage::Storage;
use std::sync::Arc;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct AppState {
    /// Shared by every connection (each holds a pointer, not a copy).
    pub connections: Arc<ConnectionContext>,
    pub storage: Arc<dyn Storage>,
    /// The cluster bus, whose state `/readyz` reports (`None`: a single instance).
    pub bus: Option<Arc<dyn Bus>>,
    /// Timeline posts per caller (the API's `POST .../timeline`).
    pub timeline_rate: Arc<crate::limits::CallerRate>,
    /// Every API call per caller (`--api-rate`); `None`: no limit.
    pub api_rate: Option<Arc<crate::limits::CallerRate>>,
    /// How inbound e-mail is taken (`crate::mail`): its size limit, address secrets, domain.
    pub mail: Arc<crate::mail::MailSettings>,
    /// The change feed's newest stored id and its wake-ups (`crate::feed`): the events API and
    /// the webhook deliveries wait on it.
    pub feed: crate::feed::Feed,
    /// Webhook settings and the worker's wake-up (`webhooks.rs`).
    pub webhooks: crate::webhooks::Webhooks,
    /// People, sessions and invites (`crate::accounts`).
    pub accounts: Arc<crate::accounts::Accounts>,
    /// Sign-in through the identity provider (`crate::oidc`); `None`: off (no `--oidc-issuer`).
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
    /// Tracks every connection task, so shutdown waits for their close frames.
    pub tracker: TaskTracker,
}
