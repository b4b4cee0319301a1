//! A closed-loop HTTP load: `concurrency` workers each keep one request in flight until the time
//! or the request budget runs out, and every answer's latency is recorded.
//!
//! The driver is a bare HTTP/1.1 client (hyper's connection API, one keep-alive connection per
//! worker, no pool, no cookies, no redirects) so that it is not the bottleneck: with reqwest the
//! driver's core saturated at about 14,000 requests/s while the server under test was a third
//! busy. Servers under test speak plain HTTP on loopback; TLS stays out of both sides' figures.
//!
//! Both limits are hard: a worker checks the deadline and takes a ticket from the shared budget
//! before every request, and every request has its own timeout, so a stalled server ends a run
//! instead of hanging it. What counts as success is the caller's (an authorize that redirects to
//! a login page is a success; an error page is not).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Request, Uri, header};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use crate::latency::Samples;

/// How long and how hard one run pushes.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Requests kept in flight.
    pub concurrency: usize,
    /// Wall-clock length of the run.
    pub duration: Duration,
    /// The most requests sent in the run, whatever the time.
    pub max_requests: usize,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Latencies of the successful requests.
    pub samples: Samples,
    /// Requests that failed (transport error, timeout or an answer the check refused).
    pub failed: usize,
    /// Wall-clock time from the first request to the last answer.
    pub elapsed: Duration,
    /// What the first failure was, for the report.
    pub first_failure: Option<String>,
}

impl Outcome {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            #[allow(
                clippy::cast_precision_loss,
                reason = "request counts are far below 2^52"
            )]
            let ok = self.samples.len() as f64;
            ok / seconds
        } else {
            0.0
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.samples.extend(other.samples);
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }
}

/// The load generator's HTTP client: plain HTTP/1.1, one keep-alive connection per worker, no
/// redirects followed, no proxy, no cookies (every request is a new browser).
#[derive(Debug, Clone, Copy, Default)]
pub struct Client;

impl Client {
    /// The client.
    pub fn new() -> Self {
        Self
    }
}

/// The longest a single request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One open HTTP/1.1 connection.
struct Connection {
    sender: SendRequest<Empty<Bytes>>,
}

impl Connection {
    /// Connects to the authority of `uri` (plain HTTP only).
    async fn open(uri: &Uri) -> Result<Self, String> {
        if uri.scheme_str() != Some("http") {
            return Err(format!("the load driver speaks plain HTTP only, not {uri}"));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("no host in {uri}"))?
            .as_str();
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| format!("connecting to {authority}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; either way the worker sees it.
            let _ = connection.await;
        });
        Ok(Self { sender })
    }

    /// One `GET uri` on this connection: an authorize success, or what went wrong.
    async fn get(&mut self, uri: &Uri) -> Result<(), String> {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let host = uri.authority().map_or("", |a| a.as_str());
        let request = Request::get(path)
            .header(header::HOST, host)
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read the body so the connection can carry the next request.
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if is_authorize_success(status, location.as_deref()) {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&body);
            let excerpt: String = text.chars().take(300).collect();
            Err(format!(
                "{status} location={location:?} body={excerpt:?} url={uri}"
            ))
        }
    }
}

/// An authorization request that passed client validation: a redirect onward (to a login or
/// interaction page), not an error page and not an error sent back to the redirect URI.
pub fn is_authorize_success(status: http::StatusCode, location: Option<&str>) -> bool {
    status.is_redirection() && location.is_some_and(|l| !l.contains("error="))
}

/// One request on `connection` (opened first if there is none; dropped after a failure, so the
/// next request starts on a fresh one), bounded by [`REQUEST_TIMEOUT`].
async fn one(connection: &mut Option<Connection>, url: &str) -> Result<Duration, String> {
    let uri: Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let attempt = async {
        let sent = Instant::now();
        let open = match connection {
            Some(open) => open,
            None => connection.insert(Connection::open(&uri).await?),
        };
        open.get(&uri).await?;
        // A new connection's set-up counts in the latency, as it would for a browser.
        Ok(sent.elapsed())
    };
    let result = match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}: {url}")),
    };
    if result.is_err() {
        *connection = None;
    }
    result
}

