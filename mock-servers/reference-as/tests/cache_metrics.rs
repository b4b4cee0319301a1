//! `GET /metrics` on the running server: the Prometheus text moves as authorization requests hit,
//! miss, coalesce and fail.

#![allow(clippy::unwrap_used)]

mod server_support;

use metadata_host::Route;
use reqwest::StatusCode;
use serde_json::json;
use server_support::{CLIENT_HOST, Pkce, World};

/// The value of the sample `series` (`name{labels}`) in an exposition.
fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
        .parse()
        .unwrap()
}

async fn scrape(world: &World) -> String {
    let response = world
        .api
        .get(world.server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_hits_misses_fetches_and_failures_by_reason() {
    let world = World::start().await;
    let before = scrape(&world).await;
    assert_eq!(
        sample(
            &before,
            "reference_as_cache_fetches_total{cache=\"metadata\"}"
        ),
        0
    );

    let client = world.app();
    for _ in 0..3 {
        let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    world
        .host
        .mount(CLIENT_HOST, "/clients/gone.json", Route::status(500));
    let gone = server_support::Client {
        client_id: world.host.url(CLIENT_HOST, "/clients/gone.json"),
        redirect_uri: client.redirect_uri.clone(),
    };
    let refused = world.authorize_client(&gone, &Pkce::new(), &[]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let text = scrape(&world).await;
    let metadata = |name: &str| {
        sample(
            &text,
            &format!("reference_as_cache_{name}{{cache=\"metadata\"}}"),
        )
    };
    assert_eq!(metadata("hits_total"), 2);
    assert_eq!(metadata("misses_total"), 2);
    assert_eq!(metadata("fetches_total"), 2);
    assert_eq!(metadata("entries"), 1);
    assert!(metadata("weighted_bytes") > 0);
    assert_eq!(
        sample(
            &text,
            "reference_as_cache_fetch_failures_total{cache=\"metadata\",reason=\"status\"}"
        ),
        1
    );
    assert_eq!(
        sample(
            &text,
            "reference_as_cache_revalidations_total{cache=\"metadata\",result=\"not_modified\"}"
        ),
        0
    );
    assert_eq!(
        sample(&text, "reference_as_cache_fetches_total{cache=\"json\"}"),
        0
    );
    // Counts and sizes only: nothing that names a client.
    assert!(!text.contains(CLIENT_HOST), "{text}");
}

#[tokio::test]
async fn metrics_count_revalidations_answered_304() {
    let world = World::start().await;
    let client = world.client("/clients/tagged.json", json!({}));
    world.host.mount(
        CLIENT_HOST,
        "/clients/tagged.json",
        Route::document(json!({
            "client_name": "Tagged",
            "redirect_uris": [client.redirect_uri],
            "token_endpoint_auth_method": "none",
        }))
        .with_header("cache-control", "no-cache")
        .etag("t1"),
    );
    for _ in 0..2 {
        let response = world.authorize_client(&client, &Pkce::new(), &[]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let text = scrape(&world).await;
    assert_eq!(
        sample(
            &text,
            "reference_as_cache_revalidations_total{cache=\"metadata\",result=\"not_modified\"}"
        ),
        1
    );
    assert_eq!(
        sample(&text, "reference_as_cache_hits_total{cache=\"metadata\"}"),
        0
    );
}
