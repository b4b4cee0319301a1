//! The fetcher over real HTTPS: statuses, redirects, size caps, timeouts, the SSRF guard.
//!
//! Mock hosts are axum routers on a loopback listener with certificates from a run-time test CA;
//! `*.client.test` is mapped to 127.0.0.1 through a resolve rule, exactly as the harness does.
//! Each test judges from the host's journal what crossed the wire.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use mock_kit::{Running, TestCa, serve_https};
use reference_as::cimd::FetchLimits;
use reference_as::faults::{Fault, Faults};
use reference_as::net::{FetchError, Fetcher, NetworkSettings};

const HOST: &str = "www.client.test";
const DOC: &str = r#"{"client_id":"x"}"#;

struct Host {
    ca: Arc<TestCa>,
    running: Running,
}

impl Host {
    async fn serve(router: Router) -> Self {
        let ca = TestCa::generate("fetch test CA").unwrap();
        let running = serve_https(router, ca.server_config()).await.unwrap();
        Self { ca, running }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.origin(HOST))
    }

    fn network(&self) -> NetworkSettings {
        NetworkSettings {
            extra_roots_pem: vec![self.ca.cert_pem().to_owned()],
            resolve: vec!["*.client.test=127.0.0.1".parse().unwrap()],
        }
    }

    fn fetcher(&self, faults: &[Fault]) -> Fetcher {
        self.fetcher_with(FetchLimits::default(), faults)
    }

    fn fetcher_with(&self, limits: FetchLimits, faults: &[Fault]) -> Fetcher {
        Fetcher::new(
            &self.network(),
            &limits,
            &Faults::of(faults.iter().copied()),
        )
        .unwrap()
    }

    fn count(&self, path: &str) -> usize {
        self.running.journal().count(HOST, path)
    }
}

fn json(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn requirement(result: Result<reference_as::net::Fetched, FetchError>) -> &'static str {
    result.unwrap_err().requirement
}

#[tokio::test]
async fn fetches_a_200_document_with_a_plain_anonymous_get() {
    let host = Host::serve(Router::new().route("/c.json", get(|| async { json(DOC) }))).await;
    let fetched = host.fetcher(&[]).fetch(&host.url("/c.json")).await.unwrap();
    assert_eq!(fetched.status, 200);
    assert_eq!(&fetched.body[..], DOC.as_bytes());
    assert_eq!(fetched.final_url, host.url("/c.json"));
    assert_eq!(
        fetched.headers.get(header::CONTENT_TYPE).unwrap(),
        "application/json"
    );

    let entries = host.running.journal().requests_to(HOST, "/c.json");
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.method, "GET");
    assert_eq!(entry.header("accept"), Some("application/json"));
    assert!(
        entry
            .header("user-agent")
            .unwrap()
            .starts_with("reference-as/")
    );
    // CIMD-SEC-10: nothing that identifies a user or carries credentials.
    for name in ["cookie", "authorization", "referer"] {
        assert_eq!(entry.header(name), None, "{name} was sent");
    }
}

#[tokio::test]
async fn never_follows_a_redirect() {
    let router = Router::new()
        .route("/good", get(|| async { json(DOC) }))
        .route(
            "/hop/{code}",
            get(
                |axum::extract::Path(code): axum::extract::Path<u16>| async move {
                    (
                        StatusCode::from_u16(code).unwrap(),
                        [(header::LOCATION, "/good")],
                    )
                        .into_response()
                },
            ),
        );
    let host = Host::serve(router).await;
    let fetcher = host.fetcher(&[]);
    for code in [301, 302, 303, 307, 308] {
        let error = fetcher
            .fetch(&host.url(&format!("/hop/{code}")))
            .await
            .unwrap_err();
        assert_eq!(error.requirement, "CIMD-FETCH-03", "{code}: {error}");
        assert!(
            error.message.contains("/good"),
            "the message names the Location: {error}"
        );
    }
    assert_eq!(host.count("/good"), 0, "the redirect target was contacted");
}

#[tokio::test]
async fn follows_redirects_only_with_the_fault_and_at_most_five_hops() {
    let router = Router::new()
        .route("/good", get(|| async { json(DOC) }))
        .route(
            "/hop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/good")]) }),
        )
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
        )
        .route(
            "/to-ip",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "https://127.0.0.1/good")],
                )
            }),
        );
    let host = Host::serve(router).await;
    let following = host.fetcher(&[Fault::FollowRedirects]);
    let response = following.fetch(&host.url("/hop")).await.unwrap();
    assert_eq!(response.final_url, host.url("/good"));
    assert_eq!(host.count("/good"), 1);

    let error = following.fetch(&host.url("/loop")).await.unwrap_err();
    assert_eq!(error.requirement, "CIMD-FETCH-03", "{error}");
    assert_eq!(
        host.count("/loop"),
        6,
        "the first request and five followed hops"
    );

    // Each hop is checked like the first URL: an IP literal is still refused.
    let error = following.fetch(&host.url("/to-ip")).await.unwrap_err();
    assert_eq!(error.requirement, "CIMD-SEC-01", "{error}");
}

