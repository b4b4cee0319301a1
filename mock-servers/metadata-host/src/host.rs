//! The metadata host: one loopback HTTPS listener, many virtual host names, a table of routes.
//!
//! Routes are keyed by the lower-cased host name the request was addressed to (the TLS SNI name,
//! else the Host header or `:authority`, port removed: the same rule mock-kit's journal uses, so
//! journal entries and routes always agree) and the exact raw path; the query is ignored. The
//! table can change while the host serves, so a scenario can swap documents between flows. Each
//! mounted route counts its requests to pick its scripted reply; mounting again starts the count
//! over.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{ALLOW, HOST};
use http::{Method, StatusCode};
use mock_kit::{Journal, JournalEntry, PeerInfo, Running, TestCa};
use tokio::net::TcpListener;

use crate::HostError;
use crate::route::{Context, Route};

/// A running metadata host. Dropping it stops the listener and closes open connections.
#[derive(Debug)]
pub struct MetadataHost {
    running: Running,
    table: Arc<Table>,
    ca: Arc<TestCa>,
}

impl MetadataHost {
    /// Starts serving HTTPS on `127.0.0.1:0` with leaf certificates from `ca`, with no routes
    /// mounted (every request gets a 404 until one is).
    pub async fn spawn(ca: Arc<TestCa>) -> Result<Self, HostError> {
        Self::spawn_on(ca, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// [`MetadataHost::spawn`] on `addr`: a fixed port that a server under test was configured
    /// with once (client IDs carry the port), or another interface than loopback.
    pub async fn spawn_on(ca: Arc<TestCa>, addr: SocketAddr) -> Result<Self, HostError> {
        // Bound before the router is built: replies need the port for `{client_id}`, and this
        // way no request can ever arrive before it is known.
        let listener = TcpListener::bind(addr).await?;
        let table = Arc::new(Table {
            port: listener.local_addr()?.port(),
            routes: RwLock::default(),
        });
        let router = Router::new().fallback(serve).with_state(table.clone());
        let running = mock_kit::listener::serve_router(listener, router, Some(ca.server_config()))?;
        Ok(Self { running, table, ca })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.running.port()
    }

    /// The bound address (clients route every host name here).
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// `https://{host}:{port}{path}` with `host` lower-cased: the exact client ID a document
    /// mounted at `path` on `host` is served with.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!(
            "https://{}:{}{path}",
            host.to_ascii_lowercase(),
            self.port()
        )
    }

    /// Serves `route` at exactly `path` on `host`, replacing (and restarting) any earlier route
    /// there.
    pub fn mount(&self, host: &str, path: &str, route: impl Into<Route>) {
        let mounted = Arc::new(Mounted {
            route: route.into(),
            served: AtomicUsize::new(0),
        });
        self.table.write().insert(key(host, path), mounted);
    }

    /// Removes the route at `path` on `host`, if any; requests there get a 404 again.
    pub fn unmount(&self, host: &str, path: &str) {
        self.table.write().remove(&key(host, path));
    }

    /// Removes every route. The journal is kept (see [`Journal::clear`]).
    pub fn clear(&self) {
        self.table.write().clear();
    }

    /// Every request received, in order, on every host name.
    pub fn journal(&self) -> &Journal {
        self.running.journal()
    }

    /// The requests received for `path` on `host` (host compared case-insensitively).
    pub fn requests(&self, host: &str, path: &str) -> Vec<JournalEntry> {
        self.journal().requests_to(host, path)
    }

    /// The CA whose certificate clients must trust to talk to this host.
    pub fn ca(&self) -> &Arc<TestCa> {
        &self.ca
    }
}

/// (lower-cased host, raw path).
type RouteKey = (String, String);

/// The route key for `host` and `path`.
fn key(host: &str, path: &str) -> RouteKey {
    (host.to_ascii_lowercase(), path.to_owned())
}

/// A route and how many requests it has answered so far.
#[derive(Debug)]
struct Mounted {
    route: Route,
    served: AtomicUsize,
}

/// State shared between the [`MetadataHost`] handle and the request handler.
#[derive(Debug)]
struct Table {
    port: u16,
    routes: RwLock<HashMap<RouteKey, Arc<Mounted>>>,
}

impl Table {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<RouteKey, Arc<Mounted>>> {
        // A panic elsewhere never leaves the map half-updated, so a poisoned lock is still good.
        self.routes.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &RouteKey) -> Option<Arc<Mounted>> {
        self.routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }
}

/// Answers every request: look up the route, check the method, play the next scripted reply.
async fn serve(State(table): State<Arc<Table>>, request: Request) -> Response {
    let host = request_host(&request);
    let path = request.uri().path().to_owned();
    let Some(mounted) = table.get(&(host.clone(), path.clone())) else {
        tracing::debug!(%host, %path, "no route");
        let body = serde_json::json!({ "error": "no route mounted", "host": host, "path": path });
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    let head_only = match *request.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return (StatusCode::METHOD_NOT_ALLOWED, [(ALLOW, "GET, HEAD")]).into_response(),
    };
    let n = mounted.served.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%host, %path, n, "scripted reply");
    let context = Context::new(&host, table.port, &path);
    mounted
        .route
        .reply_for(n)
        .respond(&context, request.headers(), head_only)
        .await
}

/// The lower-cased host name a request was addressed to: SNI, else Host, else `:authority`, with
/// the port removed.
fn request_host(request: &Request) -> String {
    let sni = request
        .extensions()
        .get::<PeerInfo>()
        .and_then(|peer| peer.sni.clone());
    let authority = || {
        request
            .headers()
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| request.uri().authority().map(http::uri::Authority::as_str))
            .map(|authority| {
                authority
                    .parse::<http::uri::Authority>()
                    .map_or_else(|_| authority.to_owned(), |parsed| parsed.host().to_owned())
            })
    };
    sni.or_else(authority)
        .unwrap_or_default()
        .to_ascii_lowercase()
}
