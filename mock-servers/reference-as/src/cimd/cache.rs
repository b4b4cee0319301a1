//! The HTTP cache for what the AS fetches on a client's say-so: metadata documents and JWKS.
//!
//! Freshness follows RFC 9111 for a private cache (`http-cache-semantics`, `shared: false`, no
//! heuristic): `max-age`, else `Expires` against `Date`, less `Age`; a response without either
//! gets the configured default lifetime. The lifetime is clamped to the configured minimum and
//! maximum, except that the host's explicit refusals win over the minimum: `no-store` is never
//! stored, `no-cache` is revalidated on every use and a `must-revalidate` lifetime is never
//! stretched (CIMD-CACHE-02; [`CacheSettings`] documents every rule and default). Failed fetches
//! and invalid documents are never stored (CIMD-CACHE-03/04); a stale entry whose host now fails
//! is dropped, never served.
//!
//! A stale entry with an `ETag` or `Last-Modified` is revalidated with a conditional request; a 304
//! refreshes the entry (headers merged as RFC 9111 §4.3.4 says), a 200 replaces it. Misses and
//! revalidations are single-flight: the first caller for a key starts one fetch on its own task
//! and every concurrent caller awaits that same fetch, so N concurrent requests for one client
//! make one request to its host, and a caller that gives up (a closed browser) does not cancel
//! the fetch the others wait for. Memory is bounded by entries and by estimated bytes at once
//! (one weigher). The store is `quick_cache`'s sharded map: a hit takes one shard's read lock and
//! sets a reference bit, with no allocation and no queue of reads to replay, and its CLOCK-PRO
//! eviction admits new keys on probation, which keeps a flood of one-time client IDs from
//! flushing the clients in regular use. Freshness is this module's own check on every hit, so
//! entries carry no store-level expiry: a stale entry stays until it is revalidated, replaced or
//! evicted. Every step is counted in [`CacheMetrics`].
//!
//! Faults switch single rules off where they are enforced here: `never-cache`, `never-refetch`,
//! `ignore-no-store`, `ignore-max-age`, `no-revalidation`, `no-coalescing` and
//! `cache-fetch-errors`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use http::header::{
    AGE, CACHE_CONTROL, DATE, ETAG, EXPIRES, HeaderMap, HeaderName, HeaderValue, LAST_MODIFIED,
    PRAGMA, VARY,
};
use http::{StatusCode, request, response};
use http_cache_semantics::{AfterResponse, CacheOptions, CachePolicy};
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use super::policy::CacheSettings;
use super::resolver::ResolveError;
use crate::faults::{Fault, Faults};
use crate::metrics::{CacheMetrics, CacheReport, FailureReason};
use crate::net::Validators;

/// The longest lifetime ever used: a year stands for "as long as the server runs" and keeps
/// `Instant` arithmetic far from overflow.
const FOREVER: Duration = Duration::from_hours(365 * 24);

/// Resident bytes per body byte of the parsed value, the larger of the two kinds cached.
/// Measured: a 390-byte metadata document keeps about 400 bytes of `ClientMetadata` (typed members,
/// strings in one buffer); a JSON key set keeps 3 to 9 times its body as a `serde_json::Value`
/// (226 bytes: 1,976; 1,085 bytes: 3,400), so 8.
const PARSED_BYTES_PER_BODY_BYTE: usize = 8;

/// Bytes counted per entry on top of its key, parsed value and kept headers: the entry's slot in
/// the store and the store's index (measured at about 70 per entry; the estimate is for the byte
/// bound, which is about orders of magnitude, not exact accounting).
const ENTRY_OVERHEAD: usize = 128;

/// The response headers a stale entry keeps: what RFC 9111 needs to merge a 304 and compute the
/// refreshed lifetime. Everything else is dropped at once.
const KEPT_HEADERS: [HeaderName; 7] = [
    CACHE_CONTROL,
    EXPIRES,
    ETAG,
    LAST_MODIFIED,
    DATE,
    PRAGMA,
    VARY,
];

/// What a load (one request to the host, and validation of its answer) produced.
#[derive(Debug, Clone)]
pub enum Loaded<V> {
    /// A full, valid response.
    Body {
        /// The validated value.
        value: V,
        /// The response's headers (Cache-Control, Expires, ETag, ...).
        headers: HeaderMap,
        /// The body's length, for the byte bound.
        bytes: usize,
    },
    /// 304 Not Modified to the conditional request; the 304's headers.
    NotModified(HeaderMap),
}

