//! Pushed authorization requests (RFC 9126) over the wire: a public ephemeral client and a
//! private_key_jwt client push, authorize with the `request_uri` and redeem the code; a
//! `request_uri` is one-time, bound to its client and short-lived; a push carrying `request_uri`
//! is refused; assertions sent to `/par` name the issuer alone in strict mode (PKJWT-13) and may
//! name either endpoint in legacy mode; `[par] required` refuses requests that were not pushed.
//! Each PAR fault lets exactly its own mistake through.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected input")]

mod client_auth_support;
mod server_support;

use std::time::Duration;

use client_auth_support::{A, AssertionBuilder, JWT_BEARER, jwks};
use reference_as::cimd::AuthMethod;
use reference_as::config::{AssertionAudience, Config};
use reference_as::{Fault, Faults};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use server_support::{Client, EMAIL, Pkce, World, callback, element_text, location, param};

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Ephemeral clients may use private_key_jwt.
fn keyed_policy(config: &mut Config) {
    config.ephemeral_clients.auth_methods = vec![AuthMethod::None, AuthMethod::PrivateKeyJwt];
}

async fn world_with(adjust: impl FnOnce(&mut Config)) -> World {
    World::start_with(|c| {
        keyed_policy(c);
        adjust(c);
    })
    .await
}

/// A private_key_jwt client publishing key A inline, at `path`.
fn keyed_client(world: &World, path: &str) -> Client {
    world.client(
        path,
        json!({ "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks(&[A]) }),
    )
}

/// An assertion by `client` with audience `aud`, signed with key A.
fn assertion(client: &Client, aud: &str) -> String {
    AssertionBuilder::new(A, &client.client_id, aud).sign()
}

/// The authorization parameters of a well-formed request by `client`.
fn request_params<'a>(client: &'a Client, pkce: &'a Pkce) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "pushed-state"),
    ]
}

/// `POST /par` with `params`: the status, the Cache-Control header and the JSON body.
async fn push(world: &World, params: &[(&str, &str)]) -> (StatusCode, Option<String>, Value) {
    let response = world
        .api
        .post(world.server.url("/par"))
        .form(params)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, cache, response.json().await.unwrap())
}

/// Pushes a well-formed request by `client` (with `extra` parameters) and returns its
/// `request_uri`.
async fn pushed(world: &World, client: &Client, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut params = request_params(client, pkce);
    params.extend_from_slice(extra);
    let (status, _, body) = push(world, &params).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["request_uri"].as_str().unwrap().to_owned()
}

/// `GET /authorize?client_id=…&request_uri=…` plus `extra` parameters.
async fn authorize_pushed(
    world: &World,
    client_id: &str,
    request_uri: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut params = vec![("client_id", client_id), ("request_uri", request_uri)];
    params.extend_from_slice(extra);
    world.authorize(&params).await
}

/// Pushes a well-formed request by `client` with an assertion for audience `aud`.
async fn push_asserted(
    world: &World,
    client: &Client,
    aud: &str,
) -> (StatusCode, Option<String>, Value) {
    let pkce = Pkce::new();
    let jwt = assertion(client, aud);
    let mut params = request_params(client, &pkce);
    params.extend([
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &jwt),
    ]);
    push(world, &params).await
}

/// Signs in and allows from `response` on until the redirect back to `client`.
async fn finish(world: &World, client: &Client, mut response: Response) -> Response {
    for _ in 0..4 {
        if response.status() == StatusCode::SEE_OTHER
            && location(&response).starts_with(&client.redirect_uri)
        {
            return response;
        }
        let page = world.follow(&response).await.text().await.unwrap();
        response = if page.contains("id=\"email-form\"") {
            world.sign_in_by_mail(&page, EMAIL).await
        } else {
            world
                .submit(&page, "consent-form", &[("decision", "allow")])
                .await
        };
    }
    panic!("the flow did not reach the client");
}

/// Asserts an error page (400) whose description ends with `(requirement)`.
async fn assert_error_page(response: Response, requirement: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{response:?}");
    let page = response.text().await.unwrap();
    let description = element_text(&page, "error_description").unwrap();
    assert!(
        description.ends_with(&format!("({requirement})")),
        "expected a refusal naming {requirement}: {description}"
    );
}

/// Asserts a JSON refusal with `status` and `error` whose description ends with `(requirement)`.
#[track_caller]
fn assert_refused(
    answer: &(StatusCode, Option<String>, Value),
    status: StatusCode,
    error: &str,
    requirement: &str,
) {
    let (got, _, body) = answer;
    assert_eq!(
        (*got, body["error"].as_str()),
        (status, Some(error)),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.ends_with(&format!("({requirement})")),
        "expected a refusal naming {requirement}: {description}"
    );
}

