//! Configuration: one strict TOML file (unknown keys are errors), every key optional, every default
//! in [`Config::default`]. The CLI's flags override the file; `--print-config` shows the result.
//!
//! The shape mirrors what a product admin configures: listener and issuer, TLS, the mail relay for
//! login codes, demo users, the ephemeral-client (CIMD) policy, client authentication rules,
//! pre-registered clients, the outbound network (extra trust anchors and name overrides for
//! metadata hosts), storage, token lifetimes and the faults switchboard. [`Config::validate`] turns it into checked values at start-up, so a bad file fails
//! with a clear message before anything listens.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cimd::EphemeralPolicy;
use crate::client_auth::TokenAuthMethod;
use crate::client_auth::registered::check_config;
use crate::dcr::RegistrationConfig;
use crate::error::AsError;
use crate::faults::Faults;
use crate::net::{NetworkSettings, ResolveRule};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The issuer identifier. Default: derived as `{scheme}://{public_host}:{port}` from the bound
    /// listener. With a path (`https://as.test/tenant1`) every endpoint lives under that path and
    /// the metadata under `/.well-known/oauth-authorization-server/tenant1` (RFC 8414 §3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Host name used in the derived issuer.
    pub public_host: String,
    /// Socket address to listen on (`:0` picks a free port).
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// Where login-code mails go.
    pub smtp: SmtpConfig,
    /// Users who can sign in (their passwords are hashed before they reach the store).
    pub users: Vec<UserConfig>,
    /// What ephemeral (CIMD) clients may do.
    pub ephemeral_clients: EphemeralPolicy,
    /// How clients authenticate at the token endpoint (client assertions, JWKS refresh).
    pub client_auth: ClientAuthConfig,
    /// Clients registered by the operator (`[[clients]]`).
    pub clients: Vec<ClientConfig>,
    /// Outbound network settings for fetching metadata documents.
    pub network: NetworkConfig,
    /// The database.
    pub storage: StorageConfig,
    /// Lifetimes and limits of codes, tokens and sessions.
    pub tokens: TokenConfig,
    /// Deliberate deviations, for negative conformance runs. Empty: the strict server.
    pub faults: Faults,
    /// Dynamic client registration (RFC 7591/7592, templates).
    #[serde(default)]
    pub registration: RegistrationConfig,
    /// Pushed authorization requests (RFC 9126).
    #[serde(default)]
    pub par: ParConfig,
}

impl Default for Config {
    /// Every default of the reference AS, in one place.
    fn default() -> Self {
        Self {
            // Derived from the listener, so `listen = "127.0.0.1:0"` still gives a usable issuer.
            issuer: None,
            public_host: "127.0.0.1".to_owned(),
            // Loopback and an ephemeral port: safe to start anywhere, any number of times.
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            // Plain HTTP unless certificates are given.
            tls: None,
            smtp: SmtpConfig {
                // mock-mail's usual loopback address; tests pass the port they got.
                host: "127.0.0.1".to_owned(),
                port: 2525,
                from: "Reference AS <no-reply@reference-as.test>".to_owned(),
            },
            // One demo user so a fresh start can complete a flow; configure `users` to replace it.
            users: vec![UserConfig {
                username: "alice".to_owned(),
                email: "alice@example.test".to_owned(),
                password: Password("alice-password".to_owned()),
            }],
            ephemeral_clients: EphemeralPolicy::default(),
            client_auth: ClientAuthConfig {
                // draft-ietf-oauth-rfc7523bis: the issuer identifier is the only audience.
                assertion_audience: AssertionAudience::Strict,
                // Assertions are made for one request; five minutes covers slow clients.
                max_assertion_lifetime_secs: 300,
                // Machines with synchronised clocks; enough for a request in flight.
                clock_skew_secs: 10,
                jwks_uri_same_origin: false,
                // One forced refetch per client every ten seconds bounds what made-up kids cost.
                jwks_refresh_interval_secs: 10,
                // Off: RFC 7523 lets a client sign with any of its keys, and binding would end
                // the sessions of a client that rotates keys; the atproto profile turns it on.
                bind_grants_to_key: false,
            },
            // No pre-registered clients: every client is a metadata document.
            clients: Vec::new(),
            network: NetworkConfig {
                trusted_ca: None,
                trusted_ca_pem: Vec::new(),
                resolve: BTreeMap::new(),
            },
            // A private in-memory database: nothing to set up, nothing left behind.
            storage: StorageConfig {
                database: "sqlite::memory:".to_owned(),
            },
            tokens: TokenConfig {
                // Short-lived access tokens (MCP-SEC-03).
                access_token_ttl_secs: 300,
                refresh_token_ttl_secs: 3600,
                // Codes are redeemed within seconds by a working client.
                code_ttl_secs: 60,
                login_code_ttl_secs: 600,
                login_code_attempts: 5,
                // Time allowed between /authorize and the final consent.
                request_ttl_secs: 600,
                session_ttl_secs: 8 * 3600,
                // RFC 8628 §3.2 gives 1800 s as its example; ten minutes covers walking to a
                // browser and signing in, and bounds the user code's exposure (§5.1).
                device_code_ttl_secs: 600,
                // RFC 8628 §3.2: the interval a client uses when none is given.
                device_poll_interval_secs: 5,
            },
            faults: Faults::none(),
            // Off: see `RegistrationConfig::default`.
            registration: RegistrationConfig::default(),
            par: ParConfig {
                // Optional: plain authorization requests stay usable unless the operator says.
                required: false,
                // RFC 9126 §2.2's example; a client redirects right after pushing.
                request_uri_ttl_secs: 60,
            },
        }
    }
}