/// A failed load: the error for the caller and its reason for the counters.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Why, for `fetch_failures_total`.
    pub reason: FailureReason,
    /// What the caller is told.
    pub error: ResolveError,
}

/// One stored response. Cloned out of the store on every lookup, so everything in it is cheap to
/// copy (the value is an `Arc` in practice).
#[derive(Debug, Clone)]
struct Entry<V> {
    value: V,
    /// Served without asking the host until then.
    fresh_until: Instant,
    /// What a conditional request and a 304 merge need; only for entries with a validator.
    revalidation: Option<Arc<Kept>>,
    /// The length of the body the value was read from (the body itself is not kept).
    body_bytes: u32,
    /// The estimated size the byte bound counts.
    weight: u32,
}

/// The kept headers of a stored response and when it was received.
#[derive(Debug)]
struct Kept {
    headers: Box<[(HeaderName, HeaderValue)]>,
    received: SystemTime,
}

impl Kept {
    /// Copies the [`KEPT_HEADERS`] out of `headers`. The values are copied, not shared, so an
    /// entry never pins the buffer its response was read into.
    fn from_response(headers: &HeaderMap, received: SystemTime) -> Self {
        let kept = KEPT_HEADERS
            .iter()
            .flat_map(|name| headers.get_all(name).iter().map(move |v| (name, v)))
            .filter_map(|(name, value)| {
                HeaderValue::from_bytes(value.as_bytes())
                    .ok()
                    .map(|value| (name.clone(), value))
            })
            .collect();
        Self {
            headers: kept,
            received,
        }
    }

    fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            map.append(name.clone(), value.clone());
        }
        map
    }

    fn validators(&self) -> Validators {
        let find = |wanted: &HeaderName| {
            self.headers
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| value.clone())
        };
        Validators {
            etag: find(&ETAG),
            last_modified: find(&LAST_MODIFIED),
        }
    }

    fn bytes(&self) -> usize {
        self.headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum()
    }
}

/// The lifetime rules: configuration plus the faults that break them.
#[derive(Debug, Clone, Copy)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one switch per fault, each read at the one place it breaks a rule"
)]
struct Rules {
    default_ttl: Duration,
    min_ttl: Duration,
    max_ttl: Duration,
    /// Every entry weighs at least this much, so the byte bound also bounds the entry count.
    weight_floor: u64,
    /// Nothing is ever stored (`never-cache`, or a zero bound).
    never_store: bool,
    never_refetch: bool,
    ignore_no_store: bool,
    ignore_max_age: bool,
    no_revalidation: bool,
    no_coalescing: bool,
}

impl Rules {
    fn new(settings: &CacheSettings, faults: &Faults) -> Self {
        let secs = |s: u64| Duration::from_secs(s).min(FOREVER);
        let weight_floor = settings.max_bytes.checked_div(settings.max_entries);
        Self {
            default_ttl: secs(settings.default_ttl_secs),
            min_ttl: secs(settings.min_ttl_secs),
            max_ttl: secs(settings.max_ttl_secs),
            weight_floor: weight_floor.unwrap_or(0),
            never_store: faults.on(Fault::NeverCache)
                || weight_floor.is_none()
                || settings.max_bytes == 0,
            never_refetch: faults.on(Fault::NeverRefetch),
            ignore_no_store: faults.on(Fault::IgnoreNoStore),
            ignore_max_age: faults.on(Fault::IgnoreMaxAge),
            no_revalidation: faults.on(Fault::NoRevalidation),
            no_coalescing: faults.on(Fault::NoCoalescing),
        }
    }

    /// The `ignore-no-store` and `ignore-max-age` faults: the response as a server with them
    /// would read it.
    fn strip(&self, headers: &mut HeaderMap) {
        let mut dropped: Vec<&str> = Vec::new();
        if self.ignore_no_store {
            dropped.push("no-store");
        }
        if self.ignore_max_age {
            dropped.extend(["max-age", "s-maxage"]);
            headers.remove(EXPIRES);
            headers.remove(AGE);
        }
        if dropped.is_empty() || !headers.contains_key(CACHE_CONTROL) {
            return;
        }
        let kept: Vec<String> = directives(headers)
            .filter(|d| !dropped.contains(&directive_name(d).as_str()))
            .map(str::to_owned)
            .collect();
        headers.remove(CACHE_CONTROL);
        if let Ok(value) = HeaderValue::from_str(&kept.join(", "))
            && !kept.is_empty()
        {
            headers.insert(CACHE_CONTROL, value);
        }
    }

