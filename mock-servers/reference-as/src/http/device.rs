//! The device authorization grant (RFC 8628): the device authorization endpoint, the
//! verification page where a person types the user code, the decision that ends the pending
//! request it starts, and the grant at the token endpoint.
//!
//! A device asks `POST /device_authorization` (identified and authenticated exactly as at
//! `/token`; the grant must be allowed for the client, CUR-03) and gets a 256-bit `device_code`
//! and an eight-letter `user_code` (`XXXX-XXXX` from RFC 8628 §6.1's twenty consonants). The
//! person opens `GET /device`, types the code (case and punctuation do not matter, DEV-10), and
//! continues as an ordinary pending request: sign-in, then a confirmation page that names the
//! client, the scope and the user code. That page is shown for every device authorization, even
//! when consent to the client is remembered or the policy asks for none, because a code can be
//! phished from someone else's device (RFC 8628 §5.4, DEV-11). Allowing or denying ends on a
//! page at this server ("return to your device") instead of a redirect, and records the
//! decision for the device's next poll.
//!
//! Wrong user codes are limited (RFC 8628 §5.1, DEV-09): each browser (its binding cookie) may
//! type [`BROWSER_ATTEMPTS`] wrong codes and each remote address [`ADDRESS_ATTEMPTS`] in a
//! window of [`ATTEMPT_WINDOW`]; then the page refuses further codes until the window ends. An
//! attempt is spent before the code is checked, so concurrent guesses cannot exceed the limit,
//! and a right code gets its attempt back. The address limit is what binds an attacker who
//! drops cookies: with about 34.5 bits per code, 20 guesses per address per quarter hour against
//! one live code succeed with odds of about 2^-30. Behind a proxy every user shares one address,
//! which is why the per-address limit is the looser one.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::authorize::{proceed, resource_indicator};
use super::pages::{escape, html};
use super::token::{TokenError, TokenResponse, authenticate, grant_refused, issue, no_store};
use super::{AppState, BROWSER_COOKIE, Params, cookie, request_url, see_other};
use crate::client_auth::{Client, KeyThumbprint};
use crate::error::{ErrorCode, OAuthError};
use crate::faults::Fault;
use crate::store::{
    DeviceLink, DevicePoll, DeviceRequest, NewDeviceAuthorization, PendingRequest, PollRules,
    Secret, USER_CODE_ALPHABET, USER_CODE_LENGTH,
};

/// The grant type of RFC 8628 §3.4.
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628 §3.5: the user has not decided yet.
const AUTHORIZATION_PENDING: ErrorCode = ErrorCode::other("authorization_pending");

/// RFC 8628 §3.5: pending, and the device polls too fast.
const SLOW_DOWN: ErrorCode = ErrorCode::other("slow_down");

/// RFC 8628 §3.5: the device code's lifetime is over.
const EXPIRED_TOKEN: ErrorCode = ErrorCode::other("expired_token");

/// Wrong user codes one browser may type per window.
const BROWSER_ATTEMPTS: i64 = 5;

/// Wrong user codes one remote address may type per window.
const ADDRESS_ATTEMPTS: i64 = 20;

/// The window the attempt limits count in.
const ATTEMPT_WINDOW: Duration = Duration::from_mins(15);

/// Longest browser-binding cookie value taken from a request (ours are 43 characters).
const MAX_BROWSER_COOKIE: usize = 128;

