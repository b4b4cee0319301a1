//! RFC 8414 discovery and the JWKS over the wire, including issuers with a path and HTTPS.

#![allow(clippy::unwrap_used)]

mod server_support;

use reference_as::cimd::ScopePolicy;
use reference_as::{Fault, Faults};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::{AS_HOST, Pkce, World, plain};

async fn metadata(world: &World) -> Value {
    let response = plain()
        .get(world.server.metadata_url())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "AS-META-06: metadata is JSON"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_discovery_document_announces_cimd_pkce_s256_and_iss_without_empty_arrays() {
    let world = World::start().await;
    let doc = metadata(&world).await;
    let issuer = world.server.issuer();
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(doc["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert_eq!(doc["client_id_metadata_document_supported"], json!(true));
    assert_eq!(
        doc["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    // The policy allows all scopes, so there is no list to publish.
    assert!(doc.get("scopes_supported").is_none());
    // AS-META-07: no member is an empty array.
    for (name, value) in doc.as_object().unwrap() {
        assert_ne!(value, &json!([]), "{name} is an empty array");
    }
}

#[tokio::test]
async fn a_scope_list_in_the_policy_is_published_as_scopes_supported() {
    let world = World::start_with(|c| {
        c.ephemeral_clients.scopes =
            ScopePolicy::List(vec!["mcp:read".to_owned(), "mcp:write".to_owned()]);
    })
    .await;
    assert_eq!(
        metadata(&world).await["scopes_supported"],
        json!(["mcp:read", "mcp:write"])
    );
}

#[tokio::test]
async fn the_hide_cimd_support_fault_drops_the_discovery_flag() {
    let world = World::start_with(|c| c.faults = Faults::of([Fault::HideCimdSupport])).await;
    let doc = metadata(&world).await;
    assert!(doc.get("client_id_metadata_document_supported").is_none());
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
}

#[tokio::test]
async fn an_issuer_with_a_path_serves_metadata_at_the_rfc_8414_location_and_endpoints_below_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let world = World::start_with(|c| {
        c.listen = ([127, 0, 0, 1], port).into();
        c.issuer = Some(format!("http://127.0.0.1:{port}/tenant1/"));
    })
    .await;
    let issuer = format!("http://127.0.0.1:{port}/tenant1");
    assert_eq!(world.server.issuer(), issuer);
    assert_eq!(
        world.server.metadata_url(),
        format!("http://127.0.0.1:{port}/.well-known/oauth-authorization-server/tenant1")
    );
    let doc = metadata(&world).await;
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
    let jwks = plain().get(format!("{issuer}/jwks")).send().await.unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
    let root = plain()
        .get(format!(
            "http://127.0.0.1:{port}/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_jwks_publishes_one_p256_signing_key_with_a_thumbprint_kid() {
    let world = World::start().await;
    let jwks: Value = plain()
        .get(world.server.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["use"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("sig"))
    );
    assert!(key.get("d").is_none(), "no private key material");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
    assert_eq!(
        key["kid"].as_str(),
        Some(
            jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap()
                .as_str()
        )
    );
}

#[tokio::test]
async fn with_tls_the_issuer_is_https_and_cookies_are_secure() {
    let world = World::start_tls().await;
    let issuer = world.server.issuer().to_owned();
    assert_eq!(
        issuer,
        format!("https://{AS_HOST}:{}", world.server.addr().port())
    );
    let doc: Value = world
        .browser
        .get(world.server.metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], issuer);

    let client = world.app();
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let login = world.follow(&response).await.text().await.unwrap();
    let signed_in = world.sign_in_by_mail(&login, server_support::EMAIL).await;
    let session = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(
        session.starts_with("as_session=") && session.contains("; Secure"),
        "{session}"
    );
}

#[tokio::test]
async fn the_landing_page_names_the_issuer_and_the_faults_switched_on() {
    let world = World::start_with(|c| c.faults = Faults::of([Fault::OmitIss])).await;
    let page = plain()
        .get(world.server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(world.server.issuer()));
    assert!(page.contains("omit-iss"));
}
