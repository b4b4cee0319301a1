//! Pushed authorization requests (RFC 9126): the endpoint that takes an authorization request
//! in a direct, authenticated POST, and the authorization requests that later name it by its
//! `request_uri`.
//!
//! A push authenticates the client exactly as the token endpoint does (PAR-01), except that a
//! client assertion's audience follows the PAR rules (PKJWT-13), then runs the same validation as
//! `/authorize`; every refusal is JSON, never a redirect. An accepted push is stored as a row:
//! the validated request under the SHA-256 digest of its `request_uri`, with its client and
//! expiry (`[par] request_uri_ttl_secs`, 60 s by default). A row rather than a sealed value like
//! pending requests, because one-time use needs a record at push time anyway. `/authorize` with
//! `client_id` and `request_uri` takes the row with one conditional `UPDATE` (PAR-02: one-time,
//! even under concurrent uses) that also requires the pushing client (PAR-03); the request then
//! continues through sign-in and consent with the pushed values. Other query parameters are
//! ignored, so nothing in the front channel can change a pushed request. A refused
//! `request_uri` is an error page: there is no trusted redirect URI to send the error to.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::authorize::{establish_redirect_uri, validate_request};
use super::token::{TokenError, authenticate_at, no_store};
use super::{AppState, Params};
use crate::client_auth::AuthEndpoint;
use crate::error::OAuthError;
use crate::faults::Fault;
use crate::store::{PendingRequest, PushedLookup};

/// The prefix of every `request_uri` this server issues (RFC 9126 §2.2).
const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// A successful push (RFC 9126 §2.2).
#[derive(Debug, Serialize)]
struct PushResponse {
    request_uri: String,
    expires_in: u64,
}

/// `POST /par`.
pub(super) async fn push(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept(&state, &headers, &body).await {
        Ok(answer) => {
            let mut response = (StatusCode::CREATED, Json(answer)).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn accept(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<PushResponse, TokenError> {
    if !super::is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the pushed authorization request must be sent as \
             application/x-www-form-urlencoded (PAR-01)",
        )
        .into());
    }
    let params = Params::parse(body);
    // PAR-04: a pushed request cannot point at another one.
    if params.all("request_uri").next().is_some() && !state.fault(Fault::AcceptPushedRequestUri) {
        return Err(OAuthError::invalid_request(
            "request_uri must not be sent to the pushed authorization request endpoint; push the \
             authorization request's parameters themselves (PAR-04)",
        )
        .into());
    }
    // PAR-01: the client authenticates as it would at the token endpoint.
    let client = authenticate_at(state, headers, &params, AuthEndpoint::Par)
        .await?
        .client;
    let redirect_uri = establish_redirect_uri(state, &params, &client)?;
    let request = validate_request(state, &params, &client, redirect_uri)?;
    let reference = state
        .store
        .insert_pushed(&request, state.par.request_uri_ttl())
        .await?;
    tracing::info!(client_id = %request.client_id, "authorization request pushed");
    Ok(PushResponse {
        request_uri: format!("{REQUEST_URI_PREFIX}{}", reference.expose()),
        expires_in: state.par.request_uri_ttl_secs,
    })
}

/// The pushed request an authorization request names with `request_uri`, taken (spent), or the
/// error page saying why not.
pub(super) async fn take(
    state: &AppState,
    params: &Params,
    request_uri: &str,
) -> Result<PendingRequest, Response> {
    let refuse = |description: &str| {
        state.error_page(
            StatusCode::BAD_REQUEST,
            &OAuthError::invalid_request(description),
        )
    };
    let client_id = match params.get("client_id") {
        Ok(Some(client_id)) => client_id,
        Ok(None) => {
            return Err(refuse(
                "client_id is missing; an authorization request with a request_uri must name the \
                 client that pushed it (PAR-03)",
            ));
        }
        Err(error) => return Err(state.error_page(StatusCode::BAD_REQUEST, &error)),
    };
    let Some(reference) = request_uri.strip_prefix(REQUEST_URI_PREFIX) else {
        return Err(refuse(
            "request_uri was not issued by this server's pushed authorization request endpoint; \
             this server takes no other request_uri (PAR-02)",
        ));
    };
    let found = state
        .store
        .take_pushed(
            reference,
            client_id,
            state.fault(Fault::ReusableRequestUri),
            state.fault(Fault::IgnoreParClientId),
        )
        .await;
    match found {
        Ok(PushedLookup::Taken(request)) => Ok(request),
        Ok(PushedLookup::OtherClient) => Err(refuse(&format!(
            "request_uri was pushed by another client than {client_id:?}; a request_uri is bound \
             to the client that pushed it (PAR-03)"
        ))),
        Ok(PushedLookup::Missing) => Err(refuse(
            "request_uri is unknown, expired or already used; each pushed request starts one \
             authorization, so push it again (PAR-02)",
        )),
        Err(error) => Err(state.fail(&error)),
    }
}
