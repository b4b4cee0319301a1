//! The authorization endpoint and the authorization response.
//!
//! Validation runs in two stages with different error channels. Until the client and its redirect
//! URI are both established, nothing may go to the presented redirect URI: an attacker chose it
//! (OAUTH-01), so errors are a 400 page. After that, errors go back to the client by redirect,
//! with `state` and `iss` like any authorization response.
//!
//! A request naming a `request_uri` was pushed earlier (see `par`): it was validated then, so
//! here it only has to be taken, and every other query parameter but `client_id` is ignored.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, BROWSER_COOKIE, Params, cookie, request_url, see_other};
use crate::client_auth::Client;
use crate::error::{ErrorCode, OAuthError};
use crate::faults::{Fault, Faults};
use crate::store::{CodeGrant, PendingRequest, Secret, User};

/// Longest browser-binding cookie value taken from a request (ours are 43 characters).
const MAX_BROWSER_COOKIE: usize = 128;

/// `GET /authorize`.
pub(super) async fn authorize(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or_default().as_bytes());
    let request = match params.get("request_uri") {
        Ok(Some(request_uri)) => match super::par::take(&state, &params, request_uri).await {
            Ok(request) => request,
            Err(response) => return response,
        },
        Ok(None) => match direct_request(&state, &params).await {
            Ok(request) => request,
            Err(response) => return response,
        },
        Err(error) => return state.error_page(StatusCode::BAD_REQUEST, &error),
    };

    // Bind the request to this browser; reuse its binding cookie if it has one.
    let existing = cookie(&headers, BROWSER_COOKIE).filter(|b| b.len() <= MAX_BROWSER_COOKIE);
    let (browser, new_cookie) = match existing {
        Some(browser) => (browser.to_owned(), None),
        None => match Secret::generate() {
            Ok(secret) => (secret.expose().to_owned(), Some(secret)),
            Err(error) => return state.fail(&error),
        },
    };
    let request_id =
        match state
            .store
            .insert_pending(&request, &browser, state.limits.request_ttl())
        {
            Ok(id) => id,
            Err(error) => return state.fail(&error),
        };
    let user = match state.session_user(&headers).await {
        Ok(user) => user,
        Err(error) => return state.fail(&error),
    };
    let mut response = match user {
        None => see_other(&request_url(&state, "/login", request_id.expose())),
        Some(user) => proceed(&state, request_id.expose(), &request, &user).await,
    };
    if let Some(secret) = new_cookie {
        let value = state.cookie(BROWSER_COOKIE, secret.expose(), state.limits.request_ttl());
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// An authorization request carried in the query (not pushed): both stages of validation.
async fn direct_request(state: &AppState, params: &Params) -> Result<PendingRequest, Response> {
    let (client, redirect_uri) = match establish_client(state, params).await {
        Ok(found) => found,
        Err(error) => return Err(refuse_unestablished(state, params, &error)),
    };
    let to_client = ClientRedirect {
        redirect_uri: redirect_uri.clone(),
        // A repeated state is reported without echoing either value.
        state: params.lenient("state").map(str::to_owned),
    };
    // PAR-05: with `[par] required`, only pushed requests start an authorization.
    if state.par.required && !state.fault(Fault::ParNotEnforced) {
        return Err(to_client.error(
            state,
            &OAuthError::invalid_request(
                "this server accepts authorization requests only through its pushed \
                 authorization request endpoint; push the request and send client_id and the \
                 request_uri it returns (PAR-05)",
            ),
        ));
    }
    validate_request(state, params, &client, redirect_uri)
        .map_err(|error| to_client.error(state, &error))
}

/// Stage one: the client (resolved from its metadata document, or registered) and the redirect
/// URI.
async fn establish_client(
    state: &AppState,
    params: &Params,
) -> Result<(Client, String), OAuthError> {
    let Some(client_id) = params.get("client_id")? else {
        return Err(OAuthError::invalid_request(
            "client_id is missing (OAUTH-01)",
        ));
    };
    let client = state.clients.find(&state.resolver, client_id).await?;
    let redirect_uri = establish_redirect_uri(state, params, &client)?;
    Ok((client, redirect_uri))
}

/// The second half of stage one: the request's redirect URI, which must be one of `client`'s.
pub(super) fn establish_redirect_uri(
    state: &AppState,
    params: &Params,
    client: &Client,
) -> Result<String, OAuthError> {
    let Some(redirect_uri) = params.get("redirect_uri")? else {
        return Err(OAuthError::invalid_request(
            "redirect_uri is missing; this server requires it in every authorization request",
        ));
    };
    if !client.redirect_uri_matches(redirect_uri, &state.faults) {
        return Err(OAuthError::invalid_request(match client {
            Client::Ephemeral(_) => format!(
                "redirect_uri {redirect_uri:?} is not one of the redirect_uris in the client's \
                 metadata document; they must match exactly (CIMD-REDIR-01)"
            ),
            Client::Registered(_) => format!(
                "redirect_uri {redirect_uri:?} is not one of the client's registered redirect \
                 URIs; they must match exactly"
            ),
        }));
    }
    Ok(redirect_uri.to_owned())
}

/// Stage-one failures: a page, never a redirect (OAUTH-01), unless the
/// `redirect-errors-to-client` fault sends them to whatever redirect URI was presented.
fn refuse_unestablished(state: &AppState, params: &Params, error: &OAuthError) -> Response {
    if state.fault(Fault::RedirectErrorsToClient)
        && let Some(presented) = params.lenient("redirect_uri")
        && url::Url::parse(presented).is_ok()
    {
        let to_client = ClientRedirect {
            redirect_uri: presented.to_owned(),
            state: params.lenient("state").map(str::to_owned),
        };
        return to_client.error(state, error);
    }
    state.error_page(StatusCode::BAD_REQUEST, error)
}

/// Stage two: everything else, checked in the order RFC 6749 §4.1.2.1 lists the errors.
pub(super) fn validate_request(
    state: &AppState,
    params: &Params,
    client: &Client,
    redirect_uri: String,
) -> Result<PendingRequest, OAuthError> {
    let client_state = params.get("state")?.map(str::to_owned);
    match params.get("response_type")? {
        None => return Err(OAuthError::invalid_request("response_type is missing")),
        Some("code") => {}
        // BCP-05: no implicit or hybrid flows.
        Some(other) => {
            return Err(OAuthError::new(
                ErrorCode::UNSUPPORTED_RESPONSE_TYPE,
                format!("response_type {other:?} is not supported; use \"code\" (BCP-05)"),
            ));
        }
    }
    if let Some(mode) = params.get("response_mode")?
        && mode != "query"
    {
        return Err(OAuthError::invalid_request(format!(
            "response_mode {mode:?} is not supported; this server answers in the query"
        )));
    }
    let code_challenge = pkce_challenge(state, params)?;
    let policy = state.resolver.policy();
    // CUR-03: the capability must be enabled by the policy and declared by the document.
    if !client.grant_allowed("authorization_code", policy, &state.faults) {
        return Err(OAuthError::new(
            ErrorCode::UNAUTHORIZED_CLIENT,
            "this client may not use the authorization code grant: its metadata document or this \
             server's ephemeral-client policy does not allow it (CUR-03)",
        ));
    }
    if !client.uses_code_response() {
        return Err(OAuthError::new(
            ErrorCode::UNAUTHORIZED_CLIENT,
            "the client's metadata document does not list response_type \"code\"",
        ));
    }
    let scope = client
        .filter_scopes(
            params.get("scope")?.unwrap_or_default(),
            policy,
            &state.faults,
        )
        .map_err(|why| OAuthError::new(ErrorCode::INVALID_SCOPE, why))?;
    let resource = resource_indicator(params, &state.faults)?;
    Ok(PendingRequest {
        client_id: client.id().to_owned(),
        client_name: client.name().map(str::to_owned),
        redirect_uri,
        state: client_state,
        scope,
        code_challenge,
        resource,
        device: None,
    })
}

/// PKCE-04: public clients must send an S256 challenge (the `skip-pkce` fault lets them omit it).
fn pkce_challenge(state: &AppState, params: &Params) -> Result<Option<String>, OAuthError> {
    let challenge = params.get("code_challenge")?;
    let method = params.get("code_challenge_method")?;
    let Some(challenge) = challenge else {
        if state.fault(Fault::SkipPkce) {
            return Ok(None);
        }
        return Err(OAuthError::invalid_request(
            "code_challenge is missing; PKCE with code_challenge_method=S256 is required (PKCE-04)",
        ));
    };
    match method {
        Some("S256") => {}
        // PKCE-03: an absent method means plain, which this server does not support.
        None => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method is missing, which means \"plain\"; only S256 is supported \
                 (PKCE-03)",
            ));
        }
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "code_challenge_method {other:?} is not supported; only S256 is (PKCE-04)"
            )));
        }
    }
    // PKCE-02: BASE64URL(SHA-256(verifier)) without padding is exactly 43 characters.
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(OAuthError::invalid_request(
            "code_challenge must be the 43-character unpadded base64url encoding of a SHA-256 \
             digest (PKCE-02)",
        ));
    }
    Ok(Some(challenge.to_owned()))
}