/// Runs `plan` against the URLs `url(n)` makes for request number `n` (unique within the run).
pub async fn run<U>(_client: &Client, plan: Plan, url: U) -> Outcome
where
    U: Fn(usize) -> String + Send + Sync + 'static,
{
    let url = Arc::new(url);
    let tickets = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency.max(1) {
        let (url, tickets) = (url.clone(), tickets.clone());
        workers.spawn(async move {
            let mut outcome = Outcome::default();
            let mut connection = None;
            while Instant::now() < deadline {
                let n = tickets.fetch_add(1, Ordering::Relaxed);
                if n >= plan.max_requests {
                    break;
                }
                match one(&mut connection, &url(n)).await {
                    Ok(latency) => outcome.samples.push(latency),
                    Err(failure) => {
                        outcome.failed += 1;
                        outcome.first_failure.get_or_insert(failure);
                    }
                }
            }
            outcome
        });
    }
    let mut total = Outcome::default();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(outcome) => total.merge(outcome),
            Err(error) => {
                total.failed += 1;
                total.first_failure.get_or_insert(error.to_string());
            }
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// Sends `count` requests to `url` at once (each on its own connection) and waits for all.
pub async fn burst(_client: &Client, count: usize, url: &str) -> Outcome {
    let started = Instant::now();
    let requests = (0..count).map(|_| async {
        let mut connection = None;
        one(&mut connection, url).await
    });
    let mut outcome = Outcome::default();
    for result in futures_util::future::join_all(requests).await {
        match result {
            Ok(latency) => outcome.samples.push(latency),
            Err(failure) => {
                outcome.failed += 1;
                outcome.first_failure.get_or_insert(failure);
            }
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that redirects `/ok` to a login page and refuses everything else.
    async fn server() -> mock_kit::Running {
        use axum::response::IntoResponse as _;
        let router = axum::Router::new().fallback(|uri: Uri| async move {
            if uri.path() == "/ok" {
                (
                    http::StatusCode::SEE_OTHER,
                    [(header::LOCATION, "/login?request_id=x")],
                )
                    .into_response()
            } else {
                (http::StatusCode::BAD_REQUEST, "no").into_response()
            }
        });
        mock_kit::serve_http(router).await.unwrap()
    }

    #[tokio::test]
    async fn every_request_of_a_run_is_sent_over_the_wire_and_judged() {
        let running = server().await;
        let origin = running.origin("127.0.0.1");
        let plan = Plan {
            concurrency: 4,
            duration: Duration::from_secs(10),
            max_requests: 40,
        };
        let outcome = run(&Client::new(), plan, move |n| {
            let path = if n % 10 == 0 { "/bad" } else { "/ok" };
            format!("{origin}{path}?n={n}")
        })
        .await;
        assert_eq!(outcome.samples.len(), 36);
        assert_eq!(outcome.failed, 4);
        assert!(
            outcome
                .first_failure
                .as_deref()
                .is_some_and(|f| f.starts_with("400")),
            "{:?}",
            outcome.first_failure
        );
        assert_eq!(running.journal().entries().len(), 40);
    }

    #[tokio::test]
    async fn a_burst_opens_one_connection_per_request() {
        let running = server().await;
        let outcome = burst(
            &Client::new(),
            8,
            &format!("{}/ok", running.origin("127.0.0.1")),
        )
        .await;
        assert_eq!((outcome.samples.len(), outcome.failed), (8, 0));
        let peers: std::collections::BTreeSet<_> = running
            .journal()
            .entries()
            .iter()
            .map(|e| e.remote.clone())
            .collect();
        assert_eq!(peers.len(), 8);
    }

    #[tokio::test]
    async fn an_https_url_is_a_failure_not_a_hang() {
        let outcome = burst(&Client::new(), 1, "https://127.0.0.1:1/ok").await;
        assert_eq!(outcome.failed, 1);
        assert!(outcome.first_failure.unwrap().contains("plain HTTP only"));
    }

    #[test]
    fn only_a_redirect_without_an_error_is_a_success() {
        let see_other = http::StatusCode::SEE_OTHER;
        assert!(is_authorize_success(see_other, Some("/login?request=x")));
        assert!(!is_authorize_success(
            see_other,
            Some("http://127.0.0.1/cb?error=invalid_request")
        ));
        assert!(!is_authorize_success(see_other, None));
        assert!(!is_authorize_success(
            http::StatusCode::BAD_REQUEST,
            Some("/login")
        ));
    }
}
