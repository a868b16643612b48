//! Sign-in, sign-out, invites and the people directory (docs/accounts.md). Every endpoint
//! here answers 409 in local mode (no `--auth-secret`), where there are no accounts, except
//! the directory, which is then empty.

use super::{ApiError, Caller, Me};
use crate::accounts::{
    SESSION_COOKIE, SignIn, color_for, cookie, digest, hash_password, initials, new_secret,
    normalize_email, now_ms, password_problem,
};
use crate::app_state::AppState;
use crate::auth::{AuthError, Principal, Revocation};
use crate::headers::header_str;
use crate::storage::accounts::{Invite, Person, PersonChange};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use funnel_protocol::BoardId;
use funnel_protocol::board::MAX_NAME_CHARS;
use funnel_protocol::ids::new_id;
use funnel_protocol::policy::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use utoipa::ToSchema;

/// An e-mail and a password, to sign in with.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

/// A person to invite (an e-mail not known yet makes a new person; a known one gets a new link,
/// which also sets a new password).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvite {
    pub email: String,
    /// 1 to 200 characters; defaults to what comes before the `@`.
    #[serde(default)]
    pub name: Option<String>,
    /// `viewer`, `member` (the default) or `admin`: the role on every board without one of its
    /// own. Ignored for a person who exists already.
    #[serde(default)]
    pub role: Option<String>,
}

/// An invite made: the one-time link to hand to the person (shown once, never stored).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteJson {
    pub person: PersonJson,
    /// The absolute link (`{origin}/invite#{secret}`): the secret is in the fragment, which
    /// browsers never send to a server or put in a Referer.
    pub link: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
}

/// What the invite page shows before the person sets a password.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteInfo {
    pub email: String,
    pub name: String,
    /// Whether the person has a password already (the link then replaces it).
    pub has_password: bool,
    pub expires_at: i64,
}

/// A password for an invite's person, and optionally the name they go by.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// At least 10 characters.
    pub password: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// A person of the directory. `email`, `role`, `boardRoles` and `disabled` are shown to
/// admins only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonJson {
    /// The user id cards and activities name (`responsible`).
    pub id: String,
    pub name: String,
    /// For the avatar: the first letters of the first and last words of the name.
    pub initials: String,
    /// `#rrggbb`, stable for the id (the same on every client).
    pub color: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Board id → role, over `role`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board_roles: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Whether they have set a password (accepted an invite) or signed in through the identity
    /// provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeopleList {
    pub people: Vec<PersonJson>,
    /// Always null: the directory comes whole.
    pub next: Option<String>,
}

/// An admin's change to a person; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PersonPatch {
    #[serde(default)]
    pub name: Option<String>,
    /// The role on every board without one of its own.
    #[serde(default)]
    pub role: Option<String>,
    /// Board id → role, or null to remove the board's own role.
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>)]
    pub board_roles: Option<BTreeMap<String, Option<String>>>,
    /// true disables (their sessions end and their sockets close at once), false enables.
    #[serde(default)]
    pub disabled: Option<bool>,
}

fn person_json(person: &Person, for_admin: bool) -> PersonJson {
    PersonJson {
        initials: initials(&person.name),
        color: color_for(&person.id),
        id: person.id.clone(),
        name: person.name.clone(),
        email: for_admin.then(|| person.email.clone()),
        role: for_admin.then(|| person.role.as_str().to_owned()),
        board_roles: for_admin.then(|| {
            person
                .board_roles
                .iter()
                .map(|(board, role)| (board.to_string(), role.as_str().to_owned()))
                .collect()
        }),
        disabled: for_admin.then_some(person.disabled_at.is_some()),
        active: for_admin
            .then_some(person.password_hash.is_some() || person.oidc_subject.is_some()),
    }
}

fn accounts_off() -> ApiError {
    ApiError::Conflict(
        "accounts are off in local mode: start funnel with --auth-secret to sign people in".into(),
    )
}

fn require_accounts(state: &AppState) -> Result<(), ApiError> {
    if state.accounts.enabled() {
        Ok(())
    } else {
        Err(accounts_off())
    }
}

/// A browser page's request must come from an allowed origin (no Origin: not a page).
fn allowed_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let origin = header_str(headers, header::ORIGIN);
    if state
        .connections
        .origins
        .allows(origin, header_str(headers, header::HOST))
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this page's origin may not call the API (see --allowed-origins)".into(),
        ))
    }
}

fn role_field(field: &str, raw: &str) -> Result<Role, ApiError> {
    Role::parse(raw).map_err(|e| ApiError::invalid(field, e.to_string()))
}

