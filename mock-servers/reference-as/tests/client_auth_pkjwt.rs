//! private_key_jwt over the wire: ephemeral clients whose documents publish keys (inline or at a
//! `jwks_uri` on the metadata host) authenticate with assertions signed by the committed test
//! keys; every assertion rule is broken once and must be refused with `invalid_client`, and
//! every fault lets exactly its own broken assertion through.

#![allow(clippy::unwrap_used)]

mod client_auth_support;
mod server_support;

use client_auth_support::{
    A, AssertionBuilder, B, ED25519, JWT_BEARER, P384, RSA, STRANGER, TestKey, jwks, now, tampered,
};
use jsonwebtoken::Algorithm;
use metadata_host::Route;
use reference_as::cimd::AuthMethod;
use reference_as::config::{AssertionAudience, Config};
use reference_as::{Fault, Faults};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::{CLIENT_HOST, Pkce, World};

/// Ephemeral clients may use private_key_jwt and client_credentials.
fn keyed_policy(config: &mut Config) {
    config.ephemeral_clients.auth_methods = vec![AuthMethod::None, AuthMethod::PrivateKeyJwt];
    config
        .ephemeral_clients
        .capabilities
        .push("client_credentials".to_owned());
}

async fn world() -> World {
    World::start_with(keyed_policy).await
}

async fn world_with(adjust: impl FnOnce(&mut Config)) -> World {
    World::start_with(|c| {
        keyed_policy(c);
        adjust(c);
    })
    .await
}

/// Mounts a keyed client at `path` publishing `keys` inline, with `changes`; its client_id.
fn keyed_client(world: &World, path: &str, keys: &[TestKey], changes: &Value) -> String {
    let mut document = json!({
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks(keys),
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    });
    for (name, value) in changes.as_object().unwrap() {
        document[name] = value.clone();
    }
    world.client(path, document).client_id
}

/// An assertion for `client_id` at `world`'s issuer, signed with `key`.
fn assertion(world: &World, key: TestKey, client_id: &str) -> AssertionBuilder {
    AssertionBuilder::new(key, client_id, world.server.issuer())
}

/// `grant_type=client_credentials` with `jwt` as the assertion and `extra` parameters.
async fn grant(world: &World, jwt: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut params = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", jwt),
    ];
    params.extend_from_slice(extra);
    world.token(&params).await
}

