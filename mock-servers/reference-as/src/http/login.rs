//! Sign-in: a one-time code mailed to the user, or username and password, as the policy's
//! authenticators allow (CUR-03).
//!
//! Unknown e-mail addresses get exactly the same treatment as known ones, except that no mail is
//! sent: a code is stored for them too (and can never be guessed usefully, since no account
//! follows), so the code page, the wrong-code messages and the lock-out all behave identically.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::authorize::proceed;
use super::pages::{self, CodePage, LoginPage};
use super::{AppState, Params, SESSION_COOKIE, host_of};
use crate::error::{AsError, OAuthError};
use crate::faults::Fault;
use crate::mail::LoginMail;
use crate::store::{LoginCodeCheck, PendingRequest, User};

/// The policy's name for sign-in by mailed code.
const EMAIL_CODE: &str = "email-code";

/// The policy's name for sign-in by password.
const PASSWORD: &str = "password";

/// Longest e-mail address accepted (RFC 5321 path limit).
const MAX_EMAIL: usize = 254;

/// Whether the policy enables `authenticator` (the `offer-all-authenticators` fault enables all).
fn allows(state: &AppState, authenticator: &str) -> bool {
    state.fault(Fault::OfferAllAuthenticators)
        || state
            .resolver
            .policy()
            .authenticators
            .iter()
            .any(|a| a == authenticator)
}

/// CUR-07: the sign-in methods of an instance of a registration template, read now so that a
/// template edit applies to requests already under way; `None` for every other client (and under
/// the `offer-all-authenticators` fault).
async fn template_authenticators(
    state: &AppState,
    client_id: &str,
) -> Result<Option<Vec<String>>, AsError> {
    match state.clients.registry() {
        Some(registry) if !state.fault(Fault::OfferAllAuthenticators) => {
            registry.authenticators(client_id).await
        }
        _ => Ok(None),
    }
}

/// `GET /login?request_id=…`.
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
    match state.session_user(&headers).await {
        Ok(Some(user)) => proceed(&state, &request_id, &pending, &user).await,
        Ok(None) => login_form(&state, StatusCode::OK, &request_id, &pending, None, "").await,
        Err(error) => state.fail(&error),
    }
}

/// `POST /login/email`: store a code and mail it (to account holders only).
pub(super) async fn email(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    let (request_id, pending) = match form_request(&state, &headers, &params, EMAIL_CODE).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let email = params.lenient("email").map(str::trim).unwrap_or_default();
    if email.len() > MAX_EMAIL || !email.contains('@') {
        let message = "Enter the e-mail address of your account.";
        return login_form(
            &state,
            StatusCode::BAD_REQUEST,
            &request_id,
            &pending,
            Some(message),
            "",
        )
        .await;
    }
    let limits = state.limits;
    let code = match state
        .store
        .issue_login_code(
            &request_id,
            email,
            limits.login_code_ttl(),
            limits.login_code_attempts,
        )
        .await
    {
        Ok(code) => code,
        Err(error) => return state.fail(&error),
    };
    let client_host = host_of(&pending.client_id);
    match state.store.user_by_email(email).await {
        Ok(Some(user)) => {
            let mail = LoginMail {
                to: &user.email,
                code: &code,
                issuer_host: state.issuer.host(),
                client_host: &client_host,
                valid_for: limits.login_code_ttl(),
            };
            if let Err(error) = state.mailer.send_login_code(mail).await {
                tracing::warn!(%error, "sign-in mail failed");
                return state.error_page(
                    StatusCode::BAD_GATEWAY,
                    &OAuthError::new(
                        crate::error::ErrorCode::TEMPORARILY_UNAVAILABLE,
                        format!("the sign-in code could not be mailed ({error}); try again later"),
                    ),
                );
            }
        }
        // Never mail a code to an address without an account.
        Ok(None) => {}
        Err(error) => return state.fail(&error),
    }
    code_form(&state, StatusCode::OK, &request_id, &pending, email, None)
}

/// `POST /login/code`: check the mailed code.
pub(super) async fn code(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    let (request_id, pending) = match form_request(&state, &headers, &params, EMAIL_CODE).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let Some(email) = params
        .lenient("email")
        .map(str::trim)
        .filter(|e| e.len() <= MAX_EMAIL)
    else {
        let message = "Enter the e-mail address of your account.";
        return login_form(
            &state,
            StatusCode::BAD_REQUEST,
            &request_id,
            &pending,
            Some(message),
            "",
        )
        .await;
    };
    let code = params.lenient("code").map(str::trim).unwrap_or_default();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        let message = "Enter the six digits from the mail.";
        return code_form(
            &state,
            StatusCode::BAD_REQUEST,
            &request_id,
            &pending,
            email,
            Some(message),
        );
    }
    let check = match state.store.check_login_code(&request_id, email, code).await {
        Ok(check) => check,
        Err(error) => return state.fail(&error),
    };
    match check {
        LoginCodeCheck::Accepted => match state.store.user_by_email(email).await {
            Ok(Some(user)) => signed_in(&state, &request_id, &pending, &user).await,
            // Only a lucky guess for an address without an account gets here.
            Ok(None) => unusable_code(&state, &request_id, &pending, email).await,
            Err(error) => state.fail(&error),
        },
        LoginCodeCheck::Wrong { attempts_left: 0 } => {
            let message = "That code is not right, and it is now locked after too many wrong \
                           attempts. Request a new code.";
            login_form(
                &state,
                StatusCode::BAD_REQUEST,
                &request_id,
                &pending,
                Some(message),
                email,
            )
            .await
        }
        LoginCodeCheck::Wrong { attempts_left } => {
            let message = format!("That code is not right. {attempts_left} attempt(s) left.");
            code_form(
                &state,
                StatusCode::BAD_REQUEST,
                &request_id,
                &pending,
                email,
                Some(&message),
            )
        }
        LoginCodeCheck::Unusable => unusable_code(&state, &request_id, &pending, email).await,
    }
}