/// Pushed authorization requests (RFC 9126).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParConfig {
    /// Whether `/authorize` refuses requests that were not pushed
    /// (`require_pushed_authorization_requests` in discovery, RFC 9126 §5).
    pub required: bool,
    /// How long a pushed `request_uri` may be used (`expires_in`, seconds).
    pub request_uri_ttl_secs: u64,
}

impl Default for ParConfig {
    fn default() -> Self {
        Config::default().par
    }
}

impl ParConfig {
    /// The lifetime of a pushed `request_uri`.
    pub fn request_uri_ttl(&self) -> Duration {
        Duration::from_secs(self.request_uri_ttl_secs)
    }
}

/// PEM files for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The SMTP relay for login codes (plain SMTP, no auth: a local sink such as mock-mail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Relay host.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// Sender address (`Name <addr>` or `addr`).
    pub from: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Config::default().smtp
    }
}

/// A user who can sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name; also the `sub` of issued tokens.
    pub username: String,
    /// Address for login codes (unique, case-insensitive).
    pub email: String,
    /// Password for password sign-in: plaintext, or better a hash in the form
    /// `pbkdf2-sha256$ITERATIONS$SALT$HASH` (base64url), which is used as is.
    pub password: Password,
}

/// A password from the configuration. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// How clients authenticate at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAuthConfig {
    /// Which `aud` a client assertion may carry: `strict` (default), only the issuer identifier
    /// (draft-ietf-oauth-rfc7523bis); `legacy`, also the token endpoint URL (RFC 7523, OpenID
    /// Connect Core §9).
    pub assertion_audience: AssertionAudience,
    /// How far ahead an assertion's `exp` may lie, and how old its `iat` may be (seconds).
    pub max_assertion_lifetime_secs: u64,
    /// Clock skew allowed on `exp`, `nbf` and `iat` (seconds).
    pub clock_skew_secs: u64,
    /// Whether an ephemeral client's `jwks_uri` must be on the origin of its client_id.
    pub jwks_uri_same_origin: bool,
    /// The least time between two forced refetches of one client's `jwks_uri` on an unknown
    /// `kid` (seconds).
    pub jwks_refresh_interval_secs: u64,
    /// Whether a grant opened by a `private_key_jwt` client is bound to the key (its RFC 7638
    /// thumbprint) that signed the assertion redeeming the code: refreshes must then be signed
    /// with that key, and end once it leaves the client's key set (PKJWT-15, atproto).
    pub bind_grants_to_key: bool,
}

impl Default for ClientAuthConfig {
    fn default() -> Self {
        Config::default().client_auth
    }
}

/// Which audiences client assertions may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssertionAudience {
    /// The issuer identifier only.
    Strict,
    /// The issuer identifier or the token endpoint URL.
    Legacy,
}

/// A client registered in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The client_id (never an `https://` URL: those are client metadata documents).
    pub client_id: String,
    /// Display name for the consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// `none`, `client_secret_basic`, `client_secret_post` or `private_key_jwt`.
    pub token_endpoint_auth_method: TokenAuthMethod,
    /// The secret for the `client_secret_*` methods: plaintext (hashed with PBKDF2 at start), or
    /// already hashed as `pbkdf2-sha256$…` or, for generated secrets, `sha256$…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
    /// Public keys inline (a JWK Set), for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where to fetch the public keys, for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The one algorithm the client's assertions may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Redirect URIs, matched exactly.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Grant types (default `authorization_code`).
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<String>,
    /// Space-separated scopes the client may ask for (default: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

fn default_grant_types() -> Vec<String> {
    vec!["authorization_code".to_owned()]
}

