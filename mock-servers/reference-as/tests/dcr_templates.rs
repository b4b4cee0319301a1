//! Templatized registration over the wire (CUR-07): instances inherit the template's method,
//! grants, redirect URIs and scope ceiling; a template is never a client itself; the admin API
//! edits templates, and an edit reaches every existing instance at its next request.

#![allow(clippy::unwrap_used, reason = "tests")]

mod dcr_support;
mod server_support;

use dcr_support::{Answer, LOOPBACK, call, client_credentials, register, registered, start};
use reference_as::Config;
use reference_as::client_auth::TokenAuthMethod;
use reference_as::dcr::{AdminToken, TemplateConfig};
use reference_as::{Fault, Faults};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server_support::{Pkce, World, element_text};

const TEMPLATE: &str = "mcp-agent";
const ADMIN: &str = "admin token with plenty of entropy";

fn template() -> TemplateConfig {
    TemplateConfig {
        software_id: TEMPLATE.to_owned(),
        client_name: Some("MCP agent".to_owned()),
        token_endpoint_auth_method: TokenAuthMethod::ClientSecretBasic,
        grant_types: vec![
            "authorization_code".to_owned(),
            "refresh_token".to_owned(),
            "client_credentials".to_owned(),
        ],
        redirect_uris: vec![LOOPBACK.to_owned()],
        scope: Some("openid profile mcp".to_owned()),
        authenticators: vec!["email-code".to_owned(), "password".to_owned()],
    }
}

fn with_template(c: &mut Config) {
    c.registration.templates = vec![template()];
    c.registration.admin_token = Some(AdminToken(ADMIN.to_owned()));
}

async fn world(faults: &[Fault]) -> World {
    let faults = faults.to_vec();
    start(move |c| {
        with_template(c);
        c.faults = Faults::of(faults);
    })
    .await
}

async fn instance(world: &World, extra: Value) -> Answer {
    let mut body = json!({ "software_id": TEMPLATE, "client_name": "My agent" });
    for (name, value) in extra.as_object().unwrap() {
        body[name] = value.clone();
    }
    registered(world, &body).await
}

fn admin_url(world: &World, software_id: &str) -> String {
    world.server.url(&format!("/admin/templates/{software_id}"))
}

