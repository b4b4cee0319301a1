//! A document server for load tests: every path on every host name is a valid client metadata
//! document whose `client_id` is the URL it was fetched from.
//!
//! The metadata host serves exactly the routes mounted on it; a load with a unique client ID per
//! request would need a route per request mounted ahead of time. This server answers any path
//! instead, with the demo native client's document, so the number of distinct client IDs is
//! bounded only by the load's own count limit. It runs on mock-kit listeners, so every fetch is
//! journalled like the metadata host's. Documents carry `Cache-Control: max-age=3600`, longer
//! than any load, so a server that honours the header keeps a cached client for the whole run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use http::{Method, StatusCode};
use mock_kit::{Journal, KitError, Running, TestCa};

/// The demo native client's document; its `client_id` member is replaced per request.
const TEMPLATE: &str = include_str!("../../fixtures/metadata/demo-native-client.json");

/// [`TEMPLATE`] parsed once (a fixture that is not JSON serves `null`, which no AS accepts).
static PARSED: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::from_str(TEMPLATE).unwrap_or_default());

/// The path answering how many documents were served (for a server in another process).
pub const COUNT_PATH: &str = "/.well-known/documents-served";

/// A running document server; dropping it stops the listener.
#[derive(Debug)]
pub struct DocumentServer {
    running: Running,
    served: Arc<AtomicU64>,
}

impl DocumentServer {
    /// Serves HTTPS on a free loopback port with leaf certificates from `ca` (any SNI name).
    pub async fn https(ca: &Arc<TestCa>) -> Result<Self, KitError> {
        let served = Arc::new(AtomicU64::new(0));
        let running = mock_kit::serve_https(router(served.clone()), ca.server_config()).await?;
        Ok(Self { running, served })
    }

    /// Serves plain HTTP on a free loopback port (for a fetcher that cannot be given the CA).
    pub async fn http() -> Result<Self, KitError> {
        let served = Arc::new(AtomicU64::new(0));
        let running = mock_kit::serve_http(router(served.clone())).await?;
        Ok(Self { running, served })
    }

    /// The bound port: part of every client ID served here.
    pub fn port(&self) -> u16 {
        self.running.port()
    }

    /// `https://{host}:{port}{path}`: the client ID whose document this server returns at `path`
    /// (a plain-HTTP server's documents still name `https` IDs; the fetcher rewrites the scheme).
    pub fn client_id(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port())
    }

    /// Every request received.
    pub fn journal(&self) -> &Journal {
        self.running.journal()
    }

    /// Documents served so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

fn router(served: Arc<AtomicU64>) -> Router {
    Router::new().fallback(document).with_state(served)
}

/// Any GET: the document for the URL it was addressed to.
async fn document(State(served): State<Arc<AtomicU64>>, request: Request) -> Response {
    if request.method() != Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = request.uri().path();
    if path == COUNT_PATH {
        return served.load(Ordering::Relaxed).to_string().into_response();
    }
    // HTTP/1.1 names the host in Host, HTTP/2 in :authority; both keep a non-default port.
    let authority = request
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(http::uri::Authority::as_str));
    let Some(authority) = authority else {
        return (StatusCode::BAD_REQUEST, "no host").into_response();
    };
    let client_id = format!("https://{authority}{path}");
    let mut document = PARSED.clone();
    if let Some(members) = document.as_object_mut() {
        members.insert("client_id".to_owned(), serde_json::Value::String(client_id));
    }
    served.fetch_add(1, Ordering::Relaxed);
    (
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "max-age=3600"),
        ],
        document.to_string(),
    )
        .into_response()
}
