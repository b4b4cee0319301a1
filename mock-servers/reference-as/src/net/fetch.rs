//! One bounded GET of a client-controlled URL.
//!
//! The fetcher is deliberately narrow: https only; no redirects (a 3xx is an error, CIMD-FETCH-03);
//! only 200 is success (CIMD-FETCH-02); a connect timeout and a total timeout (CIMD-FETCH-04); a
//! byte cap counted while reading, whatever Content-Length claims (CIMD-SEC-06); no proxy (a proxy
//! would resolve names itself and bypass the SSRF guard); no decompression (the workspace builds
//! reqwest without gzip/brotli/zstd, so a compression bomb arrives as its compressed bytes and
//! meets the cap; should feature unification ever switch decompression on, the count still
//! applies, because `chunk()` yields decoded bytes); no cookies, no `Authorization`, no `Referer` (CIMD-SEC-10). Names resolve
//! through [`GuardedResolver`] (CIMD-SEC-01), and IP-literal URLs, which skip any resolver, are
//! refused here. The platform's roots are trusted, plus any extra roots (a test CA).
//!
//! The metadata cache revalidates stale entries through [`Fetcher::fetch_if_modified`], which sends
//! the stored validators as `If-None-Match` and `If-Modified-Since`; only then is a 304 an answer.
//! A 304 to an unconditional request stays a status error (CIMD-FETCH-02), since there is nothing
//! it could refer to.
//!
//! Faults loosen exactly one rule each: `follow-redirects` (up to 5 hops, each re-checked for
//! scheme and IP literals), `accept-any-status`, `no-fetch-timeout`, `no-size-limit`,
//! `skip-ssrf-guard` and, so that its effect is visible on the wire, `lenient-client-id-url`
//! (plain http allowed).

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT, CONTENT_LENGTH, IF_MODIFIED_SINCE, IF_NONE_MATCH, LOCATION};
use http::{HeaderMap, HeaderValue, StatusCode};
use reqwest::redirect;

use super::ssrf::{GuardedResolver, SsrfRefused, find_refusal, is_special_use};
use super::{NetError, NetworkSettings};
use crate::cimd::policy::FetchLimits;
use crate::faults::{Fault, Faults};
use crate::metrics::FailureReason;

/// The User-Agent sent with every fetch: names the software, nothing about the user.
pub const USER_AGENT: &str = concat!(
    "reference-as/",
    env!("CARGO_PKG_VERSION"),
    " (cimd-conformance reference AS)"
);

/// The most redirect hops followed with the `follow-redirects` fault.
const MAX_REDIRECTS: usize = 5;

/// A successful fetch.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The status code (200 unless `accept-any-status` is on).
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, at most the configured number of bytes.
    pub body: Bytes,
    /// The URL the body came from (differs from the request only with `follow-redirects`).
    pub final_url: String,
}

/// The validators of a stored response, sent to ask the host whether the document changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The stored `ETag`, sent as `If-None-Match`.
    pub etag: Option<HeaderValue>,
    /// The stored `Last-Modified`, sent as `If-Modified-Since`.
    pub last_modified: Option<HeaderValue>,
}

impl Validators {
    /// Whether there is nothing to send, so the request would be unconditional.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// The answer to a conditional fetch.
#[derive(Debug, Clone)]
pub enum Revalidation {
    /// A full 200 response: the document changed (or the host ignored the validators).
    Modified(Fetched),
    /// 304 Not Modified: the stored document is still current; these are the 304's headers.
    NotModified(HeaderMap),
}

/// A failed fetch, naming the requirement that made it fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({requirement})")]
pub struct FetchError {
    /// The catalogue requirement, e.g. `CIMD-FETCH-03`.
    pub requirement: &'static str,
    /// What happened, naming the URL.
    pub message: String,
    /// The failure's kind, for the cache's failure counters.
    pub reason: FailureReason,
}

impl FetchError {
    fn new(requirement: &'static str, reason: FailureReason, message: impl Into<String>) -> Self {
        Self {
            requirement,
            message: message.into(),
            reason,
        }
    }
}

/// The guarded HTTPS client. Cheap to share: clone the `Arc` it is usually kept in.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    limits: FetchLimits,
    faults: Faults,
}

