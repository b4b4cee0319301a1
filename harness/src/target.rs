//! Third-party targets: the target file that describes an authorization server under test, and
//! how the harness reaches it.
//!
//! An operator configures their AS once (trust the harness CA kept in the state folder, send mail
//! to the harness's SMTP port, resolve `*.example` to the harness), then describes it in a strict
//! TOML file: the issuer (endpoints come from its RFC 8414 metadata), the fixed ports the harness's
//! parties listen on, how the scripted users sign in (secrets come from the environment), and the
//! ephemeral-client policy the AS is configured with. [`Target::load`] turns the file into a
//! validated [`Target`], reporting every problem at once; [`discover`] reads the AS metadata;
//! [`Target::applicability`] decides which scenarios can run, because a scenario that sets the
//! reference AS's policy only says something about a target configured the same way.
//!
//! ```toml
//! issuer = "https://localhost:9443"
//! ca_file = "as-ca.pem"            # optional: a CA for the AS's own TLS (default: harness CA)
//! [harness]
//! state_dir = ".cimd-conformance"  # relative paths are relative to the target file
//! metadata_port = 8443
//! smtp_port = 2525
//! inbox_port = 8025
//! [login]
//! method = "email-otp"             # or "password"
//! [[login.users]]
//! email = "user-1@users.example"
//! username = "user-1"
//! password_env = "TARGET_USER1_PASSWORD"
//! [policy]                         # optional: same keys as the reference AS's [ephemeral_clients]
//! enabled = true
//! [dcr]                            # optional: dynamic client registration (RFC 7591/7592)
//! client_id = "dcr-admin"          # obtains initial access tokens (client_credentials)
//! client_secret_env = "ACME_DCR_SECRET"
//! auth_method = "client_secret_basic"   # or "client_secret_post"
//! scope = "dcr"                    # the scope that yields an initial access token
//! template = "mcp-agent"           # software_id of a template client (templatized DCR)
//! management = true                # RFC 7592 (registration_client_uri); false: not applicable
//! [dcr.registration]               # optional: same keys as the reference AS's [registration]
//! access = "initial-access-token"
//! [client_auth]                    # optional: same keys as the reference AS's [client_auth]
//! bind_grants_to_key = true
//! [tokens]                         # optional: same keys as the reference AS's [tokens]
//! device_code_ttl_secs = 2
//! [par]                            # optional: same keys as the reference AS's [par]
//! required = true                  # require_pushed_authorization_requests (RFC 9126 §5)
//! ```
//!
//! Registration scenarios are not applicable when the AS's metadata has no
//! `registration_endpoint`, when they obtain initial access tokens and `[dcr]` names no
//! `client_id`, when they register from a template and `[dcr]` names none, when they manage a
//! registration and `management = false`, and when they set `[reference_as.registration]` keys
//! that `[dcr.registration]` does not declare with the same values. Likewise a scenario that sets
//! `[reference_as.client_auth]`, `[reference_as.tokens]` or `[reference_as.par]` keys runs only
//! where the target file's `[client_auth]`, `[tokens]` or `[par]` declares each of them with the
//! same value.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use mock_kit::TestCa;
use reference_as::cimd::policy::EphemeralPolicy;
use serde::Deserialize;
use url::Url;

use crate::HarnessError;
use crate::agent::{Trust, UserAgent};
use crate::ecosystem::{Parties, PartiesOptions};
use crate::scenario::file::{LoginChoice, Step};
use crate::scenario::registration::{DcrSetup, IatClient, Secret, SecretMethod};
use crate::scenario::run::{AsUnderTest, TestUser};
use crate::scenario::template::Bindings;
use crate::scenario::{self, Scenario};

/// The state folder when the file names none.
pub const DEFAULT_STATE_DIR: &str = ".cimd-conformance";
/// The metadata host's port when the file names none.
pub const DEFAULT_METADATA_PORT: u16 = 8443;
/// The SMTP port when the file names none.
pub const DEFAULT_SMTP_PORT: u16 = 2525;
/// The inbox API's port when the file names none.
pub const DEFAULT_INBOX_PORT: u16 = 8025;

/// The target file as written (parse, then validate into [`Target`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    issuer: String,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    harness: HarnessSection,
    login: LoginSection,
    policy: Option<EphemeralPolicy>,
    dcr: Option<DcrSection>,
    client_auth: Option<toml::Table>,
    tokens: Option<toml::Table>,
    par: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DcrSection {
    client_id: Option<String>,
    client_secret_env: Option<String>,
    #[serde(default)]
    auth_method: SecretMethod,
    #[serde(default = "dcr_scope")]
    scope: String,
    template: Option<String>,
    #[serde(default = "management_default")]
    management: bool,
    registration: Option<toml::Table>,
}

fn dcr_scope() -> String {
    "dcr".to_owned()
}

fn management_default() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HarnessSection {
    state_dir: PathBuf,
    listen: IpAddr,
    metadata_port: u16,
    smtp_port: u16,
    inbox_port: u16,
}

