//! The token endpoint: the authorization code grant (with PKCE), the refresh token grant (with
//! rotation) and the client credentials grant, for ephemeral and registered clients.
//!
//! Checks run cheapest-and-safest first: request shape, then client authentication (see
//! [`crate::client_auth`]; an ephemeral client's metadata is re-resolved through the cache, so a
//! withdrawn document stops new tokens), then whether the client may use the grant, and only then
//! the one-time code or token is consumed. A request refused at authentication leaves the code
//! untouched, so a client that forgot its assertion can retry. Once consumed, any later mismatch
//! (client, redirect URI, verifier) still burns it: a stolen code gets one guess, not many.
//!
//! With `[client_auth] bind_grants_to_key` a grant opened by a `private_key_jwt` client is bound
//! to the key that signed the assertion redeeming its code, and refreshes must be signed with
//! that key (PKJWT-15). Removal of the key is seen through the JWKS cache: until the cached set
//! expires, the removed key still authenticates.

use std::sync::Arc;

use aws_lc_rs::digest;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::json;

use super::authorize::resource_indicator;
use super::{AppState, Params};
use crate::client_auth::{
    AuthEndpoint, AuthFailure, AuthParams, Authenticated, Client, KeyThumbprint,
};
use crate::error::{AsError, ErrorCode, OAuthError};
use crate::faults::Fault;
use crate::store::{CodeRedemption, RefreshGrant, RefreshUse, scope_set};
use crate::tokens::AccessGrant;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub(super) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
}

/// An error answer: the OAuth error plus whether the client tried HTTP authentication.
pub(super) struct TokenError {
    error: OAuthError,
    basic_challenge: bool,
}

impl From<OAuthError> for TokenError {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            basic_challenge: false,
        }
    }
}

impl From<AuthFailure> for TokenError {
    fn from(failure: AuthFailure) -> Self {
        Self {
            error: failure.error,
            basic_challenge: failure.basic_challenge,
        }
    }
}

impl From<AsError> for TokenError {
    fn from(error: AsError) -> Self {
        OAuthError::server_error(&error).into()
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let code = self.error.code;
        let status = if code == ErrorCode::INVALID_CLIENT {
            StatusCode::UNAUTHORIZED
        } else if code == ErrorCode::SERVER_ERROR {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = json!({ "error": code.as_str(), "error_description": self.error.description });
        let mut response = (status, Json(body)).into_response();
        no_store(response.headers_mut());
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"token\""),
            );
        }
        response
    }
}

/// RFC 6749 §5.1: token responses must not be cached.
pub(super) fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// `POST /token`.
pub(super) async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match exchange(&state, &headers, &body).await {
        Ok(tokens) => {
            let mut response = Json(tokens).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn exchange(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, TokenError> {
    if !super::is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the token request must be sent as application/x-www-form-urlencoded",
        )
        .into());
    }
    let params = Params::parse(body);
    let grant_type = params.get("grant_type")?;
    let grant_type = match grant_type {
        None => return Err(OAuthError::invalid_request("grant_type is missing").into()),
        Some(
            g @ ("authorization_code"
            | "refresh_token"
            | "client_credentials"
            | super::device::DEVICE_CODE_GRANT),
        ) => g,
        // The `accept-password-grant` fault offers it anyway.
        Some("password") if state.fault(Fault::AcceptPasswordGrant) => {
            let client = authenticate(state, headers, &params).await?;
            return password_grant(state, &params, &client).await;
        }
        // BCP-08: the resource owner password grant is gone for good.
        Some("password") => {
            return Err(OAuthError::new(
                ErrorCode::UNSUPPORTED_GRANT_TYPE,
                "the resource owner password credentials grant is not supported (BCP-08)",
            )
            .into());
        }
        Some(other) => {
            return Err(OAuthError::new(
                ErrorCode::UNSUPPORTED_GRANT_TYPE,
                format!(
                    "grant_type {other:?} is not supported; use authorization_code, refresh_token, \
                     client_credentials or {}",
                    super::device::DEVICE_CODE_GRANT
                ),
            )
            .into());
        }
    };
    let authenticated = authenticate_at(state, headers, &params, AuthEndpoint::Token).await?;
    let (client, key) = (authenticated.client, authenticated.key.as_ref());
    // CUR-03: the grant must still be allowed by the policy and the (re-fetched) document.
    if !client.grant_allowed(grant_type, state.resolver.policy(), &state.faults) {
        return Err(grant_refused(&client, &format!("the {grant_type} grant")).into());
    }
    match grant_type {
        "authorization_code" => authorization_code(state, &params, &client, key).await,
        super::device::DEVICE_CODE_GRANT => {
            super::device::redeem(state, &params, &client, key).await
        }
        "client_credentials" => match initial_access_token(state, &params, &client).await? {
            Some(issued) => Ok(issued),
            None => client_credentials(state, &params, &client),
        },
        _ => refresh_token(state, &params, &client, key).await,
    }
}

