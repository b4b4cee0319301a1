//! The metadata host over the real wire: loopback TCP, TLS with the test CA, reqwest as the client.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use metadata_host::{MetadataHost, Reply, Route, RouteSpec, TestCa};
use reqwest::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION,
};
use reqwest::{Client, StatusCode, Version};
use serde_json::{Value, json};

const WWW: &str = "www.client.example";
const OTHER: &str = "apps.other.test";

async fn spawn_host() -> Result<MetadataHost> {
    let ca: Arc<TestCa> = TestCa::generate("metadata-host tests")?;
    Ok(MetadataHost::spawn(ca).await?)
}

/// A client that trusts only the test CA, routes both test names to the host, and never follows
/// redirects.
fn client_builder(host: &MetadataHost) -> Result<reqwest::ClientBuilder> {
    let ca = reqwest::Certificate::from_pem(host.ca().cert_pem().as_bytes())?;
    Ok(Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(WWW, host.addr())
        .resolve(OTHER, host.addr()))
}

fn client(host: &MetadataHost) -> Result<Client> {
    Ok(client_builder(host)?.build()?)
}

fn http1_client(host: &MetadataHost) -> Result<Client> {
    Ok(client_builder(host)?.http1_only().build()?)
}

fn sample_document() -> Value {
    json!({
        "client_name": "Sample",
        "redirect_uris": ["{origin}/callback"],
        "token_endpoint_auth_method": "none"
    })
}

#[tokio::test]
async fn serves_a_document_whose_client_id_is_its_own_url_on_two_host_names() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    host.mount(WWW, "/clients/app", Route::document(sample_document()));
    // Host names are keys in lower case, however they are spelled.
    host.mount(
        "Apps.Other.TEST",
        "/clients/app",
        Route::document(sample_document()),
    );

    for name in [WWW, OTHER] {
        let url = host.url(name, "/clients/app");
        let response = client.get(&url).send().await?;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let document: Value = response.json().await?;
        assert_eq!(document["client_id"], url.as_str());
        assert_eq!(
            document["redirect_uris"][0],
            format!("https://{name}:{}/callback", host.port())
        );
        assert_eq!(document["client_name"], "Sample");
    }
    assert_eq!(host.requests(WWW, "/clients/app").len(), 1);
    assert_eq!(host.requests(OTHER, "/clients/app").len(), 1);
    Ok(())
}

#[tokio::test]
async fn json_fills_in_placeholders_and_leaves_the_client_id_as_written() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    host.mount(
        WWW,
        "/mismatch",
        Route::json(json!({"client_id": "{origin}/other", "redirect_uris": ["{client_id}/cb"]})),
    );
    host.mount(
        WWW,
        "/missing",
        Route::json(json!({"client_name": "No ID"})),
    );

    let origin = format!("https://{WWW}:{}", host.port());
    let mismatch: Value = client
        .get(host.url(WWW, "/mismatch"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(mismatch["client_id"], format!("{origin}/other"));
    assert_eq!(
        mismatch["redirect_uris"][0],
        format!("{origin}/mismatch/cb")
    );
    let missing: Value = client
        .get(host.url(WWW, "/missing"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(missing, json!({"client_name": "No ID"}));
    Ok(())
}

#[tokio::test]
async fn redirects_are_served_and_never_followed() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    host.mount(WWW, "/clients/good", Route::document(sample_document()));
    for code in [301_u16, 302, 303, 307, 308] {
        host.mount(
            WWW,
            "/clients/hop",
            Route::redirect(code, "{origin}/clients/good"),
        );
        let response = client.get(host.url(WWW, "/clients/hop")).send().await?;
        assert_eq!(response.status().as_u16(), code);
        assert_eq!(
            response.headers()[LOCATION],
            host.url(WWW, "/clients/good").as_str()
        );
    }
    assert_eq!(host.requests(WWW, "/clients/hop").len(), 5);
    assert!(host.requests(WWW, "/clients/good").is_empty());
    Ok(())
}

#[tokio::test]
async fn replies_follow_the_script_and_the_last_one_repeats() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    let url = host.url(WWW, "/flaky");
    let script = || {
        Route::status(500)
            .then(Reply::document(sample_document()).with_status(203))
            .then(Reply::document(sample_document()))
    };
    host.mount(WWW, "/flaky", script());

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(client.get(&url).send().await?.status().as_u16());
    }
    assert_eq!(statuses, [500, 203, 200, 200]);

    // Mounting again restarts the script.
    host.mount(WWW, "/flaky", script());
    assert_eq!(
        client.get(&url).send().await?.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    Ok(())
}

#[tokio::test]
async fn answers_304_without_a_body_only_when_if_none_match_matches() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    let url = host.url(WWW, "/cached");
    host.mount(
        WWW,
        "/cached",
        Route::document(sample_document())
            .with_header("Cache-Control", "max-age=60")
            .etag("v1"),
    );

    let first = client.get(&url).send().await?;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()[ETAG], "\"v1\"");
    let tag = first.headers()[ETAG].clone();

    let revalidated = client.get(&url).header(IF_NONE_MATCH, tag).send().await?;
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(revalidated.headers()[ETAG], "\"v1\"");
    assert_eq!(revalidated.headers()[CACHE_CONTROL], "max-age=60");
    assert!(revalidated.headers().get(CONTENT_TYPE).is_none());
    assert!(revalidated.bytes().await?.is_empty());

    let stale = client
        .get(&url)
        .header(IF_NONE_MATCH, "\"v0\"")
        .send()
        .await?;
    assert_eq!(stale.status(), StatusCode::OK);
    let document: Value = stale.json().await?;
    assert_eq!(document["client_id"], url.as_str());
    assert_eq!(
        host.requests(WWW, "/cached")[1].header("if-none-match"),
        Some("\"v1\"")
    );
    Ok(())
}

