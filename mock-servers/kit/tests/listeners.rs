//! The kit's listeners over the real wire: TLS with SNI leaves, journals, shutdown on drop.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use mock_kit::{TestCa, serve_http, serve_https, serve_tcp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client_for(ca: &TestCa, names: &[&str], port: u16) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap()])
        .no_proxy();
    for name in names {
        builder = builder.resolve(name, ([127, 0, 0, 1], port).into());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn one_https_listener_serves_many_host_names_with_certificates_from_the_test_ca() {
    let ca = TestCa::generate("kit test CA").unwrap();
    let router = Router::new().route("/hello", get(|| async { "hi" }));
    let running = serve_https(router, ca.server_config()).await.unwrap();
    let names = ["www.client.example", "a.trusted.test"];
    let client = client_for(&ca, &names, running.port());
    for name in names {
        let body = client
            .get(format!("{}/hello?x=1", running.origin(name)))
            .header("x-probe", name)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "hi");
    }
    let entries = running.journal().entries();
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries[0].host, "www.client.example");
    assert_eq!(entries[1].host, "a.trusted.test");
    assert_eq!(entries[0].path, "/hello");
    assert_eq!(entries[0].query.as_deref(), Some("x=1"));
    assert_eq!(entries[0].scheme, "https");
    assert_eq!(entries[1].header("X-Probe"), Some("a.trusted.test"));
    assert!(entries[0].seq < entries[1].seq);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_fails_the_handshake() {
    let ca = TestCa::generate("kit test CA").unwrap();
    let other = TestCa::generate("another CA").unwrap();
    let running = serve_https(
        Router::new().route("/", get(|| async { "x" })),
        ca.server_config(),
    )
    .await
    .unwrap();
    let client = client_for(&other, &["host.test"], running.port());
    let result = client.get(running.origin("host.test")).send().await;
    assert!(
        result.is_err(),
        "an untrusted CA must not verify: {result:?}"
    );
    assert!(running.journal().entries().is_empty());
}

#[tokio::test]
async fn dropping_the_guard_stops_the_listener() {
    let running = serve_http(Router::new().route("/", get(|| async { "x" })))
        .await
        .unwrap();
    let addr = running.addr();
    assert!(
        reqwest::get(format!("http://{addr}/"))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    drop(running);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert!(client.get(format!("http://{addr}/")).send().await.is_err());
}

#[tokio::test]
async fn raw_tcp_handlers_get_each_connection() {
    let running = serve_tcp(|mut stream, _, _| async move {
        let _ = stream.write_all(b"220 ready\r\n").await;
    })
    .await
    .unwrap();
    let mut stream = tokio::net::TcpStream::connect(running.addr())
        .await
        .unwrap();
    let mut banner = String::new();
    stream.read_to_string(&mut banner).await.unwrap();
    assert_eq!(banner, "220 ready\r\n");
}