/// `POST /login/password`.
pub(super) async fn password(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    let (request_id, pending) = match form_request(&state, &headers, &params, PASSWORD).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let (Some(username), Some(password)) = (params.lenient("username"), params.lenient("password"))
    else {
        let message = "Enter your username and password.";
        return login_form(
            &state,
            StatusCode::BAD_REQUEST,
            &request_id,
            &pending,
            Some(message),
            "",
        )
        .await;
    };
    match state.store.check_password(username, password).await {
        Ok(Some(user)) => signed_in(&state, &request_id, &pending, &user).await,
        Ok(None) => {
            let message = "Wrong username or password.";
            login_form(
                &state,
                StatusCode::BAD_REQUEST,
                &request_id,
                &pending,
                Some(message),
                "",
            )
            .await
        }
        Err(error) => state.fail(&error),
    }
}

/// The pending request of a sign-in form (CSRF checked), if `authenticator` is enabled.
async fn form_request(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    authenticator: &str,
) -> Result<(String, PendingRequest), Response> {
    let found = state.pending_form(headers, params).await?;
    if !allows(state, authenticator) {
        return Err(state.error_page(
            StatusCode::BAD_REQUEST,
            &OAuthError::invalid_request(format!(
                "sign-in method {authenticator:?} is not enabled for this application (CUR-03)"
            )),
        ));
    }
    match template_authenticators(state, &found.1.client_id).await {
        Ok(Some(allowed)) if !allowed.iter().any(|a| a == authenticator) => {
            return Err(state.error_page(
                StatusCode::BAD_REQUEST,
                &OAuthError::invalid_request(format!(
                    "sign-in method {authenticator:?} is not enabled for this application: \
                     its registration template does not allow it (CUR-07)"
                )),
            ));
        }
        Ok(_) => {}
        Err(error) => return Err(state.fail(&error)),
    }
    Ok(found)
}

/// Starts a fresh session (a new id: no fixation) and continues the request.
async fn signed_in(
    state: &AppState,
    request_id: &str,
    pending: &PendingRequest,
    user: &User,
) -> Response {
    let ttl = state.limits.session_ttl();
    let session = match state.store.create_session(user.id, ttl).await {
        Ok(session) => session,
        Err(error) => return state.fail(&error),
    };
    let mut response = proceed(state, request_id, pending, user).await;
    response.headers_mut().append(
        header::SET_COOKIE,
        state.cookie(SESSION_COOKIE, session.expose(), ttl),
    );
    response
}

async fn unusable_code(
    state: &AppState,
    request_id: &str,
    pending: &PendingRequest,
    email: &str,
) -> Response {
    let message = "That code can no longer be used: it expired, was already used, or was locked \
                   after too many wrong attempts. Request a new code.";
    login_form(
        state,
        StatusCode::BAD_REQUEST,
        request_id,
        pending,
        Some(message),
        email,
    )
    .await
}

async fn login_form(
    state: &AppState,
    status: StatusCode,
    request_id: &str,
    pending: &PendingRequest,
    message: Option<&str>,
    email: &str,
) -> Response {
    // The form offers what the policy and, for a template instance, its template allow.
    let template = match template_authenticators(state, &pending.client_id).await {
        Ok(template) => template,
        Err(error) => return state.fail(&error),
    };
    let offered = |authenticator: &str| {
        allows(state, authenticator)
            && template
                .as_ref()
                .is_none_or(|t| t.iter().any(|a| a == authenticator))
    };
    pages::login_page(
        status,
        &LoginPage {
            issuer: state.issuer.as_str(),
            base: state.base(),
            client_host: &host_of(&pending.client_id),
            request_id,
            csrf: &state.csrf_for(request_id),
            email_code: offered(EMAIL_CODE),
            password: offered(PASSWORD),
            message,
            email,
        },
    )
}

fn code_form(
    state: &AppState,
    status: StatusCode,
    request_id: &str,
    pending: &PendingRequest,
    email: &str,
    message: Option<&str>,
) -> Response {
    pages::code_page(
        status,
        &CodePage {
            issuer: state.issuer.as_str(),
            base: state.base(),
            client_host: &host_of(&pending.client_id),
            request_id,
            csrf: &state.csrf_for(request_id),
            email,
            message,
        },
    )
}
