//! A closed-loop HTTP load: `concurrency` workers each keep one request in flight until the time
//! or the request budget runs out, and every answer's latency is recorded.
//!
//! Both limits are hard: a worker checks the deadline and takes a ticket from the shared budget
//! before every request, and every request has its own timeout, so a stalled server ends a run
//! instead of hanging it. What counts as success is the caller's (an authorize that redirects to
//! a login page is a success; an error page is not).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

/// The load generator's HTTP client: no redirects followed, no proxy, no cookies (every request is
/// a new browser), HTTP/1.1 keep-alive with one connection per worker.
pub fn client(concurrency: usize) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(concurrency.max(1))
        .timeout(REQUEST_TIMEOUT)
        .build()
}

/// The longest a single request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An authorization request that passed client validation: a redirect onward (to a login or
/// interaction page), not an error page and not an error sent back to the redirect URI.
pub fn is_authorize_success(status: http::StatusCode, location: Option<&str>) -> bool {
    status.is_redirection() && location.is_some_and(|l| !l.contains("error="))
}

/// One request: its latency on success, or what went wrong.
async fn one(client: &reqwest::Client, url: &str) -> Result<Duration, String> {
    let sent = Instant::now();
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Read the body so the connection goes back to the pool.
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    let latency = sent.elapsed();
    if is_authorize_success(status, location.as_deref()) {
        Ok(latency)
    } else {
        let text = String::from_utf8_lossy(&body);
        let excerpt: String = text.chars().take(300).collect();
        Err(format!(
            "{status} location={location:?} body={excerpt:?} url={url}"
        ))
    }
}

/// Runs `plan` against the URLs `url(n)` makes for request number `n` (unique within the run).
pub async fn run<U>(client: &reqwest::Client, plan: Plan, url: U) -> Outcome
where
    U: Fn(usize) -> String + Send + Sync + 'static,
{
    let url = Arc::new(url);
    let tickets = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency.max(1) {
        let (client, url, tickets) = (client.clone(), url.clone(), tickets.clone());
        workers.spawn(async move {
            let mut outcome = Outcome::default();
            while Instant::now() < deadline {
                let n = tickets.fetch_add(1, Ordering::Relaxed);
                if n >= plan.max_requests {
                    break;
                }
                match one(&client, &url(n)).await {
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
pub async fn burst(client: &reqwest::Client, count: usize, url: &str) -> Outcome {
    let started = Instant::now();
    let requests = (0..count).map(|_| one(client, url));
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
