//! The harness's own tests play misbehaving third-party servers: wiremock imitates an AS, once
//! honest and once with one misbehaviour, the real scenario's steps and judge run against both
//! over plain HTTP, and the requirements that fail only against the broken one must be exactly
//! the one that misbehaviour violates. Comparing with an honest twin keeps the assertion exact
//! while leaving the imitation free to be incomplete elsewhere (it never fetches metadata
//! documents, shows no consent page, and so on).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cimd_harness::ecosystem::{Ecosystem, Options};
use cimd_harness::scenario::judge::{self, Verdict};
use cimd_harness::scenario::run::{self, AsUnderTest, Surroundings};
use cimd_harness::scenario::{self, Scenario};
use cimd_harness::suite::CALLBACK;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scenario(id: &str) -> Scenario {
    scenario::load_all(&root().join("scenarios"))
        .unwrap_or_else(|e| panic!("{e:?}"))
        .into_iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no scenario {id}"))
}

/// Runs `scenario`'s steps against the AS at `server` and judges them; returns the requirements
/// of every check that did not pass.
async fn unmet(eco: &Ecosystem, server: &MockServer, scenario: &Scenario) -> BTreeSet<String> {
    let issuer = server.uri();
    let target = AsUnderTest {
        issuer: issuer.clone(),
        authorization_endpoint: format!("{issuer}/authorize"),
        token_endpoint: format!("{issuer}/token"),
        registration_endpoint: None,
        par_endpoint: None,
        dcr: cimd_harness::scenario::registration::DcrSetup::default(),
        trust: eco.trust(),
    };
    let inbox = eco.inbox_url();
    let fixtures = root().join("fixtures");
    let around = Surroundings {
        hosts: &eco.hosts,
        inbox: &inbox,
        fixtures: &fixtures,
        callback: CALLBACK,
    };
    let evidence = run::execute(scenario, &target, &eco.users()[1], around)
        .await
        .unwrap_or_else(|e| panic!("harness error: {e}"));
    judge::judge(&scenario.file.expects, &evidence)
        .into_iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .map(|c| c.requirement)
        .collect()
}

/// Requirements unmet against `broken` but met against `honest`.
async fn blamed(id: &str, honest: &MockServer, broken: &MockServer) -> BTreeSet<String> {
    let eco = Ecosystem::start(Options {
        extra_users: 1,
        ..Options::default()
    })
    .await
    .unwrap();
    let scenario = scenario(id);
    let honest = unmet(&eco, honest, &scenario).await;
    let broken = unmet(&eco, broken, &scenario).await;
    broken.difference(&honest).cloned().collect()
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// RFC 8414 metadata for an AS at `issuer`; `cimd` says whether it claims CIMD support.
fn metadata(issuer: &str, cimd: bool) -> serde_json::Value {
    let mut json = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    });
    if cimd {
        json["client_id_metadata_document_supported"] = true.into();
    }
    json
}

async fn metadata_server(cimd: bool) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(metadata(&server.uri(), cimd)))
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_without_the_cimd_flag_is_blamed_on_cimd_meta_01() {
    let honest = metadata_server(true).await;
    let broken = metadata_server(false).await;
    assert_eq!(
        blamed("cimd/meta-01-discovery", &honest, &broken).await,
        ids(&["CIMD-META-01"])
    );
}

/// An `/authorize` that skips login and consent and sends the user straight back to the
/// redirect URI with a fresh code, echoing `state` and naming the issuer.
fn approve_everything(issuer: String) -> impl Respond {
    let codes = AtomicUsize::new(0);
    move |request: &Request| {
        let query = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let mut back = url::Url::parse(&query("redirect_uri")).unwrap();
        back.query_pairs_mut()
            .append_pair(
                "code",
                &format!("code-{}", codes.fetch_add(1, Ordering::SeqCst)),
            )
            .append_pair("state", &query("state"))
            .append_pair("iss", &issuer);
        ResponseTemplate::new(302).insert_header("location", back.as_str())
    }
}

/// An `/authorize` that refuses every request with an error page, as it should for an invalid
/// client.
fn refuse_everything() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_raw(
        "<html><body><h1>invalid_request</h1>The client cannot be used.</body></html>",
        "text/html",
    )
}

/// A token endpoint that rotates refresh tokens and refuses reused ones; `single_use_codes`
/// says whether it refuses a code it has already redeemed.
struct TokenEndpoint {
    single_use_codes: bool,
    used: Mutex<HashSet<String>>,
    issued: AtomicUsize,
}

impl TokenEndpoint {
    fn new(single_use_codes: bool) -> TokenEndpoint {
        TokenEndpoint {
            single_use_codes,
            used: Mutex::new(HashSet::new()),
            issued: AtomicUsize::new(0),
        }
    }
}

impl Respond for TokenEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let grant = field("grant_type");
        let presented = match grant.as_str() {
            "authorization_code" => format!("code:{}", field("code")),
            _ => format!("refresh:{}", field("refresh_token")),
        };
        let first_use = self.used.lock().unwrap().insert(presented);
        let must_refuse = grant == "refresh_token" || self.single_use_codes;
        if !first_use && must_refuse {
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "error": "invalid_grant",
                "error_description": "already used",
            }));
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": format!("at-{n}"),
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": format!("rt-{n}"),
        }))
    }
}

async fn code_flow_server(single_use_codes: bool) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/authorize"))
        .respond_with(approve_everything(server.uri()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(TokenEndpoint::new(single_use_codes))
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_redeems_a_code_twice_is_blamed_on_oauth_02() {
    let honest = code_flow_server(true).await;
    let broken = code_flow_server(false).await;
    assert_eq!(
        blamed("cimd/flow-native-mailed-code", &honest, &broken).await,
        ids(&["OAUTH-02"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorize_endpoint_that_redirects_for_an_invalid_client_is_blamed_on_cimd_url_01() {
    let honest = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/authorize"))
        .respond_with(refuse_everything())
        .mount(&honest)
        .await;
    let broken = code_flow_server(true).await;
    assert_eq!(
        blamed("cimd/url-01-http-scheme", &honest, &broken).await,
        ids(&["CIMD-URL-01"])
    );
}