#[tokio::test]
async fn a_public_client_pushes_its_request_and_the_pushed_values_win_over_the_query() {
    let world = world_with(|_| {}).await;
    let client = world.app();
    let pkce = Pkce::new();
    let (status, cache, body) = push(&world, &request_params(&client, &pkce)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(body["expires_in"], json!(60));
    let request_uri = body["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with(PREFIX), "{request_uri}");
    assert!(request_uri.len() >= PREFIX.len() + 43, "{request_uri}");

    // Query parameters other than client_id are ignored: the redirect and state are the pushed
    // ones.
    let response = authorize_pushed(
        &world,
        &client.client_id,
        request_uri,
        &[
            ("redirect_uri", "https://evil.example/cb"),
            ("state", "query-state"),
        ],
    )
    .await;
    let response = finish(&world, &client, response).await;
    let answer = callback(&response, &client.redirect_uri);
    assert_eq!(param(&answer, "state"), Some("pushed-state"));
    let code = param(&answer, "code").unwrap();
    let (status, tokens) = world.redeem(&client, code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

#[tokio::test]
async fn a_private_key_jwt_client_pushes_with_an_assertion_for_the_issuer() {
    let world = world_with(|_| {}).await;
    let client = keyed_client(&world, "/c/keyed.json");
    let pkce = Pkce::new();

    // PAR-01: no assertion, no push.
    let bare = push(&world, &request_params(&client, &pkce)).await;
    assert_refused(
        &bare,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "CIMD-AUTH-02",
    );

    let jwt = assertion(&client, world.server.issuer());
    let request_uri = pushed(
        &world,
        &client,
        &pkce,
        &[
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
        ],
    )
    .await;
    let response = authorize_pushed(&world, &client.client_id, &request_uri, &[]).await;
    let response = finish(&world, &client, response).await;
    let answer = callback(&response, &client.redirect_uri);
    let jwt = assertion(&client, world.server.issuer());
    let (status, tokens) = world
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", param(&answer, "code").unwrap()),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", &pkce.verifier),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

#[tokio::test]
async fn a_request_uri_starts_one_authorization_only() {
    let world = world_with(|_| {}).await;
    let client = world.app();
    let request_uri = pushed(&world, &client, &Pkce::new(), &[]).await;
    let first = authorize_pushed(&world, &client.client_id, &request_uri, &[]).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert!(location(&first).contains("/login"), "{first:?}");
    let second = authorize_pushed(&world, &client.client_id, &request_uri, &[]).await;
    assert_error_page(second, "PAR-02").await;
    // Something this server never issued is refused the same way.
    let forged = authorize_pushed(&world, &client.client_id, &format!("{PREFIX}forged"), &[]).await;
    assert_error_page(forged, "PAR-02").await;
}

#[tokio::test]
async fn the_reusable_request_uri_fault_lets_a_request_uri_start_two_authorizations() {
    let world = world_with(|c| c.faults = Faults::of([Fault::ReusableRequestUri])).await;
    let client = world.app();
    let request_uri = pushed(&world, &client, &Pkce::new(), &[]).await;
    for _ in 0..2 {
        let response = authorize_pushed(&world, &client.client_id, &request_uri, &[]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{response:?}");
    }
}

#[tokio::test]
async fn a_request_uri_is_bound_to_the_client_that_pushed_it() {
    let world = world_with(|_| {}).await;
    let client = world.app();
    let other = world.client("/clients/other.json", json!({}));
    let request_uri = pushed(&world, &client, &Pkce::new(), &[]).await;
    let stolen = authorize_pushed(&world, &other.client_id, &request_uri, &[]).await;
    assert_error_page(stolen, "PAR-03").await;
    let nameless = world
        .authorize(&[("request_uri", request_uri.as_str())])
        .await;
    assert_error_page(nameless, "PAR-03").await;
    // The refusals did not spend it: its own client still can.
    let own = authorize_pushed(&world, &client.client_id, &request_uri, &[]).await;
    assert_eq!(own.status(), StatusCode::SEE_OTHER, "{own:?}");
}

#[tokio::test]
async fn the_ignore_par_client_id_fault_lets_another_client_id_use_a_request_uri() {
    let world = world_with(|c| c.faults = Faults::of([Fault::IgnoreParClientId])).await;
    let client = world.app();
    let other = world.client("/clients/other.json", json!({}));
    let request_uri = pushed(&world, &client, &Pkce::new(), &[]).await;
    let stolen = authorize_pushed(&world, &other.client_id, &request_uri, &[]).await;
    assert_eq!(stolen.status(), StatusCode::SEE_OTHER, "{stolen:?}");
}

#[tokio::test]
async fn an_expired_request_uri_is_refused() {
    let world = world_with(|c| c.par.request_uri_ttl_secs = 1).await;
    let client = world.app();
    let (status, _, body) = push(&world, &request_params(&client, &Pkce::new())).await;
    assert_eq!(
        (status, &body["expires_in"]),
        (StatusCode::CREATED, &json!(1))
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = authorize_pushed(
        &world,
        &client.client_id,
        body["request_uri"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_error_page(late, "PAR-02").await;
}

#[tokio::test]
async fn a_push_carrying_request_uri_is_refused_unless_the_fault_accepts_it() {
    let world = world_with(|_| {}).await;
    let client = world.app();
    let pkce = Pkce::new();
    let request_uri = pushed(&world, &client, &pkce, &[]).await;
    let mut params = request_params(&client, &pkce);
    params.push(("request_uri", &request_uri));
    let answer = push(&world, &params).await;
    assert_refused(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "PAR-04",
    );

    let faulty = world_with(|c| c.faults = Faults::of([Fault::AcceptPushedRequestUri])).await;
    let client = faulty.app();
    let mut params = request_params(&client, &pkce);
    params.push(("request_uri", &request_uri));
    let (status, _, body) = push(&faulty, &params).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn push_refusals_are_json_and_never_redirect() {
    let world = world_with(|_| {}).await;
    let client = world.app();
    let pkce = Pkce::new();
    let mut params = request_params(&client, &pkce);
    params[2] = ("redirect_uri", "https://www.client.example/elsewhere");
    let answer = push(&world, &params).await;
    assert_refused(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "CIMD-REDIR-01",
    );
    let mut params = request_params(&client, &pkce);
    params.retain(|(name, _)| *name != "code_challenge");
    let answer = push(&world, &params).await;
    assert_refused(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "PKCE-04",
    );
    let unknown = push(
        &world,
        &[("client_id", "nobody"), ("response_type", "code")],
    )
    .await;
    assert_eq!(unknown.0, StatusCode::UNAUTHORIZED, "{}", unknown.2);
    assert_eq!(unknown.2["error"], json!("invalid_client"));
}

#[tokio::test]
async fn strict_mode_takes_only_the_issuer_as_audience_at_the_par_endpoint() {
    let world = world_with(|_| {}).await;
    let client = keyed_client(&world, "/c/keyed.json");
    let at_par = push_asserted(&world, &client, &world.server.url("/par")).await;
    assert_refused(
        &at_par,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "PKJWT-13",
    );
    let at_token = push_asserted(&world, &client, &world.server.url("/token")).await;
    assert_refused(
        &at_token,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "PKJWT-05",
    );
    let issuer = push_asserted(&world, &client, world.server.issuer()).await;
    assert_eq!(issuer.0, StatusCode::CREATED, "{}", issuer.2);

    let faulty = world_with(|c| c.faults = Faults::of([Fault::ParAcceptsEndpointAudience])).await;
    let client = keyed_client(&faulty, "/c/keyed.json");
    let (status, _, body) = push_asserted(&faulty, &client, &faulty.server.url("/par")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn legacy_mode_also_takes_the_token_and_par_endpoint_urls_at_the_par_endpoint() {
    let world = world_with(|c| c.client_auth.assertion_audience = AssertionAudience::Legacy).await;
    let client = keyed_client(&world, "/c/keyed.json");
    for aud in [world.server.url("/par"), world.server.url("/token")] {
        let (status, _, body) = push_asserted(&world, &client, &aud).await;
        assert_eq!(status, StatusCode::CREATED, "aud {aud}: {body}");
    }
    // The PAR endpoint URL is no audience for the token endpoint.
    let jwt = assertion(&client, &world.server.url("/par"));
    let (status, body) = world
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "irrelevant"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
        ])
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_client"))
    );
}

#[tokio::test]
async fn required_mode_refuses_requests_that_were_not_pushed_and_says_so_in_discovery() {
    let world = world_with(|c| c.par.required = true).await;
    let discovery: Value = world
        .api
        .get(world.server.metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["pushed_authorization_request_endpoint"],
        json!(world.server.url("/par"))
    );
    assert_eq!(
        discovery["require_pushed_authorization_requests"],
        json!(true)
    );

    let client = world.app();
    let pkce = Pkce::new();
    let direct = world.authorize_client(&client, &pkce, &[]).await;
    let answer = callback(&direct, &client.redirect_uri);
    assert_eq!(param(&answer, "error"), Some("invalid_request"));
    assert!(
        param(&answer, "error_description")
            .unwrap()
            .ends_with("(PAR-05)")
    );
    let request_uri = pushed(&world, &client, &pkce, &[]).await;
    let via_push = authorize_pushed(&world, &client.client_id, &request_uri, &[]).await;
    assert_eq!(via_push.status(), StatusCode::SEE_OTHER);
    assert!(location(&via_push).contains("/login"), "{via_push:?}");
}

#[tokio::test]
async fn the_par_not_enforced_fault_lets_a_plain_request_through_while_discovery_requires_par() {
    let world = world_with(|c| {
        c.par.required = true;
        c.faults = Faults::of([Fault::ParNotEnforced]);
    })
    .await;
    let discovery: Value = world
        .api
        .get(world.server.metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["require_pushed_authorization_requests"],
        json!(true)
    );
    let client = world.app();
    let pkce = Pkce::new();
    let direct = world.authorize_client(&client, &pkce, &[]).await;
    assert_eq!(direct.status(), StatusCode::SEE_OTHER);
    assert!(location(&direct).contains("/login"), "{direct:?}");
}

#[tokio::test]
async fn discovery_lists_the_par_endpoint_without_requiring_it_by_default() {
    let world = world_with(|_| {}).await;
    let discovery: Value = world
        .api
        .get(world.server.metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["pushed_authorization_request_endpoint"],
        json!(world.server.url("/par"))
    );
    assert!(
        discovery
            .get("require_pushed_authorization_requests")
            .is_none()
    );
}