fn name_field(field: &str, raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid(
            field,
            format!("a name has 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// `/me` for a person who just signed in.
fn me_of(person: &Person) -> Me {
    Me {
        user: person.id.clone(),
        name: person.name.clone(),
        role: person.role.as_str().to_owned(),
        boards: None,
        local: false,
        email: Some(person.email.clone()),
        signed_in_with: "session".into(),
        board_role: None,
    }
}

/// The origin the caller's browser sees this server at: the page's `Origin`, else the proxy's
/// `X-Forwarded-Proto` (or http) and the `Host`.
fn request_origin(headers: &HeaderMap) -> String {
    if let Some(origin) = header_str(headers, header::ORIGIN).filter(|o| *o != "null") {
        return origin.trim_end_matches('/').to_owned();
    }
    let proto = header_str(
        headers,
        header::HeaderName::from_static("x-forwarded-proto"),
    )
    .map(str::trim)
    .filter(|p| p.eq_ignore_ascii_case("https"))
    .map_or("http", |_| "https");
    let host = header_str(headers, header::HOST).unwrap_or("localhost");
    format!("{proto}://{host}")
}

/// Signs in with an e-mail and a password: answers the person (as `/me` would) and a session
/// cookie (HttpOnly, SameSite=Lax). A wrong e-mail and a wrong password get the same 401.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    request_body = Credentials,
    responses(
        (status = 400, body = super::Problem, content_type = "application/problem+json"),
        (status = 200, body = Me, description = "signed in; the session is in the Set-Cookie header"),
        (status = 401, body = super::Problem, content_type = "application/problem+json"),
        (status = 403, body = super::Problem, content_type = "application/problem+json"),
        (status = 409, body = super::Problem, content_type = "application/problem+json", description = "local mode: no accounts"),
        (status = 422, body = super::Problem, content_type = "application/problem+json")
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<Response, ApiError> {
    allowed_origin(&state, &headers)?;
    require_accounts(&state)?;
    let Json(credentials) = body?;
    match state
        .accounts
        .sign_in(peer.ip(), &credentials.email, &credentials.password)
        .await?
    {
        SignIn::Welcome { secret, person } => Ok((
            [(
                header::SET_COOKIE,
                state.accounts.session_cookie(&secret, &headers),
            )],
            Json(me_of(&person)),
        )
            .into_response()),
        SignIn::Refused => Err(ApiError::Unauthenticated(AuthError::BadCredentials)),
        SignIn::Slow(wait) => Err(ApiError::RateLimited {
            retry_after_secs: crate::limits::retry_after_secs(wait),
        }),
    }
}

/// Signs out: ends the session of the cookie (its sockets close at once) and clears the cookie.
/// Answers 204 whether or not there was a session.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    responses(
        (status = 204, description = "signed out"),
        (status = 403, body = super::Problem, content_type = "application/problem+json")
    )
)]
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    allowed_origin(&state, &headers)?;
    if let Some(secret) = cookie(&headers, SESSION_COOKIE).filter(|s| !s.is_empty())
        && state.accounts.enabled()
    {
        state.accounts.sign_out(secret).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, state.accounts.cleared_cookie(&headers))],
    )
        .into_response())
}

