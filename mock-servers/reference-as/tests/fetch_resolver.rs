//! The resolver pipeline over real HTTPS: fetch coalescing, what is and is not cached, and
//! refusals that must happen before any fetch.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mock_kit::{Running, TestCa, serve_https};
use reference_as::cimd::{AuthMethod, ClientResolver, DomainMode, EphemeralPolicy};
use reference_as::faults::{Fault, Faults};
use reference_as::net::NetworkSettings;
use serde_json::json;

const HOST: &str = "www.client.test";

struct Setup {
    ca: Arc<TestCa>,
    running: Running,
}

impl Setup {
    async fn serve(router: Router) -> Self {
        let ca = TestCa::generate("resolver test CA").unwrap();
        let running = serve_https(router, ca.server_config()).await.unwrap();
        Self { ca, running }
    }

    fn client_id(&self, host: &str, path: &str) -> String {
        format!("{}{path}", self.running.origin(host))
    }

    fn resolver(&self, policy: EphemeralPolicy, faults: &[Fault]) -> ClientResolver {
        let network = NetworkSettings {
            extra_roots_pem: vec![self.ca.cert_pem().to_owned()],
            resolve: vec![
                "*.client.test=127.0.0.1".parse().unwrap(),
                "*.trusted.test=127.0.0.1".parse().unwrap(),
            ],
        };
        ClientResolver::new(policy, network, Faults::of(faults.iter().copied())).unwrap()
    }

    fn count(&self, host: &str, path: &str) -> usize {
        self.running.journal().count(host, path)
    }
}

