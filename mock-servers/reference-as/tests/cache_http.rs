//! The metadata cache's HTTP rules over real HTTPS, one rule per test: lifetimes from max-age,
//! Expires and Age, clamped to the configured bounds; no-store and no-cache; revalidation with
//! ETag and with Last-Modified; failures never cached; JSON (JWKS) through the same cache; and
//! each cache fault breaking exactly its rule. The metadata host's journal is the witness of
//! every request the AS made, and the cache's own counters must agree with it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use metadata_host::{JournalEntry, MetadataHost, Reply, Route, TestCa};
use reference_as::cimd::{CacheSettings, ClientResolver, EphemeralPolicy};
use reference_as::faults::{Fault, Faults};
use reference_as::metrics::{CacheCounts, FailureReason};
use reference_as::net::NetworkSettings;
use serde_json::{Value, json};

const HOST: &str = "www.client.test";

/// Just past a one-second lifetime.
const PAST_ONE_SECOND: Duration = Duration::from_millis(1100);

struct Setup {
    host: MetadataHost,
}

impl Setup {
    async fn start() -> Self {
        let ca = TestCa::generate("cache tests CA").unwrap();
        Self {
            host: MetadataHost::spawn(ca).await.unwrap(),
        }
    }

    fn resolver(&self, cache: CacheSettings, faults: &[Fault]) -> ClientResolver {
        let network = NetworkSettings {
            extra_roots_pem: vec![self.host.ca().cert_pem().to_owned()],
            resolve: vec!["*.client.test=127.0.0.1".parse().unwrap()],
        };
        let policy = EphemeralPolicy {
            cache,
            ..EphemeralPolicy::default()
        };
        ClientResolver::new(policy, network, Faults::of(faults.iter().copied())).unwrap()
    }

    /// Mounts `route` at `path` and returns the client ID (or URL) it is served at.
    fn mount(&self, path: &str, route: impl Into<Route>) -> String {
        self.host.mount(HOST, path, route);
        self.host.url(HOST, path)
    }

    fn requests(&self, path: &str) -> Vec<JournalEntry> {
        self.host.requests(HOST, path)
    }
}

/// A valid public-client document named `name`.
fn doc(name: &str) -> Value {
    json!({
        "client_name": name,
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "none",
    })
}

/// `doc(name)` with one header.
fn served(name: &str, header: &str, value: &str) -> Reply {
    Reply::document(doc(name)).with_header(header, value)
}

fn counts(resolver: &ClientResolver) -> CacheCounts {
    resolver.cache_reports()[0].counts
}

