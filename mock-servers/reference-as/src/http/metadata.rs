//! RFC 8414 discovery, the JWKS, and a small landing page for people.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use super::pages::{escape, html};
use crate::cimd::{AuthMethod, ScopePolicy};
use crate::client_auth::TokenAuthMethod;
use crate::client_auth::assertion::ALLOWED_ALGORITHMS;
use crate::faults::Fault;

/// `GET /.well-known/oauth-authorization-server[/path]`.
pub(super) async fn discovery(State(state): State<Arc<AppState>>) -> Response {
    Json(discovery_document(&state)).into_response()
}

/// The metadata document. AS-META-07: no member is an empty array.
fn discovery_document(state: &AppState) -> Value {
    let issuer = &state.issuer;
    let mut doc = Map::new();
    // The `publish-empty-arrays` fault keeps them.
    let keep_empty = state.fault(Fault::PublishEmptyArrays);
    let mut put = |name: &str, value: Value| {
        if !keep_empty && value.as_array().is_some_and(Vec::is_empty) {
            return;
        }
        doc.insert(name.to_owned(), value);
    };
    put("issuer", json!(issuer.as_str()));
    put("authorization_endpoint", json!(issuer.url("/authorize")));
    put("token_endpoint", json!(issuer.url("/token")));
    put("jwks_uri", json!(issuer.url("/jwks")));
    put("response_types_supported", json!(["code"]));
    put("response_modes_supported", json!(["query"]));
    // AS-META-03: listed explicitly, since the defaults would claim implicit and client secrets.
    let grants = grant_types(state);
    // RFC 8628 §4: where devices start, whenever some client may use the grant.
    if grants.contains(&super::device::DEVICE_CODE_GRANT) {
        put(
            "device_authorization_endpoint",
            json!(issuer.url("/device_authorization")),
        );
    }
    put("grant_types_supported", json!(grants));
    let methods = auth_methods(state);
    // PKJWT-14: whoever accepts private_key_jwt says which algorithms (never none or HMAC).
    let assertions = methods.contains(&TokenAuthMethod::PrivateKeyJwt);
    put(
        "token_endpoint_auth_methods_supported",
        json!(methods.iter().map(|m| m.as_str()).collect::<Vec<_>>()),
    );
    if assertions {
        put(
            "token_endpoint_auth_signing_alg_values_supported",
            json!(ALLOWED_ALGORITHMS),
        );
    }
    put("code_challenge_methods_supported", json!(["S256"]));
    // RFC 9126 §5: where requests are pushed, and whether they must be.
    put(
        "pushed_authorization_request_endpoint",
        json!(issuer.url("/par")),
    );
    if state.par.required {
        put("require_pushed_authorization_requests", json!(true));
    }
    if let Some(registry) = state.clients.registry()
        && registry.config().enabled
    {
        put("registration_endpoint", json!(issuer.url("/register")));
    }
    if let ScopePolicy::List(scopes) = &state.resolver.policy().scopes {
        put("scopes_supported", json!(scopes));
    }
    // MCP-ISS-01 / AS-META-10: the iss parameter is part of every authorization response.
    put(
        "authorization_response_iss_parameter_supported",
        json!(true),
    );
    // CIMD-META-01: announce whether client ID metadata documents are accepted (false when the
    // policy switches ephemeral clients off).
    if !state.fault(Fault::HideCimdSupport) {
        put(
            "client_id_metadata_document_supported",
            json!(state.resolver.policy().enabled),
        );
    }
    Value::Object(doc)
}

/// The grant types offered: the code and refresh grants, and client credentials and the device
/// grant when the policy's capabilities or a registered client include them.
fn grant_types(state: &AppState) -> Vec<&'static str> {
    let policy = state.resolver.policy();
    [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        super::device::DEVICE_CODE_GRANT,
    ]
    .into_iter()
    .filter(|grant| {
        // The code and refresh grants are always offered (public clients use them).
        matches!(*grant, "authorization_code" | "refresh_token")
            || (policy.enabled && policy.capabilities.iter().any(|c| c == grant))
            || state.clients.registered().any(|c| c.has_grant_type(grant))
            || state
                .clients
                .registry()
                .is_some_and(|r| r.offers_grant(grant))
    })
    .collect()
}

/// The client authentication methods some client may use: `none` always (public clients), the
/// policy's methods for ephemeral clients, and the registered clients' methods.
fn auth_methods(state: &AppState) -> Vec<TokenAuthMethod> {
    let policy = state.resolver.policy();
    let ephemeral = |m: AuthMethod| policy.enabled && policy.auth_methods.contains(&m);
    [
        TokenAuthMethod::None,
        TokenAuthMethod::ClientSecretBasic,
        TokenAuthMethod::ClientSecretPost,
        TokenAuthMethod::PrivateKeyJwt,
    ]
    .into_iter()
    .filter(|method| {
        let by_policy = match method {
            TokenAuthMethod::None => true,
            TokenAuthMethod::PrivateKeyJwt => ephemeral(AuthMethod::PrivateKeyJwt),
            _ => false,
        };
        by_policy
            || state.clients.registered().any(|c| c.auth_method == *method)
            || state
                .clients
                .registry()
                .is_some_and(|r| r.offers_method(*method))
    })
    .collect()
}

/// `GET /jwks`.
pub(super) async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    Json(state.signer.jwks()).into_response()
}

/// `GET /`: what this server is and where its endpoints are.
pub(super) async fn home(State(state): State<Arc<AppState>>) -> Response {
    let issuer = &state.issuer;
    let metadata = issuer.metadata_url();
    let faults: Vec<String> = state.faults.iter().map(|f| escape(f.name())).collect();
    let faults = if faults.is_empty() {
        "none (strict)".to_owned()
    } else {
        format!("<strong>{}</strong>", faults.join(", "))
    };
    let body = format!(
        "<p>An OAuth authorization server that accepts Client ID Metadata Documents: any https \
         URL serving a valid document is a client_id.</p>\n<dl>\n\
         <dt>Issuer</dt><dd><code>{issuer}</code></dd>\n\
         <dt>Metadata</dt><dd><a href=\"{metadata}\">{metadata}</a></dd>\n\
         <dt>Faults switched on</dt><dd id=\"faults\">{faults}</dd>\n</dl>\n",
        issuer = escape(issuer.as_str()),
        metadata = escape(&metadata),
    );
    html(
        StatusCode::OK,
        "Reference authorization server",
        issuer.as_str(),
        &body,
    )
}
