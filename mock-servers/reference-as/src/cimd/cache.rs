//! The metadata cache: valid documents only, bounded in size and lifetime, one fetch per miss.
//!
//! Kept behind this one small type so a later HTTP-caching implementation (RFC 9111 lifetimes,
//! clamping) can replace it without touching the resolver. Today it is a moka cache with a fixed
//! time-to-live and an entry bound. Loads go through `try_get_with`, so concurrent misses for one
//! client_id share a single fetch, and a failed load stores nothing: errors and invalid documents
//! are never cached (CIMD-CACHE-03/04).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::document::ClientMetadata;
use super::policy::CacheSettings;
use super::resolver::ResolveError;

/// The longest time-to-live honoured (moka refuses absurd durations; a year is plenty).
const MAX_TTL: Duration = Duration::from_hours(365 * 24);

/// Validated documents keyed by the raw client_id string.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    inner: moka::future::Cache<String, Arc<ClientMetadata>>,
    /// Failed loads; kept only with the `cache-fetch-errors` fault, which breaks CIMD-CACHE-03.
    failures: Option<moka::future::Cache<String, ResolveError>>,
}

impl MetadataCache {
    /// A cache with `settings`' time-to-live and entry bound.
    pub fn new(settings: &CacheSettings) -> Self {
        Self {
            inner: bounded(settings),
            failures: None,
        }
    }

    /// The same cache, but also remembering failed loads under the same bounds: the
    /// `cache-fetch-errors` fault.
    #[must_use]
    pub fn remembering_failures(mut self, settings: &CacheSettings) -> Self {
        self.failures = Some(bounded(settings));
        self
    }

    /// The cached document for `client_id`, or the result of `load` (stored only on success).
    /// Concurrent callers for the same key wait for one `load` and share its outcome.
    pub async fn get_or_load<F>(
        &self,
        client_id: &str,
        load: F,
    ) -> Result<Arc<ClientMetadata>, ResolveError>
    where
        F: Future<Output = Result<Arc<ClientMetadata>, ResolveError>>,
    {
        if let Some(failures) = &self.failures
            && let Some(error) = failures.get(client_id).await
        {
            return Err(error);
        }
        let result = self
            .inner
            .try_get_with_by_ref(client_id, load)
            .await
            .map_err(|shared| ResolveError::clone(&shared));
        if let (Some(failures), Err(error)) = (&self.failures, &result) {
            failures.insert(client_id.to_owned(), error.clone()).await;
        }
        result
    }
}

/// A moka cache with `settings`' time-to-live and entry bound.
fn bounded<V: Clone + Send + Sync + 'static>(
    settings: &CacheSettings,
) -> moka::future::Cache<String, V> {
    let ttl = Duration::from_secs(settings.ttl_secs).min(MAX_TTL);
    moka::future::Cache::builder()
        .max_capacity(settings.max_entries)
        .time_to_live(ttl)
        .build()
}