/// Resolves `client_id` and returns the client_name the AS now uses.
async fn name(resolver: &ClientResolver, client_id: &str) -> String {
    resolver
        .resolve(client_id)
        .await
        .unwrap()
        .client_name()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn max_age_is_honoured_and_the_document_is_fetched_again_once_it_passes() {
    let setup = Setup::start().await;
    let id = setup.mount(
        "/max-age.json",
        Route::new(served("v1", "cache-control", "max-age=1")).then(served(
            "v2",
            "cache-control",
            "max-age=1",
        )),
    );
    let resolver = setup.resolver(CacheSettings::default(), &[]);
    assert_eq!(name(&resolver, &id).await, "v1");
    assert_eq!(name(&resolver, &id).await, "v1");
    assert_eq!(setup.requests("/max-age.json").len(), 1);
    tokio::time::sleep(PAST_ONE_SECOND).await;
    assert_eq!(name(&resolver, &id).await, "v2");
    assert_eq!(setup.requests("/max-age.json").len(), 2);
    let c = counts(&resolver);
    assert_eq!((c.hits, c.misses, c.fetches), (1, 2, 2));
}

#[tokio::test]
async fn lifetimes_are_clamped_to_the_configured_maximum_and_minimum() {
    let setup = Setup::start().await;
    let long = setup.mount(
        "/long.json",
        Route::new(served("long v1", "cache-control", "max-age=86400")).then(served(
            "long v2",
            "cache-control",
            "max-age=86400",
        )),
    );
    let resolver = setup.resolver(
        CacheSettings {
            max_ttl_secs: 1,
            ..CacheSettings::default()
        },
        &[],
    );
    assert_eq!(name(&resolver, &long).await, "long v1");
    tokio::time::sleep(PAST_ONE_SECOND).await;
    assert_eq!(name(&resolver, &long).await, "long v2");

    let short = setup.mount(
        "/short.json",
        Route::document(doc("short")).with_header("cache-control", "max-age=0"),
    );
    let raised = setup.resolver(
        CacheSettings {
            min_ttl_secs: 60,
            ..CacheSettings::default()
        },
        &[],
    );
    for _ in 0..3 {
        raised.resolve(&short).await.unwrap();
    }
    assert_eq!(setup.requests("/short.json").len(), 1);

    // must-revalidate forbids stretching the host's lifetime, even to the minimum.
    let strict = setup.mount(
        "/strict.json",
        Route::document(doc("strict")).with_header("cache-control", "max-age=0, must-revalidate"),
    );
    raised.resolve(&strict).await.unwrap();
    raised.resolve(&strict).await.unwrap();
    assert_eq!(setup.requests("/strict.json").len(), 2);
}

#[tokio::test]
async fn no_store_is_fetched_on_every_use_whatever_the_minimum_lifetime() {
    let setup = Setup::start().await;
    let id = setup.mount(
        "/no-store.json",
        Route::document(doc("private")).with_header("cache-control", "no-store, max-age=600"),
    );
    let resolver = setup.resolver(
        CacheSettings {
            min_ttl_secs: 600,
            ..CacheSettings::default()
        },
        &[],
    );
    for _ in 0..3 {
        resolver.resolve(&id).await.unwrap();
    }
    assert_eq!(setup.requests("/no-store.json").len(), 3);
    assert_eq!(resolver.cache_reports()[0].entries, 0);
}

#[tokio::test]
async fn expires_and_age_decide_freshness_when_max_age_is_absent_or_used_up() {
    let setup = Setup::start().await;
    let resolver = setup.resolver(CacheSettings::default(), &[]);
    let past = setup.mount(
        "/expired.json",
        Route::document(doc("expired")).with_header("expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
    );
    let future = setup.mount(
        "/future.json",
        Route::document(doc("future")).with_header("expires", "Fri, 01 Jan 2100 00:00:00 GMT"),
    );
    let aged = setup.mount(
        "/aged.json",
        Route::document(doc("aged"))
            .with_header("cache-control", "max-age=600")
            .with_header("age", "600"),
    );
    let young = setup.mount(
        "/young.json",
        Route::document(doc("young"))
            .with_header("cache-control", "max-age=600")
            .with_header("age", "30"),
    );
    for id in [&past, &future, &aged, &young] {
        resolver.resolve(id).await.unwrap();
        resolver.resolve(id).await.unwrap();
    }
    assert_eq!(setup.requests("/expired.json").len(), 2);
    assert_eq!(setup.requests("/future.json").len(), 1);
    assert_eq!(setup.requests("/aged.json").len(), 2);
    assert_eq!(setup.requests("/young.json").len(), 1);
}

#[tokio::test]
async fn a_stale_document_is_revalidated_with_its_etag_and_a_304_keeps_and_refreshes_it() {
    let setup = Setup::start().await;
    // The second reply changes the body but keeps the ETag: only a conditional request gets the
    // 304 that keeps "v1"; an unconditional one would read "v2".
    let id = setup.mount(
        "/etag.json",
        Route::new(served("v1", "cache-control", "max-age=1").etag("v1"))
            .then(served("v2", "cache-control", "max-age=1").etag("v1")),
    );
    let resolver = setup.resolver(CacheSettings::default(), &[]);
    let first = resolver.resolve(&id).await.unwrap();
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let second = resolver.resolve(&id).await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &second),
        "the 304 kept the document"
    );
    // Refreshed: fresh again for another second.
    resolver.resolve(&id).await.unwrap();
    let requests = setup.requests("/etag.json");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("if-none-match"), None);
    assert_eq!(requests[1].header("if-none-match"), Some("\"v1\""));
    let c = counts(&resolver);
    assert_eq!((c.not_modified, c.modified, c.hits), (1, 0, 1));
}

