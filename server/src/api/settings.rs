//! A board's settings (`PATCH /api/v1/boards/{boardId}`), its custom fields (`fields`) and its
//! quick-create form (`forms/quickCreate`): read by anyone the token lets in, written by admins.

use super::board_call::{BoardCaller, json};
use super::{ApiError, Caller, Problem};
use crate::app_state::AppState;
use crate::room::api_write::ApiWriteError;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use funnel_protocol::board::{self, MAX_NAME_CHARS};
use funnel_protocol::policy::Role;
use funnel_protocol::schema::{self, root};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use yrs::types::ToJson;
use yrs::{Any, Map, Out, ReadTxn, Transaction, WriteTxn};

/// A board's settings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsJson {
    pub name: String,
    pub entity: String,
    /// The currency of new cards (ISO 4217).
    pub currency: String,
    /// Minutes before a deadline at which a planned activity lights.
    pub counter_threshold_min: i64,
    /// The reasons a card may be lost for, in order; empty: any text.
    pub lost_reasons: Vec<String>,
    /// Whether the board is archived (read-only, out of the board list).
    pub archived: bool,
    /// When it was archived (ms since the Unix epoch); null when it is not.
    pub archived_at: Option<i64>,
}

/// Changes to the settings; only the fields sent change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SettingsPatch {
    pub name: Option<String>,
    pub currency: Option<String>,
    pub counter_threshold_min: Option<i64>,
    /// Replaces the list of lost reasons (each 1 to 200 characters, at most 100, no repeats).
    pub lost_reasons: Option<Vec<String>>,
    /// `true` archives the board (it leaves the board list and opens read-only), `false`
    /// restores it. Sent with other fields, a restore happens before them, an archive after.
    pub archived: Option<bool>,
}

impl SettingsPatch {
    /// Whether the patch changes the board's document (not only its archive state).
    fn writes_document(&self) -> bool {
        self.name.is_some()
            || self.currency.is_some()
            || self.counter_threshold_min.is_some()
            || self.lost_reasons.is_some()
    }
}

/// A custom field.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldJson {
    /// Absent when defining: a new id is made.
    #[serde(default)]
    pub id: Option<String>,
    pub label: String,
    /// `string`, `number`, `money`, `date`, `enum`, `user` or `bool`.
    #[serde(rename = "type")]
    pub field_type: String,
    /// The choices of an `enum`.
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldList {
    pub fields: Vec<FieldJson>,
    pub next: Option<String>,
}

/// The quick-create form: field ids in order (`title`, `amount`, `client`, `email`,
/// `responsible`, `currency` or a custom field's id).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickCreateForm {
    pub fields: Vec<String>,
}

const BUILT_IN_FIELDS: [&str; 6] = [
    "title",
    "amount",
    "client",
    "email",
    "responsible",
    "currency",
];

fn read_settings(txn: &Transaction<'_>, _: &str) -> Result<Value, ApiWriteError> {
    let settings = board::settings(txn);
    Ok(json(SettingsJson {
        name: settings.name,
        entity: settings.entity,
        currency: settings.currency,
        counter_threshold_min: settings.counter_threshold_min,
        lost_reasons: settings.lost_reasons,
        // Storage's, filled in by the handler.
        archived: false,
        archived_at: None,
    }))
}

