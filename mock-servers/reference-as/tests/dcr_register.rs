//! RFC 7591 registration over the wire: initial access tokens (issuance, single use under
//! concurrency, every refusal), the client information response and its defaults, every
//! metadata rule with its error code and requirement, and the faults that break them.

#![allow(clippy::unwrap_used, reason = "tests")]

mod dcr_support;
mod server_support;

use std::sync::Arc;

use dcr_support::{
    Answer, LOOPBACK, REGISTRAR, REGISTRAR_SECRET, client_credentials, iat, register, registered,
    start, token_basic, web_client,
};
use reference_as::Fault;
use reference_as::dcr::RegistrationAccess;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::{Pkce, World};

async fn open(faults: &[Fault]) -> World {
    let faults = faults.to_vec();
    start(move |c| {
        c.registration.access = RegistrationAccess::Open;
        c.faults = reference_as::Faults::of(faults);
    })
    .await
}

async fn discovery(world: &World) -> Value {
    world
        .api
        .get(world.server.metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_registration_endpoint_is_advertised_and_served_only_when_enabled() {
    let off = World::start().await;
    assert!(discovery(&off).await.get("registration_endpoint").is_none());
    let answer = register(&off, None, &web_client()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);

    let on = start(|_| {}).await;
    assert_eq!(
        discovery(&on).await["registration_endpoint"],
        on.server.url("/register")
    );
}

#[tokio::test]
async fn discovery_lists_the_methods_and_grants_registered_clients_may_use() {
    let world = World::start_with(|c| {
        c.registration.enabled = true;
        c.registration.access = RegistrationAccess::Open;
    })
    .await;
    let metadata = discovery(&world).await;
    let listed = |name: &str, value: &str| {
        metadata[name]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == value)
    };
    assert!(listed(
        "token_endpoint_auth_methods_supported",
        "client_secret_post"
    ));
    assert!(listed(
        "token_endpoint_auth_methods_supported",
        "client_secret_basic"
    ));
    assert!(listed("grant_types_supported", "client_credentials"));
}

#[tokio::test]
async fn an_initial_access_token_registers_one_client_and_is_refused_afterwards() {
    let world = start(|_| {}).await;
    let (status, body) = token_basic(
        &world,
        REGISTRAR,
        REGISTRAR_SECRET,
        &[("grant_type", "client_credentials"), ("scope", "dcr")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "dcr");
    assert_eq!(body["expires_in"], 300);
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();

    let first = register(&world, Some(token), &web_client()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.header("cache-control"), Some("no-store"));
    let again = register(&world, Some(token), &web_client()).await;
    again.assert_invalid_token("DCR-02");
    assert!(
        again.body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
}

#[tokio::test]
async fn missing_unknown_and_expired_initial_access_tokens_get_401_invalid_token() {
    let world = start(|c| c.registration.initial_access_token_ttl_secs = 0).await;
    register(&world, None, &web_client())
        .await
        .assert_invalid_token("DCR-02");
    register(&world, Some("made-up"), &web_client())
        .await
        .assert_invalid_token("DCR-02");
    let expired = iat(&world).await;
    let answer = register(&world, Some(&expired), &web_client()).await;
    answer.assert_invalid_token("DCR-02");
    assert!(
        answer.body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn the_registration_scope_is_asked_alone_and_only_by_configured_clients_that_hold_it() {
    let world = start(|_| {}).await;
    let (status, body) = token_basic(
        &world,
        REGISTRAR,
        REGISTRAR_SECRET,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "dcr backend"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .ends_with("(DCR-02)")
    );

    // Without dcr the registrar gets an ordinary access token.
    let (status, body) = token_basic(
        &world,
        REGISTRAR,
        REGISTRAR_SECRET,
        &[("grant_type", "client_credentials"), ("scope", "backend")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["access_token"].as_str().unwrap().contains('.'),
        "a JWT"
    );

    // A dynamically registered client cannot mint initial access tokens, whatever its scope.
    let mut body = web_client();
    body["scope"] = json!("dcr");
    let info = registered(&world, &body).await;
    let (status, body) = client_credentials(&world, &info, "dcr").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .ends_with("(CUR-07)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_sixteen_concurrent_registrations_with_one_token_exactly_one_succeeds() {
    let world = Arc::new(start(|_| {}).await);
    let token = Arc::new(iat(&world).await);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (world, token) = (world.clone(), token.clone());
            tokio::spawn(async move { register(&world, Some(&token), &web_client()).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        if answer.status == StatusCode::CREATED {
            created += 1;
        } else {
            answer.assert_invalid_token("DCR-02");
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn the_response_holds_every_registered_member_a_fresh_client_id_and_a_secret() {
    let world = start(|_| {}).await;
    let mut body = web_client();
    body["client_id"] = json!("https://victim.example/app.json");
    body["client_name#ja-Jpan-JP"] = json!("ウェブアプリ");
    body["logo_uri"] = json!("https://static.app.example/logo.png");
    body["contacts"] = json!(["ops@app.example"]);
    body["software_id"] = json!("not-a-template");
    body["software_version"] = json!("1.2");
    body["unknown_member"] = json!(42);
    let info = registered(&world, &body).await;
    let client_id = info.str("client_id");
    // DCR-19: minted by the server, never a URL.
    assert!(
        client_id.starts_with("dcr-") && !client_id.contains("://"),
        "{client_id}"
    );
    assert!(info.body["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert!(info.str("client_secret").len() >= 43);
    assert_eq!(info.body["client_secret_expires_at"], 0);
    assert_eq!(
        info.str("registration_client_uri"),
        world.server.url(&format!("/register/{client_id}"))
    );
    assert!(info.str("registration_access_token").len() >= 43);
    for member in [
        "client_name",
        "client_name#ja-Jpan-JP",
        "redirect_uris",
        "grant_types",
        "token_endpoint_auth_method",
        "scope",
        "logo_uri",
        "contacts",
        "software_id",
        "software_version",
    ] {
        assert_eq!(info.body[member], body[member], "{member}");
    }
    assert_eq!(info.body["response_types"], json!(["code"]));
    assert!(info.body.get("unknown_member").is_none());

    // The new client works at once.
    let (status, token) = client_credentials(&world, &info, "read").await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["scope"], "read");
    let (status, token) = client_credentials(&world, &info, "admin").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(token["error"], "invalid_scope");
}

#[tokio::test]
async fn omitted_members_get_the_rfc_defaults_under_open_registration() {
    let world = open(&[]).await;
    let answer = register(&world, None, &json!({ "redirect_uris": [LOOPBACK] })).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    // DCR-12, DCR-13.
    assert_eq!(answer.body["grant_types"], json!(["authorization_code"]));
    assert_eq!(answer.body["response_types"], json!(["code"]));
    assert_eq!(
        answer.body["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert!(answer.body.get("client_secret").is_some());
}

#[tokio::test]
async fn a_public_client_registers_and_completes_the_code_flow() {
    let world = open(&[]).await;
    let answer = register(
        &world,
        None,
        &json!({
            "redirect_uris": [LOOPBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert!(answer.body.get("client_secret").is_none());
    assert!(answer.body.get("client_secret_expires_at").is_none());
    let client = server_support::Client {
        client_id: answer.str("client_id").to_owned(),
        redirect_uri: LOOPBACK.to_owned(),
    };
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;
    let (status, tokens) = world.redeem(&client, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
}

#[tokio::test]
async fn a_form_encoded_registration_is_refused_with_400() {
    let world = open(&[]).await;
    let send = |world: &World| {
        world
            .api
            .post(world.server.url("/register"))
            .form(&[("redirect_uris", LOOPBACK), ("client_name", "Form")])
            .send()
    };
    let answer = Answer::of(send(&world).await.unwrap()).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid_request", "DCR-01");

    let faulty = open(&[Fault::RegistrationAcceptsForm]).await;
    let answer = Answer::of(send(&faulty).await.unwrap()).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["redirect_uris"], json!([LOOPBACK]));
}

/// Each malformed body and the error it gets: code and requirement.
fn refusals() -> Vec<(Value, &'static str, &'static str)> {
    let with = |changes: Value| {
        let mut body = web_client();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(name);
            } else {
                body[name] = value.clone();
            }
        }
        body
    };
    let jwks = json!({ "keys": [{ "kty": "EC", "crv": "P-256", "kid": "a",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] });
    vec![
        (
            with(json!({ "redirect_uris": ["http://app.example/cb"] })),
            "invalid_redirect_uri",
            "DCR-07",
        ),
        (
            with(json!({ "redirect_uris": ["https://app.example/cb#frag"] })),
            "invalid_redirect_uri",
            "DCR-07",
        ),
        (
            with(json!({ "redirect_uris": ["/callback"] })),
            "invalid_redirect_uri",
            "DCR-07",
        ),
        (
            with(json!({ "redirect_uris": null })),
            "invalid_redirect_uri",
            "DCR-11",
        ),
        (
            with(json!({ "grant_types": ["password"] })),
            "invalid_client_metadata",
            "DCR-08",
        ),
        (
            with(json!({ "token_endpoint_auth_method": "tls_client_auth" })),
            "invalid_client_metadata",
            "DCR-08",
        ),
        (
            with(json!({ "response_types": ["token"] })),
            "invalid_client_metadata",
            "DCR-14",
        ),
        (
            with(json!({ "grant_types": ["client_credentials"], "response_types": ["code"] })),
            "invalid_client_metadata",
            "DCR-14",
        ),
        (
            with(
                json!({ "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks, "jwks_uri": "https://app.example/jwks" }),
            ),
            "invalid_client_metadata",
            "DCR-15",
        ),
        (
            with(json!({ "client_name#not_a_tag": "x" })),
            "invalid_client_metadata",
            "DCR-16",
        ),
        (
            with(json!({ "logo_uri": "https://elsewhere.example/logo.png" })),
            "invalid_client_metadata",
            "DCR-20",
        ),
        (
            with(json!({ "client_name": 7 })),
            "invalid_client_metadata",
            "RFC 7591 §2",
        ),
        (
            with(json!({ "redirect_uris": "https://app.example/cb" })),
            "invalid_redirect_uri",
            "RFC 7591 §2",
        ),
        (
            with(json!({ "software_statement": "not.a.jws" })),
            "invalid_software_statement",
            "DCR-09",
        ),
    ]
}

#[tokio::test]
async fn every_malformed_registration_gets_400_with_the_rfc_7591_code_and_the_rule() {
    let world = open(&[]).await;
    for (body, error, rule) in refusals() {
        let answer = register(&world, None, &body).await;
        assert_eq!(answer.header("content-type"), Some("application/json"));
        answer.assert_error(StatusCode::BAD_REQUEST, error, rule);
    }
    let part = |v: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let statement = format!(
        "{}.{}.c2ln",
        part(json!({ "alg": "ES256" })),
        part(json!({ "iss": "https://statements.example" }))
    );
    let mut body = web_client();
    body["software_statement"] = json!(statement);
    register(&world, None, &body).await.assert_error(
        StatusCode::BAD_REQUEST,
        "unapproved_software_statement",
        "DCR-10",
    );
}

#[tokio::test]
async fn the_error_status_fault_answers_refusals_with_200() {
    let world = open(&[Fault::RegistrationErrorStatus200]).await;
    let mut body = web_client();
    body["grant_types"] = json!(["password"]);
    let answer = register(&world, None, &body).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["error"], "invalid_client_metadata");
}

#[tokio::test]
async fn registration_faults_each_break_their_rule() {
    let world = open(&[
        Fault::RegistrationCreatedStatus200,
        Fault::NoClientSecretExpiry,
        Fault::AcceptClientChosenClientId,
        Fault::NoRegistrationAccessToken,
    ])
    .await;
    let mut body = web_client();
    body["client_id"] = json!("https://victim.example/app.json");
    let answer = register(&world, None, &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.get("client_secret").is_some());
    assert!(answer.body.get("client_secret_expires_at").is_none());
    assert_eq!(answer.body["client_id"], "https://victim.example/app.json");
    assert!(answer.body.get("registration_access_token").is_none());
    assert!(answer.body.get("registration_client_uri").is_none());

    let lenient = open(&[Fault::AcceptBadRedirectUri, Fault::AcceptJwksAndJwksUri]).await;
    for (body, _, rule) in refusals() {
        if matches!(rule, "DCR-07" | "DCR-15") {
            let answer = register(&lenient, None, &body).await;
            assert_eq!(
                answer.status,
                StatusCode::CREATED,
                "{rule}: {}",
                answer.body
            );
        }
    }
}

#[tokio::test]
async fn the_initial_token_faults_register_without_a_token_and_reuse_one() {
    let world = start(|c| {
        c.faults = reference_as::Faults::of([Fault::RegistrationWithoutInitialToken]);
    })
    .await;
    let answer = register(&world, None, &web_client()).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);

    let world = start(|c| {
        c.faults = reference_as::Faults::of([Fault::ReusableInitialAccessToken]);
    })
    .await;
    let token = iat(&world).await;
    for _ in 0..3 {
        let answer = register(&world, Some(&token), &web_client()).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
}

#[tokio::test]
async fn over_https_registration_and_management_use_https_uris() {
    let ca = metadata_host::TestCa::generate("dcr https test CA").unwrap();
    let mut config = reference_as::Config::default();
    "as.example".clone_into(&mut config.public_host);
    config.registration.enabled = true;
    config.registration.access = RegistrationAccess::Open;
    let server = reference_as::spawn(config, Some(ca.server_config()))
        .await
        .unwrap();
    let api = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap()])
        .resolve("as.example", server.addr())
        .no_proxy()
        .build()
        .unwrap();
    let metadata: Value = api
        .get(server.metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = metadata["registration_endpoint"].as_str().unwrap();
    assert_eq!(
        endpoint,
        format!("https://as.example:{}/register", server.addr().port())
    );
    let response = api
        .post(endpoint)
        .json(&json!({ "redirect_uris": [LOOPBACK] }))
        .send()
        .await
        .unwrap();
    let info = Answer::of(response).await;
    assert_eq!(info.status, StatusCode::CREATED, "{}", info.body);
    let uri = info.str("registration_client_uri");
    assert!(uri.starts_with(&format!("{endpoint}/dcr-")), "{uri}");
    let read = api
        .get(uri)
        .bearer_auth(info.str("registration_access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
}
