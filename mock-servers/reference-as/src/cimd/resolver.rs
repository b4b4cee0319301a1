//! The whole pipeline from a raw URL client_id to trusted metadata.
//!
//! Order matters: a fresh cached document is served at once (it passed every rule when it was
//! fetched, and the rules that come from the string alone cannot have changed); otherwise
//! everything that can be decided from the string (URL rules, the feature switch, the domain
//! policy) is decided before the network is touched, so a refused client_id costs no fetch; then
//! the cache's single-flight fetch or revalidation, Content-Type, document rules and the
//! authentication-method policy. Only a document that passed all of them is cached.
//!
//! The same cache machinery holds other JSON fetched on a client's say-so (a `jwks_uri`'s key
//! set) through [`ClientResolver::get_json`], under the same fetch rules and lifetimes.
//!
//! Errors carry an OAuth error code and a precise description ending in the requirement ID.
//! URL, fetch and document problems are `invalid_client` (the client's identity could not be
//! established); policy refusals are `unauthorized_client` (a valid client this server will not
//! serve); a switched-off feature is `access_denied`.

use std::sync::Arc;

use serde_json::Value;

use super::cache::{Failure, HttpCache, Loaded};
use super::document::{ClientMetadata, check_content_type};
use super::policy::EphemeralPolicy;
use super::url::{ClientIdUrl, looks_like_url};
use super::{Finding, quote};
use crate::faults::{Fault, Faults};
use crate::metrics::{CacheReport, FailureReason};
use crate::net::{FetchError, Fetcher, NetError, NetworkSettings, Revalidation, Validators};

/// Why a URL client_id could not be resolved: an OAuth error code and a precise description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct ResolveError {
    /// The catalogue requirement that decided the outcome.
    pub requirement: &'static str,
    /// The OAuth error code: `invalid_client`, `unauthorized_client` or `access_denied`.
    pub error: &'static str,
    /// What was wrong, ending in the requirement ID in parentheses.
    pub description: String,
}

impl ResolveError {
    fn from_finding(error: &'static str, finding: Finding) -> Self {
        let Finding {
            requirement,
            message,
        } = finding;
        Self {
            requirement,
            error,
            description: format!("{message} ({requirement})"),
        }
    }

    /// An `invalid_client` error from a finding.
    fn invalid_client(finding: Finding) -> Self {
        Self::from_finding("invalid_client", finding)
    }

    /// An `unauthorized_client` error from a finding.
    fn unauthorized_client(finding: Finding) -> Self {
        Self::from_finding("unauthorized_client", finding)
    }
}