    /// CIMD-CACHE-02: how long a response may be used without asking the host, or `None` if it
    /// must not be stored at all.
    fn lifetime(
        &self,
        policy: &CachePolicy,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Option<Duration> {
        if self.never_refetch {
            // The `never-refetch` fault: kept for as long as the server runs, whatever it says.
            return Some(FOREVER);
        }
        if !policy.is_storable() {
            // no-store wins over every clamp: the host said not to keep it.
            return None;
        }
        let has = |name: &str| directives(headers).any(|d| directive_name(d) == name);
        let pragma_no_cache = !headers.contains_key(CACHE_CONTROL)
            && headers.get_all(PRAGMA).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.to_ascii_lowercase().contains("no-cache"))
            });
        // RFC 9111 §4.1: `Vary: *` never matches a later request.
        let vary_star = headers
            .get_all(VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|field| field.trim() == "*");
        if has("no-cache") || pragma_no_cache || vary_star {
            // Stored for its validators only: every use asks the host first.
            return Some(Duration::ZERO);
        }
        let explicit = has("max-age") || headers.contains_key(EXPIRES);
        let ttl = if explicit {
            policy.time_to_live(now)
        } else {
            // RFC 9111 §4.2.2: this server's heuristic, aged by what the host reports.
            self.default_ttl.saturating_sub(policy.age(now))
        };
        let ttl = if has("must-revalidate") {
            ttl.min(self.max_ttl)
        } else {
            ttl.max(self.min_ttl).min(self.max_ttl)
        };
        Some(ttl.min(FOREVER))
    }
}

/// The Cache-Control directives of `headers`, trimmed, in order.
fn directives(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|d| !d.is_empty())
}

