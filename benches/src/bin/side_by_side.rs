//! The reference AS and node oidc-provider, side by side, in one run on this machine.
//!
//! Each server runs as its own process pinned with `taskset` to `--server-cpus` (the same cores
//! for both), one after the other; this driver and the document servers it hosts run wherever
//! the caller pinned it (the script pins it to the other core). For each server it measures
//! authorize requests per second and p50/p99 latency at each concurrency, `--runs` times: for one
//! cached ephemeral client, and for uncached ones (a unique client ID per request, every path
//! served by [`DocumentServer`]). It counts document fetches per request from the document
//! server's journal, fires `--burst` concurrent authorizes for one uncached client and counts
//! the fetches, and reads the server's `VmRSS` after every run. It can also run the
//! `cache-memory` bin and read criterion's estimates, and writes everything to `--out` as
//! Markdown: medians with min–max, the ratio per metric, the machine facts and the commands.
//!
//! Normally started by `scripts/bench/side-by-side.sh`, which installs oidc-provider and Node 22.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use cimd_benches::documents::DocumentServer;
use cimd_benches::latency::Spread;
use cimd_benches::load::{self, Outcome, Plan};
use cimd_benches::process::{
    CacheMemoryReading, command_line, cpu_time, machine_busy_time, machine_facts, mib, peak_rss,
    rss,
};
use clap::Parser;
use mock_kit::TestCa;

/// The redirect URI every request sends; the demo native client registers
/// `http://127.0.0.1/callback`, and both servers accept any loopback port for native clients.
const REDIRECT_URI: &str = "http://127.0.0.1:49152/callback";

/// A valid S256 challenge (RFC 7636 appendix B); no token is ever redeemed.
const CODE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Other processes' CPU use, in cores, above which a run counts as disturbed and is repeated.
const DISTURBED: f64 = 0.25;

/// Attempts at one run when other processes keep disturbing it.
const ATTEMPTS: usize = 3;

/// Other processes' CPU use, in cores, below which the machine counts as quiet before a run.
const QUIET: f64 = 0.10;

/// The longest wait for a quiet machine before a run starts anyway.
const QUIET_WAIT: Duration = Duration::from_secs(30);

/// How long a server may take to print its start-up line.
const START_TIMEOUT: Duration = Duration::from_mins(1);

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// The reference-as binary (a release build).
    #[arg(long, value_name = "FILE")]
    reference_as: PathBuf,
    /// The node binary that runs oidc-provider (22 or later).
    #[arg(long, value_name = "FILE", requires = "node_server")]
    node: Option<PathBuf>,
    /// oidc-provider-server.mjs, inside the folder where oidc-provider is installed.
    #[arg(long, value_name = "FILE", requires = "node")]
    node_server: Option<PathBuf>,
    /// Why oidc-provider could not be set up (reported instead of its figures).
    #[arg(long, value_name = "TEXT", conflicts_with = "node")]
    node_unavailable: Option<String>,
    /// Cores every server is pinned to (taskset -c syntax).
    #[arg(long, default_value = "0")]
    server_cpus: String,
    /// Length of one measured run, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Repetitions of every measurement (at least 3 for a median with a spread; oidc-provider's
    /// throughput swings between runs even when warm, so 5 by default).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Concurrencies to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    concurrency: Vec<usize>,
    /// Unmeasured load before each scenario, in seconds, at the highest concurrency: warms
    /// oidc-provider's JIT (it keeps speeding up for about 15 s of load) and every connection
    /// pool before the measured runs.
    #[arg(long, default_value_t = 10)]
    warm_up_seconds: u64,
    /// Concurrent authorizes for one uncached client.
    #[arg(long, default_value_t = 200)]
    burst: usize,
    /// The most requests in one run, whatever the time.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: usize,
    /// The cache-memory binary: when given, it runs `--runs` times and its figures are reported.
    #[arg(long, value_name = "FILE")]
    cache_memory: Option<PathBuf>,
    /// A criterion output folder (target/criterion) whose estimates are reported.
    #[arg(long, value_name = "DIR")]
    criterion: Option<PathBuf>,
    /// The command that ran the whole benchmark, quoted in the report.
    #[arg(long, value_name = "TEXT")]
    command: Option<String>,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    let runtime = tokio::runtime::Runtime::new()?;
    let state = std::env::temp_dir().join(format!("cimd-side-by-side-{}", std::process::id()));
    std::fs::create_dir_all(&state)?;
    let result = runtime.block_on(run(&args, &state));
    let _ = std::fs::remove_dir_all(&state);
    let report = result?;
    std::fs::write(&args.out, report).with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Which server, for labels and start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reference,
    Node,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Reference => "reference AS",
            Kind::Node => "oidc-provider",
        }
    }
}

/// How the uncached documents reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    /// Over HTTPS from the document server, certificate from the harness CA.
    Https,
    /// Over plain HTTP (oidc-provider only: its fetch rewrites the scheme for `*.plain.example`).
    Plain,
}

impl Fetch {
    fn label(self) -> &'static str {
        match self {
            Fetch::Https => "https",
            Fetch::Plain => "plain http",
        }
    }
}

/// What a load run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Cached,
    Uncached(Fetch),
}

impl Scenario {
    fn label(self) -> String {
        match self {
            Scenario::Cached => "cached client".to_owned(),
            Scenario::Uncached(fetch) => format!("uncached, fetch over {}", fetch.label()),
        }
    }
}

/// A server process; killed on drop.
struct Server {
    kind: Kind,
    child: Child,
    pid: u32,
    authorize: String,
    command: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The document servers and the CA, shared by both servers' runs.
struct Documents {
    https: DocumentServer,
    plain: DocumentServer,
    ca_file: PathBuf,
}

impl Documents {
    fn server(&self, fetch: Fetch) -> &DocumentServer {
        match fetch {
            Fetch::Https => &self.https,
            Fetch::Plain => &self.plain,
        }
    }

