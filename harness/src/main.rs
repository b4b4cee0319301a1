//! `cimd-conformance`: serve the mock ecosystem, lint client metadata documents, run the checks.
//!
//! Exit codes: 0 success; 1 a conformance failure (or an invalid document for `lint`); 2 a usage
//! or harness error, so a harness bug never reads as a target failure.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cimd_harness::ecosystem::{self, DEMO_NATIVE, DEMO_WEB, Ecosystem, Options};
use cimd_harness::scenario::judge::Verdict;
use cimd_harness::scenario::{self, Scenario};
use cimd_harness::suite::{self, Status};
use cimd_harness::{lint, pkce::Pkce};
use clap::{Parser, Subcommand};
use reference_as::faults::{Fault, Faults};

/// Conformance harness and mock ecosystem for OAuth ephemeral clients (CIMD) and DCR.
#[derive(Debug, Parser)]
#[command(name = "cimd-conformance", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scenarios against the embedded reference AS and print one line per check.
    Run {
        /// Only scenarios whose ID matches this glob (`*` matches anything; repeatable).
        #[arg(long, value_name = "GLOB")]
        only: Vec<String>,
        /// Switch on a reference-AS fault (repeatable) to watch the checks for its requirement fail.
        #[arg(long = "fault", value_name = "NAME")]
        faults: Vec<Fault>,
        /// Scenarios run at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[command(flatten)]
        paths: Paths,
    },
    /// List the scenarios with their titles.
    List {
        #[command(flatten)]
        paths: Paths,
    },
    /// Check every scenario file without running it (placeholders, routes, fixtures, steps,
    /// expectations, negatives, titles); exit 1 on any problem.
    Validate {
        #[command(flatten)]
        paths: Paths,
    },
    /// Start the reference AS, an HTTPS metadata host and the mail server with a demo
    /// configuration, print how to walk a code flow with curl or a browser, and wait for Ctrl-C.
    Serve {
        /// Folder for the CA certificate (kept after exit); default: a temporary folder.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Switch on a reference-AS fault (repeatable).
        #[arg(long = "fault", value_name = "NAME")]
        faults: Vec<Fault>,
    },
    /// Check a client metadata document the way a CIMD-aware AS would, before you publish it.
    ///
    /// Prints {"valid": bool, "errors": [...], "warnings": [...]}; exit 0 valid, 1 invalid, 2 usage error.
    Lint {
        /// The URL the document will be published at (its client_id).
        #[arg(long, value_name = "URL")]
        client_id: String,
        /// The document file, or `-` for standard input.
        #[arg(value_name = "FILE|-")]
        file: PathBuf,
    },
}

/// Where the data lives.
#[derive(Debug, clap::Args)]
struct Paths {
    /// The scenarios folder (default: ./scenarios, else the one in the source tree).
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
    /// The fixtures folder (default: ./fixtures, else the one in the source tree).
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
}

impl Paths {
    fn resolve(chosen: Option<&PathBuf>, name: &str) -> PathBuf {
        if let Some(path) = chosen {
            return path.clone();
        }
        let here = PathBuf::from(name);
        if here.is_dir() {
            return here;
        }
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(name)
    }

    fn scenarios(&self) -> PathBuf {
        Self::resolve(self.scenarios.as_ref(), "scenarios")
    }

    fn fixtures(&self) -> PathBuf {
        Self::resolve(self.fixtures.as_ref(), "fixtures")
    }

    fn load(&self) -> anyhow::Result<Vec<Scenario>> {
        let dir = self.scenarios();
        scenario::load_all(&dir).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("cannot load scenarios:\n{}", lines.join("\n"))
        })
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // --help and --version are successes; every other parse error is a usage error.
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let outcome = match cli.command {
        Command::Lint { client_id, file } => run_lint(&client_id, &file),
        Command::Run {
            only,
            faults,
            concurrency,
            paths,
        } => block_on(run(&paths, &only, Faults::of(faults), concurrency)),
        Command::List { paths } => list(&paths),
        Command::Validate { paths } => validate(&paths),
        Command::Serve { state_dir, faults } => block_on(serve(state_dir, Faults::of(faults))),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("cimd-conformance: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn block_on<F: Future<Output = anyhow::Result<ExitCode>>>(future: F) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(future)
}

fn run_lint(client_id: &str, file: &PathBuf) -> anyhow::Result<ExitCode> {
    let mut document = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut document)
            .context("reading standard input")?;
    } else {
        document = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    }
    let report = lint::lint(client_id, &document);
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob_match(tail, &rest[i..]))
        }
    }
}

