//! The mock ecosystem on one machine: test CA, metadata host, mail server and reference AS.
//!
//! Client IDs are `https://<name>.example:<port>/…` URLs served by one metadata-host listener.
//! The reference AS reaches them through its resolve map (`*.example` → 127.0.0.1) and trusts the
//! run's test CA; every other name keeps the full SSRF policy, so a client ID on `localhost` is
//! still refused. The AS itself speaks HTTPS as `https://localhost:<port>`, with a leaf from the
//! same CA, and mails login codes over SMTP to mock-mail.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use metadata_host::{MetadataHost, Route};
use mock_kit::TestCa;
use mock_mail::{MailConfig, MailServer};
use reference_as::RunningAs;
use reference_as::cimd::policy::EphemeralPolicy;
use reference_as::config::Config;
use reference_as::faults::Faults;

use crate::HarnessError;
use crate::agent::{Trust, UserAgent};
use crate::scenario::run::{AsUnderTest, TestUser};

/// Host name the reference AS is served under (browsers and curl resolve it to loopback).
pub const AS_HOST: &str = "localhost";

/// Suffix of every virtual host name the metadata host serves; the AS maps it to loopback.
pub const CLIENT_DOMAIN: &str = "example";

/// The demo user's e-mail address.
pub const DEMO_EMAIL: &str = "alice@users.example";
/// The demo user's name.
pub const DEMO_USERNAME: &str = "alice";
/// The demo user's password (test data, not a secret).
pub const DEMO_PASSWORD: &str = "correct horse battery staple";

/// Where the demo native client's document lives on the metadata host.
pub const DEMO_NATIVE: (&str, &str) = ("app.client.example", "/cimd/demo-native-client.json");
/// Where the demo web client's document lives on the metadata host.
pub const DEMO_WEB: (&str, &str) = ("web.client.example", "/cimd/demo-web-client.json");

const NATIVE_DOCUMENT: &str = include_str!("../../fixtures/metadata/demo-native-client.json");
const WEB_DOCUMENT: &str = include_str!("../../fixtures/metadata/demo-web-client.json");

/// How to start the ecosystem.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Faults to switch on in the shared reference AS.
    pub faults: Faults,
    /// The shared AS's ephemeral-client policy (the default is open).
    pub policy: EphemeralPolicy,
    /// Where to keep the CA certificate; a fresh temporary folder when `None`.
    pub state_dir: Option<PathBuf>,
    /// Test users besides the demo user (`user-N@users.example`), e.g. one per scenario so
    /// concurrent scenarios never read each other's login codes.
    pub extra_users: usize,
}

/// All parties, running. Dropping it stops them.
pub struct Ecosystem {
    /// The run's certificate authority.
    pub ca: Arc<TestCa>,
    /// The HTTPS metadata host with the demo documents mounted.
    pub hosts: MetadataHost,
    /// The SMTP sink and inbox.
    pub mail: MailServer,
    /// The shared reference authorization server.
    pub server: RunningAs,
    /// Path of the CA certificate file.
    pub ca_file: PathBuf,
    users: Vec<TestUser>,
    state: StateDir,
}

impl std::fmt::Debug for Ecosystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ecosystem")
            .field("issuer", &self.server.issuer())
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl Ecosystem {
    /// Starts every party and mounts the demo client documents.
    pub async fn start(options: Options) -> Result<Self, HarnessError> {
        let ca = TestCa::generate("cimd-conformance test CA").map_err(party)?;
        let state = StateDir::new(options.state_dir)?;
        let ca_file = state.path().join("ca.pem");
        ca.write_pem(&ca_file)?;

        let hosts = MetadataHost::spawn(ca.clone()).await.map_err(party)?;
        let mail = MailServer::spawn(MailConfig::default())
            .await
            .map_err(party)?;
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
        let config = reference_config(&ca_file, &mail, &users, options.policy, options.faults);
        let server = reference_as::spawn(config, Some(ca.server_config()))
            .await
            .map_err(party)?;

        let ecosystem = Self {
            ca,
            hosts,
            mail,
            server,
            ca_file,
            users,
            state,
        };
        ecosystem.mount_document(DEMO_NATIVE, NATIVE_DOCUMENT)?;
        ecosystem.mount_document(DEMO_WEB, WEB_DOCUMENT)?;
        Ok(ecosystem)
    }

    /// Starts another reference AS wired to the same hosts, mail and users, with its own policy
    /// and faults (for scenarios that set the policy, and for negative runs).
    pub async fn spawn_reference_as(
        &self,
        policy: EphemeralPolicy,
        faults: Faults,
    ) -> Result<RunningAs, HarnessError> {
        let config = reference_config(&self.ca_file, &self.mail, &self.users, policy, faults);
        reference_as::spawn(config, Some(self.ca.server_config()))
            .await
            .map_err(party)
    }

    fn mount_document(&self, (host, path): (&str, &str), json: &str) -> Result<(), HarnessError> {
        let document: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| HarnessError::Party(format!("fixture {path}: {e}")))?;
        self.hosts.mount(host, path, Route::document(document));
        Ok(())
    }

    /// The shared AS's issuer identifier.
    pub fn issuer(&self) -> String {
        self.server.issuer().to_owned()
    }

    /// The URL (client ID) of a document on the metadata host.
    pub fn client_id(&self, (host, path): (&str, &str)) -> String {
        self.hosts.url(host, path)
    }

    /// Base URL of the inbox HTTP API and web page.
    pub fn inbox_url(&self) -> String {
        self.mail.http_url()
    }

    /// The users every reference AS of this ecosystem knows; index 0 is the demo user.
    pub fn users(&self) -> &[TestUser] {
        &self.users
    }

    /// What a user agent needs to reach `server`: the CA and the names of the test network.
    pub fn trust_for(&self, server: &RunningAs) -> Trust {
        let loopback = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        Trust {
            ca_pem: vec![self.ca.cert_pem().to_owned()],
            resolve: vec![
                (AS_HOST.to_owned(), loopback(server.addr().port())),
                (DEMO_NATIVE.0.to_owned(), loopback(self.hosts.port())),
                (DEMO_WEB.0.to_owned(), loopback(self.hosts.port())),
            ],
        }
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
            trust: self.trust_for(server),
        }
    }

    /// The folder holding the CA file.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }
}

/// The reference AS configuration wired to this ecosystem's parties.
fn reference_config(
    ca_file: &Path,
    mail: &MailServer,
    users: &[TestUser],
    policy: EphemeralPolicy,
    faults: Faults,
) -> Config {
    let mut config = Config {
        public_host: AS_HOST.to_owned(),
        ..Config::default()
    };
    config.smtp.host = mail.smtp_addr().ip().to_string();
    config.smtp.port = mail.smtp_addr().port();
    config.users = users
        .iter()
        .map(|u| reference_as::config::UserConfig {
            username: u.username.clone(),
            email: u.email.clone(),
            password: reference_as::config::Password(u.password.clone()),
        })
        .collect();
    config.ephemeral_clients = policy;
    config.network.trusted_ca = Some(ca_file.to_owned());
    config.network.resolve.insert(
        format!("*.{CLIENT_DOMAIN}"),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    );
    config.faults = faults;
    config
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
