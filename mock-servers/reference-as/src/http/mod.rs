//! The HTTP face of the server (axum): discovery, `/authorize`, sign-in and consent pages,
//! `/token` and `/jwks`, behind body-size, time and panic limits.
//!
//! The browser part is a small state machine around a *pending request*: `/authorize` validates
//! and stores it, then sends the browser to sign-in (no session), to consent (consent needed) or
//! straight back to the client with a code. Every page of a pending request is bound twice: to the
//! browser that started it (an HttpOnly `SameSite=Lax` cookie, so a cross-site form post arrives
//! without it) and to a CSRF token derived from the request id with a server key.
//!
//! Layout:
//! - `metadata`: RFC 8414 discovery and the JWKS.
//! - `authorize`: the authorization endpoint and the authorization response.
//! - `login`: sign-in by mailed code or password.
//! - `consent`: the consent page and decision.
//! - `device`: the device authorization grant (RFC 8628): its endpoint, the user-code page and
//!   the device code at the token endpoint.
//! - `par`: pushed authorization requests (RFC 9126) and the `request_uri`s that name them.
//! - `token`: the token endpoint.
//! - `registration`: dynamic client registration (RFC 7591/7592) and the template admin API.
//! - `scrape`: `GET /metrics`, the caches' counters for Prometheus.
//! - [`pages`]: the HTML.

mod authorize;
mod consent;
mod device;
mod login;
mod metadata;
pub mod pages;
mod par;
mod registration;
mod scrape;
mod token;

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::cimd::ClientResolver;
use crate::client_auth::{ClientAuthenticator, ClientDirectory};
use crate::config::{Issuer, ParConfig, TokenConfig};
use crate::error::{AsError, OAuthError};
use crate::faults::{Fault, Faults};
use crate::mail::Mailer;
use crate::store::{PendingLookup, PendingRequest, Store, User};
use crate::tokens::TokenSigner;

/// Largest request body accepted (forms and token requests are a few hundred bytes).
const BODY_LIMIT: usize = 64 * 1024;

/// Longest time one request may take, mail delivery included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The session cookie (set after sign-in).
const SESSION_COOKIE: &str = "as_session";

/// The browser-binding cookie (set by `/authorize`).
const BROWSER_COOKIE: &str = "as_browser";

/// Everything the handlers share.
pub(crate) struct AppState {
    pub issuer: Issuer,
    pub faults: Faults,
    pub store: Store,
    pub signer: TokenSigner,
    pub mailer: Mailer,
    pub resolver: ClientResolver,
    pub clients: ClientDirectory,
    pub client_auth: ClientAuthenticator,
    pub limits: TokenConfig,
    pub par: ParConfig,
    csrf_key: hmac::Key,
}

