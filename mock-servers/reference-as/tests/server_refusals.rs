//! Refused authorization requests: problems with the client or its redirect URI end on an error
//! page (OAUTH-01); every later problem goes back to the client with `error`, `state` and `iss`.

#![allow(clippy::unwrap_used)]

mod server_support;

use metadata_host::Route;
use reference_as::cimd::ScopePolicy;
use reference_as::{Fault, Faults};
use reqwest::{Response, StatusCode};
use serde_json::json;
use server_support::{CLIENT_HOST, Pkce, World, callback, element_text, param};

/// Query parameters of one case.
type Params = Vec<(String, String)>;

/// Asserts an error page (400, no redirect) with `error`; returns its description.
async fn error_page(response: Response, error: &str) -> String {
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "expected an error page: {response:?}"
    );
    assert!(
        response.headers().get("location").is_none(),
        "an error page must not redirect"
    );
    let page = response.text().await.unwrap();
    assert_eq!(
        element_text(&page, "error").as_deref(),
        Some(error),
        "{page}"
    );
    element_text(&page, "error_description").unwrap()
}

#[tokio::test]
async fn client_and_redirect_problems_get_an_error_page_and_never_a_redirect() {
    let world = World::start().await;
    let client = world.app();
    let unserved = world.host.url(CLIENT_HOST, "/clients/missing.json");
    let pkce = Pkce::new();
    let base = |client_id: &str, redirect_uri: &str| {
        vec![
            ("response_type".to_owned(), "code".to_owned()),
            ("client_id".to_owned(), client_id.to_owned()),
            ("redirect_uri".to_owned(), redirect_uri.to_owned()),
            ("code_challenge".to_owned(), pkce.challenge.clone()),
            ("code_challenge_method".to_owned(), "S256".to_owned()),
            ("state".to_owned(), "s".to_owned()),
        ]
    };
    let attacker = "https://attacker.example/steal";
    let cases: Vec<(&str, Params, &str, &str)> = vec![
        (
            "unknown non-URL client",
            base("my-app", attacker),
            "invalid_client",
            "not registered",
        ),
        (
            "document not served",
            base(&unserved, attacker),
            "invalid_client",
            "CIMD-FETCH",
        ),
        (
            "unregistered redirect URI",
            base(&client.client_id, attacker),
            "invalid_request",
            "CIMD-REDIR-01",
        ),
        (
            "redirect URI prefix",
            base(&client.client_id, &format!("{}/more", client.redirect_uri)),
            "invalid_request",
            "CIMD-REDIR-01",
        ),
        (
            "missing client_id",
            base(&client.client_id, attacker)
                .into_iter()
                .filter(|(n, _)| n != "client_id")
                .collect(),
            "invalid_request",
            "client_id is missing",
        ),
        (
            "missing redirect_uri",
            base(&client.client_id, attacker)
                .into_iter()
                .filter(|(n, _)| n != "redirect_uri")
                .collect(),
            "invalid_request",
            "redirect_uri is missing",
        ),
        (
            "repeated client_id",
            [
                base(&client.client_id, attacker),
                vec![("client_id".to_owned(), "x".to_owned())],
            ]
            .concat(),
            "invalid_request",
            "repeated",
        ),
    ];
    for (name, params, error, mention) in cases {
        let response = world
            .browser
            .get(world.server.url("/authorize"))
            .query(&params)
            .send()
            .await
            .unwrap();
        let description = error_page(response, error).await;
        assert!(description.contains(mention), "{name}: {description}");
    }
}

#[tokio::test]
async fn the_redirect_errors_to_client_fault_sends_client_problems_to_the_presented_uri() {
    for (faults, redirects) in [
        (Faults::none(), false),
        (Faults::of([Fault::RedirectErrorsToClient]), true),
    ] {
        let world = World::start_with(|c| c.faults = faults).await;
        let client = world.app();
        let attacker = "https://attacker.example/steal";
        for client_id in ["my-app", client.client_id.as_str()] {
            let response = world
                .authorize(&[
                    ("response_type", "code"),
                    ("client_id", client_id),
                    ("redirect_uri", attacker),
                    ("state", "s"),
                ])
                .await;
            if redirects {
                let params = callback(&response, attacker);
                assert!(param(&params, "error").is_some(), "{params:?}");
            } else {
                assert_eq!(response.status(), StatusCode::BAD_REQUEST);
                assert!(response.headers().get("location").is_none());
            }
        }
    }
}

