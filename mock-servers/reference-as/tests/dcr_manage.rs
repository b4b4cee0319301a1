//! RFC 7592 management over the wire: reading, updating and deleting a registration with its
//! registration access token, token rotation, the update rules, 401 (never 404) for unknown
//! clients and foreign tokens, what a deletion takes away, and the faults that break each rule.

#![allow(clippy::unwrap_used, reason = "tests")]

mod dcr_support;
mod server_support;

use dcr_support::{Answer, call, client_credentials, registered, start, token_basic, web_client};
use reference_as::{Fault, Faults};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server_support::{Pkce, World, element_text};

async fn faulty(faults: &[Fault]) -> World {
    let faults = faults.to_vec();
    start(move |c| c.faults = Faults::of(faults)).await
}

/// The registration's URI and token.
fn handle(info: &Answer) -> (String, String) {
    (
        info.str("registration_client_uri").to_owned(),
        info.str("registration_access_token").to_owned(),
    )
}

/// An update body: the registration as the client sees it, minus what the server sets.
fn update_body(info: &Answer) -> Value {
    let mut body = info.body.clone();
    let members = body.as_object_mut().unwrap();
    for server_set in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
        "client_secret",
    ] {
        members.remove(server_set);
    }
    body
}

#[tokio::test]
async fn a_read_returns_the_registration_and_the_token_keeps_working() {
    let world = start(|_| {}).await;
    let info = registered(&world, &web_client()).await;
    let (uri, token) = handle(&info);
    for _ in 0..2 {
        let read = call(&world, Method::GET, &uri, Some(&token), None).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.body);
        assert_eq!(read.header("cache-control"), Some("no-store"));
        let mut expected = info.body.clone();
        let members = expected.as_object_mut().unwrap();
        members.remove("client_secret");
        members.remove("registration_access_token");
        assert_eq!(read.body, expected);
    }
}

#[tokio::test]
async fn with_rotation_on_read_every_read_replaces_the_token() {
    let world = start(|c| c.registration.rotate_access_token_on_read = true).await;
    let info = registered(&world, &web_client()).await;
    let (uri, old) = handle(&info);
    let read = call(&world, Method::GET, &uri, Some(&old), None).await;
    assert_eq!(read.status, StatusCode::OK);
    let new = read.str("registration_access_token").to_owned();
    assert_ne!(new, old);
    call(&world, Method::GET, &uri, Some(&old), None)
        .await
        .assert_invalid_token("DCRM-05");
    let again = call(&world, Method::GET, &uri, Some(&new), None).await;
    assert_eq!(again.status, StatusCode::OK);
}

#[tokio::test]
async fn an_update_replaces_everything_resets_omitted_members_and_rotates_the_token() {
    let world = start(|_| {}).await;
    let mut body = web_client();
    body["logo_uri"] = json!("https://app.example/logo.png");
    let info = registered(&world, &body).await;
    let (uri, old) = handle(&info);

    let mut update = update_body(&info);
    let members = update.as_object_mut().unwrap();
    members.remove("logo_uri");
    members.remove("scope");
    members.insert("client_name".to_owned(), json!("Renamed"));
    members.insert(
        "client_secret".to_owned(),
        info.body["client_secret"].clone(),
    );
    let updated = call(&world, Method::PUT, &uri, Some(&old), Some(&update)).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["client_name"], "Renamed");
    assert!(updated.body.get("logo_uri").is_none());
    assert!(updated.body.get("scope").is_none());
    assert!(
        updated.body.get("client_secret").is_none(),
        "the secret is kept, not reissued"
    );
    assert_eq!(updated.body["client_secret_expires_at"], 0);
    // DCRM-04: a new token; the old one is dead.
    let new = updated.str("registration_access_token").to_owned();
    assert_ne!(new, old);
    call(&world, Method::GET, &uri, Some(&old), None)
        .await
        .assert_invalid_token("DCRM-05");
    let read = call(&world, Method::GET, &uri, Some(&new), None).await;
    assert_eq!(read.body["client_name"], "Renamed");
    // The secret still authenticates.
    let (status, body) = client_credentials(&world, &info, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn updates_breaking_the_update_rules_get_400_invalid_request() {
    let world = start(|c| c.registration.rotate_access_token_on_update = false).await;
    let info = registered(&world, &web_client()).await;
    let (uri, token) = handle(&info);
    let base = update_body(&info);
    let with = |name: &str, value: Value| {
        let mut body = base.clone();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(name);
        } else {
            body[name] = value;
        }
        body
    };
    for body in [
        with("client_id", json!("dcr-someone-else")),
        with("client_id", Value::Null),
        with("registration_access_token", json!(token)),
        with("registration_client_uri", json!(uri)),
        with("client_secret_expires_at", json!(0)),
        with("client_id_issued_at", json!(1)),
        with("client_secret", json!("a secret of my own choosing")),
    ] {
        let answer = call(&world, Method::PUT, &uri, Some(&token), Some(&body)).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "invalid_request", "DCRM-06");
    }
    // DCRM-08: the registration rules apply to updates, with their codes.
    let answer = call(
        &world,
        Method::PUT,
        &uri,
        Some(&token),
        Some(&with("redirect_uris", json!(["not a uri"]))),
    )
    .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri", "DCR-07");
    // Without rotation the token stays valid.
    let answer = call(&world, Method::PUT, &uri, Some(&token), Some(&base)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.get("registration_access_token").is_none());
}

