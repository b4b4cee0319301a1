//! Pre-registered clients over the wire: `[[clients]]` with `client_secret_basic`,
//! `client_secret_post`, `private_key_jwt` and `none`, at `/authorize` and `/token`, with secrets
//! given in plaintext or already hashed.

#![allow(clippy::unwrap_used)]

mod client_auth_support;
mod server_support;

use base64::Engine;
use client_auth_support::{A, AssertionBuilder, JWT_BEARER, STRANGER, jwks};
use reference_as::client_auth::{SecretHash, TokenAuthMethod};
use reference_as::config::{ClientConfig, ClientSecret, Config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::{Pkce, World, plain};

const SECRET: &str = "correct horse battery staple";
const REDIRECT: &str = "https://backend.example/callback";

fn client(id: &str, method: TokenAuthMethod) -> ClientConfig {
    ClientConfig {
        client_id: id.to_owned(),
        client_name: Some(format!("Configured {id}")),
        token_endpoint_auth_method: method,
        client_secret: None,
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        redirect_uris: vec![REDIRECT.to_owned()],
        grant_types: vec![
            "authorization_code".to_owned(),
            "refresh_token".to_owned(),
            "client_credentials".to_owned(),
        ],
        scope: Some("read write".to_owned()),
    }
}

fn with_secret(mut config: ClientConfig, secret: &str) -> ClientConfig {
    config.client_secret = Some(ClientSecret(secret.to_owned()));
    config
}

async fn world() -> World {
    World::start_with(|c: &mut Config| {
        c.clients = vec![
            with_secret(
                client("basic-app", TokenAuthMethod::ClientSecretBasic),
                SECRET,
            ),
            with_secret(
                client("post-app", TokenAuthMethod::ClientSecretPost),
                &SecretHash::sha256_of(SECRET).encode(),
            ),
            ClientConfig {
                jwks: Some(jwks(&[A])),
                ..client("keyed-app", TokenAuthMethod::PrivateKeyJwt)
            },
            ClientConfig {
                grant_types: vec!["authorization_code".to_owned()],
                ..client("public-app", TokenAuthMethod::None)
            },
        ];
    })
    .await
}

/// `POST /token` with HTTP Basic credentials; status, `WWW-Authenticate` and body.
async fn basic(
    world: &World,
    id: &str,
    secret: &str,
    params: &[(&str, &str)],
) -> (StatusCode, bool, Value) {
    let response = plain()
        .post(world.server.url("/token"))
        .basic_auth(id, Some(secret))
        .form(params)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let challenge = response.headers().contains_key("www-authenticate");
    (status, challenge, response.json().await.unwrap())
}

#[tokio::test]
async fn secret_clients_authenticate_only_the_way_they_registered() {
    let world = world().await;
    let cc = [("grant_type", "client_credentials")];
    let (status, _, body) = basic(&world, "basic-app", SECRET, &cc).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = payload(body["access_token"].as_str().unwrap());
    assert_eq!(
        (claims["sub"].as_str(), claims["client_id"].as_str()),
        (Some("basic-app"), Some("basic-app"))
    );

    let (status, challenge, body) = basic(&world, "basic-app", "wrong", &cc).await;
    assert_eq!(
        (status, challenge),
        (StatusCode::UNAUTHORIZED, true),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("wrong")
    );

    // A client_secret_post client may not use HTTP Basic, nor the other way round.
    let (status, _, body) = basic(&world, "post-app", SECRET, &cc).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = world
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "basic-app"),
            ("client_secret", SECRET),
        ])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = world
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "post-app"),
            ("client_secret", SECRET),
            ("scope", "read"),
        ])
        .await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (StatusCode::OK, Some("read")),
        "{body}"
    );

    // Without credentials a confidential client gets nothing; a public one no client_credentials.
    let (status, body) = world
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "basic-app"),
        ])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = world
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "public-app"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
    let (status, body) = world
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