impl AppState {
    /// Assembles the state with a fresh CSRF key.
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per shared service; a builder would only rename them"
    )]
    pub fn new(
        issuer: Issuer,
        faults: Faults,
        store: Store,
        signer: TokenSigner,
        mailer: Mailer,
        resolver: ClientResolver,
        clients: ClientDirectory,
        client_auth: ClientAuthenticator,
        limits: TokenConfig,
        par: ParConfig,
    ) -> Result<Self, AsError> {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key)
            .map_err(|_| AsError::Crypto("system random generator failed"))?;
        Ok(Self {
            issuer,
            faults,
            store,
            signer,
            mailer,
            resolver,
            clients,
            client_auth,
            limits,
            par,
            csrf_key: hmac::Key::new(hmac::HMAC_SHA256, &key),
        })
    }

    /// The CSRF token of a pending request: a MAC of its id, so nothing extra is stored.
    fn csrf_for(&self, request_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf_key, request_id.as_bytes()))
    }

    /// Whether `presented` is the CSRF token of `request_id` (constant time).
    fn csrf_ok(&self, request_id: &str, presented: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(presented)
            .is_ok_and(|tag| hmac::verify(&self.csrf_key, request_id.as_bytes(), &tag).is_ok())
    }

    /// Whether `fault` is switched on.
    fn fault(&self, fault: Fault) -> bool {
        self.faults.on(fault)
    }

    /// An error page for the person at the browser.
    fn error_page(&self, status: StatusCode, error: &OAuthError) -> Response {
        pages::error_page(status, self.issuer.as_str(), error)
    }

    /// A 500 page; the details go to the log only.
    fn fail(&self, error: &AsError) -> Response {
        self.error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            &OAuthError::server_error(error),
        )
    }

    /// The path prefix of every endpoint (`""` or the issuer's path).
    fn base(&self) -> &str {
        self.issuer.path()
    }

    /// A `Set-Cookie` value scoped to this server's paths.
    fn cookie(&self, name: &str, value: &str, max_age: Duration) -> HeaderValue {
        let path = if self.base().is_empty() {
            "/"
        } else {
            self.base()
        };
        let secure = if self.issuer.is_https() {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            max_age.as_secs()
        );
        // Values are base64url and paths come from a validated URL: always a valid header.
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The signed-in user, if the request carries a live session cookie.
    async fn session_user(&self, headers: &HeaderMap) -> Result<Option<User>, AsError> {
        match cookie(headers, SESSION_COOKIE) {
            Some(session) => self.store.session_user(session).await,
            None => Ok(None),
        }
    }

    /// The pending request of a posted form: its CSRF token must match, then as [`Self::pending`].
    async fn pending_form(
        &self,
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<(String, PendingRequest), Response> {
        if let Some(request_id) = params.lenient("request_id")
            && !params
                .lenient("csrf")
                .is_some_and(|csrf| self.csrf_ok(request_id, csrf))
        {
            return Err(self.error_page(
                StatusCode::BAD_REQUEST,
                &OAuthError::invalid_request(
                    "the form's CSRF token is missing or does not belong to this sign-in request",
                ),
            ));
        }
        self.pending(headers, params.lenient("request_id")).await
    }

    /// The live pending request `request_id` for this browser, or the page explaining why not.
    async fn pending(
        &self,
        headers: &HeaderMap,
        request_id: Option<&str>,
    ) -> Result<(String, PendingRequest), Response> {
        let refuse = |description: &str| {
            self.error_page(
                StatusCode::BAD_REQUEST,
                &OAuthError::invalid_request(description),
            )
        };
        let Some(request_id) = request_id else {
            return Err(refuse(
                "request_id is missing; start again from the application",
            ));
        };
        match self
            .store
            .pending(request_id, cookie(headers, BROWSER_COOKIE))
            .await
        {
            Ok(PendingLookup::Found(pending)) => Ok((request_id.to_owned(), pending)),
            Ok(PendingLookup::Missing) => Err(refuse(
                "this sign-in request is unknown, expired or already finished; start again from \
                 the application",
            )),
            Ok(PendingLookup::OtherBrowser) => Err(refuse(
                "this sign-in request was started in another browser; start again from the \
                 application in this one",
            )),
            Err(error) => Err(self.fail(&error)),
        }
    }
}

/// Builds the router: every endpoint under the issuer's path, the metadata where RFC 8414 §3
/// puts it, and the protective layers around all of it.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let endpoints = Router::new()
        .route("/", get(metadata::home))
        .route("/authorize", get(authorize::authorize))
        .route("/login", get(login::page))
        .route("/login/email", post(login::email))
        .route("/login/code", post(login::code))
        .route("/login/password", post(login::password))
        .route("/consent", get(consent::page).post(consent::decide))
        .route("/device_authorization", post(device::authorization))
        .route("/device", get(device::page).post(device::enter))
        .route("/par", post(par::push))
        .route("/metrics", get(scrape::metrics))
        .merge(registration::routes(&state))
        .merge(
            Router::new()
                .route("/token", post(token::token))
                .route("/jwks", get(metadata::jwks))
                .layer(axum::middleware::from_fn(cors)),
        );
    let base = state.issuer.path().to_owned();
    let metadata_path = state.issuer.metadata_path();
    let router = if base.is_empty() {
        endpoints
    } else {
        Router::new().nest(&base, endpoints)
    };
    router
        .merge(
            Router::new()
                .route(&metadata_path, get(metadata::discovery))
                .layer(axum::middleware::from_fn(cors)),
        )
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::new())
}

/// CORS for the endpoints browser-based clients call directly (metadata, JWKS, token): any
/// origin, no credentials (nothing there reads cookies), preflights answered here. The pages are
/// left out: they are for top-level navigation only.
async fn cors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let any = HeaderValue::from_static("*");
    if request.method() == axum::http::Method::OPTIONS {
        return (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, any.clone()),
                (
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, POST"),
                ),
                (header::ACCESS_CONTROL_ALLOW_HEADERS, any),
                (
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("600"),
                ),
            ],
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, any);
    response
}

/// Request parameters (query string or form body), with RFC 6749 §3.1 rules: an empty value
/// counts as absent, and a parameter may not appear twice.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` bytes.
    fn parse(input: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(input)
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// The single value of `name`; a repeated parameter is `invalid_request`.
    fn get<'a>(&'a self, name: &str) -> Result<Option<&'a str>, OAuthError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated; each parameter may appear once (RFC 6749 §3.1)"
            )));
        }
        Ok(first)
    }

    /// The single value of `name`, or `None` when it is absent or repeated (for lookups where a
    /// repeated value is refused elsewhere).
    fn lenient<'a>(&'a self, name: &str) -> Option<&'a str> {
        self.get(name).ok().flatten()
    }

    /// Every value of `name`.
    fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The value of cookie `name` from the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The request's media type, lower-cased, without parameters (empty when there is none).
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether the request body is declared `application/x-www-form-urlencoded`, as token, device
/// authorization and pushed authorization requests must be.
fn is_form(headers: &HeaderMap) -> bool {
    media_type(headers) == "application/x-www-form-urlencoded"
}

/// A 303 to `location` (never cached).
fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        // Locations are built from validated URLs; a failure here is a bug, not peer input.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `path?request_id=…` under the issuer's path.
fn request_url(state: &AppState, path: &str, request_id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(request_id.as_bytes()).collect();
    format!("{}{path}?request_id={encoded}", state.base())
}

/// The host of a URL string, lower-cased (or the whole string if it has none).
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_else(|| url.to_owned())
}