impl Fetcher {
    /// Builds the client for `net`, `limits` and `faults`.
    pub fn new(
        net: &NetworkSettings,
        limits: &FetchLimits,
        faults: &Faults,
    ) -> Result<Self, NetError> {
        let mut roots = Vec::new();
        for (index, pem) in net.extra_roots_pem.iter().enumerate() {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                NetError::BadRoot {
                    index,
                    reason: e.to_string(),
                }
            })?;
            if certs.is_empty() {
                return Err(NetError::BadRoot {
                    index,
                    reason: "no certificate in it".to_owned(),
                });
            }
            roots.extend(certs);
        }
        let mut headers = HeaderMap::new();
        // CIMD-FETCH-06 (proposed): say what we can read.
        if !faults.on(Fault::NoAcceptHeader) {
            headers.insert(ACCEPT, http::HeaderValue::from_static("application/json"));
        }
        let lenient = faults.on(Fault::LenientClientIdUrl);
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .https_only(!lenient)
            .no_proxy()
            .referer(false)
            .redirect(redirect_policy(faults))
            .dns_resolver(Arc::new(GuardedResolver::new(
                net.resolve.clone(),
                faults.on(Fault::SkipSsrfGuard),
            )))
            .tls_certs_merge(roots);
        if !faults.on(Fault::NoFetchTimeout) {
            // CIMD-FETCH-04: a slow host must not hold the authorization request hostage.
            builder = builder
                .connect_timeout(Duration::from_millis(limits.connect_timeout_ms))
                .timeout(Duration::from_millis(limits.timeout_ms));
        }
        let client = builder.build().map_err(NetError::Client)?;
        Ok(Self {
            client,
            limits: *limits,
            faults: faults.clone(),
        })
    }

    /// GETs `url` under every rule in the module docs.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let response = self.send(url, &Validators::default()).await?;
        self.accept(url, response).await
    }

    /// GETs `url` with `validators` as `If-None-Match` / `If-Modified-Since`. A 304 is an answer
    /// only when at least one validator was sent; everything else is as [`Fetcher::fetch`].
    pub async fn fetch_if_modified(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<Revalidation, FetchError> {
        let response = self.send(url, validators).await?;
        if response.status() == StatusCode::NOT_MODIFIED && !validators.is_empty() {
            return Ok(Revalidation::NotModified(response.headers().clone()));
        }
        self.accept(url, response).await.map(Revalidation::Modified)
    }

    /// Sends the GET, with the validators' conditional headers.
    async fn send(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<reqwest::Response, FetchError> {
        let parsed = self.check_url(url)?;
        let mut request = self.client.get(parsed);
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag.clone());
        }
        if let Some(last_modified) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, last_modified.clone());
        }
        request
            .send()
            .await
            .map_err(|e| describe(url, &e, &self.limits))
    }

    /// Applies the status rules to a response and reads its body.
    async fn accept(&self, url: &str, response: reqwest::Response) -> Result<Fetched, FetchError> {
        let status = response.status();
        // A 304 reaching this point answered a request without validators (decisions.md).
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            // CIMD-FETCH-03: a redirect could point anywhere, including past the allow-list.
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(none)");
            return Err(FetchError::new(
                "CIMD-FETCH-03",
                FailureReason::Redirect,
                format!(
                    "{url:?} answered {status} (Location: {location:?}); redirects are not followed"
                ),
            ));
        }
        if status != StatusCode::OK && !self.faults.on(Fault::AcceptAnyStatus) {
            return Err(FetchError::new(
                "CIMD-FETCH-02",
                FailureReason::Status,
                format!("{url:?} answered {status}; only 200 OK is accepted"),
            ));
        }
        let headers = response.headers().clone();
        let final_url = response.url().to_string();
        let body = self.read_body(url, response).await?;
        Ok(Fetched {
            status: status.as_u16(),
            headers,
            body,
            final_url,
        })
    }

    /// Scheme and host rules that the client cannot enforce for us.
    fn check_url(&self, url: &str) -> Result<reqwest::Url, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            FetchError::new(
                "CIMD-URL-01",
                FailureReason::Url,
                format!("{url:?} is not a URL: {e}"),
            )
        })?;
        let scheme_ok = parsed.scheme() == "https"
            || (parsed.scheme() == "http" && self.faults.on(Fault::LenientClientIdUrl));
        if !scheme_ok {
            return Err(FetchError::new(
                "CIMD-URL-01",
                FailureReason::Url,
                format!("{url:?} is not an https URL"),
            ));
        }
        check_host(&parsed, self.faults.on(Fault::SkipSsrfGuard)).map_err(|refused| {
            FetchError::new(refused.requirement, FailureReason::Ssrf, refused.message)
        })?;
        Ok(parsed)
    }

    /// CIMD-SEC-06: reads at most `max_bytes`, refusing as soon as the count passes it.
    async fn read_body(
        &self,
        url: &str,
        mut response: reqwest::Response,
    ) -> Result<Bytes, FetchError> {
        let limit = (!self.faults.on(Fault::NoSizeLimit)).then_some(self.limits.max_bytes);
        let too_big = |what: String| {
            FetchError::new(
                "CIMD-SEC-06",
                FailureReason::TooLarge,
                format!(
                    "the document at {url:?} is {what}; the limit is {} bytes",
                    self.limits.max_bytes
                ),
            )
        };
        // Fast path only: a lying Content-Length is caught by the count below.
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if let (Some(limit), Some(declared)) = (limit, declared)
            && declared > limit
        {
            return Err(too_big(format!("{declared} bytes long (Content-Length)")));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| describe(url, &e, &self.limits))?
        {
            let read = u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX);
            if limit.is_some_and(|limit| read > limit) {
                // Dropping the response here closes the connection instead of draining it.
                return Err(too_big(format!("more than {} bytes long", body.len())));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// CIMD-SEC-01: an IP-literal host would bypass the resolver's check, so it is judged here.
/// Without the fault every IP literal is refused (a client_id names a host, not an address).
fn check_host(url: &reqwest::Url, allow_special_use: bool) -> Result<(), SsrfRefused> {
    let ip = match url.host() {
        Some(url::Host::Domain(_)) => return Ok(()),
        Some(url::Host::Ipv4(v4)) => std::net::IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => std::net::IpAddr::V6(v6),
        None => return Err(SsrfRefused::new(format!("{:?} has no host", url.as_str()))),
    };
    if allow_special_use {
        return Ok(());
    }
    let kind = if is_special_use(ip) {
        "the special-use address"
    } else {
        "the address"
    };
    Err(SsrfRefused::new(format!(
        "{:?} names {kind} {ip} instead of a host name; IP literals are not fetched",
        url.as_str()
    )))
}

/// No redirects, or with the `follow-redirects` fault up to [`MAX_REDIRECTS`] hops, each hop
/// checked like the first URL (the resolver guards names; IP literals are checked here).
fn redirect_policy(faults: &Faults) -> redirect::Policy {
    if !faults.on(Fault::FollowRedirects) {
        return redirect::Policy::none();
    }
    let allow_special_use = faults.on(Fault::SkipSsrfGuard);
    let lenient = faults.on(Fault::LenientClientIdUrl);
    redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let scheme = attempt.url().scheme();
        if scheme != "https" && !(lenient && scheme == "http") {
            let message = format!(
                "a redirect led to the non-https URL {:?}",
                attempt.url().as_str()
            );
            return attempt.error(message);
        }
        match check_host(attempt.url(), allow_special_use) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    })
}

/// Turns a reqwest error into the requirement it broke, keeping the cause in the message.
fn describe(url: &str, error: &reqwest::Error, limits: &FetchLimits) -> FetchError {
    if let Some(refused) = find_refusal(error) {
        return FetchError::new(
            refused.requirement,
            FailureReason::Ssrf,
            format!("{url:?}: {}", refused.message),
        );
    }
    if error.is_timeout() {
        return FetchError::new(
            "CIMD-FETCH-04",
            FailureReason::Timeout,
            format!(
                "fetching {url:?} timed out (limits: connect {} ms, total {} ms)",
                limits.connect_timeout_ms, limits.timeout_ms
            ),
        );
    }
    let cause = causes(error);
    if error.is_redirect() {
        return FetchError::new(
            "CIMD-FETCH-03",
            FailureReason::Redirect,
            format!("following redirects from {url:?} failed: {cause}"),
        );
    }
    FetchError::new(
        "CIMD-FETCH-04",
        FailureReason::Network,
        format!("fetching {url:?} failed: {cause}"),
    )
}

/// The error and its sources joined with ": ", e.g. `error sending request: … : no addresses`.
fn causes(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}