    /// Fetches addressed to `host` since the last call on `fetch`'s server, which forgets them.
    fn take_fetches(&self, fetch: Fetch, host: &str) -> usize {
        let journal = self.server(fetch).journal();
        let count = journal.entries().iter().filter(|e| e.host == host).count();
        journal.clear();
        count
    }
}

/// One measured run.
#[derive(Debug, Clone)]
struct Run {
    outcome: Outcome,
    p50_ms: f64,
    p99_ms: f64,
    rss_after: u64,
    /// Server CPU time over wall time (1.0 = one core busy).
    server_cpu: f64,
    /// This driver's CPU time over wall time (load generator and document servers).
    driver_cpu: f64,
    /// CPU time of every other process on the machine over wall time: other work competing
    /// for the cores during the run.
    other_cpu: f64,
    /// Document fetches during the run.
    fetches: usize,
    /// Attempts it took (more than one when other processes disturbed earlier ones).
    attempts: usize,
}

/// The runs of one scenario at one concurrency.
#[derive(Debug, Clone)]
struct Phase {
    scenario: Scenario,
    concurrency: usize,
    runs: Vec<Run>,
}

impl Phase {
    /// Document fetches over all runs (for the cached scenario: after the warm-up).
    fn fetches(&self) -> usize {
        self.runs.iter().map(|r| r.fetches).sum()
    }

    /// Runs repeated because other processes disturbed them.
    fn repeated(&self) -> usize {
        self.runs.iter().map(|r| r.attempts - 1).sum()
    }

    fn ok(&self) -> usize {
        self.runs.iter().map(|r| r.outcome.samples.len()).sum()
    }

    fn failed(&self) -> usize {
        self.runs.iter().map(|r| r.outcome.failed).sum()
    }

    fn spread(&self, value: impl Fn(&Run) -> f64) -> Option<Spread> {
        Spread::of(&self.runs.iter().map(value).collect::<Vec<_>>())
    }
}

/// One burst of concurrent authorizes for one uncached client.
#[derive(Debug, Clone)]
struct Burst {
    outcome: Outcome,
    fetches: usize,
}

/// Everything measured for one server.
struct Measured {
    kind: Kind,
    command: String,
    rss_start: u64,
    phases: Vec<Phase>,
    bursts: Vec<Burst>,
    rss_final: u64,
    peak_rss: u64,
}

/// What became of one server: figures, or why there are none.
enum ServerResult {
    Measured(Box<Measured>),
    Unavailable(String),
}

async fn run(args: &Args, state: &Path) -> anyhow::Result<String> {
    let ca = TestCa::load_or_generate(state, "cimd-benches side-by-side CA")?;
    let documents = Documents {
        https: DocumentServer::https(&ca).await?,
        plain: DocumentServer::http().await?,
        ca_file: state.join(mock_kit::ca::CA_CERT_FILE),
    };
    let client = load::Client::new();

    let reference = match start_reference(args, &documents, state) {
        Ok(server) => measure(args, &client, &documents, server).await,
        Err(error) => ServerResult::Unavailable(format!("{error:#}")),
    };
    println!("reference AS done");
    let node = match (&args.node, &args.node_server, &args.node_unavailable) {
        (Some(node), Some(script), _) => match start_node(args, node, script, &documents) {
            Ok(server) => measure(args, &client, &documents, server).await,
            Err(error) => ServerResult::Unavailable(format!("{error:#}")),
        },
        (_, _, Some(reason)) => ServerResult::Unavailable(reason.clone()),
        _ => ServerResult::Unavailable("not requested (no --node)".to_owned()),
    };
    println!("oidc-provider done");
    let memory = args
        .cache_memory
        .as_ref()
        .map(|bin| cache_memory(bin, args.runs));
    Ok(report(
        args,
        &reference,
        &node,
        memory.as_ref(),
        args.node.as_deref(),
    ))
}

/// Reads the first stdout line of `child` within [`START_TIMEOUT`] and parses it as JSON.
fn start_line(child: &mut Child, what: &str) -> anyhow::Result<serde_json::Value> {
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = tx.send(read);
    });
    let line = rx
        .recv_timeout(START_TIMEOUT)
        .map_err(|_| anyhow::anyhow!("{what} printed no start-up line within {START_TIMEOUT:?}"))?
        .with_context(|| format!("reading {what}'s stdout"))?;
    serde_json::from_str(&line).with_context(|| format!("{what} printed {line:?}"))
}

/// The tail of a log file, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// `program args…` as a shell would show it (for the report).
fn shown(command: &Command) -> String {
    let mut parts = vec![shell_word(&command.get_program().to_string_lossy())];
    parts.extend(command.get_args().map(|a| shell_word(&a.to_string_lossy())));
    let env: Vec<String> = command
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    if env.is_empty() {
        parts.join(" ")
    } else {
        format!("{} {}", env.join(" "), parts.join(" "))
    }
}

