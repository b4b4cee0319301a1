//! RFC 8414 discovery, the JWKS, and a small landing page for people.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use super::pages::{escape, html};
use crate::cimd::ScopePolicy;
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
    put(
        "grant_types_supported",
        json!(["authorization_code", "refresh_token"]),
    );
    put("token_endpoint_auth_methods_supported", json!(["none"]));
    put("code_challenge_methods_supported", json!(["S256"]));
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
