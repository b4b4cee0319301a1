//! cimd-harness: the conformance harness for OAuth ephemeral clients, and its CLI `cimd-conformance`.
//!
//! It starts the mock ecosystem (HTTPS metadata hosts, a mail server, the reference authorization
//! server), drives authorization flows over the real wire as a user agent would, and judges what
//! crossed the wire against requirement IDs from the catalogue. It reaches every party only through
//! its network interface and its `spawn` function; it never calls the reference AS's validation
//! code to judge (the `lint` command is the one, documented, exception).
//!
//! Layout:
//! - [`catalogue`]: the requirement catalogue (`scenarios/requirements/*.toml`): loading,
//!   validation, and the keyword-to-severity rule.
//! - [`ecosystem`]: starts the test CA, metadata host, mail server and reference AS together, wired
//!   to each other (resolve map, trusted CA, SMTP), with demo clients mounted.
//! - [`agent`]: the scripted user agent: follows redirects, logs in with a mailed code or a password,
//!   answers consent, exchanges codes for tokens.
//! - [`forms`]: reads the forms of a login or consent page.
//! - [`pkce`]: PKCE values, computed independently of the reference AS.
//! - [`lint`]: the `lint` command's document and URL checks.
//! - [`scenario`]: scenario files (format, loading, placeholders, validation), the step runner and
//!   the judge.
//! - [`suite`]: runs many scenarios concurrently against the ecosystem's reference AS, or against a
//!   third-party target.
//! - [`target`]: third-party targets: the target file (issuer, the parties' fixed ports, users,
//!   declared policy), discovery of the AS's metadata, and which scenarios apply to it.
//! - [`report`]: grades checks by the catalogue's keywords and writes the console report,
//!   `report.json`, `junit.xml`, `summary.md`, `report.html`, evidence logs and the coverage table.
//! - [`baseline`]: known failures with reasons, and the stale-entry rule.
//! - [`metrics`]: scrapes a target's Prometheus `/metrics` around each scenario for the evidence
//!   log (recorded, never judged).

pub mod agent;
pub mod baseline;
pub mod catalogue;
pub mod ecosystem;
pub mod forms;
pub mod lint;
pub mod metrics;
pub mod pkce;
pub mod report;
pub mod scenario;
pub mod suite;
pub mod target;

/// Why the harness could not finish. A `Target` error is the AS's fault; the others are the
/// harness's (exit code 2), so a harness bug never reads as a conformance failure.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The target behaved in a way the harness cannot continue from (reported as a failure).
    #[error("target: {0}")]
    Target(String),
    /// An HTTP exchange failed below the protocol level.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// A URL could not be built or parsed.
    #[error("URL: {0}")]
    Url(#[from] url::ParseError),
    /// A file could not be read or written.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A mock party failed to start.
    #[error("mock party: {0}")]
    Party(String),
    /// A scenario file asks for something impossible (an unknown placeholder, a bad route).
    #[error("scenario: {0}")]
    Scenario(String),
}