#[tokio::test]
async fn unknown_clients_and_foreign_or_missing_tokens_get_401_never_404() {
    let world = start(|_| {}).await;
    let a = registered(&world, &web_client()).await;
    let b = registered(&world, &web_client()).await;
    let (uri_a, token_a) = handle(&a);
    let (uri_b, _) = handle(&b);
    call(&world, Method::GET, &uri_b, Some(&token_a), None)
        .await
        .assert_invalid_token("DCRM-05");
    call(&world, Method::GET, &uri_a, None, None)
        .await
        .assert_invalid_token("DCRM-05");
    call(&world, Method::GET, &uri_a, Some("guess"), None)
        .await
        .assert_invalid_token("DCRM-05");
    let unknown = world.server.url("/register/dcr-no-such-client");
    for method in [Method::GET, Method::DELETE] {
        call(&world, method, &unknown, Some(&token_a), None)
            .await
            .assert_invalid_token("DCRM-05");
    }
    call(
        &world,
        Method::PUT,
        &unknown,
        Some(&token_a),
        Some(&json!({})),
    )
    .await
    .assert_invalid_token("DCRM-05");

    let faulty = faulty(&[Fault::RegistrationUnknownClient404]).await;
    let unknown = faulty.server.url("/register/dcr-no-such-client");
    let answer = call(&faulty, Method::GET, &unknown, Some("x"), None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

/// A code-flow client_secret_basic registration and one refresh token for it.
async fn client_with_refresh_token(world: &World) -> (Answer, String) {
    let info = registered(world, &web_client()).await;
    let client = server_support::Client {
        client_id: info.str("client_id").to_owned(),
        redirect_uri: "https://app.example/callback".to_owned(),
    };
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    let (status, tokens) = token_basic(
        world,
        info.str("client_id"),
        info.str("client_secret"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    (info, refresh)
}

#[tokio::test]
async fn a_deleted_client_loses_its_credentials_grants_and_registration_token() {
    let world = start(|_| {}).await;
    let (info, refresh) = client_with_refresh_token(&world).await;
    let (uri, token) = handle(&info);
    let deleted = call(&world, Method::DELETE, &uri, Some(&token), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null);

    let (status, body) = client_credentials(&world, &info, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let (status, body) = token_basic(
        &world,
        info.str("client_id"),
        info.str("client_secret"),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let page = world
        .authorize(&[
            ("response_type", "code"),
            ("client_id", info.str("client_id")),
            ("redirect_uri", "https://app.example/callback"),
            ("code_challenge", &Pkce::new().challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let html = page.text().await.unwrap();
    assert_eq!(
        element_text(&html, "error").as_deref(),
        Some("invalid_client")
    );
    call(&world, Method::GET, &uri, Some(&token), None)
        .await
        .assert_invalid_token("DCRM-05");
    call(&world, Method::DELETE, &uri, Some(&token), None)
        .await
        .assert_invalid_token("DCRM-05");
}

#[tokio::test]
async fn delete_answers_405_when_the_server_does_not_delete() {
    let world = start(|c| c.registration.delete = false).await;
    let info = registered(&world, &web_client()).await;
    let (uri, token) = handle(&info);
    let answer = call(&world, Method::DELETE, &uri, Some(&token), None).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.header("allow"), Some("GET, PUT"));
    assert!(
        answer.body["error_description"]
            .as_str()
            .unwrap()
            .ends_with("(DCRM-10)")
    );
    let (status, _) = client_credentials(&world, &info, "").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn management_faults_each_break_their_rule() {
    let world = faulty(&[
        Fault::DeleteStatus200,
        Fault::DeletedClientStillValid,
        Fault::NoTokenRotationOnUpdate,
        Fault::AcceptMismatchedClientIdOnUpdate,
    ])
    .await;
    let info = registered(&world, &web_client()).await;
    let (uri, token) = handle(&info);
    let mut update = update_body(&info);
    update["client_id"] = json!("dcr-someone-else");
    let answer = call(&world, Method::PUT, &uri, Some(&token), Some(&update)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.get("registration_access_token").is_none());
    let answer = call(&world, Method::DELETE, &uri, Some(&token), None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let (status, body) = client_credentials(&world, &info, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
