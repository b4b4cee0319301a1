//! The browser part of the code flow over the wire: sign-in by mailed code or password, consent,
//! the authorization response, and the tokens that follow.

#![allow(clippy::unwrap_used)]

mod server_support;

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use mock_mail::Behaviour;
use reference_as::{Fault, Faults};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::{
    EMAIL, Form, PASSWORD, Pkce, USERNAME, World, callback, element_text, param, plain,
};

#[tokio::test]
async fn an_ephemeral_client_gets_tokens_after_mailed_code_sign_in_and_consent() {
    let world = World::start().await;
    let client = world.app();
    let pkce = Pkce::new();
    let resource = "https://mcp.example/server";

    let response = world
        .authorize_client(
            &client,
            &pkce,
            &[("scope", "read write"), ("resource", resource)],
        )
        .await;
    let login = world.follow(&response).await;
    assert_eq!(login.status(), StatusCode::OK);
    let login = login.text().await.unwrap();
    assert!(
        login.contains("www.client.example"),
        "the login page names the client host"
    );
    Form::find(&login, "password-form");

    let signed_in = world.sign_in_by_mail(&login, EMAIL).await;
    let set_cookie: Vec<_> = signed_in.headers().get_all("set-cookie").iter().collect();
    let session = set_cookie
        .iter()
        .find_map(|v| v.to_str().ok().filter(|v| v.starts_with("as_session=")))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );

    let consent = world.follow(&signed_in).await.text().await.unwrap();
    // CIMD-UI-01/02: the name (labelled as unverified) and, prominently, the client's host.
    assert!(consent.contains("Test App"));
    assert!(consent.contains("<p class=\"host\" id=\"client-host\">www.client.example</p>"));
    assert!(consent.contains("<code>read</code>") && consent.contains("<code>write</code>"));

    let allowed = world
        .submit(&consent, "consent-form", &[("decision", "allow")])
        .await;
    let params = callback(&allowed, &client.redirect_uri);
    assert_eq!(param(&params, "state"), Some("xyz-state"));
    assert_eq!(param(&params, "iss"), Some(world.server.issuer()));
    let code = param(&params, "code").unwrap();

    let (status, tokens) = world.redeem(&client, code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "read write");
    assert_eq!(tokens["expires_in"], 300);

    // The access token verifies against /jwks and is bound to the requested resource.
    let jwks: JwkSet = plain()
        .get(world.server.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(access_token)
        .unwrap()
        .kid
        .unwrap();
    let key = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[resource]);
    validation.set_issuer(&[world.server.issuer()]);
    let claims = jsonwebtoken::decode::<Value>(access_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], USERNAME);
    assert_eq!(claims["client_id"], json!(client.client_id));
    assert_eq!(claims["scope"], "read write");

    // Refresh rotation: each use returns a new refresh token and retires the old one.
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed) = world.refresh(&client, &first).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let second = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let (status, again) = world.refresh(&client, &second).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_ne!(again["access_token"], refreshed["access_token"]);
}

