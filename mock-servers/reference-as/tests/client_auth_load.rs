//! A small load driver: client_credentials grants per second at concurrency 16, for an ephemeral
//! private_key_jwt client (ES256 assertions, a fresh one per request) and for a configured
//! client_secret_basic client whose secret is stored as SHA-256. A measurement, not a check of
//! speed, so it is ignored by default; it still fails if any grant is refused. Run it with
//! `cargo test --release -p reference-as --test client_auth_load -- --ignored --nocapture`.

#![allow(clippy::unwrap_used)]

mod client_auth_support;
mod server_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client_auth_support::{A, AssertionBuilder, JWT_BEARER, jwks};
use reference_as::cimd::AuthMethod;
use reference_as::client_auth::{SecretHash, TokenAuthMethod};
use reference_as::config::{ClientConfig, ClientSecret};
use reqwest::StatusCode;
use serde_json::json;
use server_support::World;

const CONCURRENCY: usize = 16;
const DURATION: Duration = Duration::from_secs(3);
const SECRET: &str = "a generated secret of plenty of entropy";

/// Runs `request` from 16 tasks for [`DURATION`]; grants per second.
async fn measure<F, Fut>(request: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = StatusCode> + Send,
{
    let request = Arc::new(request);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (request, done) = (request.clone(), done.clone());
            tokio::spawn(async move {
                while start.elapsed() < DURATION {
                    assert_eq!(request().await, StatusCode::OK);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run it with --release --ignored --nocapture"]
async fn client_credentials_grants_per_second_at_concurrency_16() {
    let world = Arc::new(
        World::start_with(|c| {
            c.ephemeral_clients.auth_methods = vec![AuthMethod::None, AuthMethod::PrivateKeyJwt];
            c.ephemeral_clients
                .capabilities
                .push("client_credentials".to_owned());
            c.clients = vec![ClientConfig {
                client_id: "service".to_owned(),
                client_name: None,
                token_endpoint_auth_method: TokenAuthMethod::ClientSecretBasic,
                client_secret: Some(ClientSecret(SecretHash::sha256_of(SECRET).encode())),
                jwks: None,
                jwks_uri: None,
                token_endpoint_auth_signing_alg: None,
                redirect_uris: Vec::new(),
                grant_types: vec!["client_credentials".to_owned()],
                scope: None,
            }];
        })
        .await,
    );
    let client_id = world
        .client(
            "/c/service.json",
            json!({
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": jwks(&[A]),
                "grant_types": ["client_credentials"],
                "redirect_uris": null,
            }),
        )
        .client_id;
    let token = world.server.url("/token");

    let (w, id, url) = (world.clone(), client_id.clone(), token.clone());
    let keyed = measure(move || {
        let jwt = AssertionBuilder::new(A, &id, w.server.issuer()).sign();
        let (api, url) = (w.api.clone(), url.clone());
        async move {
            api.post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &jwt),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    })
    .await;

    let (w, url) = (world.clone(), token.clone());
    let secret = measure(move || {
        let (api, url) = (w.api.clone(), url.clone());
        async move {
            api.post(url)
                .basic_auth("service", Some(SECRET))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
        }
    })
    .await;
    println!(
        "client_credentials at concurrency {CONCURRENCY}: private_key_jwt (ES256, fresh jti) \
         {keyed:.0}/s; client_secret_basic (SHA-256) {secret:.0}/s"
    );
}