fn list(paths: &Paths) -> anyhow::Result<ExitCode> {
    for s in paths.load()? {
        println!("{:<44} {}", s.id, s.file.title);
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(paths: &Paths) -> anyhow::Result<ExitCode> {
    let scenarios = paths.load()?;
    let problems = scenario::validate::validate(&scenarios, &paths.fixtures(), &|_| true);
    for (id, problem) in &problems {
        println!("{id}: {problem}");
    }
    println!("{} scenarios, {} problems", scenarios.len(), problems.len());
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn run(
    paths: &Paths,
    only: &[String],
    faults: Faults,
    concurrency: usize,
) -> anyhow::Result<ExitCode> {
    let scenarios: Vec<Scenario> = paths
        .load()?
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|g| glob_match(g, &s.id)))
        .collect();
    if scenarios.is_empty() {
        anyhow::bail!("no scenario matches {only:?}");
    }
    let eco = Ecosystem::start(Options {
        faults: faults.clone(),
        extra_users: scenarios.len(),
        ..Options::default()
    })
    .await?;
    let started = std::time::Instant::now();
    let outcomes = suite::run_all(&eco, &scenarios, &paths.fixtures(), concurrency, &|_| {}).await;
    let (mut passed, mut failed, mut errors) = (0, 0, 0);
    for outcome in &outcomes {
        println!("{}  {}", outcome.id, outcome.title);
        match &outcome.status {
            Status::Ran => {}
            Status::NotApplicable(reason) => println!("  not applicable: {reason}"),
            Status::Error(message) => {
                errors += 1;
                println!("  HARNESS ERROR: {message}");
            }
        }
        for check in &outcome.checks {
            let mark = match check.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "FAIL",
                Verdict::Untestable => "UNTESTABLE",
            };
            println!("  {mark:<10} {:<14} {}", check.requirement, check.expected);
            if check.verdict == Verdict::Pass {
                passed += 1;
            } else {
                failed += 1;
                println!("             actual: {}", check.actual);
            }
        }
    }
    let on: Vec<String> = faults.iter().map(|f| f.name().to_owned()).collect();
    if !on.is_empty() {
        println!("faults switched on: {}", on.join(", "));
    }
    println!(
        "{passed} passed, {failed} failed ({} scenarios, {} checks in {} ms)",
        outcomes.len(),
        passed + failed,
        started.elapsed().as_millis()
    );
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn serve(state_dir: Option<PathBuf>, faults: Faults) -> anyhow::Result<ExitCode> {
    let eco = Ecosystem::start(Options {
        faults,
        state_dir,
        ..Options::default()
    })
    .await?;
    let issuer = eco.issuer();
    let native = eco.client_id(DEMO_NATIVE);
    let web = eco.client_id(DEMO_WEB);
    let pkce = Pkce::generate();
    let redirect_uri = "http://127.0.0.1:8976/callback";
    let mut authorize = url::Url::parse(&format!("{issuer}/authorize"))?;
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &native)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", "demo-state")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let ca = eco.ca_file.display();
    let hosts_port = eco.hosts.port();
    let summary = serde_json::json!({
        "issuer": issuer,
        "metadata": format!("{issuer}/.well-known/oauth-authorization-server"),
        "ca_file": eco.ca_file,
        "inbox": eco.inbox_url(),
        "smtp": eco.mail.smtp_addr().to_string(),
        "documents": [native, web],
        "user": { "email": ecosystem::DEMO_EMAIL, "username": ecosystem::DEMO_USERNAME, "password": ecosystem::DEMO_PASSWORD },
    });
    println!("{summary}");
    println!(
        r"
The reference AS, an HTTPS metadata host and a mail server are running. Press Ctrl-C to stop.

  Issuer           {issuer}
  CA certificate   {ca}
  Inbox (browser)  {inbox}
  Demo documents   {native}
                   {web}
  Demo user        {email} (mailed code) or {user} / {password}

Walk a code flow in a browser (trust {ca} or accept the warning):
  1. Open {authorize}
  2. Sign in with {email}; read the code at {inbox}, enter it, and allow access.
  3. The browser lands on {redirect_uri}?code=...&state=demo-state&iss=... (nothing listens there:
     copy the code from the address bar).
  4. Exchange it:
     curl --cacert {ca} {issuer}/token -d grant_type=authorization_code \
       -d client_id={native} -d redirect_uri={redirect_uri} \
       -d code_verifier={verifier} -d code=CODE

Look at a document as the AS fetches it:
  curl --cacert {ca} --resolve {host}:{hosts_port}:127.0.0.1 {native}
",
        inbox = eco.inbox_url(),
        email = ecosystem::DEMO_EMAIL,
        user = ecosystem::DEMO_USERNAME,
        password = ecosystem::DEMO_PASSWORD,
        verifier = pkce.verifier,
        host = DEMO_NATIVE.0,
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(ExitCode::SUCCESS)
}