/// A client secret from the configuration. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientSecret(pub String);

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// Outbound network settings for fetching metadata documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// A PEM file of extra trust anchors (e.g. the harness's test CA), added to the web PKI roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_ca: Option<PathBuf>,
    /// Extra trust anchors as PEM text, for embedding the server in tests without writing files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_ca_pem: Vec<String>,
    /// Name → address overrides (like `curl --resolve`); `*.suffix` patterns match subdomains.
    /// Mapped names may resolve to loopback; every other name still passes the SSRF guard.
    pub resolve: BTreeMap<String, IpAddr>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Config::default().network
    }
}

/// The database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// An sqlx SQLite URL: `sqlite::memory:` or `sqlite://path/to/as.db`.
    pub database: String,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Config::default().storage
    }
}

/// Lifetimes and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Access-token lifetime.
    pub access_token_ttl_secs: u64,
    /// Lifetime of each refresh token (a rotation starts a new one).
    pub refresh_token_ttl_secs: u64,
    /// Authorization-code lifetime (0: every code is already expired, for tests).
    pub code_ttl_secs: u64,
    /// Lifetime of a mailed login code.
    pub login_code_ttl_secs: u64,
    /// Wrong guesses after which a login code locks.
    pub login_code_attempts: u32,
    /// Time allowed from `/authorize` to the end of login and consent.
    pub request_ttl_secs: u64,
    /// Browser-session lifetime.
    pub session_ttl_secs: u64,
    /// Lifetime of a device authorization's device_code and user_code (RFC 8628 `expires_in`).
    pub device_code_ttl_secs: u64,
    /// Seconds a device waits between polls of the token endpoint (RFC 8628 `interval`).
    pub device_poll_interval_secs: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Config::default().tokens
    }
}

impl TokenConfig {
    /// Access-token lifetime.
    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs)
    }

    /// Refresh-token lifetime.
    pub fn refresh_token_ttl(&self) -> Duration {
        Duration::from_secs(self.refresh_token_ttl_secs)
    }

    /// Authorization-code lifetime.
    pub fn code_ttl(&self) -> Duration {
        Duration::from_secs(self.code_ttl_secs)
    }

    /// Login-code lifetime.
    pub fn login_code_ttl(&self) -> Duration {
        Duration::from_secs(self.login_code_ttl_secs)
    }

    /// Pending-request lifetime.
    pub fn request_ttl(&self) -> Duration {
        Duration::from_secs(self.request_ttl_secs)
    }

    /// Session lifetime.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }

    /// Device authorization lifetime.
    pub fn device_code_ttl(&self) -> Duration {
        Duration::from_secs(self.device_code_ttl_secs)
    }
}

impl Config {
    /// Reads and parses a TOML file (strict: unknown keys are errors).
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, AsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| AsError::ConfigRead {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
            .map_err(|e| AsError::Config(format!("{}: {}", path.display(), e)))
    }