#[tokio::test]
async fn a_stale_document_is_revalidated_with_last_modified_and_a_bare_304_is_accepted() {
    let setup = Setup::start().await;
    let stamp = "Wed, 21 Oct 2015 07:28:00 GMT";
    let id = setup.mount(
        "/dated.json",
        Route::new(
            served("dated", "cache-control", "max-age=1").with_header("last-modified", stamp),
        )
        .then(Reply::status(304).with_header("cache-control", "max-age=60")),
    );
    let resolver = setup.resolver(CacheSettings::default(), &[]);
    assert_eq!(name(&resolver, &id).await, "dated");
    tokio::time::sleep(PAST_ONE_SECOND).await;
    assert_eq!(name(&resolver, &id).await, "dated");
    // The 304's max-age=60 now governs: no third request.
    assert_eq!(name(&resolver, &id).await, "dated");
    let requests = setup.requests("/dated.json");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("if-modified-since"), Some(stamp));
    assert_eq!(counts(&resolver).not_modified, 1);
}

#[tokio::test]
async fn no_cache_asks_the_host_before_every_use() {
    let setup = Setup::start().await;
    let id = setup.mount(
        "/no-cache.json",
        Route::document(doc("checked"))
            .with_header("cache-control", "no-cache")
            .etag("c1"),
    );
    let resolver = setup.resolver(
        CacheSettings {
            min_ttl_secs: 600,
            ..CacheSettings::default()
        },
        &[],
    );
    for _ in 0..3 {
        resolver.resolve(&id).await.unwrap();
    }
    let requests = setup.requests("/no-cache.json");
    assert_eq!(requests.len(), 3);
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.header("if-none-match") == Some("\"c1\""))
    );
    assert_eq!(counts(&resolver).not_modified, 2);
}

#[tokio::test]
async fn a_changed_document_answers_the_conditional_request_with_200_and_replaces_the_entry() {
    let setup = Setup::start().await;
    let id = setup.mount(
        "/changed.json",
        Route::new(served("v1", "cache-control", "max-age=1").etag("v1"))
            .then(served("v2", "cache-control", "max-age=60").etag("v2")),
    );
    let resolver = setup.resolver(CacheSettings::default(), &[]);
    assert_eq!(name(&resolver, &id).await, "v1");
    tokio::time::sleep(PAST_ONE_SECOND).await;
    assert_eq!(name(&resolver, &id).await, "v2");
    assert_eq!(name(&resolver, &id).await, "v2");
    assert_eq!(setup.requests("/changed.json").len(), 2);
    let c = counts(&resolver);
    assert_eq!((c.not_modified, c.modified), (0, 1));
}

#[tokio::test]
async fn a_304_to_an_unconditional_request_is_a_status_error() {
    let setup = Setup::start().await;
    let id = setup.mount("/bare-304.json", Route::status(304));
    let resolver = setup.resolver(CacheSettings::default(), &[]);
    let error = resolver.resolve(&id).await.unwrap_err();
    assert_eq!(
        (error.error, error.requirement),
        ("invalid_client", "CIMD-FETCH-02")
    );
    assert_eq!(counts(&resolver).failures(FailureReason::Status), 1);
}

#[tokio::test]
async fn a_failed_revalidation_drops_the_stale_document_and_caches_nothing() {
    let setup = Setup::start().await;
    let id = setup.mount(
        "/withdrawn.json",
        Route::new(served("v1", "cache-control", "max-age=1").etag("v1"))
            .then(Reply::status(404))
            .then(served("back", "cache-control", "max-age=60")),
    );
    let resolver = setup.resolver(CacheSettings::default(), &[]);
    resolver.resolve(&id).await.unwrap();
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let error = resolver.resolve(&id).await.unwrap_err();
    assert_eq!(error.requirement, "CIMD-FETCH-02");
    assert_eq!(name(&resolver, &id).await, "back");
    let requests = setup.requests("/withdrawn.json");
    assert_eq!(requests.len(), 3);
    // The stale entry went with the failure: the third request had nothing to revalidate.
    assert_eq!(requests[2].header("if-none-match"), None);
    assert_eq!(counts(&resolver).failures(FailureReason::Status), 1);
}

