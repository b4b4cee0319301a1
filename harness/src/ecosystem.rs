//! The mock ecosystem on one machine: test CA, metadata host and mail server (the [`Parties`]),
//! and the reference AS on top of them (the [`Ecosystem`]).
//!
//! Client IDs are `https://<name>.example:<port>/…` URLs served by one metadata-host listener.
//! The reference AS reaches them through its resolve map (`*.example` → 127.0.0.1) and trusts the
//! run's test CA; every other name keeps the full SSRF policy, so a client ID on `localhost` is
//! still refused. The AS itself speaks HTTPS as `https://localhost:<port>`, with a leaf from the
//! same CA, and mails login codes over SMTP to mock-mail. A third-party AS under test uses the
//! same [`Parties`], started on the fixed ports its operator configured it with once.
//!
//! Every reference AS of an ecosystem offers dynamic client registration the way a product
//! admin would set it up: registration gated by single-use initial access tokens, which a
//! configured client obtains with `client_credentials` and scope `dcr`; RFC 7592 management; and
//! one template client ([`TEMPLATE_SOFTWARE_ID`]) whose instances authenticate with
//! `client_secret_basic`, use the code, refresh and client-credentials grants, redirect to the
//! harness callback and sign in by either method. The IAT client's secret and the template
//! admin API's token are random per ecosystem.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use metadata_host::{MetadataHost, Route};
use mock_kit::TestCa;
use mock_mail::{MailConfig, MailServer};
use reference_as::RunningAs;
use reference_as::cimd::policy::EphemeralPolicy;
use reference_as::client_auth::{SecretHash, TokenAuthMethod};
use reference_as::config::{ClientConfig, ClientSecret, Config};
use reference_as::faults::Faults;

use crate::HarnessError;
use crate::agent::{Trust, UserAgent};
use crate::scenario::registration::{DcrSetup, IatClient, Secret, SecretMethod};
use crate::scenario::run::{AsUnderTest, TestUser};

/// Host name the reference AS is served under (browsers and curl resolve it to loopback).
pub const AS_HOST: &str = "localhost";

/// Common name of the harness's test CA (a CA kept in a state folder is reloaded under it).
pub const CA_NAME: &str = "cimd-conformance test CA";

/// Suffix of every virtual host name the metadata host serves; the AS maps it to loopback.
pub const CLIENT_DOMAIN: &str = "example";

/// The demo user's e-mail address.
pub const DEMO_EMAIL: &str = "alice@users.example";
/// The demo user's name.
pub const DEMO_USERNAME: &str = "alice";
/// The demo user's password (test data, not a secret).
pub const DEMO_PASSWORD: &str = "correct horse battery staple";

/// The client that obtains initial access tokens from every reference AS of an ecosystem.
pub const DCR_CLIENT_ID: &str = "conformance-dcr";
/// The scope that yields an initial access token.
pub const DCR_SCOPE: &str = "dcr";
/// The `software_id` of the template client every reference AS of an ecosystem offers.
pub const TEMPLATE_SOFTWARE_ID: &str = "conformance-agent";
/// The scope ceiling of that template.
pub const TEMPLATE_SCOPE: &str = "openid profile mcp:read mcp:write";

/// Where the demo native client's document lives on the metadata host.
pub const DEMO_NATIVE: (&str, &str) = ("app.client.example", "/cimd/demo-native-client.json");
/// Where the demo web client's document lives on the metadata host.
pub const DEMO_WEB: (&str, &str) = ("web.client.example", "/cimd/demo-web-client.json");

const NATIVE_DOCUMENT: &str = include_str!("../../fixtures/metadata/demo-native-client.json");
const WEB_DOCUMENT: &str = include_str!("../../fixtures/metadata/demo-web-client.json");