/// Everything that can go wrong while building a [`ClientResolver`].
#[derive(Debug, thiserror::Error)]
pub enum CimdError {
    /// The outbound network settings are unusable.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// Resolves URL client IDs under one policy; share it behind an `Arc`.
#[derive(Debug)]
pub struct ClientResolver {
    policy: Arc<EphemeralPolicy>,
    faults: Faults,
    fetcher: Fetcher,
    documents: HttpCache<Arc<ClientMetadata>>,
    json: HttpCache<Arc<Value>>,
}

impl ClientResolver {
    /// A resolver for `policy`, reaching the network as `network` says, with `faults` on.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "the resolver takes over its whole configuration"
    )]
    pub fn new(
        policy: EphemeralPolicy,
        network: NetworkSettings,
        faults: Faults,
    ) -> Result<Self, CimdError> {
        let fetcher = Fetcher::new(&network, &policy.fetch, &faults)?;
        Ok(Self {
            documents: HttpCache::new("metadata", &policy.cache, &faults),
            json: HttpCache::new("json", &policy.cache, &faults),
            policy: Arc::new(policy),
            faults,
            fetcher,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &EphemeralPolicy {
        &self.policy
    }

    /// The faults switched on.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The metadata for `raw_client_id`, from the cache or freshly fetched and validated.
    pub async fn resolve(&self, raw_client_id: &str) -> Result<Arc<ClientMetadata>, ResolveError> {
        // Keyed by the raw string, which a ClientIdUrl keeps as received: a fresh entry passed
        // every rule below when it was fetched.
        if let Some(meta) = self.documents.fresh(raw_client_id) {
            return Ok(meta);
        }
        if !looks_like_url(raw_client_id) {
            return Err(ResolveError::invalid_client(Finding::new(
                "CIMD-URL-01",
                format!("client_id {} is not an https URL", quote(raw_client_id)),
            )));
        }
        let url = ClientIdUrl::parse(raw_client_id, &self.faults)
            .map_err(ResolveError::invalid_client)?;
        // The `accept-when-disabled` fault ignores the switch.
        if !self.policy.enabled && !self.faults.on(Fault::AcceptWhenDisabled) {
            return Err(ResolveError {
                requirement: "CUR-01",
                error: "access_denied",
                description: "this server does not accept URL client IDs: ephemeral clients are disabled (CUR-01)"
                    .to_owned(),
            });
        }
        // CIMD-SEC-09: decided before any fetch, so a refused host is never contacted.
        self.policy
            .check_domain(&url, &self.faults)
            .map_err(ResolveError::unauthorized_client)?;
        let (fetcher, policy, faults) = (
            self.fetcher.clone(),
            self.policy.clone(),
            self.faults.clone(),
        );
        // Keyed by the URL's own string: the entry and its metadata share one copy.
        self.documents
            .get(url.shared(), move |validators| async move {
                load_document(&fetcher, &policy, &faults, &url, &validators).await
            })
            .await
    }

    /// The JSON at `url` (e.g. a client's `jwks_uri`), from the cache or fetched under the same
    /// rules as metadata documents (https, SSRF guard, no redirects, 200 only, timeouts, byte
    /// cap, a JSON Content-Type) and cached by the same HTTP rules. The caller checks the JSON's
    /// shape; an error names the requirement that failed (`invalid_client`).
    pub async fn get_json(&self, url: &str) -> Result<Arc<Value>, ResolveError> {
        if let Some(json) = self.json.fresh(url) {
            return Ok(json);
        }
        let (fetcher, owned) = (self.fetcher.clone(), url.to_owned());
        self.json
            .get(url, move |validators| async move {
                load_json(&fetcher, &owned, &validators).await
            })
            .await
    }

    /// As [`ClientResolver::get_json`], but asks the host even if a fresh copy is cached (a
    /// conditional request when the copy has a validator), e.g. after a signature names a key
    /// the cached set lacks. Concurrent calls share one request; rate-limiting them is the
    /// caller's business.
    pub async fn reload_json(&self, url: &str) -> Result<Arc<Value>, ResolveError> {
        let (fetcher, owned) = (self.fetcher.clone(), url.to_owned());
        self.json
            .reload(url, move |validators| async move {
                load_json(&fetcher, &owned, &validators).await
            })
            .await
    }

    /// The caches' counters and sizes: client metadata documents (`metadata`) and other JSON
    /// (`json`).
    pub fn cache_reports(&self) -> [CacheReport; 2] {
        [self.documents.report(), self.json.report()]
    }
}

/// A fetch failure as the caller sees it, naming what was being fetched.
fn fetch_failure(what: &str, e: &FetchError) -> Failure {
    Failure {
        reason: e.reason,
        error: ResolveError::invalid_client(Finding::new(
            e.requirement,
            format!("could not fetch {what}: {}", e.message),
        )),
    }
}

/// One request for `url` with `validators`, and the Content-Type rule (CIMD-DOC-05) on a full
/// answer unless `any_content_type`.
async fn fetch_json(
    fetcher: &Fetcher,
    what: &str,
    url: &str,
    validators: &Validators,
    any_content_type: bool,
) -> Result<Revalidation, Failure> {
    let answer = fetcher
        .fetch_if_modified(url, validators)
        .await
        .map_err(|e| fetch_failure(what, &e))?;
    if let Revalidation::Modified(fetched) = &answer
        && !any_content_type
    {
        let content_type = fetched
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        check_content_type(content_type).map_err(|finding| Failure {
            reason: FailureReason::ContentType,
            error: ResolveError::invalid_client(finding),
        })?;
    }
    Ok(answer)
}

/// Fetch (or revalidate), check and admit one metadata document: run once per miss or stale
/// entry by the cache, whatever the number of callers waiting.
async fn load_document(
    fetcher: &Fetcher,
    policy: &EphemeralPolicy,
    faults: &Faults,
    url: &ClientIdUrl,
    validators: &Validators,
) -> Result<Loaded<Arc<ClientMetadata>>, Failure> {
    let what = "the client metadata document";
    // The `accept-any-content-type` fault skips the CIMD-DOC-05 check.
    let any_content_type = faults.on(Fault::AcceptAnyContentType);
    let response =
        match fetch_json(fetcher, what, url.as_str(), validators, any_content_type).await? {
            Revalidation::Modified(full) => full,
            Revalidation::NotModified(headers) => return Ok(Loaded::NotModified(headers)),
        };
    let meta = ClientMetadata::parse(url, &response.body, faults).map_err(|finding| Failure {
        reason: FailureReason::Invalid,
        error: ResolveError::invalid_client(finding),
    })?;
    policy
        .check_client(&meta, faults)
        .map_err(|finding| Failure {
            reason: FailureReason::Policy,
            error: ResolveError::unauthorized_client(finding),
        })?;
    Ok(Loaded::Body {
        value: Arc::new(meta),
        headers: response.headers,
        bytes: response.body.len(),
    })
}

/// Fetch (or revalidate) and parse one JSON resource for [`ClientResolver::get_json`].
async fn load_json(
    fetcher: &Fetcher,
    url: &str,
    validators: &Validators,
) -> Result<Loaded<Arc<Value>>, Failure> {
    let what = format!("the JSON at {}", quote(url));
    // The `accept-any-content-type` fault is about metadata documents; this is always checked.
    let response = match fetch_json(fetcher, &what, url, validators, false).await? {
        Revalidation::Modified(full) => full,
        Revalidation::NotModified(headers) => return Ok(Loaded::NotModified(headers)),
    };
    let json: Value = serde_json::from_slice(&response.body).map_err(|e| Failure {
        reason: FailureReason::Invalid,
        // CIMD-AUTH-03: keys that cannot be read cannot verify anything.
        error: ResolveError::invalid_client(Finding::new(
            "CIMD-AUTH-03",
            format!("{what} is not JSON: {e}"),
        )),
    })?;
    Ok(Loaded::Body {
        value: Arc::new(json),
        headers: response.headers,
        bytes: response.body.len(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::cimd::policy::DomainMode;

    fn resolver(policy: EphemeralPolicy) -> ClientResolver {
        ClientResolver::new(policy, NetworkSettings::default(), Faults::none()).unwrap()
    }

    #[tokio::test]
    async fn refuses_malformed_and_non_url_client_ids_as_invalid_client() {
        let r = resolver(EphemeralPolicy::default());
        let err = r.resolve("my-app").await.unwrap_err();
        assert_eq!(
            (err.error, err.requirement),
            ("invalid_client", "CIMD-URL-01")
        );
        let err = r
            .resolve("https://client.example/a/../b")
            .await
            .unwrap_err();
        assert_eq!(
            (err.error, err.requirement),
            ("invalid_client", "CIMD-URL-04")
        );
        assert!(
            err.description.ends_with("(CIMD-URL-04)"),
            "{}",
            err.description
        );
    }

    #[tokio::test]
    async fn a_disabled_feature_is_access_denied() {
        let r = resolver(EphemeralPolicy {
            enabled: false,
            ..EphemeralPolicy::default()
        });
        let err = r.resolve("https://client.example/c").await.unwrap_err();
        assert_eq!(err.error, "access_denied");
    }

    #[tokio::test]
    async fn a_host_off_the_allow_list_is_unauthorized_client() {
        let mut policy = EphemeralPolicy::default();
        policy.domains.mode = DomainMode::AllowList;
        policy.domains.patterns = vec!["*.trusted.test".parse().unwrap()];
        let err = resolver(policy)
            .resolve("https://evil.test/c")
            .await
            .unwrap_err();
        assert_eq!(
            (err.error, err.requirement),
            ("unauthorized_client", "CIMD-SEC-09")
        );
    }

    #[test]
    fn bad_extra_roots_fail_construction() {
        let network = NetworkSettings {
            extra_roots_pem: vec!["not pem".into()],
            ..NetworkSettings::default()
        };
        let err =
            ClientResolver::new(EphemeralPolicy::default(), network, Faults::none()).unwrap_err();
        assert!(err.to_string().contains("#0"), "{err}");
    }
}