/// `unauthorized_client` for a client that may not use `grant` ("the … grant"), saying where
/// the refusal comes from.
pub(super) fn grant_refused(client: &Client, grant: &str) -> OAuthError {
    let why = match client {
        Client::Ephemeral(_) => {
            "its metadata document or this server's ephemeral-client policy does not allow it \
             (CUR-03)"
        }
        Client::Registered(_) => "its registration does not include it",
    };
    OAuthError::new(
        ErrorCode::UNAUTHORIZED_CLIENT,
        format!("this client may not use {grant}: {why}"),
    )
}

/// PKJWT-15: binds a newly opened grant to the key that authenticated its redemption, when
/// grants are bound and the client sent an assertion.
pub(super) async fn bind_grant(
    state: &AppState,
    grant_id: &[u8],
    key: Option<&KeyThumbprint>,
) -> Result<(), TokenError> {
    if let Some(key) = key
        && state.client_auth.binds_grants_to_key()
    {
        state.store.bind_grant_key(grant_id, key.as_str()).await?;
    }
    Ok(())
}

/// PKJWT-15: a bound grant is refreshed only with an assertion signed by its key (the
/// `refresh-ignores-grant-key` fault takes any). Checked whatever the switch says now, so
/// grants bound before a restart stay bound.
async fn check_grant_key(
    state: &AppState,
    grant_id: &[u8],
    key: Option<&KeyThumbprint>,
) -> Result<(), TokenError> {
    let Some(bound) = state.store.grant_key(grant_id).await? else {
        return Ok(());
    };
    if key.is_some_and(|k| k.as_str() == bound) || state.fault(Fault::RefreshIgnoresGrantKey) {
        return Ok(());
    }
    Err(OAuthError::invalid_grant(match key {
        Some(key) => format!(
            "the refresh token's grant is bound to the client key with RFC 7638 thumbprint              {bound}, but this request's client assertion was signed with the key {key}; sign              refreshes with the key that redeemed the authorization code (PKJWT-15)"
        ),
        None => format!(
            "the refresh token's grant is bound to the client key with RFC 7638 thumbprint              {bound}, but this request carries no client assertion signed with it (PKJWT-15)"
        ),
    })
    .into())
}

/// Authenticates the client with whatever credentials the request carries (see
/// [`crate::client_auth`]).
pub(super) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, TokenError> {
    Ok(authenticate_at(state, headers, params, AuthEndpoint::Token)
        .await?
        .client)
}

/// [`authenticate`] at `endpoint` (whose URL an assertion's audience may name), also naming the
/// key that verified a client assertion.
pub(super) async fn authenticate_at(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    endpoint: AuthEndpoint,
) -> Result<Authenticated, TokenError> {
    let auth = AuthParams {
        client_id: params.get("client_id")?,
        client_secret: params.get("client_secret")?,
        client_assertion_type: params.get("client_assertion_type")?,
        client_assertion: params.get("client_assertion")?,
    };
    Ok(state
        .client_auth
        .authenticate(endpoint, &state.clients, &state.resolver, headers, auth)
        .await?)
}