/// Where the parties listen and keep their state.
#[derive(Debug, Clone)]
pub struct PartiesOptions {
    /// Where to keep the CA (`ca.pem`, `ca-key.pem`): a chosen folder keeps it across runs, so
    /// a server configured to trust it once stays configured; `None` makes a fresh CA in a
    /// temporary folder removed on drop.
    pub state_dir: Option<PathBuf>,
    /// The interface every party binds (default loopback).
    pub listen: IpAddr,
    /// The metadata host's port (0: a free one). It is part of every client ID.
    pub metadata_port: u16,
    /// The SMTP port (0: a free one).
    pub smtp_port: u16,
    /// The inbox HTTP API's port (0: a free one).
    pub inbox_port: u16,
}

impl Default for PartiesOptions {
    fn default() -> Self {
        Self {
            state_dir: None,
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            metadata_port: 0,
            smtp_port: 0,
            inbox_port: 0,
        }
    }
}

/// The parties every AS under test talks to: the CA, the metadata host (with the demo client
/// documents mounted) and the mail server. Dropping it stops them.
pub struct Parties {
    /// The run's certificate authority.
    pub ca: Arc<TestCa>,
    /// The HTTPS metadata host with the demo documents mounted.
    pub hosts: MetadataHost,
    /// The SMTP sink and inbox.
    pub mail: MailServer,
    /// Path of the CA certificate file.
    pub ca_file: PathBuf,
    state: StateDir,
}

impl std::fmt::Debug for Parties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parties")
            .field("ca_file", &self.ca_file)
            .field("hosts", &self.hosts.addr())
            .field("smtp", &self.mail.smtp_addr())
            .field("inbox", &self.mail.http_url())
            .finish_non_exhaustive()
    }
}

impl Parties {
    /// Loads or makes the CA, starts the metadata host and the mail server, mounts the demo
    /// client documents.
    pub async fn start(options: PartiesOptions) -> Result<Self, HarnessError> {
        let state = StateDir::new(options.state_dir)?;
        let ca = TestCa::load_or_generate(state.path(), CA_NAME).map_err(party)?;
        let ca_file = state.path().join(mock_kit::ca::CA_CERT_FILE);
        let at = |port| SocketAddr::new(options.listen, port);
        let hosts = MetadataHost::spawn_on(ca.clone(), at(options.metadata_port))
            .await
            .map_err(party)?;
        let mail = MailServer::spawn(MailConfig {
            smtp_listen: at(options.smtp_port),
            http_listen: at(options.inbox_port),
            ..MailConfig::default()
        })
        .await
        .map_err(party)?;
        let parties = Self {
            ca,
            hosts,
            mail,
            ca_file,
            state,
        };
        parties.mount_document(DEMO_NATIVE, NATIVE_DOCUMENT)?;
        parties.mount_document(DEMO_WEB, WEB_DOCUMENT)?;
        Ok(parties)
    }

    fn mount_document(&self, (host, path): (&str, &str), json: &str) -> Result<(), HarnessError> {
        let document: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| HarnessError::Party(format!("fixture {path}: {e}")))?;
        self.hosts.mount(host, path, Route::document(document));
        Ok(())
    }

    /// The URL (client ID) of a document on the metadata host.
    pub fn client_id(&self, (host, path): (&str, &str)) -> String {
        self.hosts.url(host, path)
    }

    /// Base URL of the inbox HTTP API and web page.
    pub fn inbox_url(&self) -> String {
        self.mail.http_url()
    }

    /// The folder holding the CA files.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// What a user agent needs to reach the parties: the CA, and the demo host names routed to
    /// the metadata host. An AS's own name is added by whoever knows it.
    pub fn trust(&self) -> Trust {
        Trust {
            ca_pem: vec![self.ca.cert_pem().to_owned()],
            resolve: vec![
                (DEMO_NATIVE.0.to_owned(), self.hosts.addr()),
                (DEMO_WEB.0.to_owned(), self.hosts.addr()),
            ],
        }
    }
}

