//! The whole pipeline from a raw URL client_id to trusted metadata.
//!
//! Order matters: everything that can be decided from the string alone (URL rules, the feature
//! switch, the domain policy) is decided before the network is touched, so a refused client_id
//! costs no fetch; then the cache; then fetch, Content-Type, document rules and the
//! authentication-method policy. Only a document that passed all of them is cached.
//!
//! Errors carry an OAuth error code and a precise description ending in the requirement ID.
//! URL, fetch and document problems are `invalid_client` (the client's identity could not be
//! established); policy refusals are `unauthorized_client` (a valid client this server will not
//! serve); a switched-off feature is `access_denied`.

use std::sync::Arc;

use super::cache::MetadataCache;
use super::document::{ClientMetadata, check_content_type};
use super::policy::EphemeralPolicy;
use super::url::{ClientIdUrl, looks_like_url};
use super::{Finding, quote};
use crate::faults::{Fault, Faults};
use crate::net::{Fetcher, NetError, NetworkSettings};

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
    policy: EphemeralPolicy,
    faults: Faults,
    fetcher: Fetcher,
    cache: MetadataCache,
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
        let mut cache_settings = policy.cache;
        if faults.on(Fault::NeverRefetch) {
            // The longest lifetime the cache honours: no document is ever fetched again.
            cache_settings.ttl_secs = u64::MAX;
        }
        if faults.on(Fault::NeverCache) {
            cache_settings.ttl_secs = 0;
        }
        let mut cache = MetadataCache::new(&cache_settings);
        if faults.on(Fault::CacheFetchErrors) {
            cache = cache.remembering_failures(&cache_settings);
        }
        Ok(Self {
            policy,
            faults,
            fetcher,
            cache,
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
        self.cache.get_or_load(url.as_str(), self.load(&url)).await
    }

    /// Fetch, check and admit one document (run at most once per miss by the cache).
    async fn load(&self, url: &ClientIdUrl) -> Result<Arc<ClientMetadata>, ResolveError> {
        let fetched = self.fetcher.fetch(url.as_str()).await.map_err(|e| {
            ResolveError::invalid_client(Finding::new(
                e.requirement,
                format!(
                    "could not fetch the client metadata document: {}",
                    e.message
                ),
            ))
        })?;
        let content_type = fetched
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        // The `accept-any-content-type` fault skips the CIMD-DOC-05 check.
        if !self.faults.on(Fault::AcceptAnyContentType) {
            check_content_type(content_type).map_err(ResolveError::invalid_client)?;
        }
        let meta = ClientMetadata::parse(url, &fetched.body, &self.faults)
            .map_err(ResolveError::invalid_client)?;
        self.policy
            .check_client(&meta, &self.faults)
            .map_err(ResolveError::unauthorized_client)?;
        Ok(Arc::new(meta))
    }
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
