//! Resident memory held by 100,000 cached clients, through the resolver the AS uses.
//!
//! Documents come over loopback HTTPS from a document server in a child process (this binary
//! started again with `--serve-documents`), so the server's own memory and journal stay out of
//! the reading. The process resolves `--warm-up` distinct clients first (connection pool, TLS
//! session, allocator arenas and the cache's own structures all warm), reads its `VmRSS`, resolves
//! `--clients` more distinct clients, and reads `VmRSS` again: the difference divided by the
//! count is the cost of one cached client. A sample of the clients is then resolved again, and
//! the run fails if any of them was fetched a second time or if the cache's own report does not
//! hold every client, since an evicted client would make the reading too low.
//!
//! `cargo run --release -p cimd-benches --bin cache-memory -- --clients 100000`

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};
use cimd_benches::documents::{COUNT_PATH, DocumentServer};
use cimd_benches::process::{CacheMemoryReading, mib, rss};
use clap::Parser;
use futures_util::StreamExt as _;
use mock_kit::TestCa;
use reference_as::cimd::{ClientResolver, EphemeralPolicy};
use reference_as::faults::Faults;
use reference_as::net::{NetworkSettings, ResolveRule};

/// The client host name; `*.example` is mapped to loopback.
const HOST: &str = "memory.client.example";

/// Common name of the run's CA.
const CA_NAME: &str = "cimd-benches cache-memory CA";

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// Cached clients to measure.
    #[arg(long, default_value_t = 100_000)]
    clients: usize,
    /// Distinct clients resolved before the baseline reading.
    #[arg(long, default_value_t = 2_000)]
    warm_up: usize,
    /// Resolves in flight while filling the cache.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Print one JSON line with the figures instead of text.
    #[arg(long)]
    json: bool,
    /// Internal: serve documents over HTTPS with the CA in this folder, print the port, and run
    /// until stdin closes.
    #[arg(long, value_name = "CA_DIR", hide = true)]
    serve_documents: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(dir) = &args.serve_documents {
        return serve_documents(dir);
    }
    let state = std::env::temp_dir().join(format!("cimd-cache-memory-{}", std::process::id()));
    let result = measure(&args, &state);
    let _ = std::fs::remove_dir_all(&state);
    let reading = result?;
    if args.json {
        println!("{}", serde_json::to_string(&reading)?);
    } else {
        println!(
            "{} cached clients: VmRSS {:.1} MiB -> {:.1} MiB, {} bytes per client \
             (filled in {:.1} s, {} fetches)",
            reading.clients,
            mib(reading.rss_before_bytes),
            mib(reading.rss_after_bytes),
            reading.bytes_per_client,
            reading.fill_seconds,
            reading.fetches,
        );
    }
    Ok(())
}

/// The child: a document server until the parent goes away.
fn serve_documents(dir: &Path) -> anyhow::Result<()> {
    let ca = TestCa::load_or_generate(dir, CA_NAME)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let server = runtime.block_on(DocumentServer::https(&ca))?;
    println!("{}", server.port());
    // The parent holds our stdin; when it exits (or drops the pipe) the read ends.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(server);
    Ok(())
}

/// Kills the document server when the measurement ends, however it ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn measure(args: &Args, state: &Path) -> anyhow::Result<CacheMemoryReading> {
    let ca = TestCa::load_or_generate(state, CA_NAME)?;
    let mut child = ChildGuard(
        Command::new(std::env::current_exe()?)
            .arg("--serve-documents")
            .arg(state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the document server")?,
    );
    let stdout = child.0.stdout.take().context("document server stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let port: u16 = line
        .trim()
        .parse()
        .with_context(|| format!("document server said {line:?} instead of its port"))?;

    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let network = NetworkSettings {
        extra_roots_pem: vec![ca.cert_pem().to_owned()],
        resolve: vec![ResolveRule::new("*.example", loopback)?],
    };
    let mut policy = EphemeralPolicy::default();
    // Bounds far above the count measured: an eviction would make the reading too low.
    policy.cache.max_entries = u64::try_from(2 * (args.clients + args.warm_up))?;
    policy.cache.max_bytes = policy.cache.max_entries * 64 * 1024;
    let resolver = Arc::new(ClientResolver::new(policy, network, Faults::none())?);
    let counter = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.cert_pem().as_bytes())?])
        .resolve(HOST, SocketAddr::new(loopback, port))
        .build()?;
    let count_url = format!("https://{HOST}:{port}{COUNT_PATH}");
    let id = |prefix: &str, n: usize| format!("https://{HOST}:{port}/{prefix}/{n}");

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let served = || async {
            let text = counter.get(&count_url).send().await?.text().await?;
            text.trim()
                .parse::<u64>()
                .with_context(|| format!("document count {text:?}"))
        };
        fill(
            &resolver,
            (0..args.warm_up).map(|n| id("w", n)),
            args.concurrency,
        )
        .await?;
        let pid = std::process::id();
        let before = rss(pid)?;
        let fetched_before = served().await?;
        let started = Instant::now();
        fill(
            &resolver,
            (0..args.clients).map(|n| id("c", n)),
            args.concurrency,
        )
        .await?;
        let fill_seconds = started.elapsed().as_secs_f64();
        let after = rss(pid)?;
        let fetches = served().await? - fetched_before;
        ensure!(
            fetches == u64::try_from(args.clients)?,
            "{fetches} documents fetched for {} new clients",
            args.clients
        );
        // Every 100th client again: all must be hits.
        fill(
            &resolver,
            (0..args.clients).step_by(100).map(|n| id("c", n)),
            args.concurrency,
        )
        .await?;
        let refetched = served().await? - fetched_before - fetches;
        if refetched > 0 {
            bail!("{refetched} of the sampled clients were fetched again: the cache evicted them");
        }
        let report = resolver.cache_reports()[0];
        let held = u64::try_from(args.clients + args.warm_up)?;
        ensure!(
            report.entries == held && report.counts.evicted_for_size == 0,
            "the metadata cache holds {} entries ({} evicted), not {held}",
            report.entries,
            report.counts.evicted_for_size
        );
        let clients = u64::try_from(args.clients)?.max(1);
        Ok(CacheMemoryReading {
            clients: args.clients,
            rss_before_bytes: before,
            rss_after_bytes: after,
            bytes_per_client: after.saturating_sub(before) / clients,
            fill_seconds,
            fetches,
        })
    })
}

/// Resolves every client ID, `concurrency` at a time; any failure ends the run.
async fn fill(
    resolver: &Arc<ClientResolver>,
    ids: impl Iterator<Item = String>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let mut results = futures_util::stream::iter(ids)
        .map(|id| {
            let resolver = resolver.clone();
            async move {
                resolver
                    .resolve(&id)
                    .await
                    .map(|_| ())
                    .with_context(|| format!("resolving {id}"))
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(result) = results.next().await {
        result?;
    }
    Ok(())
}