/// RI-01: at most one `resource`, an absolute URI without a fragment.
pub(super) fn resource_indicator(
    params: &Params,
    faults: &Faults,
) -> Result<Option<String>, OAuthError> {
    let mut resources = params.all("resource");
    let Some(resource) = resources.next() else {
        return Ok(None);
    };
    if resources.next().is_some() {
        return Err(OAuthError::new(
            ErrorCode::INVALID_TARGET,
            "this server issues tokens for one resource at a time; send a single resource",
        ));
    }
    let absolute = url::Url::parse(resource).is_ok_and(|u| !u.cannot_be_a_base());
    if !absolute || resource.contains('#') {
        return Err(OAuthError::new(
            ErrorCode::INVALID_TARGET,
            format!("resource {resource:?} must be an absolute URI without a fragment (RI-01)"),
        ));
    }
    // MCP-RES-02: scheme and host are case-insensitive, so an upper-case spelling is accepted.
    if faults.on(Fault::CaseSensitiveResource) {
        let authority = resource.split('/').take(3).collect::<String>();
        if authority.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(OAuthError::new(
                ErrorCode::INVALID_TARGET,
                format!("resource {resource:?} must be written in lower case"),
            ));
        }
    }
    Ok(Some(resource.to_owned()))
}

/// The signed-in `user` continues `request`: to the consent page when consent is needed, else
/// straight back to the client with a code.
pub(super) async fn proceed(
    state: &AppState,
    request_id: &str,
    request: &PendingRequest,
    user: &User,
) -> Response {
    match needs_consent(state, request, user).await {
        Ok(true) => see_other(&request_url(state, "/consent", request_id)),
        Ok(false) => complete(state, request_id, request, user).await,
        Err(response) => response,
    }
}