    /// Parses TOML text (strict: unknown keys are errors).
    pub fn from_toml_str(text: &str) -> Result<Self, AsError> {
        toml::from_str(text).map_err(|e| AsError::Config(e.to_string()))
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> Result<String, AsError> {
        toml::to_string_pretty(self).map_err(|e| AsError::Config(e.to_string()))
    }

    /// Checks what serde cannot: a well-formed issuer, unique users, usable limits.
    pub fn validate(&self) -> Result<(), AsError> {
        if let Some(issuer) = &self.issuer {
            Issuer::parse(issuer)?;
        }
        if self.public_host.is_empty() || self.public_host.contains(['/', '?', '#', '@', ' ']) {
            return Err(AsError::Config(format!(
                "public_host {:?} must be a bare host name or IP address",
                self.public_host
            )));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut emails = std::collections::BTreeSet::new();
        for user in &self.users {
            if user.username.is_empty() || !user.email.contains('@') {
                return Err(AsError::Config(format!(
                    "user {:?} needs a non-empty username and an e-mail address",
                    user.username
                )));
            }
            if !names.insert(user.username.as_str())
                || !emails.insert(user.email.to_ascii_lowercase())
            {
                return Err(AsError::Config(format!(
                    "user {:?}: usernames and e-mail addresses must be unique",
                    user.username
                )));
            }
        }
        let mut client_ids = std::collections::BTreeSet::new();
        for client in &self.clients {
            check_config(client).map_err(AsError::Config)?;
            if !client_ids.insert(client.client_id.as_str()) {
                return Err(AsError::Config(format!(
                    "client {:?} is configured twice",
                    client.client_id
                )));
            }
        }
        self.registration.validate().map_err(AsError::Config)?;
        if self.tokens.login_code_attempts == 0 {
            return Err(AsError::Config(
                "tokens.login_code_attempts must be at least 1".to_owned(),
            ));
        }
        // RFC 9126 §2.2: expires_in is a positive integer.
        if self.par.request_uri_ttl_secs == 0 {
            return Err(AsError::Config(
                "par.request_uri_ttl_secs must be at least 1".to_owned(),
            ));
        }
        if self.tokens.device_poll_interval_secs == 0 || self.tokens.device_code_ttl_secs == 0 {
            return Err(AsError::Config(
                "tokens.device_poll_interval_secs and tokens.device_code_ttl_secs must be at \
                 least 1"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The issuer for a listener bound to `port`, served over HTTPS or not.
    pub fn issuer_for(&self, https: bool, port: u16) -> Result<Issuer, AsError> {
        if let Some(issuer) = &self.issuer {
            return Issuer::parse(issuer);
        }
        let scheme = if https { "https" } else { "http" };
        let host = if self.public_host.contains(':') && !self.public_host.starts_with('[') {
            format!("[{}]", self.public_host)
        } else {
            self.public_host.clone()
        };
        Issuer::parse(&format!("{scheme}://{host}:{port}"))
    }

    /// The outbound network settings, with the trusted CA file read.
    pub fn network_settings(&self) -> Result<NetworkSettings, AsError> {
        let mut extra_roots_pem = self.network.trusted_ca_pem.clone();
        if let Some(path) = &self.network.trusted_ca {
            let pem = std::fs::read_to_string(path).map_err(|source| AsError::ConfigRead {
                path: path.clone(),
                source,
            })?;
            extra_roots_pem.push(pem);
        }
        let resolve = self
            .network
            .resolve
            .iter()
            .map(|(name, addr)| {
                ResolveRule::new(name, *addr)
                    .map_err(|e| AsError::Config(format!("network.resolve: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetworkSettings {
            extra_roots_pem,
            resolve,
        })
    }
}

/// A validated issuer identifier: `http(s)://host[:port][/path]`, no query, fragment or userinfo,
/// no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    value: String,
    origin: String,
    host: String,
    path: String,
}

impl Issuer {
    /// Checks `raw`; a trailing `/` is removed so `https://as.test/` and `https://as.test` agree.
    pub fn parse(raw: &str) -> Result<Self, AsError> {
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        let bad = |why: &str| AsError::Config(format!("issuer {raw:?} {why}"));
        let url = url::Url::parse(trimmed).map_err(|e| bad(&format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad("must be an https (or, for local tests, http) URL"));
        }
        // AS-META-01: no query or fragment.
        if url.query().is_some() || url.fragment().is_some() || trimmed.contains(['?', '#']) {
            return Err(bad("must not have a query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry user information"));
        }
        let host = url.host_str().ok_or_else(|| bad("has no host"))?.to_owned();
        let path = url.path().trim_end_matches('/').to_owned();
        let origin = url.origin().ascii_serialization();
        let value = format!("{origin}{path}");
        Ok(Self {
            value,
            origin,
            host,
            path,
        })
    }

    /// The identifier, exactly as published.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The host name (no port), for mails and pages.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The path component (`""` or `/tenant1`), under which every endpoint is served.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// An absolute URL for an endpoint path such as `/token`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.value, path)
    }

    /// Where RFC 8414 §3 puts the metadata for this issuer (path only).
    pub fn metadata_path(&self) -> String {
        format!("/.well-known/oauth-authorization-server{}", self.path)
    }

    /// The absolute metadata URL (AS-META-06).
    pub fn metadata_url(&self) -> String {
        format!("{}{}", self.origin, self.metadata_path())
    }

    /// Whether the issuer is https (cookies then get `Secure`).
    pub fn is_https(&self) -> bool {
        self.value.starts_with("https://")
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn issuers_lose_a_trailing_slash_and_keep_their_path() {
        let issuer = Issuer::parse("https://as.test:8443/tenant1/").unwrap();
        assert_eq!(issuer.as_str(), "https://as.test:8443/tenant1");
        assert_eq!(
            issuer.metadata_url(),
            "https://as.test:8443/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(issuer.url("/token"), "https://as.test:8443/tenant1/token");
        assert_eq!(
            Issuer::parse("https://as.test/").unwrap().as_str(),
            "https://as.test"
        );
    }

    #[test]
    fn issuers_with_a_query_fragment_or_userinfo_are_refused() {
        for bad in [
            "https://as.test/?a=b",
            "https://as.test/#x",
            "https://u@as.test",
            "ftp://as.test",
        ] {
            assert!(Issuer::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error =
            Config::from_toml_str("listen = \"127.0.0.1:0\"\nlisten_port = 3\n").unwrap_err();
        assert!(error.to_string().contains("listen_port"), "{error}");
    }

    #[test]
    fn the_default_config_round_trips_through_toml() {
        let config = Config::default();
        let text = config.to_toml().unwrap();
        assert_eq!(Config::from_toml_str(&text).unwrap(), config);
        config.validate().unwrap();
    }
}