/// `word` as a POSIX shell reads it back: bare when it is plain, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Spawns `command` and reads its start-up line; stderr goes to `log`.
fn spawn_server(
    kind: Kind,
    mut command: Command,
    log: &Path,
    endpoint_member: &str,
) -> anyhow::Result<Server> {
    let shown = shown(&command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {shown}"))?;
    let pid = child.id();
    let line = start_line(&mut child, kind.label());
    let mut server = Server {
        kind,
        child,
        pid,
        authorize: String::new(),
        command: shown,
    };
    let line = line.with_context(|| format!("stderr:\n{}", log_tail(log)))?;
    line.get(endpoint_member)
        .and_then(|v| v.as_str())
        .with_context(|| format!("no {endpoint_member} in {line}"))?
        .clone_into(&mut server.authorize);
    Ok(server)
}

fn start_reference(args: &Args, documents: &Documents, state: &Path) -> anyhow::Result<Server> {
    let mut command = Command::new("taskset");
    command
        .env("RUST_LOG", "warn")
        .args(["-c", &args.server_cpus])
        .arg(&args.reference_as)
        .args(["--listen", "127.0.0.1:0", "--trusted-ca"])
        .arg(&documents.ca_file)
        .args(["--resolve", "*.example=127.0.0.1"]);
    spawn_server(
        Kind::Reference,
        command,
        &state.join("reference-as.log"),
        "authorization_endpoint",
    )
}

fn start_node(
    args: &Args,
    node: &Path,
    script: &Path,
    documents: &Documents,
) -> anyhow::Result<Server> {
    // A free port for the issuer, which oidc-provider needs before it listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut command = Command::new("taskset");
    command
        .env("NODE_ENV", "production")
        .env("PORT", port.to_string())
        .env("NODE_EXTRA_CA_CERTS", &documents.ca_file)
        .args(["-c", &args.server_cpus])
        .arg(node)
        .arg(script);
    if let Some(dir) = script.parent() {
        command.current_dir(dir);
    }
    let log = documents.ca_file.parent().map_or_else(
        || PathBuf::from("oidc-provider.log"),
        |d| d.join("oidc-provider.log"),
    );
    spawn_server(Kind::Node, command, &log, "authorization_endpoint")
}

/// The authorize URL for `client_id` (request `n`, which only varies `state`).
fn authorize_url(endpoint: &str, client_id: &str, n: usize) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "{endpoint}?response_type=code&client_id={}&redirect_uri={}&state=s{n}\
         &code_challenge={CODE_CHALLENGE}&code_challenge_method=S256",
        encode(client_id),
        encode(REDIRECT_URI),
    )
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One measured run with the server's and the driver's CPU use and the server's RSS after it.
async fn measured_run(
    client: &load::Client,
    server: &Server,
    plan: Plan,
    url: impl Fn(usize) -> String + Send + Sync + 'static,
) -> anyhow::Result<Run> {
    let driver = std::process::id();
    let (server_before, driver_before, machine_before) = (
        cpu_time(server.pid)?,
        cpu_time(driver)?,
        machine_busy_time()?,
    );
    let mut outcome = load::run(client, plan, url).await;
    let wall = outcome.elapsed.as_secs_f64().max(1e-9);
    let server_busy = cpu_time(server.pid)?
        .saturating_sub(server_before)
        .as_secs_f64();
    let driver_busy = cpu_time(driver)?
        .saturating_sub(driver_before)
        .as_secs_f64();
    let machine_busy = machine_busy_time()?
        .saturating_sub(machine_before)
        .as_secs_f64();
    let (server_cpu, driver_cpu) = (server_busy / wall, driver_busy / wall);
    let other_cpu = (machine_busy - server_busy - driver_busy).max(0.0) / wall;
    let p50_ms = millis(outcome.samples.percentile(0.50));
    let p99_ms = millis(outcome.samples.percentile(0.99));
    let run = Run {
        outcome,
        p50_ms,
        p99_ms,
        rss_after: rss(server.pid)?,
        server_cpu,
        driver_cpu,
        other_cpu,
        fetches: 0,
        attempts: 1,
    };
    println!(
        "  {} c={}: {:.0}/s, p50 {p50_ms:.2} ms, p99 {p99_ms:.2} ms, {} failed, VmRSS {:.0} MiB, \
         server CPU {:.0} %",
        server.kind.label(),
        plan.concurrency,
        run.outcome.rate(),
        run.outcome.failed,
        mib(run.rss_after),
        server_cpu * 100.0
    );
    Ok(run)
}

/// Waits (at most [`QUIET_WAIT`]) until the machine's busy CPU time over half a second, less
/// this driver's, is under [`QUIET`] of a core. The server is idle between runs, so what
/// remains is other processes' work.
async fn wait_for_quiet() -> anyhow::Result<()> {
    let window = Duration::from_millis(500);
    let deadline = tokio::time::Instant::now() + QUIET_WAIT;
    let driver = std::process::id();
    loop {
        let (machine, ours) = (machine_busy_time()?, cpu_time(driver)?);
        tokio::time::sleep(window).await;
        let busy = machine_busy_time()?.saturating_sub(machine);
        let others = busy.saturating_sub(cpu_time(driver)?.saturating_sub(ours));
        if others.as_secs_f64() / window.as_secs_f64() < QUIET
            || tokio::time::Instant::now() >= deadline
        {
            return Ok(());
        }
    }
}

/// An unmeasured run at the highest concurrency for `--warm-up-seconds`; fails only if not one
/// request succeeded.
async fn warm_up(
    args: &Args,
    client: &load::Client,
    url: impl Fn(usize) -> String + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let plan = Plan {
        concurrency: args.concurrency.iter().copied().max().unwrap_or(1),
        duration: Duration::from_secs(args.warm_up_seconds),
        max_requests: args.max_requests,
    };
    let outcome = load::run(client, plan, url).await;
    match outcome.first_failure {
        Some(failure) if outcome.samples.is_empty() => {
            bail!("every warm-up request failed; the first: {failure}")
        }
        _ => Ok(()),
    }
}

async fn measure(
    args: &Args,
    client: &load::Client,
    documents: &Documents,
    server: Server,
) -> ServerResult {
    // The server is dropped (killed) at the end, before the next one starts.
    match measure_server(args, client, documents, &server).await {
        Ok(measured) => ServerResult::Measured(Box::new(measured)),
        Err(error) => ServerResult::Unavailable(format!("{error:#}")),
    }
}

async fn measure_server(
    args: &Args,
    client: &load::Client,
    documents: &Documents,
    server: &Server,
) -> anyhow::Result<Measured> {
    let bench = Bench {
        args,
        client,
        documents,
        server,
        tag: match server.kind {
            Kind::Reference => "ref",
            Kind::Node => "node",
        },
    };
    let rss_start = rss(server.pid)?;
    let mut phases = bench.cached().await?;
    let fetch_modes: &[Fetch] = match server.kind {
        Kind::Reference => &[Fetch::Https],
        Kind::Node => &[Fetch::Https, Fetch::Plain],
    };
    for &fetch in fetch_modes {
        phases.extend(bench.uncached(fetch).await?);
    }
    let bursts = bench.bursts().await;
    Ok(Measured {
        kind: server.kind,
        command: server.command.clone(),
        rss_start,
        phases,
        bursts,
        rss_final: rss(server.pid)?,
        peak_rss: peak_rss(server.pid)?,
    })
}

/// One server's measurements and what they need.
struct Bench<'a> {
    args: &'a Args,
    client: &'a load::Client,
    documents: &'a Documents,
    server: &'a Server,
    /// Part of every client host name, so the two servers never share a client ID.
    tag: &'static str,
}

