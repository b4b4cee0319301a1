//! Single flight and memory bounds of the metadata cache: concurrent misses and concurrent
//! revalidations for one URL make exactly one request (over real HTTPS, and for the cache type
//! alone at a larger scale), a caller that gives up does not cancel the fetch others wait for,
//! and the entry and byte bounds evict.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use metadata_host::{MetadataHost, Reply, Route, TestCa};
use reference_as::cimd::cache::{HttpCache, Loaded};
use reference_as::cimd::{CacheSettings, ClientResolver, EphemeralPolicy};
use reference_as::faults::{Fault, Faults};
use reference_as::net::NetworkSettings;
use serde_json::json;

const HOST: &str = "www.client.test";

/// Long enough that every concurrent caller arrives while the first fetch is in flight.
const SLOW: Duration = Duration::from_millis(300);

async fn host() -> MetadataHost {
    MetadataHost::spawn(TestCa::generate("cache bounds CA").unwrap())
        .await
        .unwrap()
}

fn resolver(host: &MetadataHost, cache: CacheSettings, faults: &[Fault]) -> Arc<ClientResolver> {
    let network = NetworkSettings {
        extra_roots_pem: vec![host.ca().cert_pem().to_owned()],
        resolve: vec!["*.client.test=127.0.0.1".parse().unwrap()],
    };
    let policy = EphemeralPolicy {
        cache,
        ..EphemeralPolicy::default()
    };
    Arc::new(ClientResolver::new(policy, network, Faults::of(faults.iter().copied())).unwrap())
}

fn doc() -> serde_json::Value {
    json!({
        "client_name": "Herd",
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "none",
    })
}

/// Resolves `client_id` from `n` tasks at once; every one must succeed.
async fn herd(resolver: &Arc<ClientResolver>, client_id: &str, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (resolver, id) = (resolver.clone(), client_id.to_owned());
            tokio::spawn(async move { resolver.resolve(&id).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn two_hundred_concurrent_misses_for_one_client_make_one_request() {
    let host = host().await;
    host.mount(HOST, "/herd.json", Route::document(doc()).with_delay(SLOW));
    let id = host.url(HOST, "/herd.json");
    let resolver = resolver(&host, CacheSettings::default(), &[]);
    herd(&resolver, &id, 200).await;
    assert_eq!(host.requests(HOST, "/herd.json").len(), 1);
    let c = resolver.cache_reports()[0].counts;
    assert_eq!(c.fetches, 1);
    assert_eq!(c.coalesced + c.hits, 199, "{c:?}");
}

#[tokio::test]
async fn concurrent_revalidations_for_one_client_make_one_conditional_request() {
    let host = host().await;
    host.mount(
        HOST,
        "/stale.json",
        Route::new(
            Reply::document(doc())
                .with_header("cache-control", "max-age=1")
                .etag("s1"),
        )
        .then(
            Reply::document(doc())
                .with_header("cache-control", "max-age=60")
                .etag("s1")
                .with_delay(SLOW),
        ),
    );
    let id = host.url(HOST, "/stale.json");
    let resolver = resolver(&host, CacheSettings::default(), &[]);
    resolver.resolve(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    herd(&resolver, &id, 200).await;
    let requests = host.requests(HOST, "/stale.json");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("if-none-match"), Some("\"s1\""));
    assert_eq!(resolver.cache_reports()[0].counts.not_modified, 1);
}

#[tokio::test]
async fn without_coalescing_concurrent_misses_each_fetch() {
    let host = host().await;
    host.mount(HOST, "/each.json", Route::document(doc()).with_delay(SLOW));
    let id = host.url(HOST, "/each.json");
    let resolver = resolver(&host, CacheSettings::default(), &[Fault::NoCoalescing]);
    herd(&resolver, &id, 20).await;
    assert_eq!(host.requests(HOST, "/each.json").len(), 20);
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_cancel_the_fetch_the_others_wait_for() {
    let host = host().await;
    host.mount(
        HOST,
        "/patient.json",
        Route::document(doc()).with_delay(SLOW),
    );
    let id = host.url(HOST, "/patient.json");
    let resolver = resolver(&host, CacheSettings::default(), &[]);
    // The first caller starts the fetch and is dropped (a closed browser) long before it ends.
    let impatient = tokio::time::timeout(Duration::from_millis(50), resolver.resolve(&id)).await;
    assert!(impatient.is_err(), "the fetch cannot have finished yet");
    resolver.resolve(&id).await.unwrap();
    assert_eq!(host.requests(HOST, "/patient.json").len(), 1);
    assert_eq!(resolver.cache_reports()[0].counts.coalesced, 1);
}

#[tokio::test]
async fn a_thousand_concurrent_misses_run_one_load_in_the_cache_itself() {
    let cache: HttpCache<Arc<String>> =
        HttpCache::new("test", &CacheSettings::default(), &Faults::none());
    let loads = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, loads) = (cache.clone(), loads.clone());
            tokio::spawn(async move {
                cache
                    .get("https://one.client.test/c", move |_validators| async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let mut headers = HeaderMap::new();
                        headers.insert("cache-control", HeaderValue::from_static("max-age=60"));
                        Ok(Loaded::Body {
                            value: Arc::new("one".to_owned()),
                            headers,
                            bytes: 3,
                        })
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(*task.await.unwrap().unwrap(), "one");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let report = cache.report();
    assert_eq!(report.counts.fetches, 1);
    assert_eq!(report.counts.coalesced + report.counts.hits, 999);
    assert_eq!(report.entries, 1);
}

/// Resolves `n` distinct clients (each its own path) with `resolver`.
async fn fill(host: &MetadataHost, resolver: &ClientResolver, n: usize) {
    for i in 0..n {
        let path = format!("/fill/{i}.json");
        host.mount(
            HOST,
            &path,
            Route::document(doc()).with_header("cache-control", "max-age=600"),
        );
        resolver.resolve(&host.url(HOST, &path)).await.unwrap();
    }
}

#[tokio::test]
async fn the_entry_bound_evicts() {
    let host = host().await;
    let resolver = resolver(
        &host,
        CacheSettings {
            max_entries: 4,
            ..CacheSettings::default()
        },
        &[],
    );
    fill(&host, &resolver, 12).await;
    let report = resolver.cache_reports()[0];
    assert!(report.entries <= 4, "{report:?}");
    assert_eq!(
        report.counts.evicted_for_size,
        12 - report.entries,
        "{report:?}"
    );
}

#[tokio::test]
async fn the_byte_bound_evicts() {
    let host = host().await;
    let resolver = resolver(
        &host,
        CacheSettings {
            max_entries: 1000,
            max_bytes: 4096,
            ..CacheSettings::default()
        },
        &[],
    );
    fill(&host, &resolver, 12).await;
    let report = resolver.cache_reports()[0];
    assert!(report.weighted_bytes <= 4096, "{report:?}");
    assert!((1..12).contains(&report.entries), "{report:?}");
    assert_eq!(
        report.counts.evicted_for_size,
        12 - report.entries,
        "{report:?}"
    );
}