/// Whether the consent page must be shown: the policy asks for consent (and the `skip-consent`
/// fault is off) and this user has not yet allowed these scopes for this client.
pub(super) async fn needs_consent(
    state: &AppState,
    request: &PendingRequest,
    user: &User,
) -> Result<bool, Response> {
    // DEV-11: a device authorization is always confirmed, whatever the policy or a remembered
    // consent says: the user code may come from someone else's device (RFC 8628 §5.4).
    if request.device.is_some() && !state.fault(Fault::DeviceSkipsConfirmation) {
        return Ok(true);
    }
    // CUR-04: consent follows the policy.
    if !state.resolver.policy().consent_required || state.fault(Fault::SkipConsent) {
        return Ok(false);
    }
    match state
        .store
        .has_consent(user.id, &request.client_id, &request.scope)
        .await
    {
        Ok(given) => Ok(!given),
        Err(error) => Err(state.fail(&error)),
    }
}

/// Finishes the pending request and sends the browser back to the client with a code.
pub(super) async fn complete(
    state: &AppState,
    request_id: &str,
    request: &PendingRequest,
    user: &User,
) -> Response {
    match state.store.finish_pending(request_id).await {
        Ok(true) => {}
        Ok(false) => {
            return state.error_page(
                StatusCode::BAD_REQUEST,
                &OAuthError::invalid_request("this sign-in request was already completed"),
            );
        }
        Err(error) => return state.fail(&error),
    }
    if let Some(device) = &request.device {
        return super::device::decide(state, device, Some(user.id)).await;
    }
    let grant = CodeGrant {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        scope: request.scope.clone(),
        user_id: user.id,
        resource: request.resource.clone(),
    };
    match state
        .store
        .issue_code(&grant, state.limits.code_ttl())
        .await
    {
        Ok(code) => {
            tracing::info!(client_id = %grant.client_id, user = %user.username, "code issued");
            ClientRedirect::of(request).success(state, code.expose())
        }
        Err(error) => state.fail(&error),
    }
}

/// An authorization response on its way to the client's redirect URI.
pub(super) struct ClientRedirect {
    redirect_uri: String,
    state: Option<String>,
}

impl ClientRedirect {
    /// The response target of a pending request.
    pub(super) fn of(request: &PendingRequest) -> Self {
        Self {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
        }
    }

    /// `redirect_uri?code=…&state=…&iss=…`.
    fn success(&self, state: &AppState, code: &str) -> Response {
        self.send(state, &[("code", code)])
    }

    /// `redirect_uri?error=…&error_description=…&state=…&iss=…`.
    pub(super) fn error(&self, state: &AppState, error: &OAuthError) -> Response {
        self.send(
            state,
            &[
                ("error", error.code.as_str()),
                ("error_description", error.description.as_str()),
            ],
        )
    }

    fn send(&self, state: &AppState, params: &[(&str, &str)]) -> Response {
        let Ok(mut url) = url::Url::parse(&self.redirect_uri) else {
            // Only reachable when a fault let an unparsable redirect URI through.
            return state.error_page(
                StatusCode::BAD_REQUEST,
                &OAuthError::invalid_request("the redirect_uri is not a URL"),
            );
        };
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(client_state) = &self.state {
                query.append_pair("state", client_state);
            }
            // MCP-ISS-01: RFC 9207 mix-up defence, on success and error alike.
            if !state.fault(Fault::OmitIss) {
                query.append_pair("iss", state.issuer.as_str());
            }
        }
        let mut response = see_other(url.as_str());
        // The code must not leak to whatever the client page loads next.
        if let Ok(value) = "no-referrer".parse() {
            response
                .headers_mut()
                .insert(header::REFERRER_POLICY, value);
        }
        response.into_response()
    }
}
