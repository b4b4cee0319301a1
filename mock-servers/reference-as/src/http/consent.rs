//! Consent: the page that shows who is asking for what, and the decision.
//!
//! A decision is taken once per pending request (the request is finished atomically), so a
//! replayed consent form cannot mint a second code. Consent is remembered per user, client and
//! scope set; a later request for a subset of remembered scopes skips the page.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::authorize::{ClientRedirect, complete, needs_consent};
use super::pages::{self, ConsentPage};
use super::{AppState, Params, host_of, request_url, see_other};
use crate::error::{ErrorCode, OAuthError};
use crate::store::{PendingRequest, User, scope_set};

/// `GET /consent?request_id=…`: the page, or straight on when no consent is needed.
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or_default().as_bytes());
    let (request_id, pending) = match state.pending(&headers, params.lenient("request_id")).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let user = match signed_in_user(&state, &headers, &request_id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match needs_consent(&state, &pending, &user).await {
        Ok(true) => consent_form(&state, &request_id, &pending, &user),
        Ok(false) => complete(&state, &request_id, &pending, &user).await,
        Err(response) => response,
    }
}

/// `POST /consent`: allow or deny.
pub(super) async fn decide(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    let (request_id, pending) = match state.pending_form(&headers, &params).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let user = match signed_in_user(&state, &headers, &request_id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match params.lenient("decision") {
        Some("allow") => {
            if let Err(error) = state
                .store
                .record_consent(user.id, &pending.client_id, &pending.scope)
                .await
            {
                return state.fail(&error);
            }
            complete(&state, &request_id, &pending, &user).await
        }
        Some("deny") => match state.store.finish_pending(&request_id).await {
            // A device authorization ends here, on a page, instead of at a redirect URI.
            Ok(true) if let Some(device) = &pending.device => {
                super::device::decide(&state, device, None).await
            }
            Ok(true) => ClientRedirect::of(&pending).error(
                &state,
                &OAuthError::new(ErrorCode::ACCESS_DENIED, "the user denied the request"),
            ),
            Ok(false) => state.error_page(
                StatusCode::BAD_REQUEST,
                &OAuthError::invalid_request("this sign-in request was already completed"),
            ),
            Err(error) => state.fail(&error),
        },
        _ => state.error_page(
            StatusCode::BAD_REQUEST,
            &OAuthError::invalid_request("decision must be \"allow\" or \"deny\""),
        ),
    }
}

/// The session's user, or a redirect to sign-in for this request.
async fn signed_in_user(
    state: &AppState,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<User, Response> {
    match state.session_user(headers).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(see_other(&request_url(state, "/login", request_id))),
        Err(error) => Err(state.fail(&error)),
    }
}

fn consent_form(
    state: &AppState,
    request_id: &str,
    pending: &PendingRequest,
    user: &User,
) -> Response {
    let scopes: Vec<&str> = scope_set(&pending.scope).into_iter().collect();
    pages::consent_page(&ConsentPage {
        issuer: state.issuer.as_str(),
        base: state.base(),
        client_id: &pending.client_id,
        client_host: &host_of(&pending.client_id),
        client_name: pending.client_name.as_deref(),
        redirect_host: &host_of(&pending.redirect_uri),
        scopes: &scopes,
        username: &user.username,
        request_id,
        csrf: &state.csrf_for(request_id),
        device_user_code: pending.device.as_ref().map(|d| d.user_code.as_str()),
    })
}