/// `POST /device_authorization` (RFC 8628 §3.1, §3.2).
pub(super) async fn authorization(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match start(&state, &headers, &body).await {
        Ok(answer) => {
            let mut response = Json(answer).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn start(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, TokenError> {
    if !super::is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the device authorization request must be sent as \
             application/x-www-form-urlencoded (RFC 8628 §3.1)",
        )
        .into());
    }
    let params = Params::parse(body);
    // DEV-01: the client is identified, and authenticated if it can be, as at the token endpoint.
    let client = authenticate(state, headers, &params).await?;
    if !client.grant_allowed(DEVICE_CODE_GRANT, state.resolver.policy(), &state.faults) {
        let grant = format!("the device authorization grant ({DEVICE_CODE_GRANT})");
        return Err(grant_refused(&client, &grant).into());
    }
    let scope = client
        .filter_scopes(
            params.get("scope")?.unwrap_or_default(),
            state.resolver.policy(),
            &state.faults,
        )
        .map_err(|why| OAuthError::new(ErrorCode::INVALID_SCOPE, why))?;
    let resource = resource_indicator(&params, &state.faults)?;
    let limits = state.limits;
    let codes = state
        .store
        .insert_device_authorization(&NewDeviceAuthorization {
            client_id: client.id(),
            client_name: client.name(),
            scope: &scope,
            resource: resource.as_deref(),
            ttl: limits.device_code_ttl(),
            interval_secs: limits.device_poll_interval_secs,
        })
        .await?;
    let verification_uri = state.issuer.url("/device");
    let mut complete = url::Url::parse(&verification_uri)
        .map_err(|_| OAuthError::invalid_request("the issuer is not a URL"))?;
    complete
        .query_pairs_mut()
        .append_pair("user_code", &codes.user_code);
    tracing::info!(client_id = client.id(), "device authorization started");
    // DEV-02: every member of RFC 8628 §3.2, the optional ones included.
    Ok(json!({
        "device_code": codes.device_code.expose(),
        "user_code": codes.user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": complete.as_str(),
        "expires_in": limits.device_code_ttl_secs,
        "interval": limits.device_poll_interval_secs,
    }))
}

/// `grant_type=urn:ietf:params:oauth:grant-type:device_code` at the token endpoint (RFC 8628
/// §3.4, §3.5), for a client already authenticated and allowed the grant.
pub(super) async fn redeem(
    state: &AppState,
    params: &Params,
    client: &Client,
    key: Option<&KeyThumbprint>,
) -> Result<TokenResponse, TokenError> {
    let Some(device_code) = params.get("device_code")? else {
        return Err(OAuthError::invalid_request("device_code is missing (RFC 8628 §3.4)").into());
    };
    let rules = PollRules {
        reusable: state.fault(Fault::ReusableDeviceCode),
        slow_down: !state.fault(Fault::NoSlowDown),
        expiry: !state.fault(Fault::DeviceCodeNeverExpires),
        grant_ttl: state.limits.device_code_ttl(),
    };
    let error = |code, description: &str| Err(OAuthError::new(code, description).into());
    match state
        .store
        .poll_device(device_code, client.id(), rules)
        .await?
    {
        DevicePoll::Approved(grant) => {
            tracing::info!(client_id = client.id(), "device authorization redeemed");
            super::token::bind_grant(state, &grant.grant_id, key).await?;
            let scope = grant.scope.clone();
            issue(state, client, &grant, &scope, None).await
        }
        DevicePoll::Pending => error(
            AUTHORIZATION_PENDING,
            "the user has not yet approved or denied this device authorization; poll again \
             after the interval (DEV-04)",
        ),
        DevicePoll::SlowDown { interval_secs } => error(
            SLOW_DOWN,
            &format!(
                "polled before the interval had passed; the interval is now {interval_secs} \
                 seconds for this and every later request (DEV-06)"
            ),
        ),
        DevicePoll::Denied => error(
            ErrorCode::ACCESS_DENIED,
            "the user denied this device authorization (DEV-05)",
        ),
        DevicePoll::Expired => error(
            EXPIRED_TOKEN,
            "the device_code has expired; start a new device authorization (DEV-07)",
        ),
        DevicePoll::Redeemed => error(
            ErrorCode::INVALID_GRANT,
            "the device_code was already used to obtain tokens; it is single-use (DEV-08)",
        ),
        DevicePoll::OtherClient => error(
            ErrorCode::INVALID_GRANT,
            "the device_code was issued to another client (DEV-01)",
        ),
        DevicePoll::Unknown => error(ErrorCode::INVALID_GRANT, "the device_code is unknown"),
    }
}

/// `GET /device[?user_code=…]`: the form to type the user code in, pre-filled from the query.
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or_default().as_bytes());
    let prefill = params.lenient("user_code").unwrap_or_default();
    entry_form(&state, &headers, StatusCode::OK, prefill, None)
}

