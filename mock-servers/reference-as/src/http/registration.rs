//! The registration endpoints: `POST /register` (RFC 7591), `GET`, `PUT` and `DELETE` on
//! `/register/{client_id}` (RFC 7592), and the template admin API
//! (`/admin/templates/{software_id}`), each served only when configured.
//!
//! Handlers only translate HTTP: the bearer token, the JSON body and the status codes. Every
//! decision is [`crate::dcr::Registry`]'s. Errors are JSON with `no-store`, like token
//! responses; bearer-token failures answer 401 with an RFC 6750 `WWW-Authenticate` challenge.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::{AppState, Params};
use crate::dcr::metadata::INVALID_CLIENT_METADATA;
use crate::dcr::{DcrError, Registry, TemplateDefinition};
use crate::error::{ErrorCode, OAuthError};
use crate::faults::Fault;

/// Form members read as arrays under the `registration-accepts-form` fault.
const ARRAY_MEMBERS: &[&str] = &["redirect_uris", "grant_types", "response_types", "contacts"];

/// The routes registration is configured for (none when it is off).
pub(super) fn routes(state: &AppState) -> Router<Arc<AppState>> {
    let router = Router::new();
    let Some(registry) = state.clients.registry() else {
        return router;
    };
    let config = registry.config();
    if !config.enabled {
        return router;
    }
    let mut router = router.route("/register", post(register));
    if config.management {
        router = router.route(
            "/register/{client_id}",
            get(read).put(update).delete(delete),
        );
    }
    if registry.admin_enabled() {
        router = router.route(
            "/admin/templates/{software_id}",
            get(read_template).put(write_template),
        );
    }
    router
}

/// The registry; the routes exist only when it does.
fn registry(state: &AppState) -> Result<&Registry, DcrError> {
    state.clients.registry().ok_or_else(|| {
        DcrError::Internal(crate::error::AsError::Config(
            "registration routes without a registry".to_owned(),
        ))
    })
}

/// `POST /register`.
async fn register(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let registry = registry(&state)?;
        let admission = registry.admit(bearer(&headers)).await?;
        let body = metadata_body(&state, &headers, &body)?;
        registry.register(admission, &body).await
    }
    .await;
    // DCR-03: 201 Created (the `registration-created-status-200` fault answers 200).
    let created = if state.fault(Fault::RegistrationCreatedStatus200) {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    respond(&state, result.map(|info| (created, info)))
}

/// `GET /register/{client_id}`.
async fn read(
    State(state): State<Arc<AppState>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async { registry(&state)?.read(&client_id, bearer(&headers)).await }.await;
    respond(&state, result.map(|info| (StatusCode::OK, info)))
}

/// `PUT /register/{client_id}`.
async fn update(
    State(state): State<Arc<AppState>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let registry = registry(&state)?;
        // The token is checked first; the body is read only for its holder.
        let bearer = bearer(&headers);
        registry.check_access(&client_id, bearer).await?;
        let body = metadata_body(&state, &headers, &body)?;
        registry.update(&client_id, bearer, &body).await
    }
    .await;
    respond(&state, result.map(|info| (StatusCode::OK, info)))
}

/// `DELETE /register/{client_id}`.
async fn delete(
    State(state): State<Arc<AppState>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async { registry(&state)?.delete(&client_id, bearer(&headers)).await }.await;
    match result {
        // DCRM-09: 204 (the `delete-status-200` fault answers 200).
        Ok(()) if state.fault(Fault::DeleteStatus200) => {
            no_store((StatusCode::OK, "").into_response())
        }
        Ok(()) => no_store(StatusCode::NO_CONTENT.into_response()),
        Err(error) => failure(&state, error),
    }
}

/// `GET /admin/templates/{software_id}`.
async fn read_template(
    State(state): State<Arc<AppState>>,
    Path(software_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let registry = admin(&state, &headers).await?;
        match registry.stored_template(&software_id).await? {
            Some(template) => Ok((StatusCode::OK, json!(template))),
            None => Err(DcrError::NotFound(format!(
                "no template has software_id {software_id:?}"
            ))),
        }
    }
    .await;
    respond(&state, result)
}