/// `grant_type=authorization_code`.
async fn authorization_code(
    state: &AppState,
    params: &Params,
    client: &Client,
    key: Option<&KeyThumbprint>,
) -> Result<TokenResponse, TokenError> {
    let Some(code) = params.get("code")? else {
        return Err(OAuthError::invalid_request("code is missing").into());
    };
    let Some(redirect_uri) = params.get("redirect_uri")? else {
        return Err(OAuthError::invalid_request(
            "redirect_uri is missing; it must repeat the one of the authorization request \
             (OAUTH-02)",
        )
        .into());
    };
    let verifier = params.get("code_verifier")?;
    // PKCE-01: a malformed verifier is a malformed request; it cannot be the right one anyway.
    if let Some(verifier) = verifier
        && !valid_verifier(verifier)
    {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43 to 128 characters from [A-Za-z0-9-._~] (PKCE-01)",
        )
        .into());
    }
    let resource = resource_indicator(params, &state.faults)?;

    let redeemed = match state
        .store
        .redeem_code(code, state.fault(Fault::ReuseCodes))
        .await?
    {
        CodeRedemption::Redeemed(redeemed) => redeemed,
        CodeRedemption::Replayed => {
            tracing::warn!(
                client_id = client.id(),
                "code replayed; its grant is revoked"
            );
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; every token issued from it is revoked \
                 (OAUTH-02)",
            )
            .into());
        }
        CodeRedemption::Unknown => {
            return Err(OAuthError::invalid_grant("the authorization code is unknown").into());
        }
    };
    let grant = redeemed.grant;
    if redeemed.expired {
        return Err(OAuthError::invalid_grant("the authorization code has expired").into());
    }
    // OAUTH-02: the code is bound to its client and redirect URI.
    if grant.client_id != client.id() {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client (OAUTH-02)",
        )
        .into());
    }
    if grant.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the one in the authorization request (OAUTH-02)",
        )
        .into());
    }
    // The `skip-pkce-verifier` fault issues tokens whatever the verifier says.
    if !state.fault(Fault::SkipPkceVerifier) {
        verify_pkce(grant.code_challenge.as_deref(), verifier)?;
    }
    // The `lenient-resource` fault lets any resource through.
    if let Some(resource) = &resource
        && grant.resource.as_ref() != Some(resource)
        && !state.fault(Fault::LenientResource)
    {
        return Err(OAuthError::new(
            ErrorCode::INVALID_TARGET,
            "resource differs from the one in the authorization request (RI-01)",
        )
        .into());
    }
    bind_grant(state, &redeemed.grant_id, key).await?;
    let family = RefreshGrant {
        grant_id: redeemed.grant_id,
        client_id: grant.client_id,
        user_id: grant.user_id,
        scope: grant.scope,
        resource: grant.resource,
    };
    let scope = family.scope.clone();
    issue(state, client, &family, &scope, None).await
}

/// `grant_type=password`, offered only under the `accept-password-grant` fault: the user's
/// credentials buy an access token directly (no refresh token, no scope).
async fn password_grant(
    state: &AppState,
    params: &Params,
    client: &Client,
) -> Result<TokenResponse, TokenError> {
    let (Some(username), Some(password)) = (params.get("username")?, params.get("password")?)
    else {
        return Err(OAuthError::invalid_request("username and password are required").into());
    };
    let Some(user) = state.store.check_password(username, password).await? else {
        return Err(OAuthError::invalid_grant("wrong username or password").into());
    };
    let access_token = state.signer.access_token(AccessGrant {
        subject: &user.username,
        client_id: client.id(),
        scope: "",
        resource: None,
    })?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.signer.ttl_secs(),
        refresh_token: None,
        scope: String::new(),
    })
}