/// A directive's name, lower case (`Max-Age=60` → `max-age`).
fn directive_name(directive: &str) -> String {
    directive
        .split('=')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// How the policy library is asked: as a private cache with no heuristic freshness, because a
/// `Last-Modified` alone must not make a document cacheable for days (the configured default
/// applies instead).
fn options() -> CacheOptions {
    CacheOptions {
        shared: false,
        cache_heuristic: 0.0,
        immutable_min_time_to_live: Duration::ZERO,
        ignore_cargo_cult: false,
    }
}

/// The request every stored response answered: a plain GET. Only its method and headers matter
/// to the policy (the cache key is ours), and the fetcher sends no Cache-Control of its own.
fn plain_get() -> request::Parts {
    http::Request::new(()).into_parts().0
}

/// Response parts with `status` and `headers`, for the policy library.
fn parts(status: StatusCode, headers: HeaderMap) -> response::Parts {
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.headers = headers;
    parts
}

/// A fetch in progress that concurrent callers share.
type Flight<V> = Shared<BoxFuture<'static, Result<V, ResolveError>>>;

/// The store: entries by URL, weighed by [`EntryWeight`], evictions counted by [`Evictions`].
type Store<V> =
    quick_cache::sync::Cache<Arc<str>, Entry<V>, EntryWeight, DefaultHashBuilder, Evictions>;

/// An entry's weight for the byte bound: its estimate, and at least the floor that makes the byte
/// bound an entry bound too.
#[derive(Debug, Clone, Copy)]
struct EntryWeight {
    floor: u64,
}

impl<V> Weighter<Arc<str>, Entry<V>> for EntryWeight {
    fn weight(&self, _key: &Arc<str>, entry: &Entry<V>) -> u64 {
        u64::from(entry.weight).max(self.floor)
    }
}

/// Counts entries the bounds pushed out (never replacements or removals, which the store does not
/// report as evictions).
#[derive(Debug, Clone)]
struct Evictions(Arc<CacheMetrics>);

impl<V> Lifecycle<Arc<str>, Entry<V>> for Evictions {
    type RequestState = ();

    fn on_evict(&self, (): &mut (), _key: Arc<str>, _entry: Entry<V>) {
        self.0.evicted_for_size();
    }
}

/// The most shards of the store: readers of different shards never meet.
const MAX_SHARDS: u64 = 16;

/// The least byte bound per shard. Each shard enforces an equal part of the bound on its own, so
/// a part must hold many entries, even documents at the fetch cap, or a small cache would refuse
/// what fits in its total.
const MIN_SHARD_BYTES: u64 = 1 << 20;

/// A store for `max_bytes` of [`EntryWeight`]. The capacity is rounded down to a multiple of the
/// shard count, so the shards' equal parts never add up to more than the bound.
fn new_store<V: Clone>(
    settings: &CacheSettings,
    weight: EntryWeight,
    metrics: &Arc<CacheMetrics>,
) -> Store<V> {
    let wanted = (settings.max_bytes / MIN_SHARD_BYTES).clamp(1, MAX_SHARDS);
    // A power of two, as the store requires: the largest not above `wanted`.
    let shards = 1 << wanted.ilog2();
    let options = OptionsBuilder::new()
        .shards(usize::try_from(shards).unwrap_or(1))
        // Sizes the record of recently evicted keys and how many shards are worth it; nothing is
        // allocated up front.
        .estimated_items_capacity(usize::try_from(settings.max_entries).unwrap_or(usize::MAX))
        .weight_capacity(settings.max_bytes - settings.max_bytes % shards)
        .build()
        .expect("both capacities are set");
    Store::with_options(
        options,
        weight,
        DefaultHashBuilder::default(),
        Evictions(metrics.clone()),
    )
}

/// An HTTP cache of validated values of type `V`, keyed by URL; cheap to clone (shared state).
pub struct HttpCache<V> {
    inner: Arc<Inner<V>>,
}

struct Inner<V> {
    name: &'static str,
    rules: Rules,
    store: Store<V>,
    flights: Mutex<HashMap<Arc<str>, Flight<V>>>,
    /// Failed loads and until when they are served; kept only with the `cache-fetch-errors`
    /// fault, which breaks CIMD-CACHE-03.
    failures: Option<quick_cache::sync::Cache<Arc<str>, (ResolveError, Instant)>>,
    metrics: Arc<CacheMetrics>,
}

impl<V> Clone for HttpCache<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<V: Clone> std::fmt::Debug for HttpCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCache")
            .field("name", &self.inner.name)
            .field("entries", &self.inner.store.len())
            .field("weighted_bytes", &self.inner.store.weight())
            .finish_non_exhaustive()
    }
}

/// Removes a finished flight from the table, also when its task panicked.
struct Landing<V> {
    cache: HttpCache<V>,
    key: Arc<str>,
}

