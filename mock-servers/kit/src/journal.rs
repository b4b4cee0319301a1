//! The request journal: what each mock party received, in order.
//!
//! Tests and the scenario judge read the journal instead of trusting a server's own account of what
//! it did. Every entry takes a sequence number from one process-wide counter, so journals of
//! different parties can be merged into one ordered evidence log.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

/// Process-wide order of journal entries across every party.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Takes the next number from the process-wide sequence shared by all journals.
pub fn next_sequence() -> u64 {
    SEQUENCE.fetch_add(1, Ordering::Relaxed)
}

/// Connection facts a listener attaches to each request as an extension.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The client's socket address.
    pub remote: SocketAddr,
    /// The TLS SNI name, if the connection was TLS and sent one.
    pub sni: Option<String>,
    /// `"https"` or `"http"`.
    pub scheme: &'static str,
}

/// One received HTTP request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JournalEntry {
    /// Position in the process-wide order.
    pub seq: u64,
    /// Arrival time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// `"https"` or `"http"`.
    pub scheme: String,
    /// Request method.
    pub method: String,
    /// Host name the request was addressed to (SNI, else the Host header), lower-case, no port.
    pub host: String,
    /// Path, percent-encoding untouched.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// All request headers in arrival order; non-UTF-8 values are shown lossily.
    pub headers: Vec<(String, String)>,
    /// The client's socket address.
    pub remote: String,
}

impl JournalEntry {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A shared, append-only list of [`JournalEntry`]s.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<JournalEntry>>>);

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry (used by the recording layer and by non-HTTP parties).
    pub fn push(&self, entry: JournalEntry) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry);
    }

    /// A snapshot of all entries so far, in arrival order.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Entries addressed to `host` and `path`.
    pub fn requests_to(&self, host: &str, path: &str) -> Vec<JournalEntry> {
        let host = host.to_ascii_lowercase();
        self.entries()
            .into_iter()
            .filter(|e| e.host == host && e.path == path)
            .collect()
    }

    /// Number of entries addressed to `host` and `path`.
    pub fn count(&self, host: &str, path: &str) -> usize {
        self.requests_to(host, path).len()
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Polls until `predicate` holds for the entries or `timeout` passes; returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        predicate: impl Fn(&[JournalEntry]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if predicate(&self.0.lock().unwrap_or_else(PoisonError::into_inner)) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// axum middleware that records each request before the handler runs, so a request whose handler
/// stalls or fails is journalled all the same.
pub async fn record(State(journal): State<Journal>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<PeerInfo>().cloned();
    let host_header = request
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()));
    let host = peer
        .as_ref()
        .and_then(|p| p.sni.clone())
        .or(host_header)
        .map(|h| strip_port(&h).to_ascii_lowercase())
        .unwrap_or_default();
    let entry = JournalEntry {
        seq: next_sequence(),
        at_ms: now_ms(),
        scheme: peer.as_ref().map_or("http", |p| p.scheme).to_owned(),
        method: request.method().as_str().to_owned(),
        host,
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        remote: peer.map(|p| p.remote.to_string()).unwrap_or_default(),
    };
    journal.push(entry);
    next.run(request).await
}

/// `host:port` → `host`, keeping bracketed IPv6 literals whole.
fn strip_port(authority: &str) -> &str {
    if let Some(end) = authority.strip_prefix('[').and_then(|rest| rest.find(']')) {
        return &authority[..end + 2];
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn strips_ports_but_keeps_ipv6_brackets() {
        assert_eq!(strip_port("www.client.example:8443"), "www.client.example");
        assert_eq!(strip_port("www.client.example"), "www.client.example");
        assert_eq!(strip_port("[::1]:443"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }
}