async fn edit_template(world: &World, change: impl FnOnce(&mut Value)) {
    let url = admin_url(world, TEMPLATE);
    let mut definition = call(world, Method::GET, &url, Some(ADMIN), None).await.body;
    change(&mut definition);
    let put = call(world, Method::PUT, &url, Some(ADMIN), Some(&definition)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
}

#[tokio::test]
async fn an_instance_inherits_the_template_and_gets_its_own_id_and_secret() {
    let world = world(&[]).await;
    let one = instance(&world, json!({})).await;
    let two = instance(&world, json!({ "redirect_uris": [LOOPBACK] })).await;
    for info in [&one, &two] {
        assert_eq!(info.body["software_id"], TEMPLATE);
        assert_eq!(info.body["client_name"], "My agent");
        assert_eq!(
            info.body["token_endpoint_auth_method"],
            "client_secret_basic"
        );
        assert_eq!(info.body["redirect_uris"], json!([LOOPBACK]));
        assert_eq!(
            info.body["grant_types"],
            json!(["authorization_code", "refresh_token", "client_credentials"])
        );
        assert_eq!(info.body["scope"], "openid profile mcp");
        assert_ne!(info.str("client_id"), TEMPLATE);
    }
    assert_ne!(one.str("client_id"), two.str("client_id"));
    assert_ne!(one.str("client_secret"), two.str("client_secret"));
    let (status, token) = client_credentials(&world, &one, "mcp").await;
    assert_eq!(status, StatusCode::OK, "{token}");
    // An instance without its own name shows the template's.
    let unnamed = registered(&world, &json!({ "software_id": TEMPLATE })).await;
    assert_eq!(unnamed.body["client_name"], "MCP agent");
    // A narrower scope is kept.
    let narrow = instance(&world, json!({ "scope": "mcp" })).await;
    assert_eq!(narrow.body["scope"], "mcp");
}

#[tokio::test]
async fn an_instance_body_may_repeat_fixed_members_but_never_change_them() {
    let world = world(&[]).await;
    let cases = [
        (
            json!({ "redirect_uris": ["https://other.example/cb"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "token_endpoint_auth_method": "none" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "grant_types": ["authorization_code"] }),
            "invalid_client_metadata",
        ),
        (json!({ "scope": "mcp admin" }), "invalid_client_metadata"),
    ];
    for (extra, error) in cases {
        let mut body = json!({ "software_id": TEMPLATE });
        for (name, value) in extra.as_object().unwrap() {
            body[name] = value.clone();
        }
        let token = dcr_support::iat(&world).await;
        register(&world, Some(&token), &body).await.assert_error(
            StatusCode::BAD_REQUEST,
            error,
            "CUR-07",
        );
    }
}

#[tokio::test]
async fn an_unknown_software_id_is_informative_with_plain_registration_and_refused_without() {
    let plain = world(&[]).await;
    let mut body = dcr_support::web_client();
    body["software_id"] = json!("some-other-software");
    let info = registered(&plain, &body).await;
    assert_eq!(info.body["software_id"], "some-other-software");

    let templates_only = start(|c| {
        with_template(c);
        c.registration.plain = false;
    })
    .await;
    for body in [body, dcr_support::web_client()] {
        let token = dcr_support::iat(&templates_only).await;
        register(&templates_only, Some(&token), &body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", "CUR-07");
    }
}

#[tokio::test]
async fn a_template_is_not_a_client_at_the_token_or_authorization_endpoint() {
    let world = world(&[]).await;
    let (status, body) = dcr_support::token_basic(
        &world,
        TEMPLATE,
        "anything",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .ends_with("(CUR-07)")
    );
    let client = server_support::Client {
        client_id: TEMPLATE.to_owned(),
        redirect_uri: LOOPBACK.to_owned(),
    };
    let page = world.authorize_client(&client, &Pkce::new(), &[]).await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let html = page.text().await.unwrap();
    assert_eq!(
        element_text(&html, "error").as_deref(),
        Some("invalid_client")
    );
    assert!(html.contains("a template cannot be used directly"));

    let faulty = self::world(&[Fault::TemplateUsableDirectly]).await;
    let page = faulty.authorize_client(&client, &Pkce::new(), &[]).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER, "on to sign-in");
}

#[tokio::test]
async fn the_admin_api_needs_its_token_and_creates_and_replaces_templates() {
    let world = world(&[]).await;
    let url = admin_url(&world, TEMPLATE);
    call(&world, Method::GET, &url, None, None)
        .await
        .assert_invalid_token_without_rule();
    call(&world, Method::GET, &url, Some("wrong"), None)
        .await
        .assert_invalid_token_without_rule();
    let read = call(&world, Method::GET, &url, Some(ADMIN), None).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["scope"], "openid profile mcp");
    assert!(read.body.get("software_id").is_none());
    let missing = call(
        &world,
        Method::GET,
        &admin_url(&world, "nope"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let bad = call(
        &world,
        Method::PUT,
        &admin_url(&world, "cli"),
        Some(ADMIN),
        Some(&json!({ "scopes": "x" })),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let cli = json!({
        "token_endpoint_auth_method": "none",
        "redirect_uris": [LOOPBACK],
        "grant_types": ["authorization_code"],
    });
    let put = call(
        &world,
        Method::PUT,
        &admin_url(&world, "cli"),
        Some(ADMIN),
        Some(&cli),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let info = registered(&world, &json!({ "software_id": "cli" })).await;
    assert_eq!(info.body["token_endpoint_auth_method"], "none");
    assert!(info.body.get("client_secret").is_none());
}

#[tokio::test]
async fn a_template_edit_reaches_existing_instances_at_their_next_request() {
    let world = world(&[]).await;
    let info = instance(&world, json!({})).await;
    let (status, _) = client_credentials(&world, &info, "mcp").await;
    assert_eq!(status, StatusCode::OK);

    edit_template(&world, |t| t["scope"] = json!("openid profile")).await;
    let (status, body) = client_credentials(&world, &info, "mcp").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_scope");
    let read = call(
        &world,
        Method::GET,
        info.str("registration_client_uri"),
        Some(info.str("registration_access_token")),
        None,
    )
    .await;
    assert_eq!(read.body["scope"], "openid profile");

    edit_template(&world, |t| {
        t["grant_types"] = json!(["authorization_code", "refresh_token"]);
    })
    .await;
    let (status, body) = client_credentials(&world, &info, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
}

#[tokio::test]
async fn with_frozen_copies_a_template_edit_does_not_reach_instances() {
    let world = world(&[Fault::TemplateChangesNotApplied]).await;
    let info = instance(&world, json!({})).await;
    edit_template(&world, |t| t["scope"] = json!("openid")).await;
    let (status, body) = client_credentials(&world, &info, "mcp").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_instance_signs_in_only_with_the_authenticators_its_template_allows_now() {
    let world = world(&[]).await;
    let info = instance(&world, json!({})).await;
    let client = server_support::Client {
        client_id: info.str("client_id").to_owned(),
        redirect_uri: LOOPBACK.to_owned(),
    };
    edit_template(&world, |t| t["authenticators"] = json!(["password"])).await;
    let started = world.authorize_client(&client, &Pkce::new(), &[]).await;
    let login = world.follow(&started).await.text().await.unwrap();
    assert!(
        !login.contains("email-form"),
        "the page offers mailed codes:\n{login}"
    );
    // A hand-made mailed-code request (the password form's hidden fields, posted to the mailed-
    // code endpoint) is refused all the same.
    let form = server_support::Form::find(&login, "password-form");
    let mut fields = form.hidden.clone();
    fields.push(("email".to_owned(), server_support::EMAIL.to_owned()));
    let action = form.action.replace("/login/password", "/login/email");
    let refused = world
        .browser
        .post(format!(
            "{}{action}",
            server_support::origin(world.server.issuer())
        ))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let html = refused.text().await.unwrap();
    let description = element_text(&html, "error_description").unwrap();
    assert!(description.ends_with("(CUR-07)"), "{description}");

    let signed_in = world
        .submit(
            &login,
            "password-form",
            &[
                ("username", server_support::USERNAME),
                ("password", server_support::PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        signed_in.status(),
        StatusCode::SEE_OTHER,
        "password still allowed"
    );
}