/// The `host:port` a request was addressed to (the URI's authority in HTTP/2, the Host header in
/// HTTP/1.1), so a handler can write the client_id it is being fetched as.
fn authority(request: &axum::extract::Request) -> String {
    request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// A handler serving a valid public-client document for whatever URL it was asked at.
fn document_for() -> impl Fn(axum::extract::Request) -> std::future::Ready<Response> + Clone {
    |request: axum::extract::Request| {
        std::future::ready(document(&format!(
            "https://{}{}",
            authority(&request),
            request.uri().path()
        )))
    }
}

fn document(client_id: &str) -> Response {
    let body = json!({
        "client_id": client_id,
        "client_name": "Resolver test client",
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "none",
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[tokio::test]
async fn resolves_a_valid_document_and_serves_it_from_the_cache() {
    let setup = Setup::serve(Router::new().route("/c.json", get(document_for()))).await;
    let resolver = setup.resolver(EphemeralPolicy::default(), &[]);
    let client_id = setup.client_id(HOST, "/c.json");
    let meta = resolver.resolve(&client_id).await.unwrap();
    assert_eq!(meta.client_id.as_str(), client_id);
    assert_eq!(meta.client_name(), Some("Resolver test client"));
    assert_eq!(meta.token_endpoint_auth_method, AuthMethod::None);
    let again = resolver.resolve(&client_id).await.unwrap();
    assert!(Arc::ptr_eq(&meta, &again));
    assert_eq!(
        setup.count(HOST, "/c.json"),
        1,
        "a cached document was fetched again"
    );
}

#[tokio::test]
async fn concurrent_misses_for_one_client_id_make_exactly_one_fetch() {
    let serve = document_for();
    let router = Router::new().route(
        "/c.json",
        get(move |request: axum::extract::Request| {
            let serve = serve.clone();
            async move {
                // Slow enough that every task arrives while the first fetch is in flight.
                tokio::time::sleep(Duration::from_millis(200)).await;
                serve(request).await
            }
        }),
    );
    let setup = Setup::serve(router).await;
    let resolver = Arc::new(setup.resolver(EphemeralPolicy::default(), &[]));
    let client_id = setup.client_id(HOST, "/c.json");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let resolver = resolver.clone();
            let client_id = client_id.clone();
            tokio::spawn(async move { resolver.resolve(&client_id).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(setup.count(HOST, "/c.json"), 1);
}

#[tokio::test]
async fn an_error_response_is_not_cached() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let serve = document_for();
    let router = Router::new().route(
        "/c.json",
        get(move |request: axum::extract::Request| {
            let serve = serve.clone();
            let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                } else {
                    serve(request).await
                }
            }
        }),
    );
    let setup = Setup::serve(router).await;
    let resolver = setup.resolver(EphemeralPolicy::default(), &[]);
    let client_id = setup.client_id(HOST, "/c.json");
    let error = resolver.resolve(&client_id).await.unwrap_err();
    assert_eq!(
        (error.error, error.requirement),
        ("invalid_client", "CIMD-FETCH-02")
    );
    resolver.resolve(&client_id).await.unwrap();
    assert_eq!(setup.count(HOST, "/c.json"), 2);
}

#[tokio::test]
async fn an_invalid_document_is_not_cached() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let router = Router::new().route(
        "/c.json",
        get(move |request: axum::extract::Request| {
            let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
            let client_id = format!("https://{}/c.json", authority(&request));
            async move {
                let mut body =
                    json!({"client_id": client_id, "redirect_uris": ["https://app.example/cb"]});
                if first {
                    body["client_secret"] = json!("leaked");
                }
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
                    .into_response()
            }
        }),
    );
    let setup = Setup::serve(router).await;
    let resolver = setup.resolver(EphemeralPolicy::default(), &[]);
    let client_id = setup.client_id(HOST, "/c.json");
    let error = resolver.resolve(&client_id).await.unwrap_err();
    assert_eq!(
        (error.error, error.requirement),
        ("invalid_client", "CIMD-DOC-07"),
        "{error}"
    );
    resolver.resolve(&client_id).await.unwrap();
    assert_eq!(setup.count(HOST, "/c.json"), 2);
}

#[tokio::test]
async fn a_domain_off_the_allow_list_is_refused_with_zero_fetches() {
    let router = Router::new()
        .route("/c.json", get(document_for()))
        .route("/t.json", get(document_for()));
    let setup = Setup::serve(router).await;
    let mut policy = EphemeralPolicy::default();
    policy.domains.mode = DomainMode::AllowList;
    policy.domains.patterns = vec!["*.trusted.test".parse().unwrap()];
    let resolver = setup.resolver(policy, &[]);

    let error = resolver
        .resolve(&setup.client_id(HOST, "/c.json"))
        .await
        .unwrap_err();
    assert_eq!(
        (error.error, error.requirement),
        ("unauthorized_client", "CIMD-SEC-09")
    );
    assert!(
        setup.running.journal().entries().is_empty(),
        "a refused host was contacted"
    );

    resolver
        .resolve(&setup.client_id("a.trusted.test", "/t.json"))
        .await
        .unwrap();
    assert_eq!(setup.count("a.trusted.test", "/t.json"), 1);
}

#[tokio::test]
async fn a_mismatched_client_id_is_refused_with_a_precise_description() {
    let router = Router::new().route(
        "/c.json",
        get(|| async { document("https://elsewhere.client.test/c.json") }),
    );
    let setup = Setup::serve(router).await;
    let client_id = setup.client_id(HOST, "/c.json");
    let error = setup
        .resolver(EphemeralPolicy::default(), &[])
        .resolve(&client_id)
        .await
        .unwrap_err();
    assert_eq!(error.error, "invalid_client");
    assert_eq!(
        error.description,
        format!(
            "client_id \"https://elsewhere.client.test/c.json\" in the document does not equal the URL \
             \"{client_id}\" it was fetched from (CIMD-DOC-03)"
        )
    );
    let lenient = setup.resolver(EphemeralPolicy::default(), &[Fault::SkipClientIdEquality]);
    assert_eq!(
        lenient
            .resolve(&client_id)
            .await
            .unwrap()
            .client_id
            .as_str(),
        client_id
    );
}

#[tokio::test]
async fn a_document_served_as_html_is_refused() {
    let router = Router::new().route(
        "/c.json",
        get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html></html>").into_response() }),
    );
    let setup = Setup::serve(router).await;
    let error = setup
        .resolver(EphemeralPolicy::default(), &[])
        .resolve(&setup.client_id(HOST, "/c.json"))
        .await
        .unwrap_err();
    assert_eq!(
        (error.error, error.requirement),
        ("invalid_client", "CIMD-DOC-05")
    );
}

#[tokio::test]
async fn an_auth_method_outside_the_policy_is_unauthorized_client() {
    let router = Router::new().route(
        "/pkj.json",
        get(|request: axum::extract::Request| async move {
            let body = json!({
                "client_id": format!("https://{}/pkj.json", authority(&request)),
                "redirect_uris": ["https://app.example/cb"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": "https://keys.example/jwks.json",
            });
            (
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }),
    );
    let setup = Setup::serve(router).await;
    let client_id = setup.client_id(HOST, "/pkj.json");
    let error = setup
        .resolver(EphemeralPolicy::default(), &[])
        .resolve(&client_id)
        .await
        .unwrap_err();
    assert_eq!(
        (error.error, error.requirement),
        ("unauthorized_client", "CIMD-DOC-09"),
        "{error}"
    );

    let policy = EphemeralPolicy {
        auth_methods: vec![AuthMethod::None, AuthMethod::PrivateKeyJwt],
        ..EphemeralPolicy::default()
    };
    let meta = setup
        .resolver(policy, &[])
        .resolve(&client_id)
        .await
        .unwrap();
    assert_eq!(meta.token_endpoint_auth_method, AuthMethod::PrivateKeyJwt);
}

#[tokio::test]
async fn a_malformed_client_id_is_refused_before_any_fetch() {
    let setup = Setup::serve(Router::new().route("/c.json", get(document_for()))).await;
    let resolver = setup.resolver(EphemeralPolicy::default(), &[]);
    for (raw, requirement) in [
        (setup.client_id(HOST, "/a/../c.json"), "CIMD-URL-04"),
        (
            format!("{}#x", setup.client_id(HOST, "/c.json")),
            "CIMD-URL-05",
        ),
        (
            format!("https://127.0.0.1:{}/c.json", setup.running.port()),
            "CIMD-SEC-01",
        ),
        (setup.client_id(HOST, ""), "CIMD-URL-02"),
    ] {
        let error = resolver.resolve(&raw).await.unwrap_err();
        assert_eq!(
            (error.error, error.requirement),
            ("invalid_client", requirement),
            "{raw}"
        );
    }
    assert!(setup.running.journal().entries().is_empty());
}