#[tokio::test]
async fn a_delay_holds_back_the_headers_for_at_least_the_scripted_time() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    // Connect first, so the measured time is the reply's alone.
    host.mount(WWW, "/warm", Route::status(204));
    client.get(host.url(WWW, "/warm")).send().await?;
    host.mount(
        WWW,
        "/slow",
        Route::document(sample_document()).with_delay(Duration::from_millis(300)),
    );

    let started = Instant::now();
    let response = client.get(host.url(WWW, "/slow")).send().await?;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(response.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn a_trickled_body_takes_at_least_the_scripted_time_and_keeps_its_length() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    let body = vec![b'x'; 100];
    host.mount(
        WWW,
        "/trickle",
        Route::raw(body.clone(), "text/plain").trickle(10, Duration::from_millis(20)),
    );

    let started = Instant::now();
    let response = client.get(host.url(WWW, "/trickle")).send().await?;
    assert_eq!(response.headers()[CONTENT_LENGTH], "100");
    assert_eq!(response.bytes().await?, body);
    // Ten chunks, nine pauses between them.
    assert!(
        started.elapsed() >= Duration::from_millis(180),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn an_oversize_document_has_the_exact_size_and_stays_valid_json() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    let total = 256 * 1024;
    host.mount(
        WWW,
        "/big",
        Route::document(sample_document()).oversize(total),
    );

    let response = client.get(host.url(WWW, "/big")).send().await?;
    assert_eq!(
        response.headers()[CONTENT_LENGTH],
        total.to_string().as_str()
    );
    let bytes = response.bytes().await?;
    assert_eq!(bytes.len(), total);
    let document: Value = serde_json::from_slice(&bytes)?;
    assert_eq!(document["client_id"], host.url(WWW, "/big").as_str());
    assert!(
        document["x_padding"]
            .as_str()
            .context("padding member")?
            .len()
            > 250_000
    );
    Ok(())
}

#[tokio::test]
async fn a_chunked_reply_carries_no_content_length_on_either_protocol() -> Result<()> {
    let host = spawn_host().await?;
    host.mount(
        WWW,
        "/chunked",
        Route::document(sample_document())
            .oversize(40_000)
            .chunked(),
    );

    for (client, version) in [
        (http1_client(&host)?, Version::HTTP_11),
        (client(&host)?, Version::HTTP_2),
    ] {
        let response = client.get(host.url(WWW, "/chunked")).send().await?;
        assert_eq!(response.version(), version);
        assert!(response.headers().get(CONTENT_LENGTH).is_none());
        if version == Version::HTTP_11 {
            assert_eq!(response.headers()["transfer-encoding"], "chunked");
        }
        let document: Value = serde_json::from_slice(&response.bytes().await?)?;
        assert_eq!(document["client_id"], host.url(WWW, "/chunked").as_str());
    }
    Ok(())
}

#[tokio::test]
async fn an_endless_reply_keeps_sending_past_a_mebibyte_until_the_client_hangs_up() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    host.mount(WWW, "/endless", Route::document(json!({})).endless());
    host.mount(WWW, "/after", Route::status(204));

    let mut response = client.get(host.url(WWW, "/endless")).send().await?;
    assert!(response.headers().get(CONTENT_LENGTH).is_none());
    let mut received = Vec::new();
    while received.len() <= 1024 * 1024 {
        let chunk = response.chunk().await?.context("the endless body ended")?;
        received.extend_from_slice(&chunk);
    }
    drop(response);
    let prefix = format!(
        "{{\"client_id\":\"{}\",\"x_padding\":\"aaaa",
        host.url(WWW, "/endless")
    );
    assert!(received.starts_with(prefix.as_bytes()));

    // The host is still well after the client hung up.
    let after = client.get(host.url(WWW, "/after")).send().await?;
    assert_eq!(after.status(), StatusCode::NO_CONTENT);
    Ok(())
}

