//! Grants bound to the client key that opened them (PKJWT-15, `[client_auth]
//! bind_grants_to_key`) over the wire: a `private_key_jwt` client redeems a code with key `a` of
//! its `jwks_uri`; refreshes signed with another published key are refused with
//! `invalid_grant`, refreshes with `a` go through, and once `a` leaves the set (served with
//! `max-age=0`, so the AS sees the change at the next request) refreshes end. Without the switch,
//! or under the `refresh-ignores-grant-key` fault, any published key refreshes.

#![allow(clippy::unwrap_used)]

mod client_auth_support;
mod server_support;

use client_auth_support::{A, AssertionBuilder, B, JWT_BEARER, TestKey, jwks};
use metadata_host::Route;
use reference_as::cimd::AuthMethod;
use reference_as::config::Config;
use reference_as::{Fault, Faults};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::{CLIENT_HOST, Pkce, World};

/// The JWKS path on the client host.
const JWKS_PATH: &str = "/c/jwks.json";

/// A world whose ephemeral clients may use private_key_jwt, with `bind` for the switch and
/// `faults` on.
async fn world(bind: bool, faults: &[Fault]) -> World {
    let faults = Faults::of(faults.iter().copied());
    World::start_with(move |config: &mut Config| {
        config.ephemeral_clients.auth_methods = vec![AuthMethod::None, AuthMethod::PrivateKeyJwt];
        config.client_auth.bind_grants_to_key = bind;
        config.faults = faults;
    })
    .await
}

/// Serves `keys` as the client's JWKS, never cacheable, so each request sees the current set.
fn publish(world: &World, keys: &[TestKey]) {
    world.host.mount(
        CLIENT_HOST,
        JWKS_PATH,
        Route::jwks(jwks(keys)).with_header("cache-control", "max-age=0"),
    );
}

/// A keyed client publishing `a` and `b` at its jwks_uri, and the refresh token of a grant whose
/// code it redeemed with `a`.
async fn grant_opened_with_a(world: &World) -> (String, String) {
    publish(world, &[A, B]);
    let jwks_uri = world.host.url(CLIENT_HOST, JWKS_PATH);
    let client = world.client(
        "/c/keyed.json",
        json!({ "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwks_uri }),
    );
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    let jwt = assertion(world, A, &client.client_id);
    let (status, tokens) = world
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", &pkce.verifier),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    (client.client_id, refresh_token)
}

/// A fresh assertion for `client_id` signed with `key`.
fn assertion(world: &World, key: TestKey, client_id: &str) -> String {
    AssertionBuilder::new(key, client_id, world.server.issuer()).sign()
}

/// `grant_type=refresh_token` authenticated with an assertion signed by `key`.
async fn refresh(
    world: &World,
    client_id: &str,
    refresh_token: &str,
    key: TestKey,
) -> (StatusCode, Value) {
    let jwt = assertion(world, key, client_id);
    world
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
        ])
        .await
}

/// Asserts an `error` answer whose description ends with `(requirement)`.
#[track_caller]
fn assert_error(answer: &(StatusCode, Value), status: StatusCode, error: &str, requirement: &str) {
    let (got, body) = answer;
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
async fn a_bound_grant_refreshes_only_with_its_key_and_ends_when_the_key_leaves_the_jwks() {
    let world = world(true, &[]).await;
    let (client_id, token) = grant_opened_with_a(&world).await;

    // Another published key of the same client: refused, and the token survives the refusal.
    let other = refresh(&world, &client_id, &token, B).await;
    assert_error(&other, StatusCode::BAD_REQUEST, "invalid_grant", "PKJWT-15");
    let (status, body) = refresh(&world, &client_id, &token, A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["refresh_token"].as_str().unwrap();

    // Key a leaves the set: its assertions no longer authenticate, and b still may not refresh.
    publish(&world, &[B]);
    let gone = refresh(&world, &client_id, token, A).await;
    assert_eq!(gone.0, StatusCode::UNAUTHORIZED, "{}", gone.1);
    assert_eq!(gone.1["error"], "invalid_client", "{}", gone.1);
    let other = refresh(&world, &client_id, token, B).await;
    assert_error(&other, StatusCode::BAD_REQUEST, "invalid_grant", "PKJWT-15");
}

#[tokio::test]
async fn without_the_switch_any_published_key_refreshes() {
    let world = world(false, &[]).await;
    let (client_id, token) = grant_opened_with_a(&world).await;
    let (status, body) = refresh(&world, &client_id, &token, B).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_refresh_ignores_grant_key_fault_lets_another_key_refresh_a_bound_grant() {
    let world = world(true, &[Fault::RefreshIgnoresGrantKey]).await;
    let (client_id, token) = grant_opened_with_a(&world).await;
    let (status, body) = refresh(&world, &client_id, &token, B).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