/// `grant_type=refresh_token`.
async fn refresh_token(
    state: &AppState,
    params: &Params,
    client: &Client,
    key: Option<&KeyThumbprint>,
) -> Result<TokenResponse, TokenError> {
    let Some(token) = params.get("refresh_token")? else {
        return Err(OAuthError::invalid_request("refresh_token is missing").into());
    };
    let requested_scope = params.get("scope")?;
    let resource = resource_indicator(params, &state.faults)?;
    // Checks that do not depend on the token being live; returns the access token's scope.
    let check = |grant: &RefreshGrant| -> Result<String, TokenError> {
        if grant.client_id != client.id() {
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            )
            .into());
        }
        if let Some(resource) = &resource
            && grant.resource.as_ref() != Some(resource)
            && !state.fault(Fault::LenientResource)
        {
            return Err(OAuthError::new(
                ErrorCode::INVALID_TARGET,
                "resource differs from the one the grant was issued for (RI-01)",
            )
            .into());
        }
        // RFC 6749 §6: a refresh may narrow the access token's scope, never widen it.
        let Some(requested) = requested_scope else {
            return Ok(grant.scope.clone());
        };
        if !scope_set(requested).is_subset(&scope_set(&grant.scope)) {
            return Err(OAuthError::new(
                ErrorCode::INVALID_SCOPE,
                "the requested scope exceeds the scope originally granted",
            )
            .into());
        }
        Ok(scope_set(requested)
            .into_iter()
            .collect::<Vec<_>>()
            .join(" "))
    };
    // A request refused for its own parameters must not cost the client its live token.
    let live = state.store.live_refresh_grant(token).await?;
    if let Some(live) = &live {
        check(live)?;
        check_grant_key(state, &live.grant_id, key).await?;
    }
    let rotate = !state.fault(Fault::NoRefreshRotation);
    let grant = match state.store.use_refresh_token(token, rotate).await? {
        RefreshUse::Valid(grant) => grant,
        // MCP-SEC-03: a rotated-out token came back: someone holds a copy.
        RefreshUse::Replayed => {
            tracing::warn!(
                client_id = client.id(),
                "refresh token replayed; family revoked"
            );
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; it and every token of its grant are now \
                 revoked (MCP-SEC-03)",
            )
            .into());
        }
        RefreshUse::Revoked => {
            return Err(OAuthError::invalid_grant("the refresh token has been revoked").into());
        }
        RefreshUse::Expired => {
            return Err(OAuthError::invalid_grant("the refresh token has expired").into());
        }
        RefreshUse::Unknown => {
            return Err(OAuthError::invalid_grant("the refresh token is unknown").into());
        }
    };
    let access_scope = check(&grant)?;
    // The token was not live a moment ago, yet is now: check its key all the same.
    if live.is_none() {
        check_grant_key(state, &grant.grant_id, key).await?;
    }
    let kept = if rotate { None } else { Some(token.to_owned()) };
    issue(state, client, &grant, &access_scope, kept).await
}

/// Signs an access token for `access_scope` and, if the client may refresh, issues a refresh
/// token in the grant's family with the grant's full scope (RFC 6749 §6), or hands back `kept`,
/// the unrotated one, under the `no-refresh-rotation` fault.
pub(super) async fn issue(
    state: &AppState,
    client: &Client,
    grant: &RefreshGrant,
    access_scope: &str,
    kept: Option<String>,
) -> Result<TokenResponse, TokenError> {
    let Some(user) = state.store.user_by_id(grant.user_id).await? else {
        return Err(OAuthError::invalid_grant("the user of this grant no longer exists").into());
    };
    let access_token = state.signer.access_token(AccessGrant {
        subject: &user.username,
        client_id: &grant.client_id,
        scope: access_scope,
        resource: grant
            .resource
            .as_deref()
            .filter(|_| !state.faults.on(Fault::AudienceIgnoresResource)),
    })?;
    let refresh_token =
        if !client.grant_allowed("refresh_token", state.resolver.policy(), &state.faults) {
            None
        } else if let Some(kept) = kept {
            Some(kept)
        } else {
            let ttl = state.limits.refresh_token_ttl();
            Some(
                state
                    .store
                    .issue_refresh_token(grant, ttl)
                    .await?
                    .expose()
                    .to_owned(),
            )
        };
    tracing::info!(
        client_id = %grant.client_id,
        user = %user.username,
        refresh = refresh_token.is_some(),
        "tokens issued"
    );
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.signer.ttl_secs(),
        refresh_token,
        scope: access_scope.to_owned(),
    })
}