#[tokio::test]
async fn invalid_documents_and_wrong_content_types_are_counted_and_not_cached() {
    let setup = Setup::start().await;
    let invalid = setup.mount(
        "/secret.json",
        Route::new(
            Reply::document(json!({
                "redirect_uris": ["https://app.example/cb"],
                "client_secret": "leaked",
            }))
            .with_header("cache-control", "max-age=600"),
        )
        .then(served("fixed", "cache-control", "max-age=600")),
    );
    let html = setup.mount(
        "/page.json",
        Route::raw("<html></html>", "text/html").with_header("cache-control", "max-age=600"),
    );
    let resolver = setup.resolver(CacheSettings::default(), &[]);
    assert_eq!(
        resolver.resolve(&invalid).await.unwrap_err().requirement,
        "CIMD-DOC-07"
    );
    assert_eq!(name(&resolver, &invalid).await, "fixed");
    for _ in 0..2 {
        assert_eq!(
            resolver.resolve(&html).await.unwrap_err().requirement,
            "CIMD-DOC-05"
        );
    }
    assert_eq!(setup.requests("/page.json").len(), 2);
    let c = counts(&resolver);
    assert_eq!(c.failures(FailureReason::Invalid), 1);
    assert_eq!(c.failures(FailureReason::ContentType), 2);
}

#[tokio::test]
async fn json_resources_share_the_cache_rules_and_can_be_reloaded_on_demand() {
    let setup = Setup::start().await;
    let keys = json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }] });
    let url = setup.mount(
        "/jwks.json",
        Route::jwks(keys.clone())
            .with_header("cache-control", "max-age=600")
            .etag("k1"),
    );
    let resolver = setup.resolver(CacheSettings::default(), &[]);
    assert_eq!(*resolver.get_json(&url).await.unwrap(), keys);
    assert_eq!(*resolver.get_json(&url).await.unwrap(), keys);
    assert_eq!(setup.requests("/jwks.json").len(), 1);
    // A reload asks the host even though the copy is fresh, conditionally.
    assert_eq!(*resolver.reload_json(&url).await.unwrap(), keys);
    let requests = setup.requests("/jwks.json");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("if-none-match"), Some("\"k1\""));
    let json_counts = resolver.cache_reports()[1].counts;
    assert_eq!((json_counts.hits, json_counts.not_modified), (1, 1));
    assert_eq!(
        counts(&resolver).fetches,
        0,
        "the document cache was not used"
    );

    let broken = setup.mount("/broken.json", Route::raw("{not json", "application/json"));
    let error = resolver.get_json(&broken).await.unwrap_err();
    assert_eq!(error.requirement, "CIMD-AUTH-03");
    let html = setup.mount("/keys.html", Route::raw("<html></html>", "text/html"));
    assert_eq!(
        resolver.get_json(&html).await.unwrap_err().requirement,
        "CIMD-DOC-05"
    );
}

#[tokio::test]
async fn each_cache_fault_breaks_exactly_its_rule() {
    let setup = Setup::start().await;
    let no_store = setup.mount(
        "/f-no-store.json",
        Route::document(doc("private")).with_header("cache-control", "no-store"),
    );
    let ignoring = setup.resolver(CacheSettings::default(), &[Fault::IgnoreNoStore]);
    ignoring.resolve(&no_store).await.unwrap();
    ignoring.resolve(&no_store).await.unwrap();
    assert_eq!(setup.requests("/f-no-store.json").len(), 1);

    let forever = setup.resolver(CacheSettings::default(), &[Fault::NeverRefetch]);
    forever.resolve(&no_store).await.unwrap();
    forever.resolve(&no_store).await.unwrap();
    assert_eq!(setup.requests("/f-no-store.json").len(), 2);

    let long = setup.mount(
        "/f-long.json",
        Route::document(doc("long")).with_header("cache-control", "max-age=600"),
    );
    let never = setup.resolver(CacheSettings::default(), &[Fault::NeverCache]);
    never.resolve(&long).await.unwrap();
    never.resolve(&long).await.unwrap();
    assert_eq!(setup.requests("/f-long.json").len(), 2);

    let expired = setup.mount(
        "/f-expired.json",
        Route::document(doc("expired")).with_header("expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
    );
    let stubborn = setup.resolver(CacheSettings::default(), &[Fault::IgnoreMaxAge]);
    stubborn.resolve(&expired).await.unwrap();
    stubborn.resolve(&expired).await.unwrap();
    assert_eq!(setup.requests("/f-expired.json").len(), 1);

    let tagged = setup.mount(
        "/f-tagged.json",
        Route::document(doc("tagged"))
            .with_header("cache-control", "no-cache")
            .etag("t1"),
    );
    let forgetful = setup.resolver(CacheSettings::default(), &[Fault::NoRevalidation]);
    forgetful.resolve(&tagged).await.unwrap();
    forgetful.resolve(&tagged).await.unwrap();
    let requests = setup.requests("/f-tagged.json");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("if-none-match"), None);
}