#[tokio::test]
async fn refuses_every_status_but_200() {
    let router = Router::new().route(
        "/status/{code}",
        get(
            |axum::extract::Path(code): axum::extract::Path<u16>| async move {
                let mut response = json(DOC);
                *response.status_mut() = StatusCode::from_u16(code).unwrap();
                response
            },
        ),
    );
    let host = Host::serve(router).await;
    let strict = host.fetcher(&[]);
    for code in [201, 203, 204, 206, 304, 404, 410, 429, 500] {
        let error = strict
            .fetch(&host.url(&format!("/status/{code}")))
            .await
            .unwrap_err();
        assert_eq!(error.requirement, "CIMD-FETCH-02", "{code}: {error}");
        assert!(error.message.contains(&code.to_string()), "{error}");
    }
    let lenient = host.fetcher(&[Fault::AcceptAnyStatus]);
    let response = lenient.fetch(&host.url("/status/404")).await.unwrap();
    assert_eq!(response.status, 404);
    assert_eq!(&response.body[..], DOC.as_bytes());
}

#[tokio::test]
async fn refuses_a_body_over_the_cap_and_accepts_one_at_it() {
    let router = Router::new()
        .route("/six-kib", get(|| async { "x".repeat(6 * 1024) }))
        .route("/at-cap", get(|| async { "x".repeat(5120) }));
    let host = Host::serve(router).await;
    let fetcher = host.fetcher(&[]);
    let error = fetcher.fetch(&host.url("/six-kib")).await.unwrap_err();
    assert_eq!(error.requirement, "CIMD-SEC-06", "{error}");
    assert!(error.message.contains("6144 bytes"), "{error}");
    assert_eq!(
        fetcher
            .fetch(&host.url("/at-cap"))
            .await
            .unwrap()
            .body
            .len(),
        5120
    );

    let unlimited = host.fetcher(&[Fault::NoSizeLimit]);
    assert_eq!(
        unlimited
            .fetch(&host.url("/six-kib"))
            .await
            .unwrap()
            .body
            .len(),
        6 * 1024
    );
}

#[tokio::test]
async fn stops_reading_an_endless_chunked_body_at_the_cap() {
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let router = Router::new().route(
        "/endless",
        get(move || {
            let counter = counter.clone();
            async move {
                // No Content-Length: the only defence is counting while reading.
                let chunks = futures_util::stream::repeat_with(move || {
                    counter.fetch_add(1024, Ordering::Relaxed);
                    Ok::<_, Infallible>(Bytes::from(vec![b' '; 1024]))
                });
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    Body::from_stream(chunks),
                )
            }
        }),
    );
    let host = Host::serve(router).await;
    let error = host
        .fetcher(&[])
        .fetch(&host.url("/endless"))
        .await
        .unwrap_err();
    assert_eq!(error.requirement, "CIMD-SEC-06", "{error}");
    // A body that never ends was refused, so the fetcher cannot have read it all; the server
    // produced only what fit in socket buffers before the connection closed.
    assert!(produced.load(Ordering::Relaxed) < 64 * 1024 * 1024);
}

#[tokio::test]
async fn a_slow_host_times_out() {
    let router = Router::new()
        .route(
            "/slow-headers",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                json(DOC)
            }),
        )
        .route(
            "/slow-body",
            get(|| async {
                let chunks = futures_util::stream::once(async {
                    Ok::<_, Infallible>(Bytes::from_static(b"{"))
                })
                .chain(futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok::<_, Infallible>(Bytes::from_static(b"}"))
                }));
                Body::from_stream(chunks)
            }),
        );
    let host = Host::serve(router).await;
    let limits = FetchLimits {
        timeout_ms: 300,
        connect_timeout_ms: 300,
        ..FetchLimits::default()
    };
    let fetcher = host.fetcher_with(limits, &[]);
    for path in ["/slow-headers", "/slow-body"] {
        let error = fetcher.fetch(&host.url(path)).await.unwrap_err();
        assert_eq!(error.requirement, "CIMD-FETCH-04", "{path}: {error}");
        assert!(error.message.contains("timed out"), "{error}");
    }
}