fn fields_of<T: ReadTxn>(txn: &T) -> Vec<FieldJson> {
    let Some(fields) = txn.get_map(root::FIELDS) else {
        return Vec::new();
    };
    let mut list: Vec<FieldJson> = fields
        .iter(txn)
        .filter_map(|(id, value)| {
            let Out::YMap(map) = value else { return None };
            let json = serde_json::to_value(map.to_json(txn)).ok()?;
            Some(FieldJson {
                id: Some(id.to_owned()),
                label: json[schema::field::LABEL].as_str()?.to_owned(),
                field_type: json[schema::field::TYPE]
                    .as_str()
                    .unwrap_or("string")
                    .to_owned(),
                options: json[schema::field::OPTIONS]
                    .as_array()
                    .map(|o| {
                        o.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    list
}

/// Changes the board's name, currency, counter threshold or lost reasons, or archives or
/// restores it (admin).
#[utoipa::path(
    patch,
    path = "/api/v1/boards/{boardId}",
    params(("boardId" = String, Path, description = "the board's id")),
    request_body = SettingsPatch,
    responses(
        (status = 200, body = SettingsJson),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "only admins change the settings"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the board is archived: restore it (`archived: false`) to change its settings"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn patch_board(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(board_id): Path<String>,
    body: Result<Json<SettingsPatch>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let mut caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let Json(patch) = body?;
    if patch.archived.is_some() && caller.principal.role < Role::Admin {
        return Err(ApiError::Forbidden(format!(
            "only admins archive or restore boards; the token's role is {}",
            caller.principal.role
        )));
    }
    if patch.archived == Some(false) {
        set_archived(&state, &mut caller, false).await?;
    }
    let writes_document = patch.writes_document();
    let archive = patch.archived == Some(true);
    let name = patch.name.as_deref().map(str::trim).map(str::to_owned);
    if let Some(name) = &name
        && (name.is_empty() || name.chars().count() > MAX_NAME_CHARS)
    {
        return Err(ApiError::invalid(
            "name",
            format!("1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if let Some(currency) = &patch.currency
        && !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(ApiError::invalid(
            "currency",
            "use a three-letter ISO 4217 code such as USD",
        ));
    }
    if !writes_document {
        if archive {
            set_archived(&state, &mut caller, true).await?;
        }
        return settings_of(&state, &caller).await;
    }
    caller
        .write(
            &state,
            Role::Admin,
            Box::new(move |txn| {
                if let Some(minutes) = patch.counter_threshold_min {
                    board::set_counter_threshold(txn, minutes)?;
                }
                if let Some(reasons) = &patch.lost_reasons {
                    let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
                    board::set_lost_reasons(txn, &reasons)?;
                }
                let settings = txn.get_or_insert_map(root::BOARD);
                if let Some(name) = name {
                    settings.insert(txn, schema::board::NAME, Any::from(name));
                }
                if let Some(currency) = patch.currency {
                    settings.insert(txn, schema::board::CURRENCY, Any::from(currency));
                }
                Ok(String::new())
            }),
            Box::new(read_settings),
        )
        .await?;
    if archive {
        set_archived(&state, &mut caller, true).await?;
    }
    settings_of(&state, &caller).await
}

/// Archives (`true`) or restores the board, unless it is so already; its open sockets then
/// close and reconnect (read-only on an archived board), on every instance.
async fn set_archived(
    state: &AppState,
    caller: &mut BoardCaller,
    archived: bool,
) -> Result<(), ApiError> {
    if caller.meta.archived_at.is_some() == archived {
        return Ok(());
    }
    let at = archived.then(|| crate::clock::Clock::now_ms(&crate::clock::SystemClock));
    if !state.storage.set_archived(&caller.board, at).await? {
        return Err(ApiError::NoSuchBoard(caller.board.to_string()));
    }
    caller.meta.archived_at = at;
    tracing::info!(board = %caller.board, archived, "board archive state changed");
    state
        .accounts
        .revocations
        .send(crate::auth::Revocation::BoardReopened {
            board: caller.board.clone(),
        });
    Ok(())
}

/// The board's settings as the PATCH answers them, with its archive state from storage.
async fn settings_of(state: &AppState, caller: &BoardCaller) -> Result<Json<Value>, ApiError> {
    let mut settings = caller
        .read(state, String::new(), Box::new(read_settings))
        .await?;
    settings["archived"] = Value::Bool(caller.meta.archived_at.is_some());
    settings["archivedAt"] = json(caller.meta.archived_at);
    Ok(Json(settings))
}

/// The board's custom fields, by id.
#[utoipa::path(
    get,
    path = "/api/v1/boards/{boardId}/fields",
    params(("boardId" = String, Path, description = "the board's id")),
    responses(
        (status = 200, body = FieldList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_fields(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(board_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let list = caller
        .read(
            &state,
            "",
            Box::new(|txn, _| {
                let list = FieldList {
                    fields: fields_of(txn),
                    next: None,
                };
                Ok(json(list))
            }),
        )
        .await?;
    Ok(Json(list))
}

/// Defines a custom field, or redefines the one whose `id` is sent (admin).
#[utoipa::path(
    post,
    path = "/api/v1/boards/{boardId}/fields",
    params(("boardId" = String, Path, description = "the board's id")),
    request_body = FieldJson,
    responses(
        (status = 201, body = FieldJson),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "only admins define fields"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the board is archived (read-only)"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a bad label or type, or a built-in field's id")
    )
)]
pub async fn define_field(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(board_id): Path<String>,
    body: Result<Json<FieldJson>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let Json(field) = body?;
    if let Some(id) = &field.id
        && (id.is_empty() || BUILT_IN_FIELDS.contains(&id.as_str()) || id == "createdAt")
    {
        return Err(ApiError::invalid("id", "a built-in field's id, or empty"));
    }
    let defined = caller
        .write(
            &state,
            Role::Admin,
            Box::new(move |txn| {
                let options: Vec<&str> = field.options.iter().map(String::as_str).collect();
                Ok(board::define_field(
                    txn,
                    field.id.as_deref(),
                    &field.label,
                    &field.field_type,
                    &options,
                )?)
            }),
            Box::new(|txn, id| {
                fields_of(txn)
                    .into_iter()
                    .find(|f| f.id.as_deref() == Some(id))
                    .map(json)
                    .ok_or_else(|| ApiWriteError::NotFound(format!("no field {id}")))
            }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(defined)))
}

/// The quick-create form: the fields a new card must have.
#[utoipa::path(
    get,
    path = "/api/v1/boards/{boardId}/forms/quickCreate",
    params(("boardId" = String, Path, description = "the board's id")),
    responses(
        (status = 200, body = QuickCreateForm),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_quick_create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(board_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let form = caller.read(&state, "", Box::new(read_quick_create)).await?;
    Ok(Json(form))
}

fn read_quick_create(txn: &Transaction<'_>, _: &str) -> Result<Value, ApiWriteError> {
    let form = QuickCreateForm {
        fields: board::quick_create_fields(txn),
    };
    Ok(json(form))
}

/// Sets the quick-create form (admin): every id a built-in field or a defined custom field.
#[utoipa::path(
    put,
    path = "/api/v1/boards/{boardId}/forms/quickCreate",
    params(("boardId" = String, Path, description = "the board's id")),
    request_body = QuickCreateForm,
    responses(
        (status = 200, body = QuickCreateForm),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "only admins change forms"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the board is archived (read-only)"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "an id that names no field")
    )
)]
pub async fn put_quick_create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(board_id): Path<String>,
    body: Result<Json<QuickCreateForm>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let Json(form) = body?;
    let form = caller
        .write(
            &state,
            Role::Admin,
            Box::new(move |txn| {
                let custom = fields_of(txn);
                let unknown: Vec<(String, String)> = form
                    .fields
                    .iter()
                    .filter(|id| {
                        !BUILT_IN_FIELDS.contains(&id.as_str())
                            && !custom.iter().any(|f| f.id.as_ref() == Some(*id))
                    })
                    .map(|id| ("fields".to_owned(), format!("no field {id}")))
                    .collect();
                if !unknown.is_empty() {
                    return Err(ApiWriteError::Invalid(unknown));
                }
                let ids: Vec<&str> = form.fields.iter().map(String::as_str).collect();
                board::set_quick_create_fields(txn, &ids);
                Ok(String::new())
            }),
            Box::new(read_quick_create),
        )
        .await?;
    Ok(Json(form))
}
