//! The token endpoint over the wire: one-time codes bound to client, redirect URI and verifier;
//! refresh rotation with family revocation; refused grant types and client secrets.

#![allow(clippy::unwrap_used)]

mod server_support;

use reference_as::{Fault, Faults};
use reqwest::StatusCode;
use serde_json::Value;
use server_support::{Pkce, World, plain};

/// A token request body.
type Form<'a> = &'a [(&'a str, &'a str)];

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_the_refresh_token_issued_from_it() {
    let world = World::start().await;
    let client = world.app();
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    let (status, tokens) = world.redeem(&client, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    let (status, replay) = world.redeem(&client, &code, &pkce).await;
    assert_eq!(
        (status, error_of(&replay)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert!(
        replay["error_description"]
            .as_str()
            .unwrap()
            .contains("OAUTH-02")
    );

    let (status, refused) = world.refresh(&client, refresh_token).await;
    assert_eq!(
        (status, error_of(&refused)),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_reuse_codes_fault_lets_a_code_be_redeemed_twice() {
    let world = World::start_with(|c| c.faults = Faults::of([Fault::ReuseCodes])).await;
    let client = world.app();
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    assert_eq!(world.redeem(&client, &code, &pkce).await.0, StatusCode::OK);
    assert_eq!(world.redeem(&client, &code, &pkce).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_replayed_refresh_token_is_refused_and_revokes_its_whole_family() {
    let world = World::start().await;
    let client = world.app();
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    let (_, tokens) = world.redeem(&client, &code, &pkce).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = world.refresh(&client, &first).await;
    assert_eq!(status, StatusCode::OK);
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();

    let (status, replay) = world.refresh(&client, &first).await;
    assert_eq!(
        (status, error_of(&replay)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert!(
        replay["error_description"]
            .as_str()
            .unwrap()
            .contains("MCP-SEC-03")
    );
    // The legitimate holder's newer token dies with the family.
    let (status, after) = world.refresh(&client, &second).await;
    assert_eq!(
        (status, error_of(&after)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn the_no_refresh_rotation_fault_keeps_a_used_refresh_token_valid() {
    let world = World::start_with(|c| c.faults = Faults::of([Fault::NoRefreshRotation])).await;
    let client = world.app();
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    let (_, tokens) = world.redeem(&client, &code, &pkce).await;
    let token = tokens["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let (status, body) = world.refresh(&client, &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["refresh_token"].as_str(), Some(token.as_str()));
    }
}

#[tokio::test]
async fn a_wrong_verifier_is_invalid_grant_and_burns_the_code() {
    let world = World::start().await;
    let client = world.app();
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    let (status, body) = world.redeem(&client, &code, &Pkce::new()).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("PKCE-05")
    );
    let (status, _) = world.redeem(&client, &code, &pkce).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the code does not survive a failed attempt"
    );
}

#[tokio::test]
async fn malformed_verifiers_are_refused_without_touching_the_code() {
    let world = World::start().await;
    let client = world.app();
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    for verifier in [
        "a".repeat(42),
        "a".repeat(129),
        format!("{}+", "a".repeat(42)),
    ] {
        let (status, body) = world
            .redeem(&client, &code, &Pkce::from_verifier(&verifier))
            .await;
        assert_eq!(
            (status, error_of(&body)),
            (StatusCode::BAD_REQUEST, "invalid_request")
        );
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("PKCE-01")
        );
    }
    assert_eq!(world.redeem(&client, &code, &pkce).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri() {
    let world = World::start().await;
    let client = world.app();
    let other = world.client("/clients/other.json", serde_json::json!({}));
    let pkce = Pkce::new();

    let code = world.code_for(&client, &pkce, &[]).await;
    let (status, body) = world.redeem(&other, &code, &pkce).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{body}"
    );

    let code = world.code_for(&client, &pkce, &[]).await;
    let (status, body) = world
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://www.client.example/elsewhere"),
            ("client_id", &client.client_id),
            ("code_verifier", &pkce.verifier),
        ])
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{body}"
    );
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let world = World::start_with(|c| c.tokens.code_ttl_secs = 0).await;
    let client = world.app();
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    let (status, body) = world.redeem(&client, &code, &pkce).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn of_sixteen_concurrent_redemptions_of_one_code_exactly_one_succeeds() {
    let world = World::start().await;
    let client = world.app();
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    let attempts = (0..16).map(|_| world.redeem(&client, &code, &pkce));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST)
    );
}

#[tokio::test]
async fn refused_grant_types_and_client_credentials_get_precise_errors() {
    let world = World::start().await;
    let client = world.app();
    let id = client.client_id.as_str();
    let cases: [(Form, StatusCode, &str, &str); 6] = [
        (
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "x"),
                ("client_id", id),
            ],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "BCP-08",
        ),
        (
            &[("grant_type", "urn:example:magic"), ("client_id", id)],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "not supported",
        ),
        (
            &[("client_id", id)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type",
        ),
        (
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("redirect_uri", "https://www.client.example/callback"),
                ("client_id", id),
                ("client_secret", "s3cret"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "CIMD-DOC-07",
        ),
        (
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("redirect_uri", "https://www.client.example/callback"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id",
        ),
        (
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", id),
                ("client_id", id),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "repeated",
        ),
    ];
    for (params, status, error, mention) in cases {
        let (got, body) = world.token(params).await;
        assert_eq!(
            (got, error_of(&body)),
            (status, error),
            "{params:?}: {body}"
        );
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains(mention),
            "{body}"
        );
    }

    // HTTP Basic authentication: refused with a challenge.
    let response = plain()
        .post(world.server.url("/token"))
        .basic_auth(id, Some("s3cret"))
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));

    // JSON bodies are not token requests.
    let response = plain()
        .post(world.server.url("/token"))
        .json(&serde_json::json!({ "grant_type": "authorization_code" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_not_widen_it() {
    let world = World::start().await;
    let client = world.app();
    let pkce = Pkce::new();
    let code = world
        .code_for(&client, &pkce, &[("scope", "read write")])
        .await;
    let (_, tokens) = world.redeem(&client, &code, &pkce).await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = world
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", &client.client_id),
            ("scope", "read admin"),
        ])
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );
    // The refused request did not cost the token; narrowing works and the new refresh token
    // keeps the full scope (RFC 6749 §6).
    let (status, body) = world
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", &client.client_id),
            ("scope", "read"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "read");
    let (status, body) = world
        .refresh(&client, body["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "read write");
}

#[tokio::test]
async fn a_client_whose_document_omits_refresh_token_gets_no_refresh_token() {
    let world = World::start().await;
    let client = world.client(
        "/clients/norefresh.json",
        serde_json::json!({ "grant_types": ["authorization_code"] }),
    );
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    let (status, tokens) = world.redeem(&client, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens.get("refresh_token").is_none());
}

#[tokio::test]
async fn the_token_endpoint_answers_cors_preflights_and_refuses_oversized_bodies() {
    let world = World::start().await;
    let preflight = plain()
        .request(reqwest::Method::OPTIONS, world.server.url("/token"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let (status, _) = world.token(&[("grant_type", "password")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let huge = "x".repeat(100 * 1024);
    let response = plain()
        .post(world.server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", huge.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
