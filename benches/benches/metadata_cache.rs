//! Criterion benches of the reference AS's metadata cache, through its stable entry points.
//!
//! Every bench but one drives the real pipeline: a [`ClientResolver`] that fetches from a
//! metadata host over loopback HTTPS (certificates from a run-time test CA, `*.example` mapped to
//! 127.0.0.1), validates the document and caches it. `cache_hit/lookup` benches the cache type
//! alone ([`HttpCache::fresh`]), beside `cache_hit/resolve`, the whole call an authorize request
//! makes for a cached client. Each bench checks the metadata host's journal (and the cache's
//! counters) after timing and panics if the fetches are not what the bench claims to measure: a
//! hit that fetched, a miss that fetched twice, a revalidation that was not a conditional request
//! answered 304, or 1,000 concurrent misses that did not coalesce into exactly one fetch.
//!
//! `cargo bench -p cimd-benches` (about a minute on 2 cores; results in target/criterion).

#![allow(
    clippy::unwrap_used,
    clippy::missing_docs_in_private_items,
    missing_docs,
    reason = "bench code: a failed setup must stop the run loudly"
)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use metadata_host::{MetadataHost, Route};
use mock_kit::TestCa;
use reference_as::cimd::cache::{HttpCache, Loaded};
use reference_as::cimd::{ClientIdUrl, ClientMetadata, ClientResolver, EphemeralPolicy};
use reference_as::faults::Faults;
use reference_as::net::{NetworkSettings, ResolveRule};
use tokio::runtime::Runtime;

/// The demo native client's document; the metadata host fills in its `client_id`.
const DOCUMENT: &str = include_str!("../../fixtures/metadata/demo-native-client.json");

/// Concurrent resolves of one uncached client ID in the coalescing bench.
const CONCURRENT_MISSES: usize = 1_000;

/// A metadata host and a resolver wired to it, on one runtime.
struct World {
    rt: Runtime,
    host: MetadataHost,
    resolver: Arc<ClientResolver>,
    document: serde_json::Value,
    /// Makes every mounted path unique across batches and benches.
    next_path: AtomicU64,
}

impl World {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let ca = TestCa::generate("cimd-benches test CA").unwrap();
        let host = rt.block_on(MetadataHost::spawn(ca.clone())).unwrap();
        let network = NetworkSettings {
            extra_roots_pem: vec![ca.cert_pem().to_owned()],
            resolve: vec![ResolveRule::new("*.example", IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap()],
        };
        let mut policy = EphemeralPolicy::default();
        // Room for every client the miss benches create: an eviction must not turn into a
        // refetch that the journal checks would report as a broken cache.
        policy.cache.max_entries = 1_000_000;
        policy.cache.max_bytes = policy.cache.max_entries * 64 * 1024;
        let resolver = ClientResolver::new(policy, network, Faults::none()).unwrap();
        Self {
            rt,
            host,
            resolver: Arc::new(resolver),
            document: serde_json::from_str(DOCUMENT).unwrap(),
            next_path: AtomicU64::new(0),
        }
    }

    /// Mounts the document at a fresh path on `host`; returns its client ID and path.
    fn mount_fresh(&self, host: &str) -> (String, String) {
        let path = format!("/c/{}", self.next_path.fetch_add(1, Ordering::Relaxed));
        self.host
            .mount(host, &path, Route::document(self.document.clone()));
        (self.host.url(host, &path), path)
    }

    /// Journal entries addressed to `host`; the journal is cleared so batches stay cheap.
    fn take_fetches(&self, host: &str) -> Vec<String> {
        let fetched = self
            .host
            .journal()
            .entries()
            .into_iter()
            .filter(|e| e.host == host)
            .map(|e| e.path)
            .collect();
        self.host.journal().clear();
        fetched
    }
}

fn cache_hit(c: &mut Criterion) {
    let world = World::start();
    let host = "hit.client.example";
    let (client_id, _) = world.mount_fresh(host);
    let warm = world.rt.block_on(world.resolver.resolve(&client_id));
    assert!(warm.is_ok(), "warm-up resolve failed: {warm:?}");
    assert_eq!(world.take_fetches(host).len(), 1, "warm-up fetched once");

    let mut group = c.benchmark_group("cache_hit");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    group.bench_function("resolve", |b| {
        b.to_async(&world.rt).iter(|| async {
            let meta = world.resolver.resolve(&client_id).await;
            assert!(meta.is_ok(), "a cached resolve failed: {meta:?}");
            meta
        });
    });
    let refetched = world.take_fetches(host);
    assert!(
        refetched.is_empty(),
        "the cache-hit bench fetched the document again: {refetched:?}"
    );

    // The lookup alone, through the cache type, holding a document parsed the way the resolver
    // parses it.
    let faults = Faults::none();
    let url = ClientIdUrl::parse(&client_id, &faults).unwrap();
    let body = serde_json::to_vec(&{
        let mut document = world.document.clone();
        document["client_id"] = client_id.clone().into();
        document
    })
    .unwrap();
    let meta = Arc::new(ClientMetadata::parse(&url, &body, &faults).unwrap());
    let cache = HttpCache::new("bench", &EphemeralPolicy::default().cache, &faults);
    let stored = world
        .rt
        .block_on(cache.get(url.shared(), move |_validators| async move {
            Ok(Loaded::Body {
                value: meta,
                headers: HeaderMap::new(),
                bytes: body.len(),
            })
        }));
    assert!(stored.is_ok(), "storing the document failed: {stored:?}");
    group.bench_function("lookup", |b| {
        b.iter(|| {
            let meta = cache.fresh(&client_id);
            assert!(meta.is_some(), "the lookup bench missed the cache");
            meta
        });
    });
    group.finish();
    assert_eq!(
        cache.report().counts.misses,
        1,
        "only the store before the lookup bench may miss"
    );
}