impl Default for HarnessSection {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            metadata_port: DEFAULT_METADATA_PORT,
            smtp_port: DEFAULT_SMTP_PORT,
            inbox_port: DEFAULT_INBOX_PORT,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginSection {
    method: LoginMethod,
    users: Vec<UserEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    email: String,
    username: Option<String>,
    password_env: Option<String>,
}

/// How the target's users sign in. Every authorization step signs in this way, whatever its
/// scenario chose: sign-in is the path to the checks, not what they judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginMethod {
    /// A one-time code mailed to the harness's SMTP port, read from its inbox.
    EmailOtp,
    /// Username and password.
    Password,
}

impl LoginMethod {
    fn choice(self) -> LoginChoice {
        match self {
            LoginMethod::EmailOtp => LoginChoice::Email,
            LoginMethod::Password => LoginChoice::Password,
        }
    }
}

/// Where the harness's parties listen, so the target can be configured once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessSettings {
    /// The persisted test CA (`ca.pem`, `ca-key.pem`), absolute.
    pub state_dir: PathBuf,
    /// The interface the parties bind (default loopback).
    pub listen: IpAddr,
    /// The metadata host's port: client IDs are `https://<name>.<scenario>.example:PORT/…`.
    pub metadata_port: u16,
    /// Where the target sends login mail.
    pub smtp_port: u16,
    /// The inbox API's port (0: any free port; only the harness reads it).
    pub inbox_port: u16,
}

/// A validated target file.
#[derive(Clone)]
pub struct Target {
    /// The file it came from.
    pub path: PathBuf,
    /// The AS's issuer identifier, exactly as written.
    pub issuer: String,
    /// The extra CA for the AS's own TLS, if the file names one (absolute path).
    pub ca_file: Option<PathBuf>,
    /// That CA's PEM text, read at load time.
    pub ca_pem: Option<String>,
    /// Where the parties listen.
    pub harness: HarnessSettings,
    /// How users sign in.
    pub login: LoginMethod,
    /// The users, one per concurrently running scenario (passwords from the environment).
    pub users: Vec<TestUser>,
    /// The ephemeral-client policy the target declares it is configured with.
    pub policy: Option<EphemeralPolicy>,
    /// DCR credentials, template and management support (`[dcr]`; secret from the environment).
    pub dcr: DcrSetup,
    /// The registration settings the target declares (`[dcr.registration]`), as JSON members.
    pub registration: Option<serde_json::Map<String, serde_json::Value>>,
    /// The client authentication settings the target declares (`[client_auth]`, keys of the
    /// reference AS's table of that name), as JSON members.
    pub client_auth: Option<serde_json::Map<String, serde_json::Value>>,
    /// The token lifetimes the target declares (`[tokens]`, keys of the reference AS's table of
    /// that name), as JSON members.
    pub tokens: Option<serde_json::Map<String, serde_json::Value>>,
    /// The pushed-authorization settings the target declares (`[par]`, keys of the reference
    /// AS's table of that name), as JSON members.
    pub par: Option<serde_json::Map<String, serde_json::Value>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Users carry passwords: only their addresses are shown.
        let users: Vec<&str> = self.users.iter().map(|u| u.email.as_str()).collect();
        f.debug_struct("Target")
            .field("path", &self.path)
            .field("issuer", &self.issuer)
            .field("ca_file", &self.ca_file)
            .field("harness", &self.harness)
            .field("login", &self.login)
            .field("users", &users)
            .field("policy", &self.policy)
            .field("dcr", &self.dcr)
            .field("registration", &self.registration)
            .field("client_auth", &self.client_auth)
            .field("tokens", &self.tokens)
            .field("par", &self.par)
            .finish_non_exhaustive()
    }
}

/// A target file that cannot be used. Always a usage error (exit 2), never the target's fault.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The file could not be read.
    #[error("cannot read the target file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("target file {}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file parses but its values cannot work; every problem is listed.
    #[error("target file {}:\n  - {}", path.display(), problems.join("\n  - "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// One line per problem.
        problems: Vec<String>,
    },
}

impl Target {
    /// Reads and validates the target file at `path`; passwords come from the process
    /// environment.
    pub fn load(path: &Path) -> Result<Self, TargetError> {
        Self::load_with_env(path, &|name| {
            std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
        })
    }