#[tokio::test]
async fn a_lying_content_length_is_declared_whatever_the_body() -> Result<()> {
    let host = spawn_host().await?;
    let body = b"{\"client_id\":\"x\"}".to_vec();
    host.mount(
        WWW,
        "/long-claim",
        Route::raw(body.clone(), "application/json").lying_content_length(1000),
    );
    host.mount(
        WWW,
        "/short-claim",
        Route::raw(body.clone(), "application/json").lying_content_length(5),
    );

    for client in [http1_client(&host)?, client(&host)?] {
        // A longer claim: the client sees the length and the real body, then the body ends short.
        let mut response = client.get(host.url(WWW, "/long-claim")).send().await?;
        assert_eq!(response.headers()[CONTENT_LENGTH], "1000");
        let mut received = Vec::new();
        let ended = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => received.extend_from_slice(&chunk),
                Ok(None) => break "cleanly",
                Err(_) => break "with an error",
            }
        };
        assert_eq!(
            (received.as_slice(), ended),
            (body.as_slice(), "with an error")
        );
    }
    // A shorter claim over HTTP/1.1: the body is cut at the declared length.
    let response = http1_client(&host)?
        .get(host.url(WWW, "/short-claim"))
        .send()
        .await?;
    assert_eq!(response.headers()[CONTENT_LENGTH], "5");
    assert_eq!(response.bytes().await?, body[..5]);
    // A Content-Length set as a plain header is the same lie.
    host.mount(
        WWW,
        "/header-claim",
        Route::raw(body.clone(), "application/json").with_header("Content-Length", "3"),
    );
    let response = http1_client(&host)?
        .get(host.url(WWW, "/header-claim"))
        .send()
        .await?;
    assert_eq!(response.bytes().await?, body[..3]);
    // Over HTTP/2 every byte is sent, and the client notices the mismatch.
    let response = client(&host)?
        .get(host.url(WWW, "/short-claim"))
        .send()
        .await?;
    assert_eq!(response.headers()[CONTENT_LENGTH], "5");
    assert!(response.bytes().await.is_err());
    Ok(())
}

#[tokio::test]
async fn head_gets_the_headers_and_length_of_a_get_without_the_body() -> Result<()> {
    let host = spawn_host().await?;
    let client = http1_client(&host)?;
    host.mount(
        WWW,
        "/doc",
        Route::document(sample_document()).oversize(5000),
    );

    let head = client.head(host.url(WWW, "/doc")).send().await?;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()[CONTENT_LENGTH], "5000");
    assert!(head.bytes().await?.is_empty());
    // The connection is still in step: a GET on it gets the whole body.
    let get = client.get(host.url(WWW, "/doc")).send().await?;
    assert_eq!(get.bytes().await?.len(), 5000);
    let methods: Vec<String> = host
        .requests(WWW, "/doc")
        .into_iter()
        .map(|e| e.method)
        .collect();
    assert_eq!(methods, ["HEAD", "GET"]);
    Ok(())
}