/// How to start the ecosystem.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Faults to switch on in the shared reference AS.
    pub faults: Faults,
    /// The shared AS's ephemeral-client policy (the default is open).
    pub policy: EphemeralPolicy,
    /// Where to keep the CA (see [`PartiesOptions::state_dir`]).
    pub state_dir: Option<PathBuf>,
    /// Test users besides the demo user (`user-N@users.example`): one per concurrently running
    /// scenario, so no two read each other's login codes.
    pub extra_users: usize,
}

/// The [`Parties`] plus the in-process reference AS wired to them, running. Dropping it stops
/// them all. It dereferences to its parties (`eco.hosts`, `eco.inbox_url()`).
pub struct Ecosystem {
    parties: Parties,
    /// The shared reference authorization server.
    pub server: RunningAs,
    users: Vec<TestUser>,
    /// The users as every reference AS of this ecosystem is configured with them: passwords
    /// hashed once here, so starting another AS costs no key derivation.
    user_configs: Vec<reference_as::config::UserConfig>,
    faults: Faults,
    policy: EphemeralPolicy,
    dcr: DcrSecrets,
}

/// The random secrets of an ecosystem's registration setup. `Debug` never shows them.
#[derive(Clone)]
struct DcrSecrets {
    iat_client_secret: String,
    admin_token: String,
}

impl DcrSecrets {
    fn generate() -> Self {
        Self {
            iat_client_secret: crate::pkce::random_token(),
            admin_token: crate::pkce::random_token(),
        }
    }
}

impl std::fmt::Debug for DcrSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DcrSecrets(<redacted>)")
    }
}

impl Deref for Ecosystem {
    type Target = Parties;

    fn deref(&self) -> &Parties {
        &self.parties
    }
}

impl std::fmt::Debug for Ecosystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ecosystem")
            .field("issuer", &self.server.issuer())
            .field("parties", &self.parties)
            .finish_non_exhaustive()
    }
}

impl Ecosystem {
    /// Starts the parties on free loopback ports, then the reference AS.
    pub async fn start(options: Options) -> Result<Self, HarnessError> {
        let parties = Parties::start(PartiesOptions {
            state_dir: options.state_dir,
            ..PartiesOptions::default()
        })
        .await?;
        let mut users = vec![TestUser {
            email: DEMO_EMAIL.to_owned(),
            username: DEMO_USERNAME.to_owned(),
            password: DEMO_PASSWORD.to_owned(),
        }];
        users.extend((1..=options.extra_users).map(|n| TestUser {
            email: format!("user-{n}@users.example"),
            username: format!("user-{n}"),
            password: format!("password of user {n}"),
        }));
        let user_configs = hashed_users(&users).await?;
        let dcr = DcrSecrets::generate();
        let config = reference_config(
            &parties,
            &user_configs,
            options.policy.clone(),
            options.faults.clone(),
            &dcr,
            &ConfigOverrides::default(),
        )?;
        let server = reference_as::spawn(config, Some(parties.ca.server_config()))
            .await
            .map_err(party)?;
        Ok(Self {
            parties,
            server,
            users,
            user_configs,
            faults: options.faults,
            policy: options.policy,
            dcr,
        })
    }

    /// The faults every reference AS of this ecosystem runs with.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The shared AS's ephemeral-client policy.
    pub fn policy(&self) -> &EphemeralPolicy {
        &self.policy
    }

    /// The parties the reference AS is wired to.
    pub fn parties(&self) -> &Parties {
        &self.parties
    }

    /// Starts another reference AS wired to the same hosts, mail and users, with its own policy
    /// and the ecosystem's faults (for scenarios that set the policy).
    pub async fn spawn_reference_as(
        &self,
        policy: EphemeralPolicy,
    ) -> Result<RunningAs, HarnessError> {
        self.spawn_reference_as_with(policy, &ConfigOverrides::default())
            .await
    }