/// Invites a person (admins): a one-time link, valid for `--invite-ttl` (7 days), with which
/// they set their password. Shown once: only its digest is stored. The link is on
/// `--public-url` when the server has one, else on the address the request came to.
#[utoipa::path(
    post,
    path = "/api/v1/invites",
    request_body = NewInvite,
    responses(
        (status = 400, body = super::Problem, content_type = "application/problem+json"),
        (status = 201, body = InviteJson),
        (status = 401, body = super::Problem, content_type = "application/problem+json"),
        (status = 403, body = super::Problem, content_type = "application/problem+json"),
        (status = 409, body = super::Problem, content_type = "application/problem+json", description = "local mode, or the person is disabled"),
        (status = 422, body = super::Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_invite(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<NewInvite>, JsonRejection>,
) -> Result<(StatusCode, Json<InviteJson>), ApiError> {
    require_accounts(&state)?;
    caller.at_least(Role::Admin)?;
    let Json(new) = body?;
    let (person, secret, expires_at) = invite(&state.accounts, &new).await?;
    // Behind a proxy the request's own address may be an inside one: `--public-url` wins.
    let origin = state
        .accounts
        .public_origin()
        .map_or_else(|| request_origin(&headers), str::to_owned);
    let link = format!("{origin}/invite#{secret}");
    tracing::info!(person = person.id, "invited");
    Ok((
        StatusCode::CREATED,
        Json(InviteJson {
            person: person_json(&person, true),
            link,
            expires_at,
        }),
    ))
}

/// Makes (or finds) the person and a new invite for them: the person, the link's secret and
/// when it expires. Shared by the API and `funnel invite`.
pub async fn invite(
    accounts: &crate::accounts::Accounts,
    new: &NewInvite,
) -> Result<(Person, String, i64), ApiError> {
    let email = normalize_email(&new.email)
        .ok_or_else(|| ApiError::invalid("email", "an e-mail address, like ann@example.com"))?;
    let name = match &new.name {
        Some(name) => name_field("name", name)?,
        None => email.split('@').next().unwrap_or(&email).to_owned(),
    };
    let role = match &new.role {
        Some(role) => role_field("role", role)?,
        None => Role::Member,
    };
    let store = accounts.storage().accounts();
    let now = now_ms();
    let candidate = Person {
        id: new_id(),
        email: email.clone(),
        name,
        role,
        board_roles: BTreeMap::new(),
        password_hash: None,
        disabled_at: None,
        created_at: now,
        oidc_subject: None,
    };
    let person = if store.create_person(&candidate).await? {
        candidate
    } else {
        store.person_by_email(&email).await?.ok_or_else(|| {
            ApiError::Conflict("the person was removed meanwhile; try again".into())
        })?
    };
    if person.disabled_at.is_some() {
        return Err(ApiError::Conflict(format!(
            "{email} is disabled: enable them first"
        )));
    }
    let secret = new_secret()?;
    let expires_at =
        now.saturating_add(i64::try_from(accounts.invite_ttl.as_millis()).unwrap_or(i64::MAX));
    store
        .create_invite(&Invite {
            digest: digest(&secret),
            person: person.id.clone(),
            expires_at,
            created_at: now,
        })
        .await?;
    Ok((person, secret, expires_at))
}

fn no_invite() -> ApiError {
    ApiError::NotFound(
        "this invite link was used already, has expired or never existed: ask an administrator \
         for a new one"
            .into(),
    )
}

/// What an invite link is for (the invite page): anyone holding the link may ask.
#[utoipa::path(
    get,
    path = "/api/v1/invites/{secret}",
    params(("secret" = String, Path, description = "the link's secret (after `#`)")),
    responses(
        (status = 200, body = InviteInfo),
        (status = 404, body = super::Problem, content_type = "application/problem+json"),
        (status = 409, body = super::Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_invite(
    State(state): State<AppState>,
    Path(secret): Path<String>,
) -> Result<Json<InviteInfo>, ApiError> {
    require_accounts(&state)?;
    let (invite, person) = state
        .storage
        .accounts()
        .invite(&digest(&secret), now_ms())
        .await?
        .filter(|(_, person)| person.disabled_at.is_none())
        .ok_or_else(no_invite)?;
    Ok(Json(InviteInfo {
        email: person.email,
        name: person.name,
        has_password: person.password_hash.is_some(),
        expires_at: invite.expires_at,
    }))
}

/// Uses an invite link: sets the person's password (and name), signs them in (the session
/// cookie) and answers who they are. The link then stops working.
#[utoipa::path(
    post,
    path = "/api/v1/invites/{secret}/accept",
    params(("secret" = String, Path, description = "the link's secret (after `#`)")),
    request_body = Acceptance,
    responses(
        (status = 400, body = super::Problem, content_type = "application/problem+json"),
        (status = 200, body = Me, description = "signed in; the session is in the Set-Cookie header"),
        (status = 403, body = super::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::Problem, content_type = "application/problem+json"),
        (status = 409, body = super::Problem, content_type = "application/problem+json"),
        (status = 422, body = super::Problem, content_type = "application/problem+json")
    )
)]
pub async fn accept_invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(secret): Path<String>,
    body: Result<Json<Acceptance>, JsonRejection>,
) -> Result<Response, ApiError> {
    allowed_origin(&state, &headers)?;
    require_accounts(&state)?;
    let Json(acceptance) = body?;
    if let Some(problem) = password_problem(&acceptance.password) {
        return Err(ApiError::invalid("password", problem));
    }
    let name = acceptance
        .name
        .as_deref()
        .map(|name| name_field("name", name))
        .transpose()?;
    let hash = hash_password(&acceptance.password).await?;
    let (cookie_secret, session) = state.accounts.new_session("")?;
    let person = state
        .storage
        .accounts()
        .accept_invite(&digest(&secret), now_ms(), &hash, name.as_deref(), &session)
        .await?
        .ok_or_else(no_invite)?;
    tracing::info!(user = person.id, "accepted an invite");
    Ok((
        [(
            header::SET_COOKIE,
            state.accounts.session_cookie(&cookie_secret, &headers),
        )],
        Json(me_of(&person)),
    )
        .into_response())
}

/// The people directory, oldest first: for the responsible and activity pickers and the
/// presence avatars. Admins also see e-mails, roles and who is disabled; others see the people
/// who are not disabled.
#[utoipa::path(
    get,
    path = "/api/v1/people",
    responses(
        (status = 200, body = PeopleList),
        (status = 401, body = super::Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_people(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<PeopleList>, ApiError> {
    let admin = who.role >= Role::Admin && state.accounts.enabled();
    let people = state.storage.accounts().people().await?;
    Ok(Json(PeopleList {
        people: people
            .iter()
            .filter(|p| admin || p.disabled_at.is_none())
            .map(|p| person_json(p, admin))
            .collect(),
        next: None,
    }))
}

/// Changes a person (admins): their name, default role, roles per board, or disables or
/// enables them. Disabling ends their sessions and closes their sockets at once (4401); a
/// lowered role closes their sockets on the boards concerned (4403), to reopen with it.
#[utoipa::path(
    patch,
    path = "/api/v1/people/{personId}",
    params(("personId" = String, Path, description = "the person's id")),
    request_body = PersonPatch,
    responses(
        (status = 400, body = super::Problem, content_type = "application/problem+json"),
        (status = 200, body = PersonJson),
        (status = 401, body = super::Problem, content_type = "application/problem+json"),
        (status = 403, body = super::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::Problem, content_type = "application/problem+json"),
        (status = 409, body = super::Problem, content_type = "application/problem+json"),
        (status = 422, body = super::Problem, content_type = "application/problem+json")
    )
)]
pub async fn patch_person(
    State(state): State<AppState>,
    caller: Caller,
    Path(person_id): Path<String>,
    body: Result<Json<PersonPatch>, JsonRejection>,
) -> Result<Json<PersonJson>, ApiError> {
    require_accounts(&state)?;
    let admin = caller.at_least(Role::Admin)?;
    let Json(patch) = body?;
    let change = change_of(&patch, &admin, &person_id)?;
    let (before, after) = state
        .storage
        .accounts()
        .change_person(&person_id, &change)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no person {person_id}")))?;
    revoke(&state, &before, &after);
    Ok(Json(person_json(&after, true)))
}

fn change_of(
    patch: &PersonPatch,
    admin: &Principal,
    person_id: &str,
) -> Result<PersonChange, ApiError> {
    let mut change = PersonChange {
        name: patch
            .name
            .as_deref()
            .map(|n| name_field("name", n))
            .transpose()?,
        role: patch
            .role
            .as_deref()
            .map(|r| role_field("role", r))
            .transpose()?,
        disabled_at: patch.disabled.map(|off| off.then(now_ms)),
        ..PersonChange::default()
    };
    for (board, role) in patch.board_roles.iter().flatten() {
        let field = format!("boardRoles.{board}");
        let id = BoardId::parse(board).map_err(|e| ApiError::invalid(&field, e.to_string()))?;
        let role = role.as_deref().map(|r| role_field(&field, r)).transpose()?;
        change.board_roles.push((id, role));
    }
    // An admin cannot lock themselves out by mistake (another admin can).
    if admin.user == person_id
        && (patch.disabled == Some(true) || change.role.is_some_and(|r| r < Role::Admin))
    {
        return Err(ApiError::Conflict(
            "you cannot disable yourself or lower your own role: ask another admin".into(),
        ));
    }
    Ok(change)
}

/// Closes what a change takes away, on this instance (docs/accounts.md, "Closing sockets").
fn revoke(state: &AppState, before: &Person, after: &Person) {
    let revocations = &state.accounts.revocations;
    let user = after.id.clone();
    if after.disabled_at.is_some() && before.disabled_at.is_none() {
        revocations.send(Revocation::Disabled { user });
        return;
    }
    // A socket holds the roles it opened with: one whose role went down closes (4403), one
    // whose role changed otherwise reconnects (1012) to hold the roles that are true now (a
    // board role removed at the same rights would leave it matching no later lowering).
    let change = |lowered: bool, board: Option<BoardId>| {
        let user = user.clone();
        if lowered {
            Revocation::RoleLowered { user, board }
        } else {
            Revocation::RoleChanged { user, board }
        }
    };
    if after.role != before.role {
        revocations.send(change(after.role < before.role, None));
    }
    let boards = before.board_roles.keys().chain(after.board_roles.keys());
    for board in boards.collect::<std::collections::BTreeSet<_>>() {
        let (was, now) = (before.role_on(board), after.role_on(board));
        let own_role_came_or_went =
            before.board_roles.contains_key(board) != after.board_roles.contains_key(board);
        if now != was || own_role_came_or_went {
            revocations.send(change(now < was, Some(board.clone())));
        }
    }
}
