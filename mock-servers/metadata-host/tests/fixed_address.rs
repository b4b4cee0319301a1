//! A metadata host on an address chosen by its caller: the port a server under test was told
//! about is the port in every client ID, and a taken port is a clear error.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};

use metadata_host::{HostError, MetadataHost, Route, TestCa};
use serde_json::json;

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_host_spawned_on_a_fixed_port_serves_client_ids_with_that_port() {
    let ca = TestCa::generate("metadata-host fixed port").unwrap();
    let port = free_port();
    let host = MetadataHost::spawn_on(ca.clone(), SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .unwrap();
    assert_eq!(host.port(), port);
    host.mount(
        "app.client.example",
        "/c.json",
        Route::document(json!({ "client_name": "fixed" })),
    );
    let client_id = host.url("app.client.example", "/c.json");
    assert_eq!(
        client_id,
        format!("https://app.client.example:{port}/c.json")
    );
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap()])
        .resolve("app.client.example", host.addr())
        .no_proxy()
        .build()
        .unwrap();
    let document: serde_json::Value = client
        .get(&client_id)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["client_id"], client_id.as_str());
}

#[tokio::test]
async fn a_taken_port_is_a_bind_error() {
    let ca = TestCa::generate("metadata-host fixed port").unwrap();
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let error = MetadataHost::spawn_on(ca, taken.local_addr().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, HostError::Bind(_)), "{error}");
}
