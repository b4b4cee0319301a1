//! Authorize requests per second for one cached ephemeral (CIMD) client.
//!
//! Starts the whole ecosystem in this process (reference AS over HTTPS, metadata host, mail),
//! warms the AS's cache with one request, then keeps `--concurrency` requests in flight for
//! `--seconds`, each a fresh `GET /authorize` that the AS answers by sealing the pending request
//! into the URL of its login page and redirecting there. Server and load share the machine's
//! cores, as a load tool on the same machine would.
//!
//! `cargo run --release -p cimd-benches --bin authorize-load -- --concurrency 16 --seconds 10`

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cimd_benches::latency::Samples;
use cimd_harness::agent::AuthorizeRequest;
use cimd_harness::ecosystem::{DEMO_NATIVE, Ecosystem, Options};
use clap::Parser;

/// Load driver options.
#[derive(Debug, Parser)]
struct Args {
    /// Requests kept in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Length of the measured run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Repeat the measured run this many times and report each and the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let eco = Ecosystem::start(Options::default()).await?;
    let http = eco.user_agent()?.http().clone();
    let client_id = eco.client_id(DEMO_NATIVE);
    let endpoint = format!("{}/authorize", eco.issuer());
    let url = |_: usize| {
        AuthorizeRequest::new(&client_id, "http://127.0.0.1:49152/callback").url(&endpoint)
    };

    // Warm-up: the first request fetches the document; after it the client is cached.
    let first = http.get(url(0)?).send().await?;
    if !first.status().is_redirection() {
        bail!(
            "warm-up authorize answered {} instead of a redirect to login",
            first.status()
        );
    }
    let fetches = eco.hosts.requests(DEMO_NATIVE.0, DEMO_NATIVE.1).len();

    let mut rates = Vec::new();
    for run in 1..=args.runs {
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..args.concurrency {
            let http = http.clone();
            let urls: Vec<_> = (0..64)
                .map(|i| url(worker * 64 + i))
                .collect::<Result<_, _>>()?;
            workers.spawn(async move {
                let mut samples = Samples::default();
                let mut failures = 0usize;
                let mut i = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match http.get(urls[i % urls.len()].clone()).send().await {
                        Ok(r) if r.status().is_redirection() => samples.push(sent.elapsed()),
                        _ => failures += 1,
                    }
                    i += 1;
                }
                (samples, failures)
            });
        }
        let mut samples = Samples::default();
        let mut failures = 0;
        while let Some(done) = workers.join_next().await {
            let (s, f) = done.context("load worker panicked")?;
            samples.extend(s);
            failures += f;
        }
        let elapsed = started.elapsed().as_secs_f64();
        #[allow(
            clippy::cast_precision_loss,
            reason = "request counts are far below 2^52"
        )]
        let rate = samples.len() as f64 / elapsed;
        println!(
            "run {run}: {rate:.0} authorize/s at concurrency {} ({} ok, {failures} failed, p50 {:.2} ms, p99 {:.2} ms)",
            args.concurrency,
            samples.len(),
            samples.percentile(0.50).as_secs_f64() * 1e3,
            samples.percentile(0.99).as_secs_f64() * 1e3,
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let extra = eco.hosts.requests(DEMO_NATIVE.0, DEMO_NATIVE.1).len() - fetches;
    println!(
        "median {:.0} authorize/s (min {:.0}, max {:.0}); document fetches during the load: {extra}",
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1]
    );
    Ok(())
}
