//! `cimd-conformance`: serve the mock ecosystem, lint client metadata documents, run the checks.
//!
//! Exit codes: 0 success; 1 a conformance failure (or an invalid document for `lint`); 2 a usage
//! or harness error, so a harness bug never reads as a target failure.

use std::io::{Read, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cimd_harness::HarnessError;
use cimd_harness::baseline::Baseline;
use cimd_harness::catalogue::Catalogue;
use cimd_harness::ecosystem::{self, DEMO_NATIVE, DEMO_WEB, Ecosystem, Options};
use cimd_harness::report::coverage::Coverage;
use cimd_harness::report::{self, Grading, Report, RunInfo, Scrubber, console};
use cimd_harness::scenario::{self, Scenario};
use cimd_harness::suite;
use cimd_harness::target::Target;
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
    /// Run the scenarios against the embedded reference AS: one line per check, reports with --out.
    ///
    /// Exit 0 when every scored check passes or is baselined; 1 on a conformance failure (or
    /// SHOULD violation with --strict) or a stale baseline entry; 2 on a usage or harness error.
    Run(RunArgs),
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
    /// Print which catalogue rows the scenarios check, which are excluded and why; exit 1 if an
    /// absolute CIMD requirement (MUST, MUST NOT, …) is neither covered nor excluded.
    Coverage {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
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

/// The `run` command's flags.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Only scenarios whose ID matches this glob (`*` matches anything; repeatable).
    #[arg(long, value_name = "GLOB")]
    only: Vec<String>,
    /// Switch on a reference-AS fault (repeatable) to watch the checks for its requirement fail.
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<Fault>,
    /// Treat violated SHOULD / RECOMMENDED requirements as failures, not warnings.
    #[arg(long)]
    strict: bool,
    /// Write report.json, junit.xml, summary.md, report.html and evidence/ into this folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Known failures (`[[known]] scenario, requirement, reason`); listed failures do not fail
    /// the run, listed checks that pass now do.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Scenarios run at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Run against the authorization server this target file describes instead of the embedded
    /// reference AS (see fixtures/targets/example.toml).
    #[arg(long, value_name = "FILE", conflicts_with = "faults")]
    target: Option<PathBuf>,
    #[command(flatten)]
    paths: Paths,
}

/// Output format of `coverage`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Aligned plain text.
    Text,
    /// Markdown tables.
    Md,
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

    fn catalogue(&self) -> anyhow::Result<Catalogue> {
        Ok(Catalogue::load(&self.scenarios().join("requirements"))?)
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
        Command::Run(args) => block_on(run(args)),
        Command::Coverage { format, paths } => coverage(format, &paths),
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
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for s in paths.load()? {
        // A closed pipe (`list | head`) just ends the listing.
        if writeln!(out, "{:<44} {}", s.id, s.file.title).is_err() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(paths: &Paths) -> anyhow::Result<ExitCode> {
    let scenarios = paths.load()?;
    let catalogue = paths.catalogue()?;
    let mut problems = scenario::validate::validate(&scenarios, &paths.fixtures(), &|id| {
        catalogue.get(id).is_some()
    });
    for row in Coverage::build(&catalogue, &scenarios).cimd_gaps() {
        problems.push((
            row.id.to_string(),
            format!(
                "{} row has no scenario and no `excluded` reason",
                row.strength
            ),
        ));
    }
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

/// Prints a report to stdout. A reader that closes the pipe early (`| head`) has what it wanted,
/// so a write error is not worth a panic or a different exit code.
fn emit(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn coverage(format: Format, paths: &Paths) -> anyhow::Result<ExitCode> {
    let scenarios = paths.load()?;
    let catalogue = paths.catalogue()?;
    let table = Coverage::build(&catalogue, &scenarios);
    emit(&match format {
        Format::Text => table.text(),
        Format::Md => table.markdown(),
    });
    Ok(if table.cimd_gaps().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let all = args.paths.load()?;
    let catalogue = args.paths.catalogue()?;
    // A check naming an unknown requirement cannot be graded: a harness error, before any run.
    let unknown = report::unknown_requirements(&all, &catalogue);
    if !unknown.is_empty() {
        return Err(report::ReportError::UnknownRequirements(unknown).into());
    }
    let baseline = args.baseline.as_deref().map(Baseline::load).transpose()?;
    let selected: Vec<Scenario> = all
        .iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|g| glob_match(g, &s.id)))
        .cloned()
        .collect();
    if selected.is_empty() {
        anyhow::bail!("no scenario matches {:?}", args.only);
    }
    let faults = Faults::of(args.faults);
    let fixtures = args.paths.fixtures();
    let started = std::time::Instant::now();
    let bar = console::progress_bar(selected.len());
    let on_done = |outcome: &suite::ScenarioOutcome| {
        bar.set_message(outcome.id.clone());
        bar.inc(1);
    };
    let (outcomes, target_name, issuer) = if let Some(file) = &args.target {
        let target = Target::load(file)?;
        eprintln!(
            "target {}: the AS must trust {} and send mail to 127.0.0.1:{}",
            target.issuer,
            target.harness.state_dir.join("ca.pem").display(),
            target.harness.smtp_port
        );
        match suite::run_target(&target, &selected, &fixtures, args.concurrency, &on_done).await {
            Ok(outcomes) => (outcomes, target.issuer.clone(), target.issuer.clone()),
            Err(HarnessError::Target(message)) => {
                bar.finish_and_clear();
                eprintln!("target failure: {message}");
                return Ok(ExitCode::from(1));
            }
            Err(error) => return Err(error.into()),
        }
    } else {
        let eco = Ecosystem::start(Options {
            faults: faults.clone(),
            extra_users: selected.len().min(args.concurrency.max(1)),
            ..Options::default()
        })
        .await?;
        let outcomes = suite::run_all(&eco, &selected, &fixtures, args.concurrency, &on_done).await;
        (outcomes, "reference-as".to_owned(), eco.issuer())
    };
    bar.finish_and_clear();
    let run = RunInfo {
        tool: format!("cimd-conformance {}", env!("CARGO_PKG_VERSION")),
        target: target_name,
        only: args.only,
        faults: faults.iter().map(|f| f.name().to_owned()).collect(),
        strict: args.strict,
        baseline: args.baseline.as_ref().map(|p| p.display().to_string()),
    };
    let scrubber = Scrubber::new().with_literal(&issuer, "{issuer}");
    let grading = Grading {
        catalogue: &catalogue,
        strict: args.strict,
        baseline: baseline.as_ref(),
        all_scenarios: &all,
        scrubber: &scrubber,
    };
    let graded = Report::build(&outcomes, run, &grading)?;
    emit(&console::render(
        &graded,
        &catalogue,
        Some(started.elapsed()),
    ));
    if let Some(dir) = &args.out {
        report::write_all(dir, &graded, &outcomes, &catalogue)?;
        eprintln!("reports written to {}", dir.display());
    }
    Ok(ExitCode::from(graded.summary.exit_code))
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