fn cache_miss(c: &mut Criterion) {
    let world = World::start();
    let host = "miss.client.example";
    let mut group = c.benchmark_group("cache_miss");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("fetch_and_validate_https", |b| {
        b.to_async(&world.rt).iter_custom(|iters| {
            let world = &world;
            async move {
                let ids: Vec<String> = (0..iters).map(|_| world.mount_fresh(host).0).collect();
                let started = Instant::now();
                for id in &ids {
                    let meta = world.resolver.resolve(id).await;
                    assert!(meta.is_ok(), "resolve of {id} failed: {meta:?}");
                }
                let elapsed = started.elapsed();
                let fetched = world.take_fetches(host);
                assert_eq!(
                    fetched.len(),
                    ids.len(),
                    "each miss must fetch exactly once"
                );
                elapsed
            }
        });
    });
    group.finish();
}

fn revalidation(c: &mut Criterion) {
    let world = World::start();
    let host = "revalidate.client.example";
    let path = "/etag";
    // `no-cache` with an ETag: stored, but every use asks the host, which answers 304.
    let route = Route::document(world.document.clone())
        .etag("v1")
        .with_header("cache-control", "no-cache");
    world.host.mount(host, path, route);
    let client_id = world.host.url(host, path);
    let warm = world.rt.block_on(world.resolver.resolve(&client_id));
    assert!(warm.is_ok(), "warm-up resolve failed: {warm:?}");
    assert_eq!(world.take_fetches(host).len(), 1, "warm-up fetched once");
    let not_modified = || world.resolver.cache_reports()[0].counts.not_modified;

    let mut group = c.benchmark_group("cache_revalidation");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("not_modified_304", |b| {
        b.to_async(&world.rt).iter_custom(|iters| {
            let (world, client_id) = (&world, &client_id);
            async move {
                let before = not_modified();
                let started = Instant::now();
                for _ in 0..iters {
                    let meta = world.resolver.resolve(client_id).await;
                    assert!(meta.is_ok(), "a revalidated resolve failed: {meta:?}");
                }
                let elapsed = started.elapsed();
                assert_eq!(
                    not_modified() - before,
                    iters,
                    "every resolve must be a conditional request answered 304"
                );
                let conditional = world
                    .host
                    .journal()
                    .entries()
                    .iter()
                    .filter(|e| e.host == host && e.header("if-none-match") == Some("\"v1\""))
                    .count();
                assert_eq!(
                    u64::try_from(conditional).unwrap(),
                    iters,
                    "every resolve must send If-None-Match with the stored ETag"
                );
                world.host.journal().clear();
                elapsed
            }
        });
    });
    group.finish();
}

fn coalescing(c: &mut Criterion) {
    let world = World::start();
    let host = "herd.client.example";
    let mut group = c.benchmark_group("coalescing");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("1000_concurrent_misses_one_client", |b| {
        b.to_async(&world.rt).iter_custom(|iters| {
            let world = &world;
            async move {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let (client_id, path) = world.mount_fresh(host);
                    let started = Instant::now();
                    // Each resolve is its own task, as each authorize request would be.
                    let tasks: Vec<_> = (0..CONCURRENT_MISSES)
                        .map(|_| {
                            let (resolver, id) = (world.resolver.clone(), client_id.clone());
                            tokio::spawn(async move { resolver.resolve(&id).await })
                        })
                        .collect();
                    for task in futures_util::future::join_all(tasks).await {
                        let meta = task.unwrap();
                        assert!(meta.is_ok(), "a coalesced resolve failed: {meta:?}");
                    }
                    elapsed += started.elapsed();
                    let fetched = world.take_fetches(host);
                    assert_eq!(
                        fetched,
                        vec![path],
                        "{CONCURRENT_MISSES} concurrent misses for one client ID must make exactly one fetch"
                    );
                }
                elapsed
            }
        });
    });
    group.finish();
}

criterion_group!(benches, cache_hit, cache_miss, revalidation, coalescing);
criterion_main!(benches);