#[tokio::test]
async fn a_missing_pkce_challenge_is_sent_back_as_invalid_request() {
    let world = World::start().await;
    let client = world.app();
    let response = world
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", &client.redirect_uri),
            ("state", "s1"),
        ])
        .await;
    let params = callback(&response, &client.redirect_uri);
    assert_eq!(param(&params, "error"), Some("invalid_request"));
    assert!(
        param(&params, "error_description")
            .unwrap()
            .contains("PKCE-04")
    );
    assert_eq!(param(&params, "state"), Some("s1"));
    assert_eq!(param(&params, "iss"), Some(world.server.issuer()));
}

#[tokio::test]
async fn plain_or_unspecified_challenge_methods_and_malformed_challenges_are_refused() {
    let world = World::start().await;
    let client = world.app();
    let good = Pkce::new().challenge;
    for (method, challenge, mention) in [
        (Some("plain"), good.as_str(), "PKCE-04"),
        (None, good.as_str(), "PKCE-03"),
        (Some("S256"), "too-short", "PKCE-02"),
        (
            Some("S256"),
            "+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "PKCE-02",
        ),
    ] {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_challenge", challenge),
        ];
        params.extend(method.map(|m| ("code_challenge_method", m)));
        let response = world.authorize(&params).await;
        let params = callback(&response, &client.redirect_uri);
        assert_eq!(param(&params, "error"), Some("invalid_request"));
        assert!(
            param(&params, "error_description")
                .unwrap()
                .contains(mention),
            "{params:?}"
        );
    }
}

#[tokio::test]
async fn the_skip_pkce_fault_accepts_requests_without_a_challenge() {
    let world = World::start_with(|c| c.faults = Faults::of([Fault::SkipPkce])).await;
    let client = world.app();
    let response = world
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", &client.redirect_uri),
        ])
        .await;
    assert_eq!(
        server_support::location(&response).split('?').next(),
        Some("/login")
    );
}

#[tokio::test]
async fn request_problems_after_the_client_is_known_go_back_to_the_client() {
    let world = World::start_with(|c| {
        c.ephemeral_clients.scopes = ScopePolicy::List(vec!["read".to_owned()]);
    })
    .await;
    let client = world.app();
    let pkce = Pkce::new();
    for (extra, error, mention) in [
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
            "BCP-05",
        ),
        (vec![("scope", "read admin")], "invalid_scope", "CUR-03"),
        (
            vec![("resource", "https://mcp.example/#frag")],
            "invalid_target",
            "RI-01",
        ),
        (vec![("resource", "/relative")], "invalid_target", "RI-01"),
        (
            vec![("response_mode", "fragment")],
            "invalid_request",
            "response_mode",
        ),
    ] {
        let mut params = vec![
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "st"),
        ];
        if !extra.iter().any(|(n, _)| *n == "response_type") {
            params.push(("response_type", "code"));
        }
        params.extend(extra);
        let response = world.authorize(&params).await;
        let params = callback(&response, &client.redirect_uri);
        assert_eq!(param(&params, "error"), Some(error), "{params:?}");
        assert!(
            param(&params, "error_description")
                .unwrap()
                .contains(mention),
            "{params:?}"
        );
        assert_eq!(param(&params, "state"), Some("st"));
    }
}

#[tokio::test]
async fn the_skip_scope_policy_fault_grants_scopes_outside_the_policy() {
    for (faults, refused) in [
        (Faults::none(), true),
        (Faults::of([Fault::SkipScopePolicy]), false),
    ] {
        let world = World::start_with(|c| {
            c.ephemeral_clients.scopes = ScopePolicy::List(vec!["read".to_owned()]);
            c.faults = faults;
        })
        .await;
        let client = world.app();
        let response = world
            .authorize_client(&client, &Pkce::new(), &[("scope", "admin")])
            .await;
        let error = server_support::callback_param(&response, "error");
        assert_eq!(error.as_deref() == Some("invalid_scope"), refused);
    }
}

#[tokio::test]
async fn a_client_without_the_code_grant_is_unauthorized() {
    let world = World::start().await;
    let client = world.client(
        "/clients/cc.json",
        json!({ "grant_types": ["refresh_token"] }),
    );
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let params = callback(&response, &client.redirect_uri);
    assert_eq!(param(&params, "error"), Some("unauthorized_client"));
}

#[tokio::test]
async fn a_document_withdrawn_after_the_cache_expires_stops_new_authorizations() {
    let world = World::start_with(|c| c.ephemeral_clients.cache.max_ttl_secs = 0).await;
    let client = world.app();
    let first = world.authorize_client(&client, &Pkce::new(), &[]).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    world
        .host
        .mount(CLIENT_HOST, "/clients/app.json", Route::status(404));
    let second = world.authorize_client(&client, &Pkce::new(), &[]).await;
    error_page(second, "invalid_client").await;
}