impl<V> Drop for Landing<V> {
    fn drop(&mut self) {
        self.cache
            .inner
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl<V: Clone + Send + Sync + 'static> HttpCache<V> {
    /// A cache named `name` (the `cache` label of its metrics) with `settings`' lifetimes and
    /// bounds and the cache faults among `faults`.
    pub fn new(name: &'static str, settings: &CacheSettings, faults: &Faults) -> Self {
        let rules = Rules::new(settings, faults);
        let metrics = Arc::new(CacheMetrics::default());
        let weight = EntryWeight {
            floor: rules.weight_floor,
        };
        let store = new_store(settings, weight, &metrics);
        let failures = faults.on(Fault::CacheFetchErrors).then(|| {
            quick_cache::sync::Cache::new(
                usize::try_from(settings.max_entries).unwrap_or(usize::MAX),
            )
        });
        Self {
            inner: Arc::new(Inner {
                name,
                rules,
                store,
                flights: Mutex::new(HashMap::new()),
                failures,
                metrics,
            }),
        }
    }

    /// The value stored for `key` if it is fresh (counted as a hit); `None` otherwise (not
    /// counted: the caller goes on to [`HttpCache::get`]).
    pub fn fresh(&self, key: &str) -> Option<V> {
        // One shard read lock and a clone of the entry (reference counts only).
        let entry = self.inner.store.get(key)?;
        if Instant::now() < entry.fresh_until {
            self.inner.metrics.hit();
            Some(entry.value.clone())
        } else {
            None
        }
    }

    /// The value for `key`: fresh from the store, or from `load`, which gets the stale entry's
    /// validators (empty for a miss) and performs one request. Concurrent callers for one key
    /// share one load; only a valid, storable answer is stored. A stored entry keeps `key`
    /// itself, so a key that shares its string with the value (a [`ClientIdUrl`] in the
    /// metadata) costs no second copy.
    ///
    /// [`ClientIdUrl`]: super::ClientIdUrl
    pub async fn get<L, F>(&self, key: impl Into<Arc<str>>, load: L) -> Result<V, ResolveError>
    where
        L: FnOnce(Validators) -> F + Send + 'static,
        F: Future<Output = Result<Loaded<V>, Failure>> + Send + 'static,
    {
        let key = key.into();
        if let Some(failures) = &self.inner.failures
            && let Some((error, until)) = failures.get(&*key)
            && Instant::now() < until
        {
            return Err(error);
        }
        if let Some(value) = self.fresh(&key) {
            return Ok(value);
        }
        self.inner.metrics.miss();
        self.fly(key, load, false).await
    }

    /// As [`HttpCache::get`], but asks the host even when the stored value is fresh (a
    /// conditional request if it has a validator). Joins a request already in flight.
    pub async fn reload<L, F>(&self, key: impl Into<Arc<str>>, load: L) -> Result<V, ResolveError>
    where
        L: FnOnce(Validators) -> F + Send + 'static,
        F: Future<Output = Result<Loaded<V>, Failure>> + Send + 'static,
    {
        self.inner.metrics.miss();
        self.fly(key.into(), load, true).await
    }

    /// Joins the flight for `key`, or starts it (unless, and not `forced`, a flight landed a
    /// fresh value meanwhile).
    async fn fly<L, F>(&self, key: Arc<str>, load: L, forced: bool) -> Result<V, ResolveError>
    where
        L: FnOnce(Validators) -> F + Send + 'static,
        F: Future<Output = Result<Loaded<V>, Failure>> + Send + 'static,
    {
        if self.inner.rules.no_coalescing {
            // The `no-coalescing` fault: every miss fetches for itself.
            return self.refresh(key, load).await;
        }
        let (flight, start) = {
            let mut flights = self
                .inner
                .flights
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(flight) = flights.get(&*key) {
                self.inner.metrics.coalesced();
                (flight.clone(), None)
            } else if !forced
                && let Some(entry) = self.inner.store.get(&*key)
                && Instant::now() < entry.fresh_until
            {
                // A flight landed between the lookup above and taking the lock.
                return Ok(entry.value.clone());
            } else {
                let (done, landed) = tokio::sync::oneshot::channel();
                let metrics = self.inner.metrics.clone();
                let flight: Flight<V> = async move {
                    landed.await.unwrap_or_else(|_| {
                        // The task panicked or the runtime is shutting down.
                        metrics.failure(FailureReason::Interrupted);
                        Err(ResolveError {
                            requirement: "CIMD-FETCH-04",
                            error: "invalid_client",
                            description: "fetching the document was interrupted (CIMD-FETCH-04)"
                                .to_owned(),
                        })
                    })
                }
                .boxed()
                .shared();
                flights.insert(key.clone(), flight.clone());
                (flight, Some((key, done)))
            }
        };
        // Started with the table unlocked: a task dropped at once (a runtime shutting down) takes
        // its flight out of the table on the way.
        if let Some((key, done)) = start {
            let landing = Landing {
                cache: self.clone(),
                key,
            };
            tokio::spawn(async move {
                let result = landing.cache.refresh(landing.key.clone(), load).await;
                // The store is updated before the flight leaves the table, and the flight leaves
                // the table before its waiters wake, so a newcomer finds one or the other and
                // never starts a second fetch.
                drop(landing);
                let _ = done.send(result);
            });
        }
        flight.await
    }

    /// One request to the host and what follows from it: store, refresh, replace or drop.
    async fn refresh<L, F>(&self, key: Arc<str>, load: L) -> Result<V, ResolveError>
    where
        L: FnOnce(Validators) -> F,
        F: Future<Output = Result<Loaded<V>, Failure>>,
    {
        let stale = self.inner.store.get(&*key);
        let validators = stale
            .as_ref()
            .filter(|_| !self.inner.rules.no_revalidation)
            .and_then(|entry| entry.revalidation.as_ref())
            .map(|kept| kept.validators())
            .unwrap_or_default();
        let conditional = !validators.is_empty();
        self.inner.metrics.fetch();
        let loaded = load(validators).await;
        let received = SystemTime::now();
        let result = match loaded {
            Ok(Loaded::Body {
                value,
                headers,
                bytes,
            }) => {
                if conditional {
                    self.inner.metrics.modified();
                }
                self.admit(&key, value.clone(), headers, bytes, received);
                Ok(value)
            }
            Ok(Loaded::NotModified(headers)) => {
                match stale.filter(|_| conditional).and_then(|stale| {
                    self.refreshed(&key, &stale, headers, received)
                        .map(|()| stale.value.clone())
                }) {
                    Some(value) => {
                        self.inner.metrics.not_modified();
                        Ok(value)
                    }
                    None => Err(Failure {
                        reason: FailureReason::Status,
                        error: ResolveError {
                            requirement: "CIMD-FETCH-02",
                            error: "invalid_client",
                            description: format!(
                                "{key:?} answered 304 Not Modified, but its validators match no \
                                 stored document (CIMD-FETCH-02)"
                            ),
                        },
                    }),
                }
            }
            Err(failure) => Err(failure),
        };
        result.map_err(|Failure { reason, error }| {
            // CIMD-CACHE-03/04: nothing of a failure is kept, and a stale entry whose host now
            // fails is not kept either (it is never served stale).
            self.inner.metrics.failure(reason);
            self.inner.store.remove(&*key);
            if let Some(failures) = &self.inner.failures {
                let until =
                    Instant::now() + self.inner.rules.default_ttl.max(Duration::from_secs(1));
                failures.insert(key, (error.clone(), until));
            }
            error
        })
    }

    /// Stores a full response if its headers allow it; otherwise drops any stale entry.
    fn admit(
        &self,
        key: &Arc<str>,
        value: V,
        mut headers: HeaderMap,
        bytes: usize,
        now: SystemTime,
    ) {
        let rules = &self.inner.rules;
        rules.strip(&mut headers);
        let policy = CachePolicy::new_options(
            &plain_get(),
            &parts(StatusCode::OK, headers.clone()),
            now,
            options(),
        );
        let lifetime = rules.lifetime(&policy, &headers, now);
        self.keep(key, value, lifetime, &headers, bytes, now);
    }

    /// Merges a 304 into `stale` (RFC 9111 §4.3.4) and stores the result; `None` when the 304's
    /// validators select nothing.
    fn refreshed(
        &self,
        key: &Arc<str>,
        stale: &Entry<V>,
        mut headers: HeaderMap,
        now: SystemTime,
    ) -> Option<()> {
        let kept = stale.revalidation.as_ref()?;
        let rules = &self.inner.rules;
        rules.strip(&mut headers);
        if !headers.contains_key(ETAG) && !headers.contains_key(LAST_MODIFIED) {
            // A bare 304 answers the one conditional request we sent for the one response we
            // hold; many hosts omit the validators from it.
            let validators = kept.validators();
            if let Some(etag) = validators.etag {
                headers.insert(ETAG, etag);
            }
            if let Some(last_modified) = validators.last_modified {
                headers.insert(LAST_MODIFIED, last_modified);
            }
        }
        let request = plain_get();
        let old = CachePolicy::new_options(
            &request,
            &parts(StatusCode::OK, kept.header_map()),
            kept.received,
            options(),
        );
        let AfterResponse::NotModified(policy, merged) =
            old.after_response(&request, &parts(StatusCode::NOT_MODIFIED, headers), now)
        else {
            return None;
        };
        let mut merged = merged.headers;
        // The merged Age was computed for this instant; kept, it would be counted twice.
        merged.remove(AGE);
        let lifetime = rules.lifetime(&policy, &merged, now);
        let bytes = usize::try_from(stale.body_bytes).unwrap_or(usize::MAX);
        self.keep(key, stale.value.clone(), lifetime, &merged, bytes, now);
        Some(())
    }

    /// Inserts an entry fresh for `lifetime`, or removes the key when there is nothing worth
    /// keeping (no lifetime, and no validator to revalidate with).
    fn keep(
        &self,
        key: &Arc<str>,
        value: V,
        lifetime: Option<Duration>,
        headers: &HeaderMap,
        bytes: usize,
        now: SystemTime,
    ) {
        let rules = &self.inner.rules;
        let has_validator = headers.contains_key(ETAG) || headers.contains_key(LAST_MODIFIED);
        let revalidation = (has_validator && !rules.no_revalidation)
            .then(|| Arc::new(Kept::from_response(headers, now)));
        let worth_keeping = match lifetime {
            None => false,
            Some(lifetime) => !lifetime.is_zero() || revalidation.is_some(),
        };
        let Some(lifetime) = lifetime.filter(|_| worth_keeping && !rules.never_store) else {
            self.inner.store.remove(&**key);
            return;
        };
        let fresh_until = Instant::now() + lifetime;
        let estimate = key.len()
            + bytes.saturating_mul(PARSED_BYTES_PER_BODY_BYTE)
            + revalidation.as_ref().map_or(0, |kept| kept.bytes())
            + ENTRY_OVERHEAD;
        let entry = Entry {
            value,
            fresh_until,
            revalidation,
            body_bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
            weight: u32::try_from(estimate).unwrap_or(u32::MAX),
        };
        self.inner.store.insert(key.clone(), entry);
    }

    /// The counters and the current size.
    pub fn report(&self) -> CacheReport {
        CacheReport {
            name: self.inner.name,
            counts: self.inner.metrics.snapshot(),
            entries: u64::try_from(self.inner.store.len()).unwrap_or(u64::MAX),
            weighted_bytes: self.inner.store.weight(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn rules(settings: &CacheSettings, faults: &[Fault]) -> Rules {
        Rules::new(settings, &Faults::of(faults.iter().copied()))
    }

    /// The lifetime `rules` give a 200 carrying `headers`, received now.
    fn lifetime(rules: &Rules, headers: &[(&str, &str)]) -> Option<u64> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        rules.strip(&mut map);
        let now = SystemTime::now();
        let policy = CachePolicy::new_options(
            &plain_get(),
            &parts(StatusCode::OK, map.clone()),
            now,
            options(),
        );
        // Rounded up: the library counts from the response's own second.
        rules
            .lifetime(&policy, &map, now)
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
    }

    fn http_date(offset_secs: i64) -> String {
        let at = if offset_secs >= 0 {
            SystemTime::now() + Duration::from_secs(offset_secs.unsigned_abs())
        } else {
            SystemTime::now() - Duration::from_secs(offset_secs.unsigned_abs())
        };
        httpdate(at)
    }

    /// IMF-fixdate, as hosts send it.
    fn httpdate(at: SystemTime) -> String {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Civil-from-days (Howard Hinnant), for a test helper without a date crate.
        let z = i64::try_from(days).unwrap() + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
            DAYS[usize::try_from(days % 7).unwrap()],
            MONTHS[usize::try_from(month - 1).unwrap()],
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    #[test]
    fn max_age_expires_and_age_decide_the_lifetime() {
        let r = rules(&CacheSettings::default(), &[]);
        assert_eq!(lifetime(&r, &[("cache-control", "max-age=60")]), Some(60));
        assert_eq!(
            lifetime(&r, &[("cache-control", "max-age=60"), ("age", "20")]),
            Some(40)
        );
        assert_eq!(
            lifetime(&r, &[("cache-control", "max-age=60"), ("age", "90")]),
            Some(0)
        );
        let date = http_date(0);
        let expires = http_date(120);
        let got = lifetime(&r, &[("date", &date), ("expires", &expires)]).unwrap();
        assert!((119..=121).contains(&got), "{got}");
        assert_eq!(
            lifetime(&r, &[("expires", "Thu, 01 Jan 1970 00:00:00 GMT")]),
            Some(0)
        );
        assert_eq!(lifetime(&r, &[("expires", "0")]), Some(0));
        // max-age wins over Expires (RFC 9111 §5.3).
        assert_eq!(
            lifetime(
                &r,
                &[("cache-control", "max-age=30"), ("expires", &expires)]
            ),
            Some(30)
        );
        // `private` is fine for a private cache; `s-maxage` is for shared ones.
        assert_eq!(
            lifetime(&r, &[("cache-control", "private, max-age=45, s-maxage=5")]),
            Some(45)
        );
    }

    #[test]
    fn a_response_without_freshness_gets_the_default_even_with_last_modified() {
        let r = rules(&CacheSettings::default(), &[]);
        assert_eq!(lifetime(&r, &[]), Some(300));
        assert_eq!(
            lifetime(&r, &[("last-modified", "Thu, 01 Jan 2015 00:00:00 GMT")]),
            Some(300)
        );
        assert_eq!(lifetime(&r, &[("age", "100")]), Some(200));
        assert_eq!(lifetime(&r, &[("cache-control", "public")]), Some(300));
    }

    #[test]
    fn lifetimes_are_clamped_but_no_store_no_cache_and_must_revalidate_win_over_the_minimum() {
        let settings = CacheSettings {
            min_ttl_secs: 10,
            max_ttl_secs: 100,
            ..CacheSettings::default()
        };
        let r = rules(&settings, &[]);
        assert_eq!(lifetime(&r, &[("cache-control", "max-age=1")]), Some(10));
        assert_eq!(
            lifetime(&r, &[("cache-control", "max-age=86400")]),
            Some(100)
        );
        assert_eq!(lifetime(&r, &[]), Some(100));
        assert_eq!(lifetime(&r, &[("cache-control", "no-store")]), None);
        assert_eq!(
            lifetime(&r, &[("cache-control", "no-store, max-age=600")]),
            None
        );
        assert_eq!(lifetime(&r, &[("cache-control", "no-cache")]), Some(0));
        assert_eq!(lifetime(&r, &[("pragma", "no-cache")]), Some(0));
        assert_eq!(lifetime(&r, &[("vary", "Accept, *")]), Some(0));
        assert_eq!(lifetime(&r, &[("vary", "Accept")]), Some(100));
        assert_eq!(
            lifetime(&r, &[("cache-control", "max-age=5, must-revalidate")]),
            Some(5)
        );
        assert_eq!(
            lifetime(&r, &[("cache-control", "max-age=500, must-revalidate")]),
            Some(100)
        );
        // A contradictory configuration: the maximum wins.
        let upside_down = rules(
            &CacheSettings {
                min_ttl_secs: 50,
                max_ttl_secs: 5,
                ..CacheSettings::default()
            },
            &[],
        );
        assert_eq!(
            lifetime(&upside_down, &[("cache-control", "max-age=1")]),
            Some(5)
        );
    }

    #[test]
    fn faults_switch_off_exactly_their_rule() {
        let settings = CacheSettings::default();
        let no_store = rules(&settings, &[Fault::IgnoreNoStore]);
        assert_eq!(
            lifetime(&no_store, &[("cache-control", "no-store, max-age=60")]),
            Some(60)
        );
        assert_eq!(
            lifetime(&no_store, &[("cache-control", "no-store")]),
            Some(300)
        );
        assert_eq!(
            lifetime(&no_store, &[("cache-control", "no-cache")]),
            Some(0)
        );
        let max_age = rules(&settings, &[Fault::IgnoreMaxAge]);
        assert_eq!(
            lifetime(&max_age, &[("cache-control", "max-age=1")]),
            Some(300)
        );
        assert_eq!(
            lifetime(&max_age, &[("expires", "Thu, 01 Jan 1970 00:00:00 GMT")]),
            Some(300)
        );
        assert_eq!(
            lifetime(&max_age, &[("cache-control", "no-store, max-age=1")]),
            None
        );
        let forever = rules(&settings, &[Fault::NeverRefetch]);
        assert_eq!(
            lifetime(&forever, &[("cache-control", "no-store")]),
            Some(FOREVER.as_secs())
        );
    }

    #[test]
    fn kept_headers_are_copies_of_the_freshness_fields_only() {
        let mut headers = HeaderMap::new();
        headers.insert(ETAG, HeaderValue::from_static("\"v1\""));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
        headers.insert("set-cookie", HeaderValue::from_static("a=b"));
        let kept = Kept::from_response(&headers, SystemTime::now());
        assert_eq!(kept.headers.len(), 2);
        assert_eq!(
            kept.validators(),
            Validators {
                etag: Some(HeaderValue::from_static("\"v1\"")),
                last_modified: None,
            }
        );
        assert!(kept.header_map().get("set-cookie").is_none());
    }
}