/// Asserts a 401 `invalid_client` whose description ends with `(requirement)`.
#[track_caller]
fn assert_refused(answer: &(StatusCode, Value), requirement: &str) {
    let (status, body) = answer;
    assert_eq!(
        (*status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.ends_with(&format!("({requirement})")),
        "expected a refusal naming {requirement}: {description}"
    );
}

#[tokio::test]
async fn a_confidential_client_authenticates_on_every_request_and_a_refusal_spends_nothing() {
    let world = world().await;
    let client_id = keyed_client(&world, "/c/keyed.json", &[A], &json!({}));
    let client = server_support::Client {
        client_id: client_id.clone(),
        redirect_uri: format!("https://{CLIENT_HOST}/callback"),
    };
    let pkce = Pkce::new();
    let code = world.code_for(&client, &pkce, &[]).await;

    // CIMD-AUTH-02: no assertion, no tokens, but the code survives.
    let bare = world.redeem(&client, &code, &pkce).await;
    assert_refused(&bare, "CIMD-AUTH-02");
    let jwt = assertion(&world, A, &client_id).sign();
    let (status, tokens) = world
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uri),
            ("client_id", &client_id),
            ("code_verifier", &pkce.verifier),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    let bare = world.refresh(&client, refresh_token).await;
    assert_refused(&bare, "CIMD-AUTH-02");
    let jwt = assertion(&world, A, &client_id).sign();
    let (status, body) = world
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn client_credentials_gives_the_client_a_token_about_itself_and_no_refresh_token() {
    let world = world().await;
    let client_id = keyed_client(&world, "/c/service.json", &[A], &json!({ "scope": "read" }));
    let jwt = assertion(&world, A, &client_id).sign();
    let (status, body) = grant(&world, &jwt, &[("scope", "read")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["scope"], "read");
    let claims = payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], client_id.as_str());
    assert_eq!(claims["client_id"], client_id.as_str());

    let jwt = assertion(&world, A, &client_id).sign();
    let (status, body) = grant(&world, &jwt, &[("scope", "write")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
}

#[tokio::test]
async fn client_credentials_needs_a_confidential_client_and_the_policy_capability() {
    let world = world().await;
    let public = world
        .client(
            "/c/public.json",
            json!({ "grant_types": ["authorization_code", "client_credentials"] }),
        )
        .client_id;
    let (status, body) = world
        .token(&[("grant_type", "client_credentials"), ("client_id", &public)])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client")),
        "{body}"
    );

    let strict = World::start_with(|c| {
        c.ephemeral_clients.auth_methods = vec![AuthMethod::None, AuthMethod::PrivateKeyJwt];
    })
    .await;
    let client_id = keyed_client(&strict, "/c/service.json", &[A], &json!({}));
    let jwt = assertion(&strict, A, &client_id).sign();
    let (status, body) = grant(&strict, &jwt, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("CUR-03")
    );
}

#[tokio::test]
async fn every_allowed_algorithm_verifies_and_none_and_hmac_are_refused() {
    let world = world().await;
    let client_id = keyed_client(&world, "/c/all.json", &[A, P384, ED25519, RSA], &json!({}));
    for (key, alg) in [
        (A, Algorithm::ES256),
        (P384, Algorithm::ES384),
        (ED25519, Algorithm::EdDSA),
        (RSA, Algorithm::RS256),
        (RSA, Algorithm::PS256),
    ] {
        let jwt = assertion(&world, key, &client_id).alg(alg).sign();
        let (status, body) = grant(&world, &jwt, &[]).await;
        assert_eq!(status, StatusCode::OK, "{alg:?}: {body}");
    }
    let base = assertion(&world, A, &client_id);
    assert_refused(&grant(&world, &base.unsigned(), &[]).await, "PKJWT-10");
    let confused = assertion(&world, A, &client_id).hmac_with_public_key();
    assert_refused(&grant(&world, &confused, &[]).await, "PKJWT-10");
    // An ES384 signature cannot come from a P-256 key, whatever the kid says.
    let mismatched = assertion(&world, P384, &client_id).kid(Some("a")).sign();
    assert_refused(&grant(&world, &mismatched, &[]).await, "PKJWT-10");
}

#[tokio::test]
async fn a_signature_from_another_key_or_a_tampered_one_is_refused() {
    let world = world().await;
    let client_id = keyed_client(&world, "/c/keyed.json", &[A], &json!({}));
    let stranger = assertion(&world, STRANGER, &client_id)
        .kid(Some("a"))
        .sign();
    assert_refused(&grant(&world, &stranger, &[]).await, "CIMD-AUTH-03");
    let good = assertion(&world, A, &client_id).sign();
    assert_refused(&grant(&world, &tampered(&good), &[]).await, "CIMD-AUTH-03");
    // Without a kid every usable key is tried.
    let no_kid = assertion(&world, A, &client_id).kid(None).sign();
    assert_eq!(grant(&world, &no_kid, &[]).await.0, StatusCode::OK);
    // The refusals spent no jti: the tampered assertion's own jti is still good.
    assert_eq!(grant(&world, &good, &[]).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_assertion_type_must_be_exact_and_the_assertion_a_single_jwt() {
    let world = world().await;
    let client_id = keyed_client(&world, "/c/keyed.json", &[A], &json!({}));
    let jwt = assertion(&world, A, &client_id).sign();
    let wrong_type = world
        .token(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &jwt),
        ])
        .await;
    assert_refused(&wrong_type, "PKJWT-01");
    let two = format!("{jwt},{jwt}");
    assert_refused(&grant(&world, &two, &[]).await, "PKJWT-01");
    let no_type = world
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_assertion", &jwt),
        ])
        .await;
    assert_refused(&no_type, "PKJWT-01");
    // RFC 6749 §2.3: one method per request.
    let (status, body) = grant(&world, &jwt, &[("client_secret", "x")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    assert_eq!(grant(&world, &jwt, &[]).await.0, StatusCode::OK);
}

#[tokio::test]
async fn iss_sub_and_the_client_id_parameter_name_one_client() {
    let world = world().await;
    let one = keyed_client(&world, "/c/one.json", &[A], &json!({}));
    let two = keyed_client(&world, "/c/two.json", &[A], &json!({}));
    let for_two = assertion(&world, A, &two).sign();
    assert_refused(
        &grant(&world, &for_two, &[("client_id", &one)]).await,
        "PKJWT-02",
    );
    let foreign_iss = assertion(&world, A, &one).claim("iss", json!(two)).sign();
    assert_refused(
        &grant(&world, &foreign_iss, &[("client_id", &one)]).await,
        "PKJWT-03",
    );
    let foreign_sub = assertion(&world, A, &one).claim("sub", json!(two)).sign();
    assert_refused(
        &grant(&world, &foreign_sub, &[("client_id", &one)]).await,
        "PKJWT-04",
    );
    let no_iss = assertion(&world, A, &one).claim("iss", Value::Null).sign();
    assert_refused(&grant(&world, &no_iss, &[]).await, "PKJWT-03");
    let no_sub = assertion(&world, A, &one).claim("sub", Value::Null).sign();
    assert_refused(&grant(&world, &no_sub, &[]).await, "PKJWT-04");
    // client_id may be left out; when sent it may repeat the assertion's client.
    let jwt = assertion(&world, A, &one).sign();
    assert_eq!(grant(&world, &jwt, &[]).await.0, StatusCode::OK);
    let jwt = assertion(&world, A, &one).sign();
    assert_eq!(
        grant(&world, &jwt, &[("client_id", &one)]).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_audience_is_the_issuer_alone_unless_the_legacy_mode_is_configured() {
    /// The `aud` for (issuer, token endpoint), and whether strict and legacy mode accept it.
    type Case<'a> = (&'a dyn Fn(&str, &str) -> Value, bool, bool);
    let cases: [Case; 6] = [
        (&|issuer, _| json!(issuer), true, true),
        (&|issuer, _| json!([issuer]), true, true),
        (&|_, token| json!(token), false, true),
        (
            &|issuer, _| json!([issuer, "https://other.example"]),
            false,
            true,
        ),
        (&|issuer, _| json!(format!("{issuer}/")), false, false),
        (&|_, _| json!("https://other.example"), false, false),
    ];
    for mode in [AssertionAudience::Strict, AssertionAudience::Legacy] {
        let world = world_with(|c| c.client_auth.assertion_audience = mode).await;
        let client_id = keyed_client(&world, "/c/keyed.json", &[A], &json!({}));
        let (issuer, token) = (world.server.issuer(), world.server.url("/token"));
        for (aud, strict, legacy) in &cases {
            let aud = aud(issuer, &token);
            let jwt = assertion(&world, A, &client_id)
                .claim("aud", aud.clone())
                .sign();
            let answer = grant(&world, &jwt, &[]).await;
            let accepted = if mode == AssertionAudience::Strict {
                *strict
            } else {
                *legacy
            };
            if accepted {
                assert_eq!(answer.0, StatusCode::OK, "{mode:?} {aud}: {}", answer.1);
            } else {
                assert_refused(&answer, "PKJWT-05");
            }
        }
    }
}

#[tokio::test]
async fn expired_early_and_overlong_assertions_are_refused() {
    let world = world().await;
    let client_id = keyed_client(&world, "/c/keyed.json", &[A], &json!({}));
    let now = now();
    let cases = [
        ("exp", json!(now - 300), "PKJWT-07"),
        ("exp", Value::Null, "PKJWT-07"),
        ("exp", json!(now + 86_400), "PKJWT-07"),
        ("nbf", json!(now + 600), "PKJWT-08"),
        ("iat", json!(now + 600), "PKJWT-08"),
        ("iat", json!(now - 86_400), "PKJWT-08"),
        ("jti", Value::Null, "PKJWT-09"),
    ];
    for (claim, value, requirement) in cases {
        let jwt = assertion(&world, A, &client_id).claim(claim, value).sign();
        assert_refused(&grant(&world, &jwt, &[]).await, requirement);
    }
    // Within the clock skew an assertion that just expired still counts.
    let jwt = assertion(&world, A, &client_id)
        .claim("exp", json!(now - 3))
        .sign();
    assert_eq!(grant(&world, &jwt, &[]).await.0, StatusCode::OK);
}

#[tokio::test]
async fn untyped_and_client_authentication_typed_assertions_pass_and_other_types_do_not() {
    let world = world().await;
    let client_id = keyed_client(&world, "/c/keyed.json", &[A], &json!({}));
    let untyped = assertion(&world, A, &client_id).sign();
    assert_eq!(grant(&world, &untyped, &[]).await.0, StatusCode::OK);
    let typed = assertion(&world, A, &client_id)
        .typ("client-authentication+jwt")
        .sign();
    assert_eq!(grant(&world, &typed, &[]).await.0, StatusCode::OK);
    let access_token = assertion(&world, A, &client_id).typ("at+jwt").sign();
    assert_refused(&grant(&world, &access_token, &[]).await, "PKJWT-12");
}

#[tokio::test]
async fn a_pinned_signing_algorithm_refuses_the_others_and_discovery_lists_the_algorithms() {
    let world = world().await;
    let client_id = keyed_client(
        &world,
        "/c/rs256.json",
        &[A, RSA],
        &json!({ "token_endpoint_auth_signing_alg": "RS256" }),
    );
    let es256 = assertion(&world, A, &client_id).sign();
    assert_refused(&grant(&world, &es256, &[]).await, "PKJWT-14");
    let ps256 = assertion(&world, RSA, &client_id)
        .alg(Algorithm::PS256)
        .sign();
    assert_refused(&grant(&world, &ps256, &[]).await, "PKJWT-14");
    let rs256 = assertion(&world, RSA, &client_id).sign();
    assert_eq!(grant(&world, &rs256, &[]).await.0, StatusCode::OK);

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
        json!(["none", "private_key_jwt"])
    );
    assert_eq!(
        meta["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES256", "ES384", "EdDSA", "RS256", "PS256"])
    );
    assert_eq!(
        meta["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_jwks_again_once_so_a_rotated_key_is_accepted() {
    let world = world().await;
    world
        .host
        .mount(CLIENT_HOST, "/c/jwks.json", Route::jwks(jwks(&[A])));
    let jwks_uri = world.host.url(CLIENT_HOST, "/c/jwks.json");
    let client_id = world
        .client(
            "/c/rotating.json",
            json!({
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": jwks_uri,
                "grant_types": ["client_credentials"],
                "redirect_uris": null,
            }),
        )
        .client_id;
    let fetches = || world.host.journal().count(CLIENT_HOST, "/c/jwks.json");
    let jwt = assertion(&world, A, &client_id).sign();
    assert_eq!(grant(&world, &jwt, &[]).await.0, StatusCode::OK);
    assert_eq!(fetches(), 1);

    world
        .host
        .mount(CLIENT_HOST, "/c/jwks.json", Route::jwks(jwks(&[A, B])));
    let rotated = assertion(&world, B, &client_id).sign();
    assert_eq!(grant(&world, &rotated, &[]).await.0, StatusCode::OK);
    assert_eq!(fetches(), 2, "one refresh for the new kid");

    // Made-up kids right after: refused, and no further fetch within the refresh interval.
    for _ in 0..3 {
        let unknown = assertion(&world, STRANGER, &client_id).sign();
        let answer = grant(&world, &unknown, &[]).await;
        assert_refused(&answer, "PKJWT-10");
        assert!(
            answer.1["error_description"]
                .as_str()
                .unwrap()
                .contains("stranger")
        );
    }
    assert_eq!(fetches(), 2);
}

#[tokio::test]
async fn a_jwks_uri_off_the_client_origin_is_refused_when_the_policy_requires_the_same_origin() {
    let world = world_with(|c| c.client_auth.jwks_uri_same_origin = true).await;
    let keys_host = "keys.client.example";
    world
        .host
        .mount(keys_host, "/jwks.json", Route::jwks(jwks(&[A])));
    let client_id = world
        .client(
            "/c/elsewhere.json",
            json!({
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": world.host.url(keys_host, "/jwks.json"),
                "grant_types": ["client_credentials"],
            }),
        )
        .client_id;
    let jwt = assertion(&world, A, &client_id).sign();
    let answer = grant(&world, &jwt, &[]).await;
    assert_refused(&answer, "CIMD-AUTH-03");
    assert!(
        answer.1["error_description"]
            .as_str()
            .unwrap()
            .contains("origin")
    );
    assert_eq!(world.host.journal().count(keys_host, "/jwks.json"), 0);
}

#[tokio::test]
async fn of_sixteen_concurrent_uses_of_one_assertion_exactly_one_gets_a_token() {
    let world = world().await;
    let client_id = keyed_client(&world, "/c/keyed.json", &[A], &json!({}));
    let jwt = assertion(&world, A, &client_id).sign();
    let answers = futures_util::future::join_all((0..16).map(|_| grant(&world, &jwt, &[]))).await;
    let winners = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(winners, 1, "{answers:?}");
    for answer in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_refused(answer, "PKJWT-09");
    }
    // A new signature does not make an old jti new.
    let resigned = assertion(&world, A, &client_id)
        .claim("jti", payload(&jwt)["jti"].clone())
        .sign();
    assert_refused(&grant(&world, &resigned, &[]).await, "PKJWT-09");
}

#[tokio::test]
async fn each_fault_lets_exactly_its_own_bad_assertion_through() {
    type Bad = fn(&World, &str) -> String;
    let cases: [(Fault, Bad); 9] = [
        (Fault::AcceptAlgNone, |w, id| assertion(w, A, id).unsigned()),
        (Fault::SkipAssertionSignature, |w, id| {
            tampered(&assertion(w, A, id).sign())
        }),
        (Fault::AcceptAnyAudience, |w, id| {
            assertion(w, A, id)
                .claim("aud", json!(w.server.url("/token")))
                .sign()
        }),
        (Fault::AcceptExpiredAssertion, |w, id| {
            assertion(w, A, id).claim("exp", json!(now() - 300)).sign()
        }),
        (Fault::AcceptEarlyAssertion, |w, id| {
            assertion(w, A, id).claim("nbf", json!(now() + 600)).sign()
        }),
        (Fault::AcceptForeignIssuer, |w, id| {
            assertion(w, A, id).claim("iss", json!("someone")).sign()
        }),
        (Fault::AcceptForeignSubject, |w, id| {
            assertion(w, A, id).claim("sub", json!("someone")).sign()
        }),
        // The client pins PS256; this one is RS256.
        (Fault::IgnoreSigningAlgPin, |w, id| {
            assertion(w, RSA, id).sign()
        }),
        (Fault::RefuseUntypedAssertion, |w, id| {
            assertion(w, A, id).sign()
        }),
    ];
    for (fault, bad) in cases {
        let pin = json!({ "token_endpoint_auth_signing_alg": "PS256" });
        let pinned = fault == Fault::IgnoreSigningAlgPin;
        for faults in [Faults::none(), Faults::of([fault])] {
            let on = faults.on(fault);
            let world = world_with(|c| c.faults = faults).await;
            let changes = if pinned { pin.clone() } else { json!({}) };
            let keys: &[TestKey] = if pinned { &[RSA] } else { &[A] };
            let client_id = keyed_client(&world, "/c/keyed.json", keys, &changes);
            // The client_id parameter keeps the client known when iss or sub are bent.
            let jwt = bad(&world, &client_id);
            let status = grant(&world, &jwt, &[("client_id", &client_id)]).await.0;
            // refuse-untyped-assertion works the other way round: it refuses a good one.
            let passes = (status == StatusCode::OK) != (fault == Fault::RefuseUntypedAssertion);
            assert_eq!(passes, on, "{fault} on: {on}, status {status}");
        }
    }
}

#[tokio::test]
async fn the_replay_fault_lets_an_assertion_serve_twice_and_the_public_client_fault_skips_authentication()
 {
    let world = world_with(|c| c.faults = Faults::of([Fault::ReplayableJti])).await;
    let client_id = keyed_client(&world, "/c/keyed.json", &[A], &json!({}));
    let jwt = assertion(&world, A, &client_id).sign();
    assert_eq!(grant(&world, &jwt, &[]).await.0, StatusCode::OK);
    assert_eq!(grant(&world, &jwt, &[]).await.0, StatusCode::OK);

    let world = world_with(|c| c.faults = Faults::of([Fault::PublicConfidentialClient])).await;
    let client_id = keyed_client(&world, "/c/keyed.json", &[A], &json!({}));
    let (status, body) = world
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The payload of a compact JWT, unverified.
fn payload(jwt: &str) -> Value {
    use base64::Engine;
    let segment = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
