//! `reference-as`: runs the reference authorization server until Ctrl-C.
//!
//! Configuration comes from an optional TOML file with flags layered on top. On start the server
//! prints one JSON line on stdout naming its issuer and endpoints (for scripts), and logs to
//! stderr. A bad configuration exits with status 2 and a message saying what is wrong.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use reference_as::config::TlsFiles;
use reference_as::net::ResolveRule;
use reference_as::{AsError, Config, Fault};

/// The reference OAuth authorization server with CIMD (Client ID Metadata Document) clients.
///
/// Flags override the configuration file; `--print-config` shows the result. Logs go to stderr
/// (filter with RUST_LOG); stdout gets one JSON line with the issuer and endpoints once the server
/// listens.
#[derive(Debug, Parser)]
#[command(name = "reference-as", version)]
struct Args {
    /// TOML configuration file (unknown keys are errors; see reference-as.example.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Socket address to listen on [config default: 127.0.0.1:0, a free port].
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<SocketAddr>,
    /// Issuer identifier [default: {scheme}://{public-host}:{port}].
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Host name for the derived issuer [config default: 127.0.0.1].
    #[arg(long, value_name = "HOST")]
    public_host: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also trust the CA certificates in this PEM file when fetching metadata documents.
    #[arg(long, value_name = "FILE")]
    trusted_ca: Option<PathBuf>,
    /// Resolve NAME to IP when fetching metadata documents, like curl --resolve; `*.suffix=IP`
    /// covers every subdomain. Mapped names may point at loopback. Repeatable.
    #[arg(long = "resolve", value_name = "NAME=IP", value_parser = parse_resolve)]
    resolve: Vec<(String, IpAddr)>,
    /// SMTP relay for sign-in codes [config default: 127.0.0.1:2525].
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_smtp)]
    smtp: Option<(String, u16)>,
    /// Database URL, e.g. sqlite://as.db [config default: sqlite::memory:].
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Switch on a deliberate fault (for negative conformance runs). Repeatable.
    #[arg(long = "fault", value_name = "NAME", value_parser = fault_parser())]
    faults: Vec<Fault>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

/// `NAME=IP`, checked with the resolver's own rule syntax.
fn parse_resolve(raw: &str) -> Result<(String, IpAddr), String> {
    let rule = raw.parse::<ResolveRule>().map_err(|e| e.to_string())?;
    Ok((rule.pattern, rule.addr))
}

/// `HOST:PORT`.
fn parse_smtp(raw: &str) -> Result<(String, u16), String> {
    let (host, port) = raw.rsplit_once(':').ok_or("expected HOST:PORT")?;
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    Ok((host.to_owned(), port))
}

/// Fault names with their descriptions, so `--help` lists them.
fn fault_parser() -> impl TypedValueParser<Value = Fault> {
    PossibleValuesParser::new(
        Fault::ALL
            .iter()
            .map(|f| PossibleValue::new(f.name()).help(f.description())),
    )
    .try_map(|name| name.parse::<Fault>())
}

impl Args {
    /// The file's configuration (or the defaults) with the flags applied.
    fn config(&self) -> Result<Config, AsError> {
        let mut config = match &self.config {
            Some(path) => Config::from_toml_file(path)?,
            None => Config::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(issuer) = &self.issuer {
            config.issuer = Some(issuer.clone());
        }
        if let Some(host) = &self.public_host {
            config.public_host.clone_from(host);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.tls = Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        if let Some(ca) = &self.trusted_ca {
            config.network.trusted_ca = Some(ca.clone());
        }
        config.network.resolve.extend(self.resolve.iter().cloned());
        if let Some((host, port)) = &self.smtp {
            config.smtp.host.clone_from(host);
            config.smtp.port = *port;
        }
        if let Some(database) = &self.database {
            config.storage.database.clone_from(database);
        }
        if !self.faults.is_empty() {
            config.faults =
                reference_as::Faults::of(config.faults.iter().chain(self.faults.iter().copied()));
        }
        config.validate()?;
        Ok(config)
    }
}

/// Whether an error is the operator's configuration (exit 2) rather than a runtime failure.
fn is_config_error(error: &AsError) -> bool {
    matches!(
        error,
        AsError::Config(_) | AsError::ConfigRead { .. } | AsError::Tls(_) | AsError::Resolver(_)
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args.config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("reference-as: {error}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        return match config.to_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("reference-as: {error}");
                ExitCode::from(2)
            }
        };
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("reference-as: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

/// The start-up line on stdout, in this member order.
#[derive(serde::Serialize)]
struct Started<'a> {
    issuer: &'a str,
    metadata: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    listen: SocketAddr,
}

async fn run(config: Config) -> ExitCode {
    let running = match reference_as::spawn(config, None).await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("reference-as: {error}");
            return if is_config_error(&error) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            };
        }
    };
    let started = Started {
        issuer: running.issuer(),
        metadata: running.metadata_url(),
        authorization_endpoint: running.url("/authorize"),
        token_endpoint: running.url("/token"),
        jwks_uri: running.url("/jwks"),
        listen: running.addr(),
    };
    let line = serde_json::to_string(&started).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // Whoever started us stopped listening; keep serving, the logs still go to stderr.
        tracing::warn!("could not write the start-up line to stdout");
    }
    drop(stdout);
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "cannot wait for Ctrl-C; stopping");
        return ExitCode::FAILURE;
    }
    tracing::info!("Ctrl-C received; stopping");
    drop(running);
    ExitCode::SUCCESS
}