impl Bench<'_> {
    fn plan(&self, concurrency: usize) -> Plan {
        Plan {
            concurrency,
            duration: Duration::from_secs(self.args.seconds),
            max_requests: self.args.max_requests,
        }
    }

    /// Authorize URLs all for `client_id`.
    fn same_client(
        &self,
        client_id: &str,
    ) -> impl Fn(usize) -> String + Send + Sync + 'static + use<> {
        let (endpoint, id) = (self.server.authorize.clone(), client_id.to_owned());
        move |n| authorize_url(&endpoint, &id, n)
    }

    /// Authorize URLs each for a client of its own on `host`, served by `fetch`'s server.
    fn unique_clients(
        &self,
        fetch: Fetch,
        host: &str,
    ) -> impl Fn(usize) -> String + Send + Sync + 'static + use<> {
        let origin = self.documents.server(fetch).client_id(host, "");
        let endpoint = self.server.authorize.clone();
        move |n| authorize_url(&endpoint, &format!("{origin}/c/{n}"), n)
    }

    /// One client, fetched by a first request, then the measured runs.
    async fn cached(&self) -> anyhow::Result<Vec<Phase>> {
        let host = format!("cached-{}.client.example", self.tag);
        let client_id = self.documents.https.client_id(&host, "/cached");
        let first = load::burst(self.client, 1, &self.same_client(&client_id)(0)).await;
        if let Some(failure) = first.first_failure {
            bail!("the first authorize failed: {failure}");
        }
        warm_up(self.args, self.client, self.same_client(&client_id)).await?;
        self.documents.take_fetches(Fetch::Https, &host);
        let mut phases = Vec::new();
        for &concurrency in &self.args.concurrency {
            let mut runs = Vec::new();
            for _ in 0..self.args.runs {
                let attempt = |_| (host.clone(), self.same_client(&client_id));
                runs.push(self.quiet_run(concurrency, Fetch::Https, attempt).await?);
            }
            phases.push(Phase {
                scenario: Scenario::Cached,
                concurrency,
                runs,
            });
            println!("{}: cached c={concurrency} done", self.server.kind.label());
        }
        Ok(phases)
    }

    /// A unique client ID per request, on a host of its own per run.
    async fn uncached(&self, fetch: Fetch) -> anyhow::Result<Vec<Phase>> {
        let domain = match fetch {
            Fetch::Https => "client.example",
            Fetch::Plain => "plain.example",
        };
        let host = format!("warm-up-{}.{domain}", self.tag);
        warm_up(self.args, self.client, self.unique_clients(fetch, &host)).await?;
        self.documents.take_fetches(fetch, &host);
        let mut phases = Vec::new();
        for &concurrency in &self.args.concurrency {
            let mut runs = Vec::new();
            for run in 0..self.args.runs {
                let attempt = |attempt| {
                    let host = format!(
                        "uncached-{}-c{concurrency}-r{run}-a{attempt}.{domain}",
                        self.tag
                    );
                    let url = self.unique_clients(fetch, &host);
                    (host, url)
                };
                runs.push(self.quiet_run(concurrency, fetch, attempt).await?);
            }
            phases.push(Phase {
                scenario: Scenario::Uncached(fetch),
                concurrency,
                runs,
            });
            println!(
                "{}: uncached ({}) c={concurrency} done",
                self.server.kind.label(),
                fetch.label()
            );
        }
        Ok(phases)
    }

    /// One measured run that other processes left alone: waits for a quiet machine, and
    /// repeats a run during which they took more than [`DISTURBED`] of a core, up to
    /// [`ATTEMPTS`] times (the last attempt is kept either way). `attempt(n)` gives the client
    /// host (whose fetches are counted) and the URLs for attempt `n`.
    async fn quiet_run<U>(
        &self,
        concurrency: usize,
        fetch: Fetch,
        attempt: impl Fn(usize) -> (String, U),
    ) -> anyhow::Result<Run>
    where
        U: Fn(usize) -> String + Send + Sync + 'static,
    {
        let mut n = 0;
        loop {
            wait_for_quiet().await?;
            let (host, url) = attempt(n);
            let mut run =
                measured_run(self.client, self.server, self.plan(concurrency), url).await?;
            run.fetches = self.documents.take_fetches(fetch, &host);
            n += 1;
            run.attempts = n;
            if run.other_cpu <= DISTURBED || n >= ATTEMPTS {
                return Ok(run);
            }
            println!(
                "  other processes took {:.0} % of a core; repeating the run",
                run.other_cpu * 100.0
            );
        }
    }

    /// `--burst` authorizes at once for one client nobody fetched yet, `--runs` times.
    async fn bursts(&self) -> Vec<Burst> {
        let mut bursts = Vec::new();
        for run in 0..self.args.runs {
            let host = format!("burst-{}-r{run}.client.example", self.tag);
            let client_id = self.documents.https.client_id(&host, "/burst");
            let url = self.same_client(&client_id)(run);
            let outcome = load::burst(self.client, self.args.burst, &url).await;
            bursts.push(Burst {
                outcome,
                fetches: self.documents.take_fetches(Fetch::Https, &host),
            });
        }
        bursts
    }
}

/// The cache-memory bin's readings, one per run, and the last failure if a run failed.
#[derive(Debug)]
struct MemoryReadings {
    command: String,
    readings: Vec<CacheMemoryReading>,
    error: Option<String>,
}

impl MemoryReadings {
    fn spread(&self, value: impl Fn(&CacheMemoryReading) -> f64) -> Option<Spread> {
        Spread::of(&self.readings.iter().map(value).collect::<Vec<_>>())
    }
}

