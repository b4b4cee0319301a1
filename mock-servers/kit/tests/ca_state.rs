//! A CA kept in a state folder survives restarts: servers configured to trust its `ca.pem` once
//! keep verifying the leaves it issues, over real TLS. Files that do not belong together are
//! refused rather than replaced.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use mock_kit::ca::{CA_CERT_FILE, CA_KEY_FILE};
use mock_kit::{KitError, TestCa, serve_https, serve_router, serve_tcp_on};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAME: &str = "kit state test CA";

/// A fresh folder under the system temp dir, removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "mock-kit-{label}-{}-{}",
            std::process::id(),
            mock_kit::journal::next_sequence()
        ));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A client that trusts only the certificate in `ca_file` and routes `name` to `port`.
fn client_trusting(ca_file: &Path, name: &str, port: u16) -> reqwest::Client {
    let pem = std::fs::read(ca_file).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .resolve(name, ([127, 0, 0, 1], port).into())
        .no_proxy()
        .build()
        .unwrap()
}

fn hello() -> Router {
    Router::new().route("/", get(|| async { "hi" }))
}

#[tokio::test]
async fn a_reloaded_ca_issues_leaves_that_verify_against_the_stored_certificate() {
    let folder = Folder::new("reload");
    let first = TestCa::load_or_generate(&folder.0, NAME).unwrap();
    let stored = std::fs::read_to_string(folder.0.join(CA_CERT_FILE)).unwrap();
    assert_eq!(first.cert_pem(), stored);
    drop(first);

    let reloaded = TestCa::load_or_generate(&folder.0, NAME).unwrap();
    assert_eq!(
        reloaded.cert_pem(),
        stored,
        "the stored certificate is kept as is"
    );
    let running = serve_https(hello(), reloaded.server_config())
        .await
        .unwrap();
    let client = client_trusting(
        &folder.0.join(CA_CERT_FILE),
        "www.client.example",
        running.port(),
    );
    let body = client
        .get(running.origin("www.client.example"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "hi");
}

#[cfg(unix)]
#[test]
fn the_stored_key_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let folder = Folder::new("mode");
    TestCa::load_or_generate(&folder.0, NAME).unwrap();
    let mode = std::fs::metadata(folder.0.join(CA_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

#[test]
fn a_folder_with_only_the_certificate_is_refused_and_left_alone() {
    let folder = Folder::new("half");
    TestCa::load_or_generate(&folder.0, NAME).unwrap();
    std::fs::remove_file(folder.0.join(CA_KEY_FILE)).unwrap();
    let error = TestCa::load_or_generate(&folder.0, NAME).unwrap_err();
    assert!(
        matches!(&error, KitError::StoredCa { reason, .. } if reason.contains("ca-key.pem does not")),
        "{error}"
    );
    assert!(!folder.0.join(CA_KEY_FILE).exists(), "no key was made up");
}

#[test]
fn a_key_from_another_ca_is_refused() {
    let one = Folder::new("one");
    let other = Folder::new("other");
    TestCa::load_or_generate(&one.0, NAME).unwrap();
    TestCa::load_or_generate(&other.0, NAME).unwrap();
    std::fs::copy(other.0.join(CA_KEY_FILE), one.0.join(CA_KEY_FILE)).unwrap();
    let error = TestCa::load_or_generate(&one.0, NAME).unwrap_err();
    assert!(error.to_string().contains("does not verify"), "{error}");
}

#[test]
fn reloading_under_another_name_is_refused() {
    let folder = Folder::new("rename");
    TestCa::load_or_generate(&folder.0, NAME).unwrap();
    let error = TestCa::load_or_generate(&folder.0, "some other CA").unwrap_err();
    assert!(error.to_string().contains("another name"), "{error}");
}

#[tokio::test]
async fn an_issued_pem_pair_serves_tls_that_clients_of_the_ca_accept() {
    let folder = Folder::new("pem");
    let ca = TestCa::load_or_generate(&folder.0, NAME).unwrap();
    let issued = ca.issue_pem("LocalHost").unwrap();
    assert!(
        !format!("{issued:?}").contains("PRIVATE KEY"),
        "Debug redacts the key"
    );
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(issued.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(chain.len(), 2, "leaf, then the CA");
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let running = serve_router(listener, hello(), Some(Arc::new(config))).unwrap();
    let client = client_trusting(&folder.0.join(CA_CERT_FILE), "localhost", running.port());
    let reply = client
        .get(running.origin("localhost"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.text().await.unwrap(), "hi");
    // The leaf is for localhost only.
    let other = client_trusting(
        &folder.0.join(CA_CERT_FILE),
        "elsewhere.test",
        running.port(),
    );
    assert!(
        other
            .get(running.origin("elsewhere.test"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_tcp_handler_serves_on_a_listener_bound_by_the_caller() {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let running = serve_tcp_on(listener, |mut stream, _, _| async move {
        let _ = stream.write_all(b"220 ready\r\n").await;
    })
    .unwrap();
    assert_eq!(running.port(), port);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut greeting = String::new();
    stream.read_to_string(&mut greeting).await.unwrap();
    assert_eq!(greeting, "220 ready\r\n");
}