/// `POST /device`: check the typed user code and start the pending request it approves.
pub(super) async fn enter(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<mock_kit::PeerInfo>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    let typed = params.lenient("user_code").unwrap_or_default();
    let browser = cookie(&headers, BROWSER_COOKIE).filter(|b| b.len() <= MAX_BROWSER_COOKIE);
    let Some(browser) = browser.filter(|b| {
        params
            .lenient("csrf")
            .is_some_and(|csrf| state.csrf_ok(&entry_binding(b), csrf))
    }) else {
        return state.error_page(
            StatusCode::BAD_REQUEST,
            &OAuthError::invalid_request(
                "the form's CSRF token is missing or does not belong to this browser; open the \
                 device page again",
            ),
        );
    };
    let strict = state.fault(Fault::StrictUserCodeMatch);
    let Some(normalized) = normalize_user_code(typed, strict) else {
        let message = "Enter the eight letters shown on your device.";
        return entry_form(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            typed,
            Some(message),
        );
    };
    let address = peer.map_or_else(
        || "unknown".to_owned(),
        |Extension(peer)| peer.remote.ip().to_string(),
    );
    let keys = [
        (format!("browser\n{browser}"), BROWSER_ATTEMPTS),
        (format!("address\n{address}"), ADDRESS_ATTEMPTS),
    ];
    let keys: Vec<(&str, i64)> = keys.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    // DEV-09: the `unlimited-user-code-attempts` fault takes every guess.
    let limited = !state.fault(Fault::UnlimitedUserCodeAttempts);
    if limited {
        match state.store.spend_entry_attempt(&keys, ATTEMPT_WINDOW).await {
            Ok(true) => {}
            Ok(false) => {
                let message = "Too many wrong codes were typed in this browser or from this \
                               network. Wait 15 minutes, then try again.";
                return entry_form(
                    &state,
                    &headers,
                    StatusCode::TOO_MANY_REQUESTS,
                    "",
                    Some(message),
                );
            }
            Err(error) => return state.fail(&error),
        }
    }
    let expiry = !state.fault(Fault::DeviceCodeNeverExpires);
    let found = match state.store.device_request(&normalized, expiry).await {
        Ok(found) => found,
        Err(error) => return state.fail(&error),
    };
    let Some(found) = found else {
        let message = "That code is not valid: it is wrong, expired or already used. Check \
                       the code on your device.";
        return entry_form(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            typed,
            Some(message),
        );
    };
    if limited && let Err(error) = state.store.refund_entry_attempts(&keys).await {
        return state.fail(&error);
    }
    confirm(&state, &headers, browser, &normalized, found).await
}

/// Starts the pending request that confirms `found`: to sign-in, or straight to the
/// confirmation page for a signed-in browser.
async fn confirm(
    state: &AppState,
    headers: &HeaderMap,
    browser: &str,
    normalized: &str,
    found: DeviceRequest,
) -> Response {
    let (head, tail) = normalized.split_at(USER_CODE_LENGTH / 2);
    let request = PendingRequest {
        client_id: found.client_id,
        client_name: found.client_name,
        // Never used: a device request ends on a page here, not at a redirect URI.
        redirect_uri: String::new(),
        state: None,
        scope: found.scope,
        code_challenge: None,
        resource: found.resource,
        device: Some(Box::new(DeviceLink {
            device_code_hash: URL_SAFE_NO_PAD.encode(&found.device_code_hash),
            user_code: format!("{head}-{tail}"),
        })),
    };
    let request_id = match state
        .store
        .insert_pending(&request, browser, state.limits.request_ttl())
    {
        Ok(id) => id,
        Err(error) => return state.fail(&error),
    };
    match state.session_user(headers).await {
        Ok(None) => see_other(&request_url(state, "/login", request_id.expose())),
        Ok(Some(user)) => proceed(state, request_id.expose(), &request, &user).await,
        Err(error) => state.fail(&error),
    }
}