#[tokio::test]
async fn headers_can_be_set_replaced_repeated_and_removed() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    host.mount(
        WWW,
        "/headers",
        Reply::document(sample_document())
            .with_header("Content-Type", "text/plain")
            .with_header("Cache-Control", "max-age=60")
            .append_header("Cache-Control", "no-transform")
            .with_header("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")
            .with_header("Link", "<{origin}/jwks.json>; rel=\"jwks\""),
    );
    host.mount(
        WWW,
        "/untyped",
        Reply::document(sample_document()).without_header("content-type"),
    );

    let response = client.get(host.url(WWW, "/headers")).send().await?;
    let headers = response.headers();
    assert_eq!(headers[CONTENT_TYPE], "text/plain");
    let cache_control: Vec<_> = headers.get_all(CACHE_CONTROL).iter().collect();
    assert_eq!(cache_control, ["max-age=60", "no-transform"]);
    assert_eq!(headers["expires"], "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(
        headers["link"],
        format!("<https://{WWW}:{}/jwks.json>; rel=\"jwks\"", host.port()).as_str()
    );

    let untyped = client.get(host.url(WWW, "/untyped")).send().await?;
    assert!(untyped.headers().get(CONTENT_TYPE).is_none());
    let document: Value = untyped.json().await?;
    assert_eq!(document["client_id"], host.url(WWW, "/untyped").as_str());
    Ok(())
}

#[tokio::test]
async fn the_journal_shows_method_host_path_query_and_headers() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    host.mount(WWW, "/clients/app", Route::document(sample_document()));

    let url = format!("{}?probe=1", host.url(WWW, "/clients/app"));
    client
        .get(url)
        .header(ACCEPT, "application/cimd+json")
        .send()
        .await?;

    let entries = host.requests(WWW, "/clients/app");
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.method, "GET");
    assert_eq!(entry.host, WWW);
    assert_eq!(entry.path, "/clients/app");
    assert_eq!(entry.query.as_deref(), Some("probe=1"));
    assert_eq!(entry.header("accept"), Some("application/cimd+json"));
    assert_eq!(host.journal().entries().len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_unknown_route_gets_a_404_naming_host_and_path() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    host.mount(WWW, "/clients/app", Route::document(sample_document()));

    let response = client.get(host.url(OTHER, "/clients/app")).send().await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await?;
    assert_eq!(body["host"], OTHER);
    assert_eq!(body["path"], "/clients/app");
    Ok(())
}

#[tokio::test]
async fn methods_other_than_get_and_head_get_405() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    host.mount(WWW, "/clients/app", Route::document(sample_document()));

    let response = client
        .post(host.url(WWW, "/clients/app"))
        .body("{}")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    assert_eq!(host.requests(WWW, "/clients/app")[0].method, "POST");
    Ok(())
}

#[tokio::test]
async fn unmount_and_clear_bring_back_the_404() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    let status = |url: String| {
        let client = client.clone();
        async move { Ok::<_, anyhow::Error>(client.get(url).send().await?.status()) }
    };
    host.mount(WWW, "/a", Route::status(200));
    host.mount(WWW, "/b", Route::status(200));
    // Host names are matched case-insensitively.
    host.unmount("WWW.Client.Example", "/a");
    assert_eq!(status(host.url(WWW, "/a")).await?, StatusCode::NOT_FOUND);
    assert_eq!(status(host.url(WWW, "/b")).await?, StatusCode::OK);
    host.clear();
    assert_eq!(status(host.url(WWW, "/b")).await?, StatusCode::NOT_FOUND);
    assert_eq!(host.journal().entries().len(), 3);
    Ok(())
}

#[tokio::test]
async fn routes_written_as_toml_are_served_as_scripted() -> Result<()> {
    let host = spawn_host().await?;
    let client = client(&host)?;
    let routes: std::collections::BTreeMap<String, RouteSpec> = toml::from_str(
        r#"
        "/hop" = { status = 307, location = "{origin}/flaky" }

        ["/flaky"]
        status = 500
        [["/flaky".then]]
        document = { client_name = "Flaky", redirect_uris = ["{origin}/cb"] }
        headers = { "Cache-Control" = "max-age=60" }
        etag = "v2"
        "#,
    )?;
    for (path, spec) in routes {
        host.mount(WWW, &path, Route::try_from(spec)?);
    }

    let hop = client.get(host.url(WWW, "/hop")).send().await?;
    assert_eq!(hop.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(hop.headers()[LOCATION], host.url(WWW, "/flaky").as_str());
    let url = host.url(WWW, "/flaky");
    assert_eq!(
        client.get(&url).send().await?.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let good = client.get(&url).send().await?;
    assert_eq!(good.headers()[CACHE_CONTROL], "max-age=60");
    assert_eq!(good.headers()[ETAG], "\"v2\"");
    let document: Value = good.json().await?;
    assert_eq!(document["client_id"], url.as_str());
    assert_eq!(document["client_name"], "Flaky");
    let revalidated = client
        .get(&url)
        .header(IF_NONE_MATCH, "\"v2\"")
        .send()
        .await?;
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    Ok(())
}
