//! The target's `/metrics` in scenario evidence: a real run through the CLI records the reference
//! AS's cache counters around each scenario (exact on a dedicated AS, marked shared otherwise),
//! and a target that serves no metrics, or something else at `/metrics`, records nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use cimd_harness::agent::Trust;
use cimd_harness::metrics::Scraper;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The evidence lines of `scenario` (an ID with `/` as `__`) in a report folder.
fn evidence(out: &std::path::Path, file: &str) -> Vec<serde_json::Value> {
    let path = out.join("evidence").join(format!("{file}.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `metrics` entry of an evidence log, which comes last.
fn metrics_entry(lines: &[serde_json::Value]) -> &serde_json::Value {
    let entries: Vec<_> = lines.iter().filter(|l| l["source"] == "metrics").collect();
    assert_eq!(entries.len(), 1, "one metrics entry per scenario");
    assert_eq!(
        lines.last().map(|l| &l["source"]),
        Some(&serde_json::Value::from("metrics")),
        "it is the last entry in sequence order"
    );
    &entries[0]["detail"]
}

fn delta(entry: &serde_json::Value, series: &str) -> u64 {
    entry["delta"][series].as_u64().unwrap_or(0)
}

#[test]
fn a_run_records_the_cache_counters_around_each_scenario_in_its_evidence() {
    let out = std::env::temp_dir().join(format!("cimd-metrics-evidence-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_cimd-conformance"))
        .args([
            "run",
            "--only",
            "cimd/cache-01-reuse",
            "--only",
            "cimd/cache-02-minimum-lifetime",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");

    // Its own AS: the delta is exactly this scenario's traffic, so the cache's fetches are the
    // requests the metadata host saw (one for max-age=0 raised to 60 s, two for no-store), and
    // the second flow of the raised document is a hit.
    let lines = evidence(&out, "cimd__cache-02-minimum-lifetime");
    let host_requests = lines
        .iter()
        .filter(|l| l["source"] == "metadata-host")
        .count();
    assert_eq!(host_requests, 3);
    let own = metrics_entry(&lines);
    assert_eq!(own["shared"], false);
    let fetches = "reference_as_cache_fetches_total{cache=\"metadata\"}";
    let hits = "reference_as_cache_hits_total{cache=\"metadata\"}";
    let misses = "reference_as_cache_misses_total{cache=\"metadata\"}";
    assert_eq!(delta(own, fetches), 3, "{own}");
    assert_eq!(delta(own, hits), 1, "{own}");
    assert_eq!(delta(own, misses), 3, "{own}");
    assert_eq!(own["types"]["reference_as_cache_hits_total"], "counter");
    assert_eq!(
        own["after"][fetches].as_u64(),
        Some(delta(own, fetches)),
        "a fresh AS starts at 0"
    );

    // The shared AS: other scenarios' traffic may add to the delta, so only the direction and
    // the flag are certain.
    let lines = evidence(&out, "cimd__cache-01-reuse");
    let shared = metrics_entry(&lines);
    assert_eq!(shared["shared"], true);
    assert!(delta(shared, fetches) >= 1, "{shared}");
    assert!(delta(shared, hits) >= 1, "{shared}");
    std::fs::remove_dir_all(out).unwrap();
}

async fn scrape(template: ResponseTemplate) -> Option<usize> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/tenant/metrics"))
        .respond_with(template)
        .mount(&server)
        .await;
    let scraper = Scraper::new(&Trust::default(), &format!("{}/tenant/", server.uri())).unwrap();
    scraper.scrape().await.map(|e| e.samples.len())
}

#[tokio::test]
async fn a_target_without_prometheus_metrics_records_nothing() {
    let exposition = "# TYPE hits counter\nhits{cache=\"metadata\"} 4\nup 1\n";
    assert_eq!(
        scrape(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/plain; version=0.0.4")
                .set_body_string(exposition)
        )
        .await,
        Some(2),
        "served under the issuer's path"
    );
    assert_eq!(scrape(ResponseTemplate::new(404)).await, None);
    assert_eq!(
        scrape(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/html")
                .set_body_string("<html>up 1</html>")
        )
        .await,
        None,
        "an HTML page is not an exposition"
    );
    assert_eq!(
        scrape(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/plain")
                .set_body_string("Not found, try /login\n")
        )
        .await,
        None,
        "text without a sample is not an exposition"
    );
    assert_eq!(
        scrape(ResponseTemplate::new(500).set_body_string(exposition)).await,
        None
    );
}
