//! Shared fixture for the dynamic-registration tests: the reference AS with registration on and
//! a configured `registrar` client that may obtain initial access tokens, plus small wrappers
//! for the registration and configuration endpoints that return status, headers and JSON.

#![allow(clippy::unwrap_used, dead_code, clippy::missing_panics_doc)]

use reference_as::Config;
use reference_as::client_auth::{SecretHash, TokenAuthMethod};
use reference_as::config::{ClientConfig, ClientSecret};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server_support::World;

/// The configured client that obtains initial access tokens.
pub const REGISTRAR: &str = "registrar";
/// Its secret (configured as SHA-256).
pub const REGISTRAR_SECRET: &str = "registrar secret with plenty of entropy";

/// A loopback redirect URI, as native apps register.
pub const LOOPBACK: &str = "http://127.0.0.1:7777/callback";

/// The `registrar` client: client_secret_basic, client_credentials, scope `dcr`.
pub fn registrar() -> ClientConfig {
    ClientConfig {
        client_id: REGISTRAR.to_owned(),
        client_name: Some("Registrar".to_owned()),
        token_endpoint_auth_method: TokenAuthMethod::ClientSecretBasic,
        client_secret: Some(ClientSecret(
            SecretHash::sha256_of(REGISTRAR_SECRET).encode(),
        )),
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        redirect_uris: Vec::new(),
        grant_types: vec!["client_credentials".to_owned()],
        scope: Some("dcr backend".to_owned()),
    }
}

/// Registration on (initial access tokens required) with the registrar configured.
pub fn enable(config: &mut Config) {
    config.registration.enabled = true;
    config.clients.push(registrar());
}

/// Starts the world with registration on; `adjust` edits the config afterwards.
pub async fn start(adjust: impl FnOnce(&mut Config)) -> World {
    World::start_with(|c| {
        enable(c);
        adjust(c);
    })
    .await
}

/// A response: status, headers and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Reads a response.
    pub async fn of(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{status}: body is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Self {
            status,
            headers,
            body,
        }
    }

    /// A string member of the body.
    pub fn str(&self, name: &str) -> &str {
        self.body[name]
            .as_str()
            .unwrap_or_else(|| panic!("no string {name} in {}", self.body))
    }

    /// Asserts an error answer with `status`, `error` code and a description naming `rule`.
    pub fn assert_error(&self, status: StatusCode, error: &str, rule: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"], error, "{}", self.body);
        let description = self.body["error_description"].as_str().unwrap();
        assert!(
            description.ends_with(&format!("({rule})")),
            "description {description:?} does not name {rule}"
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
    }

    /// Asserts a 401 with an RFC 6750 invalid_token challenge naming `rule`.
    pub fn assert_invalid_token(&self, rule: &str) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{}", self.body);
        let challenge = self.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
            "challenge {challenge:?}"
        );
        assert!(challenge.contains(&format!("({rule})")), "{challenge}");
        assert_eq!(self.body["error"], "invalid_token");
    }

    /// Asserts a 401 with an RFC 6750 invalid_token challenge (no requirement named).
    pub fn assert_invalid_token_without_rule(&self) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{}", self.body);
        let challenge = self.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "challenge {challenge:?}"
        );
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An initial access token from the registrar.
pub async fn iat(world: &World) -> String {
    let (status, body) = token_basic(
        world,
        REGISTRAR,
        REGISTRAR_SECRET,
        &[("grant_type", "client_credentials"), ("scope", "dcr")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// `POST /token` with HTTP Basic credentials.
pub async fn token_basic(
    world: &World,
    id: &str,
    secret: &str,
    params: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = world
        .api
        .post(world.server.url("/token"))
        .basic_auth(id, Some(secret))
        .form(params)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// `POST /register` with a JSON body and an optional bearer token.
pub async fn register(world: &World, token: Option<&str>, body: &Value) -> Answer {
    call(
        world,
        Method::POST,
        &world.server.url("/register"),
        token,
        Some(body),
    )
    .await
}

/// A JSON request to `url` with an optional bearer token.
pub async fn call(
    world: &World,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut request = world.api.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    Answer::of(request.send().await.unwrap()).await
}

/// Registers `body` with a fresh initial access token and expects 201.
pub async fn registered(world: &World, body: &Value) -> Answer {
    let token = iat(world).await;
    let answer = register(world, Some(&token), body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    answer
}

/// A confidential web client's registration body.
pub fn web_client() -> Value {
    json!({
        "client_name": "Web App",
        "redirect_uris": ["https://app.example/callback"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "read write",
    })
}

/// A client_credentials grant for a registered secret client.
pub async fn client_credentials(world: &World, info: &Answer, scope: &str) -> (StatusCode, Value) {
    let mut params = vec![("grant_type", "client_credentials")];
    if !scope.is_empty() {
        params.push(("scope", scope));
    }
    token_basic(
        world,
        info.str("client_id"),
        info.str("client_secret"),
        &params,
    )
    .await
}