#[tokio::test]
async fn waits_for_a_slow_host_with_the_no_timeout_fault() {
    let router = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            json(DOC)
        }),
    );
    let host = Host::serve(router).await;
    let limits = FetchLimits {
        timeout_ms: 300,
        connect_timeout_ms: 300,
        ..FetchLimits::default()
    };
    let fetched = host
        .fetcher_with(limits, &[Fault::NoFetchTimeout])
        .fetch(&host.url("/slow"))
        .await
        .unwrap();
    assert_eq!(fetched.status, 200);
}

#[tokio::test]
async fn refuses_an_unmapped_name_that_resolves_to_loopback_without_connecting() {
    let host = Host::serve(Router::new().route("/c.json", get(|| async { json(DOC) }))).await;
    let url = format!("https://localhost:{}/c.json", host.running.port());
    let error = host.fetcher(&[]).fetch(&url).await.unwrap_err();
    assert_eq!(error.requirement, "CIMD-SEC-01", "{error}");
    assert!(error.message.contains("special-use address"), "{error}");
    assert!(
        host.running.journal().entries().is_empty(),
        "a connection was made"
    );

    // The fault really connects: the same URL then reaches the mock host.
    let fetched = host
        .fetcher(&[Fault::SkipSsrfGuard])
        .fetch(&url)
        .await
        .unwrap();
    assert_eq!(&fetched.body[..], DOC.as_bytes());
    assert_eq!(host.running.journal().count("localhost", "/c.json"), 1);
}

#[tokio::test]
async fn refuses_ip_literal_urls_in_every_notation() {
    let host = Host::serve(Router::new().route("/c.json", get(|| async { json(DOC) }))).await;
    let port = host.running.port();
    let fetcher = host.fetcher(&[]);
    for literal in [
        "127.0.0.1",
        "[::1]",
        "2130706433",
        "0x7f.1",
        "017700000001",
        "8.8.8.8",
    ] {
        let error = fetcher
            .fetch(&format!("https://{literal}:{port}/c.json"))
            .await
            .unwrap_err();
        assert_eq!(error.requirement, "CIMD-SEC-01", "{literal}: {error}");
    }
    assert!(host.running.journal().entries().is_empty());
}

#[tokio::test]
async fn refuses_plain_http_and_non_urls() {
    let host = Host::serve(Router::new()).await;
    let fetcher = host.fetcher(&[]);
    let http_url = format!("http://{HOST}:{}/c.json", host.running.port());
    assert_eq!(requirement(fetcher.fetch(&http_url).await), "CIMD-URL-01");
    assert_eq!(requirement(fetcher.fetch("not a url").await), "CIMD-URL-01");
    assert_eq!(
        requirement(fetcher.fetch("file:///etc/passwd").await),
        "CIMD-URL-01"
    );
}

#[tokio::test]
async fn the_lenient_url_fault_makes_plain_http_fetches_visible_on_the_wire() {
    let tls_host = Host::serve(Router::new()).await;
    let plain = mock_kit::serve_http(Router::new().route("/c.json", get(|| async { json(DOC) })))
        .await
        .unwrap();
    let url = format!("{}/c.json", plain.origin(HOST));
    assert_eq!(
        requirement(tls_host.fetcher(&[]).fetch(&url).await),
        "CIMD-URL-01"
    );
    assert_eq!(plain.journal().count(HOST, "/c.json"), 0);
    let lenient = tls_host.fetcher(&[Fault::LenientClientIdUrl]);
    assert_eq!(&lenient.fetch(&url).await.unwrap().body[..], DOC.as_bytes());
    assert_eq!(plain.journal().count(HOST, "/c.json"), 1);
}

#[tokio::test]
async fn an_untrusted_certificate_or_a_closed_port_is_a_failed_retrieval() {
    let host = Host::serve(Router::new().route("/c.json", get(|| async { json(DOC) }))).await;
    // Only the platform roots: the test CA is not trusted.
    let network = NetworkSettings {
        extra_roots_pem: Vec::new(),
        ..host.network()
    };
    let untrusting = Fetcher::new(&network, &FetchLimits::default(), &Faults::none()).unwrap();
    assert_eq!(
        requirement(untrusting.fetch(&host.url("/c.json")).await),
        "CIMD-FETCH-04"
    );

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("https://{HOST}:{closed}/c.json");
    assert_eq!(
        requirement(host.fetcher(&[]).fetch(&url).await),
        "CIMD-FETCH-04"
    );
}

#[test]
fn refuses_unusable_extra_roots() {
    for pem in [
        "",
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let network = NetworkSettings {
            extra_roots_pem: vec![pem.to_owned()],
            resolve: Vec::new(),
        };
        assert!(
            Fetcher::new(&network, &FetchLimits::default(), &Faults::none()).is_err(),
            "{pem:?}"
        );
    }
}
