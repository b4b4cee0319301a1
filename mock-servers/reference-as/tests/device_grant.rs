//! The device authorization grant (RFC 8628) over the wire: the device authorization endpoint,
//! the user-code page with its attempt limits, the confirmation page, and polling the token
//! endpoint through pending, slow_down, denial, expiry and single-use redemption.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod server_support;

use std::time::Duration;

use reference_as::{Config, Fault, Faults};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::{Client, EMAIL, Form, World, browser, element_text, location, origin};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Ephemeral clients may use the device grant; `faults` switched on.
fn device_policy(config: &mut Config, faults: &[Fault]) {
    config
        .ephemeral_clients
        .capabilities
        .push(DEVICE_GRANT.to_owned());
    config.faults = Faults::of(faults.iter().copied());
}

async fn start(adjust: impl FnOnce(&mut Config)) -> World {
    World::start_with(adjust).await
}

/// A public client document declaring the device grant (and refresh tokens).
fn device_client(world: &World) -> Client {
    world.client(
        "/clients/tv.json",
        json!({
            "client_name": "Living Room TV",
            "grant_types": ["authorization_code", "refresh_token", DEVICE_GRANT],
        }),
    )
}

/// `POST /device_authorization` with `params`.
async fn device_authorization(world: &World, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = world
        .api
        .post(world.server.url("/device_authorization"))
        .form(params)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Starts a device authorization for `client` and returns its response.
async fn start_device(world: &World, client: &Client) -> Value {
    let (status, body) = device_authorization(
        world,
        &[("client_id", &client.client_id), ("scope", "read")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// One poll of the token endpoint with the device code of `started`.
async fn poll(world: &World, client: &Client, started: &Value) -> (StatusCode, Value) {
    world
        .token(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", started["device_code"].as_str().unwrap()),
            ("client_id", &client.client_id),
        ])
        .await
}

/// The error code of a token answer.
fn error(answer: &(StatusCode, Value)) -> &str {
    answer.1["error"].as_str().unwrap_or("(none)")
}

/// The `/device` page for a typed code, submitted from a fresh page in `world`'s browser.
async fn type_code(world: &World, typed: &str) -> reqwest::Response {
    let page = world
        .browser
        .get(world.server.url("/device"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    world
        .submit(&page, "device-form", &[("user_code", typed)])
        .await
}

/// From the response to a typed code: sign in if asked, then answer the confirmation page with
/// `decision`; returns the final page.
async fn sign_in_and_decide(
    world: &World,
    mut response: reqwest::Response,
    decision: &str,
) -> String {
    for _ in 0..4 {
        if response.status() == StatusCode::OK {
            let page = response.text().await.unwrap();
            if !page.contains("id=\"consent-form\"") {
                return page;
            }
            response = world
                .submit(&page, "consent-form", &[("decision", decision)])
                .await;
            continue;
        }
        let page = world.follow(&response).await.text().await.unwrap();
        response = if page.contains("id=\"email-form\"") {
            world.sign_in_by_mail(&page, EMAIL).await
        } else {
            world
                .submit(&page, "consent-form", &[("decision", decision)])
                .await
        };
    }
    panic!("the device flow did not end");
}

#[tokio::test]
async fn a_device_gets_tokens_once_after_the_user_types_the_code_signs_in_and_allows() {
    let world = start(|c| device_policy(c, &[])).await;
    let client = device_client(&world);
    let started = start_device(&world, &client).await;
    // DEV-02: every member, with the verification URI at this server.
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(&user_code[4..5], "-");
    assert_eq!(started["verification_uri"], world.server.url("/device"));
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);
    assert!(started["device_code"].as_str().unwrap().len() >= 43);
    let complete = started["verification_uri_complete"].as_str().unwrap();

    // DEV-04: nothing decided yet.
    assert_eq!(
        error(&poll(&world, &client, &started).await),
        "authorization_pending"
    );

    // verification_uri_complete pre-fills the code.
    let page = world.browser.get(complete).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains(&format!("value=\"{user_code}\"")), "{page}");
    let entered = world
        .submit(&page, "device-form", &[("user_code", &user_code)])
        .await;
    assert_eq!(entered.status(), StatusCode::SEE_OTHER);
    assert!(location(&entered).contains("/login?request_id="));
    let login = world.follow(&entered).await.text().await.unwrap();
    let signed_in = world.sign_in_by_mail(&login, EMAIL).await;
    let consent = world.follow(&signed_in).await.text().await.unwrap();
    // DEV-11: the confirmation names the device request and the code to compare.
    assert!(consent.contains("id=\"device-notice\""), "{consent}");
    assert_eq!(
        element_text(&consent, "user-code").as_deref(),
        Some(user_code.as_str())
    );
    assert!(consent.contains("Living Room TV"));
    assert!(!consent.contains("id=\"redirect-host\""));
    let done = world
        .submit(&consent, "consent-form", &[("decision", "allow")])
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("id=\"device-done\""));

    // DEV-03 and DEV-08: tokens once, then the code is spent.
    let (status, tokens) = poll(&world, &client, &started).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "read");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let again = poll(&world, &client, &started).await;
    assert_eq!(again.0, StatusCode::BAD_REQUEST);
    assert_eq!(error(&again), "invalid_grant");
    let refreshed = world.refresh(&client, &refresh).await;
    assert_eq!(refreshed.0, StatusCode::OK, "{}", refreshed.1);
}

#[tokio::test]
async fn discovery_names_the_device_endpoint_only_when_some_client_may_use_the_grant() {
    for enabled in [true, false] {
        let world = start(|c| {
            if enabled {
                device_policy(c, &[]);
            }
        })
        .await;
        let meta: Value = world
            .api
            .get(world.server.metadata_url())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let grants = meta["grant_types_supported"].as_array().unwrap();
        assert_eq!(grants.contains(&json!(DEVICE_GRANT)), enabled, "{meta}");
        assert_eq!(
            meta.get("device_authorization_endpoint").cloned(),
            enabled.then(|| json!(world.server.url("/device_authorization"))),
        );
    }
}

#[tokio::test]
async fn clients_without_the_grant_or_without_authentication_are_refused() {
    // The policy does not enable the device grant: unauthorized_client (CUR-03).
    let world = World::start().await;
    let client = device_client(&world);
    let (status, body) = device_authorization(&world, &[("client_id", &client.client_id)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .ends_with("(CUR-03)")
    );

    // A document that does not declare it, under a policy that allows it.
    let world = start(|c| device_policy(c, &[])).await;
    let plain = world.app();
    let (_, body) = device_authorization(&world, &[("client_id", &plain.client_id)]).await;
    assert_eq!(body["error"], "unauthorized_client", "{body}");

    // DEV-01: no client_id at all, and an unknown registered client.
    let (status, body) = device_authorization(&world, &[("scope", "read")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, body) = device_authorization(&world, &[("client_id", "nobody")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

#[tokio::test]
async fn polling_faster_than_the_interval_gets_slow_down_and_the_interval_grows_by_five_seconds() {
    for fault in [None, Some(Fault::NoSlowDown)] {
        let world = start(|c| {
            device_policy(c, fault.as_slice());
            c.tokens.device_poll_interval_secs = 1;
        })
        .await;
        let client = device_client(&world);
        let started = start_device(&world, &client).await;
        assert_eq!(started["interval"], 1);
        assert_eq!(
            error(&poll(&world, &client, &started).await),
            "authorization_pending"
        );
        let fast = poll(&world, &client, &started).await;
        // The interval is now 6 s: a poll after the original 1 s is still too fast.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let later = poll(&world, &client, &started).await;
        if fault.is_none() {
            assert_eq!(error(&fast), "slow_down");
            assert!(
                fast.1["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("6 seconds")
            );
            assert_eq!(error(&later), "slow_down");
        } else {
            assert_eq!(error(&fast), "authorization_pending");
            assert_eq!(error(&later), "authorization_pending");
        }
    }
}

#[tokio::test]
async fn a_denied_device_authorization_answers_access_denied() {
    for fault in [None, Some(Fault::DeviceDenialIgnored)] {
        let world = start(|c| device_policy(c, fault.as_slice())).await;
        let client = device_client(&world);
        let started = start_device(&world, &client).await;
        let entered = type_code(&world, started["user_code"].as_str().unwrap()).await;
        let page = sign_in_and_decide(&world, entered, "deny").await;
        assert!(page.contains("id=\"device-denied\""), "{page}");
        let answer = poll(&world, &client, &started).await;
        let expected = if fault.is_none() {
            "access_denied"
        } else {
            "authorization_pending"
        };
        assert_eq!(error(&answer), expected);
    }
}

#[tokio::test]
async fn an_expired_device_code_answers_expired_token_and_its_user_code_stops_working() {
    for fault in [None, Some(Fault::DeviceCodeNeverExpires)] {
        let world = start(|c| {
            device_policy(c, fault.as_slice());
            c.tokens.device_code_ttl_secs = 1;
        })
        .await;
        let client = device_client(&world);
        let started = start_device(&world, &client).await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let answer = poll(&world, &client, &started).await;
        let typed = type_code(&world, started["user_code"].as_str().unwrap()).await;
        if fault.is_none() {
            assert_eq!(error(&answer), "expired_token");
            assert_eq!(typed.status(), StatusCode::BAD_REQUEST);
        } else {
            assert_eq!(error(&answer), "authorization_pending");
            assert_eq!(typed.status(), StatusCode::SEE_OTHER);
        }
    }
}

#[tokio::test]
async fn of_sixteen_concurrent_polls_of_an_approved_code_exactly_one_gets_tokens() {
    for fault in [None, Some(Fault::ReusableDeviceCode)] {
        let world = start(|c| device_policy(c, fault.as_slice())).await;
        let client = device_client(&world);
        let started = start_device(&world, &client).await;
        let entered = type_code(&world, started["user_code"].as_str().unwrap()).await;
        sign_in_and_decide(&world, entered, "allow").await;
        let polls = (0..16).map(|_| poll(&world, &client, &started));
        let answers = futures_util::future::join_all(polls).await;
        let ok = answers.iter().filter(|a| a.0 == StatusCode::OK).count();
        assert_eq!(ok, if fault.is_none() { 1 } else { 16 });
    }
}

#[tokio::test]
async fn user_codes_are_taken_in_any_case_with_or_without_the_dash() {
    for fault in [None, Some(Fault::StrictUserCodeMatch)] {
        let world = start(|c| device_policy(c, fault.as_slice())).await;
        let client = device_client(&world);
        let started = start_device(&world, &client).await;
        let typed = started["user_code"]
            .as_str()
            .unwrap()
            .replace('-', " ")
            .to_ascii_lowercase();
        let entered = type_code(&world, &typed).await;
        let expected = if fault.is_none() {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(entered.status(), expected);
    }
}

#[tokio::test]
async fn five_wrong_codes_lock_the_browser_and_twenty_lock_the_address() {
    for fault in [None, Some(Fault::UnlimitedUserCodeAttempts)] {
        let world = start(|c| device_policy(c, fault.as_slice())).await;
        let client = device_client(&world);
        let started = start_device(&world, &client).await;
        let right = started["user_code"].as_str().unwrap();
        // A code of the right shape that is (almost surely) not the issued one.
        let wrong = if right == "BBBB-BBBB" {
            "CCCC-CCCC"
        } else {
            "BBBB-BBBB"
        };
        for _ in 0..5 {
            let answer = type_code(&world, wrong).await;
            assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        }
        let locked = type_code(&world, right).await;
        if fault.is_some() {
            assert_eq!(locked.status(), StatusCode::SEE_OTHER);
            continue;
        }
        assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
        let page = locked.text().await.unwrap();
        assert!(
            element_text(&page, "message")
                .unwrap()
                .contains("Too many wrong codes")
        );

        // Fresh browsers from the same address share its larger budget.
        let mut refused = 0;
        for _ in 0..20 {
            let fresh = browser();
            let page = fresh
                .get(world.server.url("/device"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let form = Form::find(&page, "device-form");
            let mut fields = form.hidden.clone();
            fields.push(("user_code".to_owned(), wrong.to_owned()));
            let url = format!("{}{}", origin(world.server.issuer()), form.action);
            let answer = fresh.post(url).form(&fields).send().await.unwrap();
            if answer.status() == StatusCode::TOO_MANY_REQUESTS {
                refused += 1;
            }
        }
        // 5 spent by the first browser, 15 more allowed, the last 5 refused.
        assert_eq!(refused, 5);
    }
}

#[tokio::test]
async fn the_device_form_refuses_posts_without_its_csrf_token() {
    let world = start(|c| device_policy(c, &[])).await;
    let answer = world
        .browser
        .post(world.server.url("/device"))
        .form(&[("user_code", "BCDF-GHJK")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_remembered_consent_still_asks_the_user_to_confirm_a_device() {
    for fault in [None, Some(Fault::DeviceSkipsConfirmation)] {
        let world = start(|c| device_policy(c, fault.as_slice())).await;
        let client = device_client(&world);
        // The code flow remembers consent for this client and scope.
        let pkce = server_support::Pkce::new();
        world.code_for(&client, &pkce, &[("scope", "read")]).await;
        let started = start_device(&world, &client).await;
        let entered = type_code(&world, started["user_code"].as_str().unwrap()).await;
        let page = if entered.status() == StatusCode::OK {
            entered.text().await.unwrap()
        } else {
            world.follow(&entered).await.text().await.unwrap()
        };
        assert_eq!(
            page.contains("id=\"consent-form\""),
            fault.is_none(),
            "{page}"
        );
        assert_eq!(
            page.contains("id=\"device-done\""),
            fault.is_some(),
            "{page}"
        );
    }
}