    /// [`Ecosystem::spawn_reference_as`] with `overrides` set over the config's sections (the
    /// registration keys over the ecosystem's registration setup).
    pub async fn spawn_reference_as_with(
        &self,
        policy: EphemeralPolicy,
        overrides: &ConfigOverrides,
    ) -> Result<RunningAs, HarnessError> {
        let config = reference_config(
            &self.parties,
            &self.user_configs,
            policy,
            self.faults.clone(),
            &self.dcr,
            overrides,
        )?;
        reference_as::spawn(config, Some(self.ca.server_config()))
            .await
            .map_err(party)
    }

    /// The shared AS's issuer identifier.
    pub fn issuer(&self) -> String {
        self.server.issuer().to_owned()
    }

    /// The users every reference AS of this ecosystem knows; index 0 is the demo user.
    pub fn users(&self) -> &[TestUser] {
        &self.users
    }

    /// What a user agent needs to reach `server`: the CA and the names of the test network.
    pub fn trust_for(&self, server: &RunningAs) -> Trust {
        let mut trust = self.parties.trust();
        trust.resolve.push((
            AS_HOST.to_owned(),
            SocketAddr::from((Ipv4Addr::LOCALHOST, server.addr().port())),
        ));
        trust
    }

    /// [`Ecosystem::trust_for`] the shared AS.
    pub fn trust(&self) -> Trust {
        self.trust_for(&self.server)
    }

    /// A fresh user agent (own cookie jar) for the shared AS.
    pub fn user_agent(&self) -> Result<UserAgent, HarnessError> {
        UserAgent::new(&self.trust())
    }

    /// `server` described as a scenario target.
    pub fn as_under_test(&self, server: &RunningAs) -> AsUnderTest {
        AsUnderTest {
            issuer: server.issuer().to_owned(),
            authorization_endpoint: server.url("/authorize"),
            token_endpoint: server.url("/token"),
            registration_endpoint: Some(server.url("/register")),
            par_endpoint: Some(server.url("/par")),
            dcr: self.dcr_setup(),
            trust: self.trust_for(server),
        }
    }

    /// How scenarios reach registration at every reference AS of this ecosystem.
    pub fn dcr_setup(&self) -> DcrSetup {
        DcrSetup {
            initial_access: Some(IatClient {
                client_id: DCR_CLIENT_ID.to_owned(),
                client_secret: Secret(self.dcr.iat_client_secret.clone()),
                method: SecretMethod::ClientSecretBasic,
                scope: DCR_SCOPE.to_owned(),
            }),
            template: Some(TEMPLATE_SOFTWARE_ID.to_owned()),
            admin_token: Some(Secret(self.dcr.admin_token.clone())),
            management: true,
        }
    }
}

/// Keys a scenario sets over sections of a reference AS config (its `[reference_as.*]` tables
/// other than the policy), by section name (`registration`, `client_auth`, `tokens`, `par`).
/// They go through the AS's own config parser, so they are checked exactly as in a config file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigOverrides(pub BTreeMap<String, serde_json::Map<String, serde_json::Value>>);

/// The `[registration]` table every reference AS of an ecosystem starts from (before a
/// scenario's own keys): initial access tokens, management with rotation on update, deletion,
/// plain and templated registration, one template.
fn registration_base(dcr: &DcrSecrets) -> serde_json::Value {
    serde_json::json!({
        "enabled": true,
        "access": "initial-access-token",
        "plain": true,
        "management": true,
        "rotate_access_token_on_update": true,
        "rotate_access_token_on_read": false,
        "delete": true,
        "initial_access_token_scope": DCR_SCOPE,
        "admin_token": dcr.admin_token,
        "templates": [{
            "software_id": TEMPLATE_SOFTWARE_ID,
            "client_name": "Conformance agent",
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "redirect_uris": [format!("{}/callback", crate::suite::CALLBACK)],
            "scope": TEMPLATE_SCOPE,
            "authenticators": ["email-code", "password"],
        }],
    })
}