/// Runs the cache-memory bin `runs` times for 100,000 clients.
fn cache_memory(bin: &Path, runs: usize) -> MemoryReadings {
    let args = ["--clients", "100000", "--json"];
    let mut readings = MemoryReadings {
        command: format!("{} {}", bin.display(), args.join(" ")),
        readings: Vec::new(),
        error: None,
    };
    for _ in 0..runs {
        match Command::new(bin).args(args).output() {
            Ok(out) if out.status.success() => match serde_json::from_slice(&out.stdout) {
                Ok(reading) => readings.readings.push(reading),
                Err(error) => readings.error = Some(format!("unreadable output: {error}")),
            },
            Ok(out) => {
                readings.error = Some(format!(
                    "exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Err(error) => readings.error = Some(error.to_string()),
        }
        println!("cache-memory run done");
    }
    readings
}

// ---------------------------------------------------------------------------------------------
// The report.

/// A row of the burst table: label, the reading of one burst, decimals shown.
type BurstRow<'a> = (&'a str, &'a dyn Fn(&Burst) -> f64, usize);

/// A cell: `median [min–max]` or a dash.
fn cell(spread: Option<Spread>, decimals: usize) -> String {
    spread.map_or_else(|| "–".to_owned(), |s| s.display(decimals))
}

/// `reference ÷ node` of two medians.
fn ratio(reference: Option<Spread>, node: Option<Spread>) -> String {
    match (reference, node) {
        (Some(r), Some(n)) if n.median > 0.0 => format!("{:.2}", r.median / n.median),
        _ => "–".to_owned(),
    }
}

fn find(measured: &Measured, scenario: Scenario, concurrency: usize) -> Option<&Phase> {
    measured
        .phases
        .iter()
        .find(|p| p.scenario == scenario && p.concurrency == concurrency)
}

fn measured(result: &ServerResult) -> Option<&Measured> {
    match result {
        ServerResult::Measured(m) => Some(m),
        ServerResult::Unavailable(_) => None,
    }
}

/// One metric of a phase.
#[derive(Clone, Copy)]
enum Metric {
    Rate,
    P50,
    P99,
    Rss,
    ServerCpu,
}

impl Metric {
    fn of(self, phase: &Phase) -> Option<Spread> {
        match self {
            Metric::Rate => phase.spread(|r| r.outcome.rate()),
            Metric::P50 => phase.spread(|r| r.p50_ms),
            Metric::P99 => phase.spread(|r| r.p99_ms),
            Metric::Rss => phase.spread(|r| mib(r.rss_after)),
            Metric::ServerCpu => phase.spread(|r| r.server_cpu * 100.0),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Metric::Rate => "authorize/s",
            Metric::P50 => "p50 ms",
            Metric::P99 => "p99 ms",
            Metric::Rss => "VmRSS after run, MiB",
            Metric::ServerCpu => "server CPU, % of a core",
        }
    }

    fn decimals(self) -> usize {
        match self {
            Metric::Rate | Metric::ServerCpu => 0,
            Metric::P50 | Metric::P99 => 2,
            Metric::Rss => 1,
        }
    }
}

#[allow(
    clippy::too_many_lines,
    reason = "the report reads top to bottom like the file it writes"
)]
fn report(
    args: &Args,
    reference: &ServerResult,
    node: &ServerResult,
    memory: Option<&MemoryReadings>,
    node_bin: Option<&Path>,
) -> String {
    let mut md = String::new();
    let r = measured(reference);
    let n = measured(node);
    let node_bin_str = node_bin.map(|p| p.to_string_lossy().into_owned());
    let _ = writeln!(
        md,
        "# Benchmarks: the reference AS beside node oidc-provider\n"
    );
    let _ = writeln!(
        md,
        "Generated by `scripts/bench/side-by-side.sh` on {}; do not edit by hand, run the script \
         again. Every figure below comes from this one run on this one machine.\n",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );

    let _ = writeln!(md, "## Setup\n");
    let _ = writeln!(
        md,
        "- Each server is its own process pinned with `taskset -c {cpus}` (the same core budget for \
         both), started one after the other, never at the same time. The load generator and the \
         document servers share one process pinned by the script to the remaining core.\n\
         - The load: {runs} runs of {secs} s (at most {max} requests) per concurrency \
         ({conc}), after {warm} s of unmeasured load per scenario (oidc-provider's JIT and the \
         connection pools warm up); every request is a fresh browser (no cookies, keep-alive connections) sending \
         `GET /authorize` with `response_type=code`, the client ID, a loopback `redirect_uri`, a \
         `state` and an S256 `code_challenge`. A success is a redirect onward to the login or \
         interaction page (the reference AS seals the pending request into the login URL; \
         oidc-provider stores an interaction); an error page or an error redirect is a failure. Latency is per request, \
         p50/p99 by nearest rank over the run.\n\
         - Documents: the demo native client (`fixtures/metadata/demo-native-client.json`) with \
         its `client_id` set to the URL it was fetched from and `Cache-Control: max-age=3600`, \
         served for any path by `cimd_benches::documents::DocumentServer` over HTTPS with a \
         certificate from a run-time test CA. Fetch counts come from that server's request \
         journal.\n\
         - *Cached*: one client ID fetched by a warm-up request, then reused. *Uncached*: a \
         unique client ID per request (`https://uncached-….client.example:PORT/c/N`), so every \
         request fetches and validates a document.\n\
         - The reference AS trusts the CA (`--trusted-ca`) and maps `*.example` to 127.0.0.1 \
         (`--resolve`). oidc-provider trusts it through `NODE_EXTRA_CA_CERTS`; its configured \
         `fetch` (scripts/bench/oidc-provider-server.mjs) maps `*.example` to 127.0.0.1 with an \
         undici dispatcher of its own, because oidc-provider's default dispatcher refuses \
         loopback addresses (SSRF protection) and its CIMD code accepts only `https` client IDs. \
         oidc-provider's uncached load is also measured with the fetch rewritten to plain HTTP \
         (`*.plain.example`), the setup of the issue's baseline figures; the reference AS \
         always fetches over HTTPS.\n\
         - Ratios are reference AS ÷ oidc-provider of the medians: above 1 is better for \
         throughput, below 1 is better for latency, memory and fetches.\n",
        cpus = args.server_cpus,
        runs = args.runs,
        secs = args.seconds,
        warm = args.warm_up_seconds,
        max = args.max_requests,
        conc = args
            .concurrency
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );

    let _ = writeln!(md, "## Machine\n");
    for (name, value) in machine_facts(node_bin_str.as_deref()) {
        let _ = writeln!(md, "- {name}: {value}");
    }
    let _ = writeln!(
        md,
        "- oidc-provider: 9.13.3 (npm), `features.clientIdMetadataDocument` enabled (ack \
         `draft-02`), in-memory adapter, dev interactions\n"
    );

    for (title, result) in [("reference AS", reference), ("oidc-provider", node)] {
        if let ServerResult::Unavailable(reason) = result {
            let _ = writeln!(
                md,
                "**{title} could not be measured:**\n\n```text\n{reason}\n```\n"
            );
        }
    }

    // Throughput and latency, scenario by scenario.
    let _ = writeln!(md, "## Authorize throughput and latency\n");
    let _ = writeln!(md, "Medians over {} runs with [min–max].\n", args.runs);
    let scenarios = [
        (Scenario::Cached, Scenario::Cached),
        (
            Scenario::Uncached(Fetch::Https),
            Scenario::Uncached(Fetch::Https),
        ),
        (
            Scenario::Uncached(Fetch::Https),
            Scenario::Uncached(Fetch::Plain),
        ),
    ];
    for (ours, theirs) in scenarios {
        let heading = if ours == theirs {
            ours.label()
        } else {
            format!(
                "{} (reference AS) vs {} (oidc-provider)",
                ours.label(),
                theirs.label()
            )
        };
        let _ = writeln!(md, "### {heading}\n");
        let _ = writeln!(
            md,
            "| concurrency | metric | reference AS | oidc-provider | ratio |\n|---|---|---|---|---|"
        );
        for &c in &args.concurrency {
            let rp = r.and_then(|m| find(m, ours, c));
            let np = n.and_then(|m| find(m, theirs, c));
            for metric in [
                Metric::Rate,
                Metric::P50,
                Metric::P99,
                Metric::ServerCpu,
                Metric::Rss,
            ] {
                let (a, b) = (rp.and_then(|p| metric.of(p)), np.and_then(|p| metric.of(p)));
                let _ = writeln!(
                    md,
                    "| {c} | {} | {} | {} | {} |",
                    metric.label(),
                    cell(a, metric.decimals()),
                    cell(b, metric.decimals()),
                    ratio(a, b)
                );
            }
            let per_request = |p: Option<&Phase>| {
                p.map_or_else(
                    || "–".to_owned(),
                    |p| {
                        #[allow(
                            clippy::cast_precision_loss,
                            reason = "request counts are far below 2^52"
                        )]
                        let value = p.fetches() as f64 / p.ok().max(1) as f64;
                        format!("{value:.3} ({} / {})", p.fetches(), p.ok())
                    },
                )
            };
            let _ = writeln!(
                md,
                "| {c} | document fetches per authorize | {} | {} | |",
                per_request(rp),
                per_request(np)
            );
            let failures = |p: Option<&Phase>| p.map_or(0, Phase::failed);
            if failures(rp) + failures(np) > 0 {
                let _ = writeln!(
                    md,
                    "| {c} | failed requests | {} | {} | |",
                    failures(rp),
                    failures(np)
                );
            }
        }
        let _ = writeln!(md);
    }

    // Bursts.
    let _ = writeln!(
        md,
        "## {} concurrent authorizes for one uncached client\n",
        args.burst
    );
    let _ = writeln!(
        md,
        "| metric | reference AS | oidc-provider | ratio |\n|---|---|---|---|"
    );
    let burst = |m: Option<&Measured>, f: &dyn Fn(&Burst) -> f64| {
        m.and_then(|m| Spread::of(&m.bursts.iter().map(f).collect::<Vec<_>>()))
    };
    #[allow(
        clippy::cast_precision_loss,
        reason = "request counts are far below 2^52"
    )]
    let rows: [BurstRow; 4] = [
        ("document fetches", &|b| b.fetches as f64, 0),
        (
            "successful authorizes",
            &|b| b.outcome.samples.len() as f64,
            0,
        ),
        ("time for all, ms", &|b| millis(b.outcome.elapsed), 1),
        (
            "p99 ms",
            &|b| millis(b.outcome.samples.clone().percentile(0.99)),
            1,
        ),
    ];
    for (label, f, decimals) in rows {
        let (a, b) = (burst(r, f), burst(n, f));
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} |",
            cell(a, decimals),
            cell(b, decimals),
            ratio(a, b)
        );
    }
    let _ = writeln!(md);

    // Memory.
    let _ = writeln!(md, "## Resident memory of the server process\n");
    let _ = writeln!(
        md,
        "| reading | reference AS | oidc-provider | ratio |\n|---|---|---|---|"
    );
    #[allow(clippy::type_complexity, reason = "a table of labelled readings")]
    let memory_rows: [(&str, &dyn Fn(&Measured) -> u64); 3] = [
        ("VmRSS at start, MiB", &|m| m.rss_start),
        ("VmRSS after all loads, MiB", &|m| m.rss_final),
        ("peak VmRSS (VmHWM), MiB", &|m| m.peak_rss),
    ];
    for (label, f) in memory_rows {
        let (a, b) = (r.map(|m| mib(f(m))), n.map(|m| mib(f(m))));
        let show = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"));
        let rat = match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "–".to_owned(),
        };
        let _ = writeln!(md, "| {label} | {} | {} | {rat} |", show(a), show(b));
    }
    let _ = writeln!(
        md,
        "\nVmRSS after each run is in the tables above (row \"VmRSS after run\"). What each \
         server keeps per authorize request is part of the reading: the reference AS keeps \
         nothing (a pending authorization request travels sealed in the login URL) besides up \
         to 10,000 cached documents (its default cache bound); oidc-provider's development in-memory \
         adapter is an LRU of 1,000 entries, and it caches at most 100 metadata documents.\n"
    );

    // Cache memory and criterion.
    let _ = writeln!(md, "## The metadata cache alone (reference AS)\n");
    if let Some(memory) = memory {
        #[allow(clippy::cast_precision_loss, reason = "byte counts are far below 2^52")]
        let per_client = memory.spread(|r| r.bytes_per_client as f64);
        let growth = memory.spread(|r| mib(r.growth_bytes()));
        let before = memory.spread(|r| mib(r.rss_before_bytes));
        let after = memory.spread(|r| mib(r.rss_after_bytes));
        let fill = memory.spread(|r| r.fill_seconds);
        let _ = writeln!(
            md,
            "100,000 distinct clients resolved through `ClientResolver::resolve` (fetched over \
             loopback HTTPS from a document server in another process, then cached), {} runs: \
             `{}`\n",
            memory.readings.len(),
            memory.command
        );
        let _ = writeln!(md, "| reading | median [min–max] |\n|---|---|");
        let _ = writeln!(md, "| bytes per cached client | {} |", cell(per_client, 0));
        let _ = writeln!(
            md,
            "| VmRSS growth for 100,000 clients, MiB | {} |",
            cell(growth, 1)
        );
        let _ = writeln!(
            md,
            "| VmRSS before (after the warm-up clients), MiB | {} |",
            cell(before, 1)
        );
        let _ = writeln!(
            md,
            "| VmRSS with 100,000 more cached, MiB | {} |",
            cell(after, 1)
        );
        let _ = writeln!(
            md,
            "| seconds to fetch, validate and cache them | {} |",
            cell(fill, 1)
        );
        if let Some(error) = &memory.error {
            let _ = writeln!(md, "\nA run failed: `{error}`");
        }
        let _ = writeln!(md);
    } else {
        let _ = writeln!(md, "Not run (no `--cache-memory`).\n");
    }
    let criterion = args.criterion.as_deref().map(criterion_rows);
    match &criterion {
        Some(rows) if !rows.is_empty() => {
            let _ = writeln!(
                md,
                "Criterion (`cargo bench -p cimd-benches`, run by the script just before the \
                 loads; median time per iteration with its 95% confidence interval):\n"
            );
            let _ = writeln!(md, "| bench | median | 95% CI |\n|---|---|---|");
            for (name, median, low, high) in rows {
                let _ = writeln!(
                    md,
                    "| `{name}` | {} | {} – {} |",
                    duration_text(*median),
                    duration_text(*low),
                    duration_text(*high)
                );
            }
            let _ = writeln!(
                md,
                "\n`coalescing/1000_concurrent_misses_one_client` asserts after every iteration that \
                 the metadata host's journal holds exactly one fetch for the 1,000 resolves; \
                 `cache_miss` asserts one fetch per miss, `cache_hit` none.\n"
            );
        }
        _ => {
            let _ = writeln!(md, "Criterion estimates not included (run without them).\n");
        }
    }

    // Targets.
    let _ = writeln!(md, "## The issue's targets\n");
    let _ = writeln!(md, "| target | measured | met |\n|---|---|---|");
    let rate = |m: Option<&Measured>, s: Scenario, c: usize| {
        m.and_then(|m| find(m, s, c))
            .and_then(|p| Metric::Rate.of(p))
    };
    let ratio_target =
        |label: &str, ours: Option<Spread>, theirs: Option<Spread>, want: f64, md: &mut String| {
            if let (Some(a), Some(b)) = (ours, theirs)
                && b.median > 0.0
            {
                let x = a.median / b.median;
                let _ = writeln!(
                    md,
                    "| {label} | {x:.1}× ({:.0} vs {:.0}/s) | {} |",
                    a.median,
                    b.median,
                    if x >= want { "yes" } else { "no" }
                );
            } else {
                let _ = writeln!(md, "| {label} | not measured | – |");
            }
        };
    ratio_target(
        "cached authorize ≥ 10× oidc-provider, c=16",
        rate(r, Scenario::Cached, 16),
        rate(n, Scenario::Cached, 16),
        10.0,
        &mut md,
    );
    match r
        .and_then(|m| find(m, Scenario::Cached, 16))
        .and_then(|p| Metric::P99.of(p))
    {
        Some(p99) => {
            let _ = writeln!(
                md,
                "| cached p99 < 5 ms at c=16 | {:.2} ms | {} |",
                p99.median,
                if p99.median < 5.0 { "yes" } else { "no" }
            );
        }
        None => {
            let _ = writeln!(md, "| cached p99 < 5 ms at c=16 | not measured | – |");
        }
    }
    ratio_target(
        "uncached authorize ≥ 5× oidc-provider, c=16 (both fetch over https)",
        rate(r, Scenario::Uncached(Fetch::Https), 16),
        rate(n, Scenario::Uncached(Fetch::Https), 16),
        5.0,
        &mut md,
    );
    ratio_target(
        "uncached authorize ≥ 5× oidc-provider, c=16 (oidc-provider fetches over plain http)",
        rate(r, Scenario::Uncached(Fetch::Https), 16),
        rate(n, Scenario::Uncached(Fetch::Plain), 16),
        5.0,
        &mut md,
    );
    let burst_fetches = r.map(|m| m.bursts.iter().map(|b| b.fetches).collect::<Vec<_>>());
    if let Some(f) = burst_fetches {
        let _ = writeln!(
            md,
            "| one fetch for concurrent misses ({} authorizes, {} bursts) | fetches per burst: {f:?} | {} |",
            args.burst,
            f.len(),
            if f.iter().all(|&x| x == 1) {
                "yes"
            } else {
                "no"
            }
        );
    }
    if let Some(rows) = &criterion
        && let Some((_, median, _, _)) = rows.iter().find(|(name, ..)| name == "cache_hit/lookup")
    {
        let _ = writeln!(
            md,
            "| cache hit < 200 ns (criterion `cache_hit/lookup`) | {} | {} |",
            duration_text(*median),
            if *median < 200.0 { "yes" } else { "no" }
        );
    }
    if let Some(m) = r {
        let final_mib = mib(m.rss_final);
        let _ = writeln!(
            md,
            "| reference AS resident memory < 100 MB after all loads | {final_mib:.1} MiB ({:.1} MB) | {} |",
            final_mib * 1.048_576,
            if final_mib * 1.048_576 < 100.0 {
                "yes"
            } else {
                "no"
            }
        );
    }
    #[allow(clippy::cast_precision_loss, reason = "byte counts are far below 2^52")]
    if let Some(delta) = memory.and_then(|m| m.spread(|r| r.growth_bytes() as f64)) {
        let _ = writeln!(
            md,
            "| 100,000 cached clients within 100 MB | {:.1} MB of VmRSS growth | {} |",
            delta.median / 1e6,
            if delta.median < 100e6 { "yes" } else { "no" }
        );
    }
    let _ = writeln!(md);
    issue_baseline(&mut md, n);

    // Failures, if any, with the first message of each.
    let mut notes = Vec::new();
    for m in [r, n].into_iter().flatten() {
        for p in &m.phases {
            if let Some(first) = p
                .runs
                .iter()
                .find_map(|run| run.outcome.first_failure.clone())
            {
                notes.push(format!(
                    "{} {} c={}: {} failed; first: {first}",
                    m.kind.label(),
                    p.scenario.label(),
                    p.concurrency,
                    p.failed()
                ));
            }
        }
        for (i, b) in m.bursts.iter().enumerate() {
            if let Some(first) = &b.outcome.first_failure {
                notes.push(format!(
                    "{} burst {}: {} failed; first: {first}",
                    m.kind.label(),
                    i + 1,
                    b.outcome.failed
                ));
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "## Failed requests\n\n```text");
        for note in notes {
            let _ = writeln!(md, "{note}");
        }
        let _ = writeln!(md, "```\n");
    }

    // Driver load and other work: shows whether the generator, or another process, not the
    // server, set the pace.
    let _ = writeln!(md, "## CPU use besides the server\n");
    let _ = writeln!(
        md,
        "CPU time over wall time, median per phase, in % of one core: the driver process (load \
         generator plus document servers, on its own core), and every other process on the \
         machine (from /proc/stat; {} cores in all). A driver near 100 % means the generator, \
         not the server, may have set the pace. Before every run the driver waits (at most {} s) \
         for other processes to use less than {:.0} % of a core, and repeats a run during which \
         they used more than {:.0} % (at most {ATTEMPTS} attempts; the last is kept).\n",
        command_line("nproc", &["--all"]),
        QUIET_WAIT.as_secs(),
        QUIET * 100.0,
        DISTURBED * 100.0,
    );
    let _ = writeln!(
        md,
        "| server | scenario | concurrency | driver CPU % | other processes CPU % | runs repeated |\n\
         |---|---|---|---|---|---|"
    );
    for m in [r, n].into_iter().flatten() {
        for p in &m.phases {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                m.kind.label(),
                p.scenario.label(),
                p.concurrency,
                cell(p.spread(|r| r.driver_cpu * 100.0), 0),
                cell(p.spread(|r| r.other_cpu * 100.0), 0),
                p.repeated()
            );
        }
    }
    let _ = writeln!(md);

    // Commands.
    let _ = writeln!(md, "## Commands\n\n```sh");
    if let Some(command) = &args.command {
        let _ = writeln!(
            md,
            "# the whole benchmark (from the repository root)\n{command}"
        );
    }
    let invocation: Vec<String> = std::env::args().map(|a| shell_word(&a)).collect();
    let _ = writeln!(
        md,
        "# the driver, as the script ran it\n{}",
        invocation.join(" ")
    );
    for m in [r, n].into_iter().flatten() {
        let _ = writeln!(md, "# {}\n{}", m.kind.label(), m.command);
    }
    let _ = writeln!(md, "```");
    md
}