    /// [`Target::load`] with `env` standing in for the environment (tests cannot set variables
    /// in-process without `unsafe`).
    pub fn load_with_env(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, TargetError> {
        let text = std::fs::read_to_string(path).map_err(|source| TargetError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path, env)
    }

    /// Parses and validates `text` as if read from `path` (relative paths in it are relative to
    /// `path`'s folder).
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, TargetError> {
        let file: TargetFile = toml::from_str(text).map_err(|e| TargetError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_owned);
        let base = std::path::absolute(&base).unwrap_or(base);
        let mut problems = Vec::new();

        check_issuer(&file.issuer, &mut problems);
        let ca_file = file.ca_file.map(|p| base.join(p));
        let ca_pem = ca_file.as_deref().and_then(|p| read_ca(p, &mut problems));

        let h = file.harness;
        for (key, port) in [
            ("metadata_port", h.metadata_port),
            ("smtp_port", h.smtp_port),
        ] {
            if port == 0 {
                problems.push(format!(
                    "[harness] {key} is 0: the target is configured with this port, so it must be fixed"
                ));
            }
        }
        let ports = [h.metadata_port, h.smtp_port, h.inbox_port];
        let fixed: Vec<u16> = ports.into_iter().filter(|p| *p != 0).collect();
        if fixed.iter().collect::<BTreeSet<_>>().len() != fixed.len() {
            problems.push(format!(
                "[harness] metadata_port, smtp_port and inbox_port must differ (found {ports:?})"
            ));
        }
        let harness = HarnessSettings {
            state_dir: base.join(h.state_dir),
            listen: h.listen,
            metadata_port: h.metadata_port,
            smtp_port: h.smtp_port,
            inbox_port: h.inbox_port,
        };

        let users = check_users(&file.login, env, &mut problems);
        let (dcr, registration) = match &file.dcr {
            None => (DcrSetup::default(), None),
            Some(section) => check_dcr(section, env, &mut problems),
        };
        let client_auth = declared_section("client_auth", file.client_auth.as_ref(), &mut problems);
        let tokens = declared_section("tokens", file.tokens.as_ref(), &mut problems);
        let par = declared_section("par", file.par.as_ref(), &mut problems);
        if problems.is_empty() {
            Ok(Self {
                path: path.to_owned(),
                issuer: file.issuer,
                ca_file,
                ca_pem,
                harness,
                login: file.login.method,
                users,
                policy: file.policy,
                dcr,
                registration,
                client_auth,
                tokens,
                par,
            })
        } else {
            Err(TargetError::Invalid {
                path: path.to_owned(),
                problems,
            })
        }
    }

    /// The parties' options: the state folder and the fixed ports from the file.
    pub fn parties_options(&self) -> PartiesOptions {
        PartiesOptions {
            state_dir: Some(self.harness.state_dir.clone()),
            listen: self.harness.listen,
            metadata_port: self.harness.metadata_port,
            smtp_port: self.harness.smtp_port,
            inbox_port: self.harness.inbox_port,
        }
    }

    /// What a user agent needs to reach the target and the parties: the harness CA (for the
    /// metadata hosts, and for an AS using a certificate the harness issued), the file's
    /// `ca_file` if any, and the platform roots (for an AS with a public certificate).
    pub fn trust(&self, parties: &Parties) -> Trust {
        let mut trust = parties.trust();
        trust.ca_pem.extend(self.ca_pem.iter().cloned());
        trust
    }

    /// Whether `scenario` can run against this target: `Ok(None)` when it can, `Ok(Some(reason))`
    /// when it is not applicable. A scenario that sets the reference AS's policy runs only when
    /// the target declares the same policy (compared after the scenario's placeholders are
    /// filled for its namespace and `hosts_port`). An error means the scenario's policy table is
    /// broken.
    pub fn applicability(
        &self,
        scenario: &Scenario,
        hosts_port: u16,
    ) -> Result<Option<String>, HarnessError> {
        let Some(settings) = &scenario.file.reference_as else {
            return Ok(None);
        };
        let bindings = policy_bindings(scenario, hosts_port);
        for (section, table) in settings.config_tables() {
            let wanted = scenario::section_settings(section, table, &bindings)
                .map_err(HarnessError::Scenario)?;
            let (declared, label) = match section {
                "registration" => (self.registration.as_ref(), "[dcr.registration]"),
                "client_auth" => (self.client_auth.as_ref(), "[client_auth]"),
                "par" => (self.par.as_ref(), "[par]"),
                _ => (self.tokens.as_ref(), "[tokens]"),
            };
            if let Some(reason) = settings_difference(section, label, declared, &wanted) {
                return Ok(Some(reason));
            }
        }
        let Some(table) = &settings.ephemeral_clients else {
            return Ok(None);
        };
        let wanted = scenario::policy(table, &bindings).map_err(HarnessError::Scenario)?;
        Ok(match &self.policy {
            None => Some(
                "the scenario sets the ephemeral-client policy and the target declares no policy"
                    .to_owned(),
            ),
            Some(declared) if *declared == wanted => None,
            Some(declared) => Some(format!(
                "policy differs: {}",
                policy_difference(declared, &wanted)
            )),
        })
    }

    /// `scenario` as it runs against this target: every authorization step signs in with the
    /// target's login method.
    pub fn adapt(&self, scenario: &Scenario) -> Scenario {
        let mut adapted = scenario.clone();
        for step in &mut adapted.file.steps {
            if let Step::Authorize(authorize) = step {
                authorize.login = self.login.choice();
            }
        }
        adapted
    }

    /// The host name in the issuer (what a certificate for the AS must name).
    pub fn issuer_host(&self) -> Option<String> {
        Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    }
}

/// Why a target declaring `declared` (in its file's `label` table) cannot run a scenario that
/// sets `wanted` keys of the AS config's `section`: each key the scenario sets must be declared
/// with the same value.
fn settings_difference(
    section: &str,
    label: &str,
    declared: Option<&serde_json::Map<String, serde_json::Value>>,
    wanted: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    let mut out = Vec::new();
    for (key, value) in wanted {
        match declared.and_then(|d| d.get(key)) {
            Some(have) if have == value => {}
            Some(have) => out.push(format!("{key}: target {have}, scenario {value}")),
            None => out.push(format!("{key}: not declared in {label}, scenario {value}")),
        }
    }
    (!out.is_empty()).then(|| format!("{section} settings differ: {}", out.join("; ")))
}

/// A declared `[client_auth]`, `[tokens]` or `[par]` table as JSON members, checked against the
/// reference AS's config type of the same name (the keys must mean what they mean there).
fn declared_section(
    section: &str,
    table: Option<&toml::Table>,
    problems: &mut Vec<String>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let table = table?;
    let Ok(serde_json::Value::Object(members)) = serde_json::to_value(table) else {
        problems.push(format!("[{section}] is not a table of plain values"));
        return None;
    };
    let value = serde_json::Value::Object(members.clone());
    let checked = match section {
        "client_auth" => reference_as::config::ClientAuthConfig::deserialize(value).map(drop),
        "par" => reference_as::config::ParConfig::deserialize(value).map(drop),
        _ => reference_as::config::TokenConfig::deserialize(value).map(drop),
    };
    match checked {
        Ok(()) => Some(members),
        Err(e) => {
            problems.push(format!("[{section}]: {e}"));
            None
        }
    }
}

/// Checks `[dcr]`: the credentials come as a pair, the secret from the environment.
fn check_dcr(
    section: &DcrSection,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> (DcrSetup, Option<serde_json::Map<String, serde_json::Value>>) {
    let initial_access = match (&section.client_id, &section.client_secret_env) {
        (None, None) => None,
        (Some(_), None) => {
            problems.push("[dcr] client_id needs client_secret_env".to_owned());
            None
        }
        (None, Some(_)) => {
            problems.push("[dcr] client_secret_env needs client_id".to_owned());
            None
        }
        (Some(client_id), Some(var)) => match env(var).filter(|v| !v.is_empty()) {
            None => {
                problems.push(format!(
                    "[dcr] the environment variable {var} (client_secret_env) is not set or empty"
                ));
                None
            }
            Some(secret) => Some(IatClient {
                client_id: client_id.clone(),
                client_secret: Secret(secret),
                method: section.auth_method,
                scope: section.scope.clone(),
            }),
        },
    };
    if section.scope.trim().is_empty() {
        problems.push("[dcr] scope is empty".to_owned());
    }
    let registration = section.registration.as_ref().and_then(|table| {
        if let Ok(serde_json::Value::Object(members)) = serde_json::to_value(table) {
            Some(members)
        } else {
            problems.push("[dcr.registration] is not a table of plain values".to_owned());
            None
        }
    });
    let setup = DcrSetup {
        initial_access,
        template: section.template.clone(),
        // The admin API belongs to the embedded reference AS only.
        admin_token: None,
        management: section.management,
    };
    (setup, registration)
}

/// The bindings a scenario's policy table is filled with (its namespace and the hosts' port).
pub fn policy_bindings(scenario: &Scenario, hosts_port: u16) -> Bindings {
    Bindings {
        ns: scenario.namespace(),
        hosts_port,
        ..Bindings::default()
    }
}

fn check_issuer(issuer: &str, problems: &mut Vec<String>) {
    let url = match Url::parse(issuer) {
        Ok(url) => url,
        Err(e) => {
            problems.push(format!("issuer {issuer:?} is not a URL: {e}"));
            return;
        }
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    // RFC 8414 §2: an https URL without query or fragment; plain http only on loopback, for an
    // AS on the operator's own machine.
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        problems.push(format!(
            "issuer {issuer:?} must be an https URL (http only for a loopback host)"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        problems.push(format!(
            "issuer {issuer:?} must have no query or fragment (RFC 8414 §2)"
        ));
    }
}

fn read_ca(path: &Path, problems: &mut Vec<String>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => Some(pem),
        Ok(_) => {
            problems.push(format!(
                "ca_file {} holds no PEM certificate",
                path.display()
            ));
            None
        }
        Err(e) => {
            problems.push(format!("ca_file {}: {e}", path.display()));
            None
        }
    }
}

fn check_users(
    login: &LoginSection,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Vec<TestUser> {
    if login.users.is_empty() {
        problems.push(
            "[login] needs at least one [[login.users]] entry (one per scenario run at once)"
                .to_owned(),
        );
    }
    let mut seen = BTreeSet::new();
    let mut users = Vec::new();
    for (n, entry) in login.users.iter().enumerate() {
        let who = format!("[[login.users]] #{} ({})", n + 1, entry.email);
        let email = entry.email.trim();
        if email.is_empty() || !email.contains('@') || email.contains(char::is_whitespace) {
            problems.push(format!("{who}: email is not an e-mail address"));
        } else if !seen.insert(email.to_ascii_lowercase()) {
            // Two runs reading one inbox would take each other's login codes.
            problems.push(format!("{who}: the same email is listed twice"));
        }
        if login.method == LoginMethod::Password {
            if entry.username.is_none() {
                problems.push(format!("{who}: method \"password\" needs a username"));
            }
            if entry.password_env.is_none() {
                problems.push(format!("{who}: method \"password\" needs password_env"));
            }
        }
        let password = match &entry.password_env {
            None => String::new(),
            Some(var) => match env(var) {
                None => {
                    problems.push(format!(
                        "{who}: the environment variable {var} (password_env) is not set"
                    ));
                    String::new()
                }
                Some(value) if value.is_empty() => {
                    problems.push(format!(
                        "{who}: the environment variable {var} (password_env) is empty"
                    ));
                    String::new()
                }
                Some(value) => value,
            },
        };
        users.push(TestUser {
            email: email.to_owned(),
            username: entry.username.clone().unwrap_or_else(|| email.to_owned()),
            password,
        });
    }
    users
}

/// The members in which two policies differ, as `path: target …, scenario …`.
fn policy_difference(declared: &EphemeralPolicy, wanted: &EphemeralPolicy) -> String {
    let to_json = |p: &EphemeralPolicy| serde_json::to_value(p).unwrap_or_default();
    let mut out = Vec::new();
    diff_json("", &to_json(declared), &to_json(wanted), &mut out);
    if out.is_empty() {
        // Equal as JSON but not as values: say so rather than print nothing.
        "the policies differ in a way JSON does not show".to_owned()
    } else {
        out.join("; ")
    }
}

fn diff_json(
    at: &str,
    declared: &serde_json::Value,
    wanted: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (declared, wanted) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                diff_json(
                    &path,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(format!("{at}: target {a}, scenario {b}")),
        _ => {}
    }
}

/// Where the RFC 8414 metadata of `issuer` lives: the well-known segment goes between the host
/// and the issuer's path (§3).
pub fn metadata_url(issuer: &str) -> Result<Url, HarnessError> {
    // RFC 8414 §3: the well-known segment goes between the host and the issuer's path.
    let parsed = Url::parse(issuer)?;
    let path = parsed.path().trim_end_matches('/');
    let mut url = parsed.clone();
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    Ok(url)
}

/// Reads the target's RFC 8414 metadata and describes it as a scenario target. Anything short
/// of a metadata document for this issuer with both endpoints is the target's failure
/// ([`HarnessError::Target`]), with what was found and what to check.
pub async fn discover(target: &Target, parties: &Parties) -> Result<AsUnderTest, HarnessError> {
    let trust = target.trust(parties);
    let url = metadata_url(&target.issuer)?;
    let fail = |what: String| HarnessError::Target(format!("discovery at {url}: {what}"));
    let response = UserAgent::new(&trust)?
        .http()
        .get(url.clone())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            fail(format!(
                "{}; {}",
                error_chain(&e),
                trust_hint(target, parties)
            ))
        })?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| fail(format!("reading the body: {}", error_chain(&e))))?;
    if status != 200 {
        return Err(fail(format!(
            "HTTP {status} instead of 200 with the authorization server metadata: {}",
            snippet(&body)
        )));
    }
    let metadata: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| fail(format!("the body is not JSON ({e}): {}", snippet(&body))))?;
    // RFC 8414 §3.3: the issuer in the metadata is identical to the one it was fetched for.
    let issuer = metadata.get("issuer").and_then(serde_json::Value::as_str);
    if issuer != Some(target.issuer.as_str()) {
        return Err(fail(format!(
            "the metadata's issuer is {}, not {:?} as the target file says",
            issuer.map_or_else(|| "missing".to_owned(), |i| format!("{i:?}")),
            target.issuer
        )));
    }
    let endpoint = |name: &str| -> Result<String, HarnessError> {
        let value = metadata
            .get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| fail(format!("the metadata has no {name}")))?;
        Url::parse(value).map_err(|e| fail(format!("{name} {value:?} is not a URL: {e}")))?;
        Ok(value.to_owned())
    };
    // RFC 8414 §2: registration_endpoint is optional; without it registration scenarios are not
    // applicable.
    let registration_endpoint = match metadata.get("registration_endpoint") {
        None | Some(serde_json::Value::Null) => None,
        Some(_) => Some(endpoint("registration_endpoint")?),
    };
    // RFC 9126 §5: likewise optional; without it PAR scenarios are not applicable.
    let par_endpoint = match metadata.get("pushed_authorization_request_endpoint") {
        None | Some(serde_json::Value::Null) => None,
        Some(_) => Some(endpoint("pushed_authorization_request_endpoint")?),
    };
    Ok(AsUnderTest {
        issuer: target.issuer.clone(),
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        registration_endpoint,
        par_endpoint,
        dcr: target.dcr.clone(),
        trust,
    })
}