#[tokio::test]
async fn a_configured_key_client_authenticates_with_assertions_for_its_inline_keys() {
    let world = world().await;
    let issuer = world.server.issuer();
    let (status, body) = send(&world, AssertionBuilder::new(A, "keyed-app", issuer).sign()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(
        &world,
        AssertionBuilder::new(STRANGER, "keyed-app", issuer)
            .kid(Some("a"))
            .sign(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // A secret client cannot switch to assertions.
    let (status, body) = send(&world, AssertionBuilder::new(A, "basic-app", issuer).sign()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("client_secret_basic")
    );
}

#[tokio::test]
async fn a_configured_client_signs_users_in_at_authorize_and_redeems_its_code_with_its_secret() {
    let world = world().await;
    let app = server_support::Client {
        client_id: "basic-app".to_owned(),
        redirect_uri: REDIRECT.to_owned(),
    };
    let pkce = Pkce::new();
    let code = world.code_for(&app, &pkce, &[("scope", "read")]).await;
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    // Without its secret the code is not redeemed, and not spent either.
    let (status, body) = world
        .token(&[redeem.as_slice(), &[("client_id", "basic-app")]].concat())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _, tokens) = basic(&world, "basic-app", SECRET, &redeem).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "read");
    let (status, _, body) = basic(
        &world,
        "basic-app",
        SECRET,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Unregistered redirect URIs and scopes are refused before anything else.
    let response = world
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "basic-app"),
            ("redirect_uri", "https://backend.example/other"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = world
        .authorize_client(&app, &pkce, &[("scope", "admin")])
        .await;
    let params = server_support::callback(&response, REDIRECT);
    assert_eq!(
        server_support::param(&params, "error"),
        Some("invalid_scope")
    );
}

#[tokio::test]
async fn discovery_lists_the_methods_and_grants_of_the_configured_clients() {
    let world = world().await;
    let meta: Value = world
        .api
        .get(world.server.metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        json!([
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        meta["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert!(meta["token_endpoint_auth_signing_alg_values_supported"].is_array());
}

#[tokio::test]
async fn configured_clients_that_could_be_mistaken_or_misused_stop_the_server_from_starting() {
    let bad = [
        with_secret(
            client("https://app.example/c", TokenAuthMethod::ClientSecretBasic),
            SECRET,
        ),
        client("no-secret", TokenAuthMethod::ClientSecretBasic),
        ClientConfig {
            jwks: Some(json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0" }] })),
            ..client("symmetric", TokenAuthMethod::PrivateKeyJwt)
        },
        client("public-cc", TokenAuthMethod::None),
    ];
    for config in bad {
        let id = config.client_id.clone();
        let full = Config {
            clients: vec![config],
            ..Config::default()
        };
        let error = reference_as::spawn(full, None).await.unwrap_err();
        assert!(
            error.to_string().contains(&format!("{id:?}")),
            "{id}: {error}"
        );
    }
    let twice = Config {
        clients: vec![
            with_secret(client("twin", TokenAuthMethod::ClientSecretBasic), SECRET),
            with_secret(client("twin", TokenAuthMethod::ClientSecretPost), SECRET),
        ],
        ..Config::default()
    };
    assert!(twice.validate().unwrap_err().to_string().contains("twice"));
}

#[test]
fn clients_parse_from_the_config_file_with_their_keys_inline() {
    let config = Config::from_toml_str(
        r#"
        [[clients]]
        client_id = "backend"
        token_endpoint_auth_method = "private_key_jwt"
        grant_types = ["client_credentials"]
        jwks = { keys = [{ kty = "EC", crv = "P-256", x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", kid = "k1" }] }

        [client_auth]
        assertion_audience = "legacy"
        "#,
    )
    .unwrap();
    config.validate().unwrap();
    assert_eq!(
        config.clients[0].jwks.as_ref().unwrap()["keys"][0]["kid"],
        "k1"
    );
    let text = config.to_toml().unwrap();
    assert_eq!(Config::from_toml_str(&text).unwrap(), config);
    assert!(
        format!(
            "{:?}",
            with_secret(client("x", TokenAuthMethod::ClientSecretPost), SECRET)
        )
        .contains("redacted")
    );
}

/// `grant_type=client_credentials` authenticated by `jwt`.
async fn send(world: &World, jwt: String) -> (StatusCode, Value) {
    world
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
        ])
        .await
}

/// The payload of a compact JWT, unverified.
fn payload(jwt: &str) -> Value {
    let segment = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