/// The oidc-provider figures the issue quotes for this machine, beside this run's.
fn issue_baseline(md: &mut String, node: Option<&Measured>) {
    let phase = |scenario, metric: Metric| {
        node.and_then(|m| find(m, scenario, 16))
            .and_then(|p| metric.of(p))
            .map_or_else(
                || "not measured".to_owned(),
                |s| s.display(metric.decimals()),
            )
    };
    #[allow(
        clippy::cast_precision_loss,
        reason = "fetch counts are far below 2^52"
    )]
    let burst_fetches = node
        .and_then(|m| {
            Spread::of(
                &m.bursts
                    .iter()
                    .map(|b| b.fetches as f64)
                    .collect::<Vec<_>>(),
            )
        })
        .map_or_else(|| "not measured".to_owned(), |s| s.display(0));
    let peak = node.map_or_else(
        || "not measured".to_owned(),
        |m| format!("{:.0} MiB peak VmRSS", mib(m.peak_rss)),
    );
    let _ = writeln!(
        md,
        "### oidc-provider: the issue's figures and this run's\n"
    );
    let _ = writeln!(
        md,
        "The issue quotes oidc-provider on this kind of machine, pinned to one core. Where this \
         run differs, the ratios above are against this run's figures, never the quoted ones.\n"
    );
    let _ = writeln!(md, "| figure | issue | this run |\n|---|---|---|");
    let rows = [
        (
            "cached authorize/s, c=16",
            "about 3,700",
            phase(Scenario::Cached, Metric::Rate),
        ),
        (
            "cached p50 ms, c=16",
            "3.7",
            phase(Scenario::Cached, Metric::P50),
        ),
        (
            "uncached authorize/s, c=16, fetch over plain http",
            "about 1,570",
            phase(Scenario::Uncached(Fetch::Plain), Metric::Rate),
        ),
        ("fetches for 200 concurrent misses", "1", burst_fetches),
        ("resident memory under these loads", "past 2.5 GB", peak),
    ];
    for (figure, quoted, measured) in rows {
        let _ = writeln!(md, "| {figure} | {quoted} | {measured} |");
    }
    let _ = writeln!(md);
}

/// `(name, median ns, lower ns, upper ns)` of every criterion bench under `dir`.
fn criterion_rows(dir: &Path) -> Vec<(String, f64, f64, f64)> {
    let mut rows = Vec::new();
    for group in [
        "cache_hit/resolve",
        "cache_hit/lookup",
        "cache_miss/fetch_and_validate_https",
        "cache_revalidation/not_modified_304",
        "coalescing/1000_concurrent_misses_one_client",
    ] {
        let file = dir.join(group).join("new").join("estimates.json");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let median = &value["median"];
        let get = |v: &serde_json::Value| v.as_f64();
        if let (Some(m), Some(lo), Some(hi)) = (
            get(&median["point_estimate"]),
            get(&median["confidence_interval"]["lower_bound"]),
            get(&median["confidence_interval"]["upper_bound"]),
        ) {
            rows.push((group.to_owned(), m, lo, hi));
        }
    }
    rows
}

/// Nanoseconds in the largest unit that keeps a number above 1.
fn duration_text(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