/// Which certificates a failed connection should have chained to.
fn trust_hint(target: &Target, parties: &Parties) -> String {
    match &target.ca_file {
        Some(ca) => format!(
            "is the AS running, and does its certificate chain to {}?",
            ca.display()
        ),
        None => format!(
            "is the AS running, and does its certificate chain to a public root or to the \
             harness CA {}?",
            parties.ca_file.display()
        ),
    }
}

/// An error with its sources (reqwest's own message omits the interesting part).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn snippet(body: &str) -> String {
    let text: String = body.chars().take(200).collect();
    if text.len() < body.len() {
        format!("{text:?}…")
    } else {
        format!("{text:?}")
    }
}

/// A certificate for `host` from the harness CA, as files in `state_dir` (`<host>.pem`, the
/// chain leaf first, and `<host>-key.pem`, mode 0600), for an AS that serves TLS with a
/// certificate the harness issued. Existing files are kept (the AS may be using them). Returns
/// the two paths.
pub fn server_certificate(
    ca: &TestCa,
    state_dir: &Path,
    host: &str,
) -> Result<(PathBuf, PathBuf), HarnessError> {
    let cert = state_dir.join(format!("{host}.pem"));
    let key = state_dir.join(format!("{host}-key.pem"));
    if cert.try_exists()? && key.try_exists()? {
        return Ok((cert, key));
    }
    let issued = ca
        .issue_pem(host)
        .map_err(|e| HarnessError::Party(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&key)?, issued.key_pem.as_bytes())?;
    std::fs::write(&cert, issued.chain_pem)?;
    Ok((cert, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PW1" => Some("secret one".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Target, TargetError> {
        Target::parse(text, Path::new("/etc/targets/acme.toml"), &env)
    }

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Err(TargetError::Invalid { problems, .. }) => problems,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    const MINIMAL: &str = r#"
issuer = "https://as.acme.test"
[login]
method = "email-otp"
[[login.users]]
email = "user-1@users.example"
"#;

    #[test]
    fn a_minimal_file_takes_the_default_ports_and_a_state_folder_beside_it() {
        let target = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target.issuer, "https://as.acme.test");
        assert_eq!(
            target.harness,
            HarnessSettings {
                state_dir: PathBuf::from("/etc/targets/.cimd-conformance"),
                listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
                metadata_port: 8443,
                smtp_port: 2525,
                inbox_port: 8025,
            }
        );
        assert_eq!(target.login, LoginMethod::EmailOtp);
        assert_eq!(target.users.len(), 1);
        assert_eq!(target.users[0].username, "user-1@users.example");
        assert!(target.policy.is_none());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_place() {
        let text = MINIMAL.replace("[login]", "[harness]\nmetadata_prot = 1\n[login]");
        match parse(&text) {
            Err(TargetError::Syntax { message, .. }) => {
                assert!(message.contains("metadata_prot"), "{message}");
                assert!(message.contains("line"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let text = format!("{MINIMAL}\n[policy]\nenabeld = true\n");
        assert!(matches!(parse(&text), Err(TargetError::Syntax { .. })));
    }

    #[test]
    fn passwords_come_from_the_environment_and_stay_out_of_debug() {
        let text = r#"
issuer = "https://as.acme.test"
[login]
method = "password"
[[login.users]]
email = "a@users.example"
username = "a"
password_env = "PW1"
"#;
        let target = parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target.users[0].password, "secret one");
        assert!(!format!("{target:?}").contains("secret one"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
issuer = "http://as.acme.test/?tenant=1"
ca_file = "missing-ca.pem"
[harness]
metadata_port = 0
smtp_port = 8025
inbox_port = 8025
[login]
method = "password"
[[login.users]]
email = "a@users.example"
password_env = "UNSET"
[[login.users]]
email = "A@users.example"
username = "a2"
password_env = "EMPTY"
[[login.users]]
email = "nobody"
username = "n"
password_env = "PW1"
"#;
        let found = problems(text);
        let expect = [
            "must be an https URL",
            "no query or fragment",
            "missing-ca.pem",
            "metadata_port is 0",
            "must differ",
            "#1 (a@users.example): method \"password\" needs a username",
            "#1 (a@users.example): the environment variable UNSET (password_env) is not set",
            "#2 (A@users.example): the same email is listed twice",
            "EMPTY (password_env) is empty",
            "#3 (nobody): email is not an e-mail address",
        ];
        for needle in expect {
            assert!(
                found.iter().any(|p| p.contains(needle)),
                "no problem mentions {needle:?}: {found:#?}"
            );
        }
        assert_eq!(found.len(), expect.len(), "{found:#?}");
    }

    #[test]
    fn plain_http_is_accepted_for_a_loopback_issuer_only() {
        let local = MINIMAL.replace("https://as.acme.test", "http://127.0.0.1:9000");
        assert!(parse(&local).is_ok());
        let local = MINIMAL.replace("https://as.acme.test", "http://localhost:9000/t1");
        assert!(parse(&local).is_ok());
        let remote = MINIMAL.replace("https://as.acme.test", "http://as.acme.test");
        assert_eq!(problems(&remote).len(), 1);
    }

    #[test]
    fn a_file_without_users_is_refused() {
        let text =
            "issuer = \"https://as.acme.test\"\n[login]\nmethod = \"email-otp\"\nusers = []\n";
        assert!(problems(text)[0].contains("at least one"));
    }

    #[test]
    fn metadata_urls_put_the_well_known_segment_before_the_issuer_path() {
        let url = |issuer| metadata_url(issuer).map(String::from).unwrap_or_default();
        assert_eq!(
            url("https://as.test:8443"),
            "https://as.test:8443/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            url("https://as.test/tenant/1/"),
            "https://as.test/.well-known/oauth-authorization-server/tenant/1"
        );
    }

    fn scenario_with_policy(policy: &str) -> Scenario {
        let text = format!(
            "title = 't'\n[reference_as.ephemeral_clients]\n{policy}\n\
             [[step]]\nauthorize = {{ client_id = 'x', redirect_uri = 'y', login = 'password' }}\n\
             [negative]\nreason = 'r'\n"
        );
        Scenario {
            id: "cimd/policy-test".to_owned(),
            path: PathBuf::new(),
            file: toml::from_str(&text).unwrap_or_else(|e| panic!("{e}")),
        }
    }

    #[test]
    fn a_scenario_that_sets_the_policy_runs_only_where_the_target_declares_the_same() {
        let scenario = scenario_with_policy(
            "consent_required = false\n[reference_as.ephemeral_clients.domains]\nmode = 'allow-list'\npatterns = ['*.{ns}']",
        );
        let without = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
        let reason = without.applicability(&scenario, 8443).ok().flatten();
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.contains("declares no policy")),
            "{reason:?}"
        );

        let same = format!(
            "{MINIMAL}[policy]\nconsent_required = false\n[policy.domains]\nmode = 'allow-list'\npatterns = ['*.policy-test.cimd.example']\n"
        );
        let same = parse(&same).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(same.applicability(&scenario, 8443).ok(), Some(None));

        let other = format!("{MINIMAL}[policy]\nconsent_required = true\n");
        let other = parse(&other).unwrap_or_else(|e| panic!("{e}"));
        let reason = other
            .applicability(&scenario, 8443)
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(reason.starts_with("policy differs: "), "{reason}");
        assert!(
            reason.contains("consent_required: target true, scenario false"),
            "{reason}"
        );
        assert!(reason.contains("domains.mode"), "{reason}");

        let plain = Scenario {
            id: "cimd/plain".to_owned(),
            path: PathBuf::new(),
            file: toml::from_str("title = 't'\n[negative]\nreason = 'r'\n")
                .unwrap_or_else(|e| panic!("{e}")),
        };
        assert_eq!(without.applicability(&plain, 8443).ok(), Some(None));
    }

    #[test]
    fn a_broken_scenario_policy_is_a_scenario_error_not_a_verdict() {
        let scenario =
            scenario_with_policy("domains = { mode = 'allow-list', patterns = ['{nope}'] }");
        let target = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            target.applicability(&scenario, 8443),
            Err(HarnessError::Scenario(_))
        ));
    }

    #[test]
    fn dcr_credentials_take_their_secret_from_the_environment() {
        let text = format!(
            "{MINIMAL}[dcr]\nclient_id = 'dcr-admin'\nclient_secret_env = 'PW1'\n\
             auth_method = 'client_secret_post'\ntemplate = 'agent'\n"
        );
        let target = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let client = target.dcr.initial_access.as_ref().unwrap();
        assert_eq!(client.client_id, "dcr-admin");
        assert_eq!(client.client_secret.0, "secret one");
        assert_eq!(client.method, SecretMethod::ClientSecretPost);
        assert_eq!(client.scope, "dcr");
        assert_eq!(target.dcr.template.as_deref(), Some("agent"));
        assert!(target.dcr.management);
        assert!(target.dcr.admin_token.is_none());
        assert!(!format!("{target:?}").contains("secret one"));

        let unset = format!("{MINIMAL}[dcr]\nclient_id = 'x'\nclient_secret_env = 'UNSET'\n");
        assert!(problems(&unset)[0].contains("UNSET (client_secret_env) is not set"));
        let half = format!("{MINIMAL}[dcr]\nclient_id = 'x'\n");
        assert!(problems(&half)[0].contains("needs client_secret_env"));
        let typo = format!("{MINIMAL}[dcr]\nclient_secret = 'x'\n");
        assert!(matches!(parse(&typo), Err(TargetError::Syntax { .. })));
        // Without [dcr], registration needs nothing from the file.
        let none = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
        assert!(none.dcr.initial_access.is_none() && none.registration.is_none());
    }

    #[test]
    fn a_scenario_that_sets_registration_keys_runs_only_where_the_target_declares_them() {
        let text = "title = 't'\n[reference_as.registration]\ndelete = false\n\
                    [[step]]\nregister = { body = { client_name = 'n' } }\n[negative]\nreason = 'r'\n";
        let scenario = Scenario {
            id: "dcr/no-delete".to_owned(),
            path: PathBuf::new(),
            file: toml::from_str(text).unwrap_or_else(|e| panic!("{e}")),
        };
        let reason = |extra: &str| {
            parse(&format!("{MINIMAL}{extra}"))
                .unwrap_or_else(|e| panic!("{e}"))
                .applicability(&scenario, 8443)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let undeclared = reason("").unwrap_or_default();
        assert!(undeclared.contains("delete: not declared"), "{undeclared}");
        let other = reason("[dcr.registration]\ndelete = true\n").unwrap_or_default();
        assert!(
            other.contains("delete: target true, scenario false"),
            "{other}"
        );
        assert_eq!(
            reason("[dcr.registration]\ndelete = false\naccess = 'open'\n"),
            None
        );
    }

    #[test]
    fn a_scenario_that_sets_client_auth_or_token_keys_runs_only_where_the_target_declares_them() {
        let text = "title = 't'\n[reference_as.client_auth]\nbind_grants_to_key = true\n\
                    [reference_as.tokens]\ndevice_code_ttl_secs = 2\n\
                    [[step]]\nwait = { ms = 1 }\n[negative]\nreason = 'r'\n";
        let scenario = Scenario {
            id: "pkjwt/bound".to_owned(),
            path: PathBuf::new(),
            file: toml::from_str(text).unwrap_or_else(|e| panic!("{e}")),
        };
        let reason = |extra: &str| {
            parse(&format!("{MINIMAL}{extra}"))
                .unwrap_or_else(|e| panic!("{e}"))
                .applicability(&scenario, 8443)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let undeclared = reason("").unwrap_or_default();
        assert!(
            undeclared.contains("bind_grants_to_key: not declared in [client_auth]"),
            "{undeclared}"
        );
        let tokens = reason(
            "[client_auth]\nbind_grants_to_key = true\n[tokens]\ndevice_code_ttl_secs = 600\n",
        )
        .unwrap_or_default();
        assert!(
            tokens.contains("device_code_ttl_secs: target 600, scenario 2"),
            "{tokens}"
        );
        assert_eq!(
            reason(
                "[client_auth]\nbind_grants_to_key = true\n[tokens]\ndevice_code_ttl_secs = 2\n"
            ),
            None
        );
        // The declared tables mean what the reference AS's do: unknown keys are problems.
        let typo = problems(&format!("{MINIMAL}[tokens]\ndevice_code_ttl = 2\n"));
        assert!(typo[0].contains("device_code_ttl"), "{typo:?}");
    }

    #[test]
    fn a_scenario_that_requires_par_runs_only_where_the_target_declares_par_required() {
        let text = "title = 't'\n[reference_as.par]\nrequired = true\n\
                    [[step]]\nwait = { ms = 1 }\n[negative]\nreason = 'r'\n";
        let scenario = Scenario {
            id: "oauth/par-required".to_owned(),
            path: PathBuf::new(),
            file: toml::from_str(text).unwrap_or_else(|e| panic!("{e}")),
        };
        let reason = |extra: &str| {
            parse(&format!("{MINIMAL}{extra}"))
                .unwrap_or_else(|e| panic!("{e}"))
                .applicability(&scenario, 8443)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let undeclared = reason("").unwrap_or_default();
        assert!(
            undeclared.contains("required: not declared in [par], scenario true"),
            "{undeclared}"
        );
        let optional = reason("[par]\nrequired = false\n").unwrap_or_default();
        assert!(
            optional.contains("required: target false, scenario true"),
            "{optional}"
        );
        assert_eq!(reason("[par]\nrequired = true\n"), None);
        let typo = problems(&format!("{MINIMAL}[par]\nrequire = true\n"));
        assert!(typo[0].contains("require"), "{typo:?}");
    }

    #[test]
    fn every_authorization_step_signs_in_with_the_target_method() {
        let scenario = scenario_with_policy("");
        let target = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
        let adapted = target.adapt(&scenario);
        assert!(matches!(
            &adapted.file.steps[0],
            Step::Authorize(a) if a.login == LoginChoice::Email
        ));
    }
}