/// Records the person's decision on the device authorization of a finished pending request
/// (approved for `user_id`, or denied when `None`) and shows where it leaves them.
pub(super) async fn decide(state: &AppState, link: &DeviceLink, user_id: Option<i64>) -> Response {
    let Ok(hash) = URL_SAFE_NO_PAD.decode(&link.device_code_hash) else {
        // Sealed by this server, so it always decodes; anything else is a bug, not peer input.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // DEV-05: the `device-denial-ignored` fault forgets the denial, so the device polls on.
    let recorded = if user_id.is_none() && state.fault(Fault::DeviceDenialIgnored) {
        Ok(true)
    } else {
        let expiry = !state.fault(Fault::DeviceCodeNeverExpires);
        state.store.decide_device(&hash, user_id, expiry).await
    };
    match recorded {
        Ok(true) if user_id.is_some() => {
            tracing::info!("device authorization approved");
            outcome_page(
                state,
                "Device connected",
                "device-done",
                "Your device is now connected. You can close this window and return to it.",
            )
        }
        Ok(true) => outcome_page(
            state,
            "Device not connected",
            "device-denied",
            "You denied the request, and the device gets no access. You can close this window.",
        ),
        Ok(false) => state.error_page(
            StatusCode::BAD_REQUEST,
            &OAuthError::invalid_request(
                "this device request has expired or was already decided; start again on the \
                 device",
            ),
        ),
        Err(error) => state.fail(&error),
    }
}

/// The eight letters of a typed user code, upper case, or `None` if it cannot be one. DEV-10:
/// case, spaces and punctuation do not count (RFC 8628 §6.1), unless the `strict-user-code-match`
/// fault wants it exactly as displayed.
pub fn normalize_user_code(typed: &str, strict: bool) -> Option<String> {
    let code: String = if strict {
        let (head, tail) = typed.trim().split_once('-')?;
        [head, tail].concat()
    } else {
        typed
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect()
    };
    let well_formed =
        code.len() == USER_CODE_LENGTH && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    well_formed.then_some(code)
}

/// What the entry form's CSRF token is derived from: the browser, in a namespace of its own so
/// it never doubles as a pending request's token.
fn entry_binding(browser: &str) -> String {
    format!("device entry\n{browser}")
}

/// The user-code form, bound to this browser (a binding cookie is set if it has none).
fn entry_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    user_code: &str,
    message: Option<&str>,
) -> Response {
    let existing = cookie(headers, BROWSER_COOKIE).filter(|b| b.len() <= MAX_BROWSER_COOKIE);
    let (browser, new_cookie) = match existing {
        Some(browser) => (browser.to_owned(), None),
        None => match Secret::generate() {
            Ok(secret) => (secret.expose().to_owned(), Some(secret)),
            Err(error) => return state.fail(&error),
        },
    };
    let alert = message.map_or_else(String::new, |m| {
        format!(
            "<p class=\"alert\" role=\"alert\" id=\"message\">{}</p>\n",
            escape(m)
        )
    });
    let body = format!(
        "<p>Enter the code your device shows to connect it to your account.</p>\n{alert}\
         <form id=\"device-form\" method=\"post\" action=\"{base}/device\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <label for=\"user_code\">Code</label>\n\
         <input id=\"user_code\" name=\"user_code\" autocomplete=\"off\" autocapitalize=\
         \"characters\" spellcheck=\"false\" required value=\"{code}\">\n\
         <button type=\"submit\">Continue</button>\n</form>\n",
        base = escape(state.base()),
        csrf = escape(&state.csrf_for(&entry_binding(&browser))),
        code = escape(user_code),
    );
    let mut response = html(status, "Connect a device", state.issuer.as_str(), &body);
    if let Some(secret) = new_cookie {
        let value = state.cookie(BROWSER_COOKIE, secret.expose(), ATTEMPT_WINDOW);
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The page a decision ends on; `id` marks the paragraph for scripts.
fn outcome_page(state: &AppState, title: &str, id: &str, text: &str) -> Response {
    let body = format!("<p id=\"{id}\">{}</p>\n", escape(text));
    html(StatusCode::OK, title, state.issuer.as_str(), &body)
}

#[cfg(test)]
mod tests {
    use super::normalize_user_code;

    #[test]
    fn user_codes_ignore_case_spaces_and_dashes_unless_strict() {
        for typed in [
            "BCDF-GHJK",
            "bcdf-ghjk",
            "bcdfghjk",
            " Bcdf ghjk ",
            "BCDF.GHJK",
        ] {
            assert_eq!(
                normalize_user_code(typed, false).as_deref(),
                Some("BCDFGHJK")
            );
        }
        assert_eq!(
            normalize_user_code("BCDF-GHJK", true).as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalize_user_code("bcdfghjk", true), None);
        for bad in ["BCDF-GHJ", "ABCD-EFGH", "BCDF-GHJKL", ""] {
            assert_eq!(normalize_user_code(bad, false), None, "{bad}");
        }
    }
}