/// The client that obtains initial access tokens: `client_credentials` only, scope `dcr`, its
/// generated secret stored as a SHA-256 digest (no key derivation per request).
fn iat_client(dcr: &DcrSecrets) -> ClientConfig {
    ClientConfig {
        client_id: DCR_CLIENT_ID.to_owned(),
        client_name: Some("Conformance DCR client".to_owned()),
        token_endpoint_auth_method: TokenAuthMethod::ClientSecretBasic,
        client_secret: Some(ClientSecret(
            SecretHash::sha256_of(&dcr.iat_client_secret).encode(),
        )),
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        redirect_uris: Vec::new(),
        grant_types: vec!["client_credentials".to_owned()],
        scope: Some(DCR_SCOPE.to_owned()),
    }
}

/// The reference AS configuration wired to `parties`.
fn reference_config(
    parties: &Parties,
    users: &[reference_as::config::UserConfig],
    policy: EphemeralPolicy,
    faults: Faults,
    dcr: &DcrSecrets,
    overrides: &ConfigOverrides,
) -> Result<Config, HarnessError> {
    let mut config = Config {
        public_host: AS_HOST.to_owned(),
        ..Config::default()
    };
    config.smtp.host = parties.mail.smtp_addr().ip().to_string();
    config.smtp.port = parties.mail.smtp_addr().port();
    config.users = users.to_vec();
    config.ephemeral_clients = policy;
    config.network.trusted_ca = Some(parties.ca_file.clone());
    config.network.resolve.insert(
        format!("*.{CLIENT_DOMAIN}"),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    );
    config.faults = faults;
    config.clients.push(iat_client(dcr));
    // The registration table goes through the AS's own config parser, so a scenario's keys are
    // checked exactly as in a config file.
    let mut whole = serde_json::to_value(&config).map_err(party)?;
    whole["registration"] = registration_base(dcr);
    for (section, members) in &overrides.0 {
        match whole
            .get_mut(section)
            .and_then(serde_json::Value::as_object_mut)
        {
            Some(table) => table.extend(members.clone()),
            None => {
                return Err(HarnessError::Scenario(format!(
                    "[{section}] is not a section of the reference AS config"
                )));
            }
        }
    }
    serde_json::from_value(whole).map_err(|e| {
        let sections: Vec<String> = overrides.0.keys().map(|s| format!("[{s}]")).collect();
        HarnessError::Scenario(format!(
            "the reference AS config with the scenario's {} keys: {e}",
            sections.join(", ")
        ))
    })
}

/// `users` as reference-AS config entries with PBKDF2 hashes (derived in parallel, once).
async fn hashed_users(
    users: &[TestUser],
) -> Result<Vec<reference_as::config::UserConfig>, HarnessError> {
    let hashes = users.iter().map(|u| {
        let password = u.password.clone();
        tokio::task::spawn_blocking(move || {
            reference_as::store::PasswordHash::new(&password).map(|h| h.encode())
        })
    });
    let hashes = futures_util::future::try_join_all(hashes)
        .await
        .map_err(|e| HarnessError::Party(format!("password hashing: {e}")))?;
    users
        .iter()
        .zip(hashes)
        .map(|(u, hash)| {
            Ok(reference_as::config::UserConfig {
                username: u.username.clone(),
                email: u.email.clone(),
                password: reference_as::config::Password(hash.map_err(party)?),
            })
        })
        .collect()
}

fn party(error: impl std::fmt::Display) -> HarnessError {
    HarnessError::Party(error.to_string())
}

/// The run's state folder; a temporary one is removed on drop, a chosen one is kept.
struct StateDir {
    path: PathBuf,
    temporary: bool,
}

impl StateDir {
    fn new(chosen: Option<PathBuf>) -> Result<Self, HarnessError> {
        let temporary = chosen.is_none();
        let path = chosen.unwrap_or_else(|| {
            let name = format!(
                "cimd-conformance-{}-{}",
                std::process::id(),
                crate::pkce::random_token()
            );
            std::env::temp_dir().join(name)
        });
        std::fs::create_dir_all(&path)?;
        Ok(Self { path, temporary })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
