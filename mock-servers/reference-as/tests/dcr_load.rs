//! A small load driver for dynamic registration at concurrency 16: open registrations per
//! second, gated registrations per second (each one an initial access token from
//! client_credentials plus the registration), and client_credentials grants per second for a
//! registered client_secret_basic client. A measurement, not a check of speed, so it is ignored
//! by default; it still fails if any request is refused. Run it with
//! `cargo test --release -p reference-as --test dcr_load -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, reason = "tests")]

mod dcr_support;
mod server_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dcr_support::{REGISTRAR, REGISTRAR_SECRET, registered, start, web_client};
use reference_as::dcr::RegistrationAccess;
use reqwest::StatusCode;
use serde_json::Value;

const CONCURRENCY: usize = 16;
const DURATION: Duration = Duration::from_secs(3);

/// Runs `request` from 16 tasks for [`DURATION`]; completed requests per second.
async fn measure<F, Fut>(request: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let request = Arc::new(request);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (request, done) = (request.clone(), done.clone());
            tokio::spawn(async move {
                while start.elapsed() < DURATION {
                    request().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    #[allow(clippy::cast_precision_loss, reason = "a count of requests in seconds")]
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    rate
}

/// `POST /register` with `body` and an optional bearer token; asserts 201.
async fn register(api: &reqwest::Client, url: &str, token: Option<&str>, body: &Value) {
    let mut request = api.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run it with --release --ignored --nocapture"]
async fn registrations_and_grants_per_second_at_concurrency_16() {
    let open = Arc::new(start(|c| c.registration.access = RegistrationAccess::Open).await);
    let (w, body) = (open.clone(), Arc::new(web_client()));
    let url = Arc::new(w.server.url("/register"));
    let open_rate = measure(move || {
        let (api, url, body) = (w.api.clone(), url.clone(), body.clone());
        async move { register(&api, &url, None, &body).await }
    })
    .await;
    drop(open);

    let gated = Arc::new(start(|_| {}).await);
    let (w, body) = (gated.clone(), Arc::new(web_client()));
    let register_url = Arc::new(w.server.url("/register"));
    let token_url = Arc::new(w.server.url("/token"));
    let gated_rate = measure(move || {
        let (api, register_url, token_url, body) = (
            w.api.clone(),
            register_url.clone(),
            token_url.clone(),
            body.clone(),
        );
        async move {
            let response = api
                .post(token_url.as_str())
                .basic_auth(REGISTRAR, Some(REGISTRAR_SECRET))
                .form(&[("grant_type", "client_credentials"), ("scope", "dcr")])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let iat: Value = response.json().await.unwrap();
            let iat = iat["access_token"].as_str().unwrap();
            register(&api, &register_url, Some(iat), &body).await;
        }
    })
    .await;

    let info = registered(&gated, &web_client()).await;
    let (id, secret) = (
        Arc::new(info.str("client_id").to_owned()),
        Arc::new(info.str("client_secret").to_owned()),
    );
    let (w, token_url) = (gated.clone(), Arc::new(gated.server.url("/token")));
    let grant_rate = measure(move || {
        let (api, url, id, secret) = (w.api.clone(), token_url.clone(), id.clone(), secret.clone());
        async move {
            let response = api
                .post(url.as_str())
                .basic_auth(id.as_str(), Some(secret.as_str()))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    })
    .await;
    println!(
        "at concurrency {CONCURRENCY}: open registrations {open_rate:.0}/s; initial access token \
         + registration {gated_rate:.0}/s; client_credentials for a registered \
         client_secret_basic client {grant_rate:.0}/s"
    );
}