/// `grant_type=client_credentials`: the client acts on its own behalf, so the token's subject is
/// the client itself and no refresh token is issued (RFC 6749 §4.4.3). Only a client that
/// authenticated may do so: for a public client anyone could claim its identity.
fn client_credentials(
    state: &AppState,
    params: &Params,
    client: &Client,
) -> Result<TokenResponse, TokenError> {
    if !client.auth_method().is_confidential() {
        return Err(OAuthError::new(
            ErrorCode::UNAUTHORIZED_CLIENT,
            format!(
                "the client_credentials grant needs a client that authenticates; client {:?} \
                 authenticates with none",
                client.id()
            ),
        )
        .into());
    }
    let scope = client
        .filter_scopes(
            params.get("scope")?.unwrap_or_default(),
            state.resolver.policy(),
            &state.faults,
        )
        .map_err(|why| OAuthError::new(ErrorCode::INVALID_SCOPE, why))?;
    let resource = resource_indicator(params, &state.faults)?;
    let access_token = state.signer.access_token(AccessGrant {
        subject: client.id(),
        client_id: client.id(),
        scope: &scope,
        resource: resource
            .as_deref()
            .filter(|_| !state.faults.on(Fault::AudienceIgnoresResource)),
    })?;
    tracing::info!(client_id = client.id(), "client credentials token issued");
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.signer.ttl_secs(),
        refresh_token: None,
        scope,
    })
}

/// `grant_type=client_credentials` asking for the registration scope: an initial access token
/// for dynamic registration instead of an access token (DCR-02, CUR-07), or `None` when the
/// request asks for something else.
async fn initial_access_token(
    state: &AppState,
    params: &Params,
    client: &Client,
) -> Result<Option<TokenResponse>, TokenError> {
    let Some(registry) = state.clients.registry() else {
        return Ok(None);
    };
    let configured = state
        .clients
        .registered()
        .any(|c| c.client_id == client.id());
    let allowed = match client {
        Client::Registered(registered) => registered.scope.as_deref(),
        Client::Ephemeral(_) => None,
    };
    let requested = params.get("scope")?.unwrap_or_default();
    let issued = registry
        .initial_access_token(client.id(), configured, allowed, requested)
        .await?;
    Ok(issued.map(|iat| TokenResponse {
        access_token: iat.token.expose().to_owned(),
        token_type: "Bearer",
        expires_in: iat.expires_in,
        refresh_token: None,
        scope: iat.scope,
    }))
}

/// PKCE-05/06: the verifier must hash to the code's challenge, and comes if and only if a
/// challenge was sent.
fn verify_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            // PKCE-05: BASE64URL(SHA-256(verifier)) must equal the challenge.
            let computed =
                URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
            if computed == challenge {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge (PKCE-05)",
                ))
            }
        }
        (Some(_), None) => Err(OAuthError::invalid_grant(
            "code_verifier is missing; the authorization request carried a code_challenge \
             (PKCE-05)",
        )),
        // PKCE-06: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent, but the authorization request had no code_challenge (PKCE-06)",
        )),
        (None, None) => Ok(()),
    }
}

/// PKCE-01: 43 to 128 characters from the unreserved set.
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::valid_verifier;

    #[test]
    fn verifiers_must_have_43_to_128_unreserved_characters() {
        assert!(valid_verifier(&"a".repeat(43)));
        assert!(valid_verifier(&"Az09-._~".repeat(16)));
        assert!(!valid_verifier(&"a".repeat(42)));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(42))));
    }
}