#[tokio::test]
async fn password_sign_in_leads_to_the_same_consent_and_code() {
    let world = World::start().await;
    let client = world.app();
    let pkce = Pkce::new();
    let response = world.authorize_client(&client, &pkce, &[]).await;
    let login = world.follow(&response).await.text().await.unwrap();

    let wrong = world
        .submit(
            &login,
            "password-form",
            &[("username", USERNAME), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let wrong = wrong.text().await.unwrap();
    assert!(wrong.contains("Wrong username or password"));

    let signed_in = world
        .submit(
            &wrong,
            "password-form",
            &[("username", USERNAME), ("password", PASSWORD)],
        )
        .await;
    let consent = world.follow(&signed_in).await.text().await.unwrap();
    let allowed = world
        .submit(&consent, "consent-form", &[("decision", "allow")])
        .await;
    let code = param(&callback(&allowed, &client.redirect_uri), "code")
        .unwrap()
        .to_owned();
    let (status, body) = world.redeem(&client, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn consent_is_remembered_and_a_signed_in_user_goes_straight_back_with_a_code() {
    let world = World::start().await;
    let client = world.app();
    let pkce = Pkce::new();
    world
        .code_for(&client, &pkce, &[("scope", "read write")])
        .await;

    // Same browser, a subset of the consented scopes: no pages at all.
    let again = world
        .authorize_client(&client, &pkce, &[("scope", "read")])
        .await;
    let params = callback(&again, &client.redirect_uri);
    assert!(param(&params, "code").is_some());

    // A new scope asks again.
    let wider = world
        .authorize_client(&client, &pkce, &[("scope", "read admin")])
        .await;
    assert!(server_support::location(&wider).starts_with("/consent?request_id="));
}

#[tokio::test]
async fn denying_consent_sends_access_denied_to_the_client() {
    let world = World::start().await;
    let client = world.app();
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let login = world.follow(&response).await.text().await.unwrap();
    let signed_in = world.sign_in_by_mail(&login, EMAIL).await;
    let consent = world.follow(&signed_in).await.text().await.unwrap();
    let denied = world
        .submit(&consent, "consent-form", &[("decision", "deny")])
        .await;
    let params = callback(&denied, &client.redirect_uri);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("xyz-state"));
    assert_eq!(param(&params, "iss"), Some(world.server.issuer()));
    assert!(param(&params, "code").is_none());

    // The request is finished: replaying the form mints nothing.
    let replay = world
        .submit(&consent, "consent-form", &[("decision", "allow")])
        .await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_form_with_a_forged_csrf_token_is_refused_with_a_page() {
    let world = World::start().await;
    let client = world.app();
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let login = world.follow(&response).await.text().await.unwrap();
    let form = Form::find(&login, "password-form");
    let url = format!(
        "{}{}",
        server_support::origin(world.server.issuer()),
        form.action
    );
    let forged = world
        .browser
        .post(url)
        .form(&[
            ("request_id", form.hidden("request_id")),
            ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ("username", USERNAME),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(
        forged.headers().get("set-cookie").is_none(),
        "no session for a forged form"
    );
    let page = forged.text().await.unwrap();
    assert!(
        element_text(&page, "error_description")
            .unwrap()
            .contains("CSRF")
    );
}

#[tokio::test]
async fn a_sign_in_request_cannot_be_continued_from_another_browser() {
    let world = World::start().await;
    let client = world.app();
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let login_url = server_support::location(&response);
    let elsewhere = server_support::browser()
        .get(format!(
            "{}{login_url}",
            server_support::origin(world.server.issuer())
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);
    assert!(elsewhere.text().await.unwrap().contains("another browser"));
}

#[tokio::test]
async fn a_request_id_changed_by_one_character_is_unknown_not_a_different_request() {
    let world = World::start().await;
    let client = world.app();
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let login_url = server_support::location(&response);
    // The request id is the sealed request itself; any change must break the seal.
    let (before, id) = login_url.rsplit_once('=').unwrap();
    let mut tampered = id.as_bytes().to_vec();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{before}={}", String::from_utf8(tampered).unwrap());
    let origin = server_support::origin(world.server.issuer());
    let page = world
        .browser
        .get(format!("{origin}{tampered}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.text().await.unwrap().contains("unknown, expired"));
    let untouched = world
        .browser
        .get(format!("{origin}{login_url}"))
        .send()
        .await
        .unwrap();
    assert_eq!(untouched.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_addresses_get_the_same_page_but_no_mail() {
    let world = World::start().await;
    let client = world.app();
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let login = world.follow(&response).await.text().await.unwrap();
    let known = world
        .submit(&login, "email-form", &[("email", EMAIL)])
        .await
        .text()
        .await
        .unwrap();
    let unknown = world
        .submit(&login, "email-form", &[("email", "mallory@example.test")])
        .await;
    assert_eq!(unknown.status(), StatusCode::OK);
    let unknown = unknown.text().await.unwrap();
    assert_eq!(unknown.replace("mallory@example.test", EMAIL), known);
    assert!(
        world
            .mail
            .inbox()
            .wait_for(EMAIL, None, Duration::from_secs(5))
            .await
            .is_some()
    );
    assert!(
        world
            .mail
            .inbox()
            .for_recipient("mallory@example.test")
            .is_empty()
    );

    // A guess for the unknown address behaves like a wrong code for a known one.
    let guess = world
        .submit(&unknown, "code-form", &[("code", "123456")])
        .await;
    assert_eq!(guess.status(), StatusCode::BAD_REQUEST);
    assert!(guess.text().await.unwrap().contains("4 attempt(s) left"));
}

#[tokio::test]
async fn a_login_code_locks_after_the_configured_number_of_wrong_attempts() {
    let world = World::start_with(|c| c.tokens.login_code_attempts = 2).await;
    let client = world.app();
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let login = world.follow(&response).await.text().await.unwrap();
    let code_page = world
        .submit(&login, "email-form", &[("email", EMAIL)])
        .await
        .text()
        .await
        .unwrap();
    let mail = world
        .mail
        .inbox()
        .wait_for(EMAIL, None, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(mail.subject, "Your sign-in code");
    assert!(mail.body.contains("www.client.example") && mail.body.contains("127.0.0.1"));
    let right = server_support::six_digits(&mail.body);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };

    let first = world
        .submit(&code_page, "code-form", &[("code", wrong)])
        .await;
    assert!(first.text().await.unwrap().contains("1 attempt(s) left"));
    let second = world
        .submit(&code_page, "code-form", &[("code", wrong)])
        .await;
    assert!(second.text().await.unwrap().contains("locked"));
    let too_late = world
        .submit(&code_page, "code-form", &[("code", &right)])
        .await;
    assert_eq!(
        too_late.status(),
        StatusCode::BAD_REQUEST,
        "a locked code stays locked"
    );
    assert!(too_late.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn a_login_code_works_only_once() {
    let world = World::start().await;
    let client = world.app();
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let login = world.follow(&response).await.text().await.unwrap();
    let code_page = world
        .submit(&login, "email-form", &[("email", EMAIL)])
        .await
        .text()
        .await
        .unwrap();
    let mail = world
        .mail
        .inbox()
        .wait_for(EMAIL, None, Duration::from_secs(5))
        .await
        .unwrap();
    let code = server_support::six_digits(&mail.body);
    let first = world
        .submit(&code_page, "code-form", &[("code", &code)])
        .await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let second = world
        .submit(&code_page, "code-form", &[("code", &code)])
        .await;
    assert_eq!(second.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_mail_relay_failure_is_an_error_page_and_a_retry_works() {
    let world = World::start().await;
    let client = world.app();
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let login = world.follow(&response).await.text().await.unwrap();
    for behaviour in [
        Behaviour::TempFail,
        Behaviour::RejectRecipients(550),
        Behaviour::DropAfterGreeting,
    ] {
        world.mail.set_behaviour(behaviour);
        let failed = world
            .submit(&login, "email-form", &[("email", EMAIL)])
            .await;
        assert_eq!(failed.status(), StatusCode::BAD_GATEWAY, "{behaviour:?}");
        let page = failed.text().await.unwrap();
        assert_eq!(
            element_text(&page, "error").as_deref(),
            Some("temporarily_unavailable")
        );
    }
    world.mail.set_behaviour(Behaviour::Accept);
    let signed_in = world.sign_in_by_mail(&login, EMAIL).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn without_required_consent_the_code_comes_right_after_sign_in() {
    let world = World::start_with(|c| c.ephemeral_clients.consent_required = false).await;
    let client = world.app();
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let login = world.follow(&response).await.text().await.unwrap();
    let signed_in = world.sign_in_by_mail(&login, EMAIL).await;
    assert!(param(&callback(&signed_in, &client.redirect_uri), "code").is_some());
}

#[tokio::test]
async fn the_skip_consent_fault_issues_codes_without_asking() {
    for (faults, asks) in [
        (Faults::none(), true),
        (Faults::of([Fault::SkipConsent]), false),
    ] {
        let world = World::start_with(|c| c.faults = faults).await;
        let client = world.app();
        let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
        let login = world.follow(&response).await.text().await.unwrap();
        let signed_in = world.sign_in_by_mail(&login, EMAIL).await;
        let went_to_client = server_support::location(&signed_in).starts_with(&client.redirect_uri);
        assert_eq!(went_to_client, !asks);
    }
}

#[tokio::test]
async fn the_omit_iss_fault_drops_iss_from_authorization_responses() {
    for (faults, has_iss) in [
        (Faults::none(), true),
        (Faults::of([Fault::OmitIss]), false),
    ] {
        let world = World::start_with(|c| c.faults = faults).await;
        let client = world.app();
        let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
        let login = world.follow(&response).await.text().await.unwrap();
        let signed_in = world.sign_in_by_mail(&login, EMAIL).await;
        let consent = world.follow(&signed_in).await.text().await.unwrap();
        let allowed = world
            .submit(&consent, "consent-form", &[("decision", "allow")])
            .await;
        assert_eq!(
            param(&callback(&allowed, &client.redirect_uri), "iss").is_some(),
            has_iss
        );
    }
}

#[tokio::test]
async fn sign_in_offers_only_the_authenticators_the_policy_allows() {
    let world =
        World::start_with(|c| c.ephemeral_clients.authenticators = vec!["password".to_owned()])
            .await;
    let client = world.app();
    let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let login = world.follow(&response).await.text().await.unwrap();
    assert!(login.contains("id=\"password-form\""));
    assert!(!login.contains("id=\"email-form\""));
    // Posting to the disabled method directly is refused too.
    let form = Form::find(&login, "password-form");
    let url = format!("{}/login/email", world.server.issuer());
    let refused = world
        .browser
        .post(url)
        .form(&[
            ("request_id", form.hidden("request_id")),
            ("csrf", form.hidden("csrf")),
            ("email", EMAIL),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(world.mail.inbox().is_empty());
}