/// `PUT /admin/templates/{software_id}`: creates or replaces the template.
async fn write_template(
    State(state): State<Arc<AppState>>,
    Path(software_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let registry = admin(&state, &headers).await?;
        let definition: TemplateDefinition = serde_json::from_slice(&body).map_err(|e| {
            DcrError::Invalid(OAuthError::invalid_request(format!(
                "the body is not a template definition: {e}"
            )))
        })?;
        registry
            .put_template(&software_id, definition.clone())
            .await?;
        Ok((StatusCode::OK, json!(definition)))
    }
    .await;
    respond(&state, result)
}

/// The registry, if `headers` carry the admin token.
async fn admin<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<&'a Registry, DcrError> {
    let registry = registry(state)?;
    if registry.admin_allows(bearer(headers)).await? {
        Ok(registry)
    } else {
        Err(DcrError::Token(
            "the admin token is missing or wrong".to_owned(),
        ))
    }
}

/// The token of a single `Authorization: Bearer` header (RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// DCR-01: the registration body, a JSON object sent as `application/json` (the
/// `registration-accepts-form` fault also reads form bodies).
fn metadata_body(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, DcrError> {
    let media_type = super::media_type(headers);
    if media_type == "application/json" {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(members)) => Ok(members),
            _ => Err(DcrError::Invalid(OAuthError::new(
                INVALID_CLIENT_METADATA,
                "the body is not a JSON object of client metadata (DCR-01)",
            ))),
        };
    }
    if media_type == "application/x-www-form-urlencoded"
        && state.fault(Fault::RegistrationAcceptsForm)
    {
        let params = Params::parse(body);
        let mut members = Map::new();
        for (name, value) in &params.0 {
            if ARRAY_MEMBERS.contains(&name.as_str()) {
                let entry = members
                    .entry(name.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = entry {
                    items.push(Value::String(value.clone()));
                }
            } else {
                members.insert(name.clone(), Value::String(value.clone()));
            }
        }
        return Ok(members);
    }
    Err(DcrError::Invalid(OAuthError::invalid_request(format!(
        "registration requests carry a JSON object with Content-Type application/json, not {} \
         (DCR-01)",
        if media_type.is_empty() {
            "a body without a Content-Type".to_owned()
        } else {
            format!("{media_type:?}")
        }
    ))))
}

/// A JSON answer with `status`, or the error's.
fn respond(state: &AppState, result: Result<(StatusCode, Value), DcrError>) -> Response {
    match result {
        Ok((status, body)) => no_store((status, axum::Json(body)).into_response()),
        Err(error) => failure(state, error),
    }
}

/// The error's status, JSON body and challenge.
fn failure(state: &AppState, error: DcrError) -> Response {
    let (status, code, description) = match error {
        DcrError::Invalid(error) => {
            // DCR-06: 400 (the `registration-error-status-200` fault answers 200).
            let status = if state.fault(Fault::RegistrationErrorStatus200) {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            (status, error.code.as_str(), error.description)
        }
        DcrError::Token(description) => {
            let body = json!({ "error": "invalid_token", "error_description": description });
            let mut response =
                no_store((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response());
            let challenge = format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                header_text(&description)
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            return response;
        }
        DcrError::NotFound(description) => (StatusCode::NOT_FOUND, "not_found", description),
        DcrError::DeleteNotSupported => {
            let body = json!({
                "error": "invalid_request",
                "error_description": DcrError::DeleteNotSupported.to_string(),
            });
            let mut response =
                no_store((StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response());
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, PUT"));
            return response;
        }
        DcrError::Internal(error) => {
            let error = OAuthError::server_error(&error);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::SERVER_ERROR.as_str(),
                error.description,
            )
        }
    };
    let body = json!({ "error": code, "error_description": description });
    no_store((status, axum::Json(body)).into_response())
}

/// RFC 6750 §3: quoted-string content without quotes, backslashes or non-ASCII.
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

/// RFC 7591 §3.2.1: registration responses are not cached.
fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
