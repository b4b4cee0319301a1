//! reference-as: the reference OAuth authorization server of the CIMD conformance harness.
//!
//! A real, strict authorization server (axum on tokio) whose clients are Client ID Metadata
//! Documents: any https URL serving a valid document is a `client_id`. It signs users in with a
//! mailed one-time code or a password, asks for consent, issues codes with PKCE S256 and RFC 9207
//! `iss`, and hands out audience-bound JWT access tokens with rotating refresh tokens. Every rule
//! it enforces can be switched off on purpose through [`faults`], so each conformance scenario
//! can prove that it fails against a server that gets that rule wrong. Run it as the
//! `reference-as` binary or embed it with [`spawn`].
//!
//! Layout:
//! - [`config`]: [`Config`], the strict TOML configuration with every default in one place.
//! - [`cimd`]: client ID metadata documents: URL rules, document rules, redirect URI matching,
//!   the ephemeral-client policy and the resolver pipeline with its cache.
//! - [`metrics`]: the caches' counters and their Prometheus text for `GET /metrics`.
//! - [`client_auth`]: client lookup across registries and client authentication
//!   (`private_key_jwt` assertions, client secrets), with pre-registered clients.
//! - [`dcr`]: dynamic client registration (RFC 7591/7592): templates, initial access tokens,
//!   registration access tokens and the dynamic clients' storage.
//! - [`net`]: the SSRF-guarded HTTPS fetcher the resolver uses.
//! - [`faults`]: the faults switchboard.
//! - [`store`]: the SQLite store of users, sessions, codes, tokens and consents (bearer values
//!   are kept only as hashes), and the sealing of pending authorization requests.
//! - [`tokens`]: the ES256 signing key, JWT access tokens and the JWKS.
//! - [`mail`]: sign-in codes by SMTP.
//! - [`http`]: the endpoints and HTML pages.
//! - [`error`]: [`AsError`] and the OAuth error vocabulary.

pub mod cimd;
pub mod client_auth;
pub mod config;
pub mod dcr;
pub mod error;
pub mod faults;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod store;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

pub use config::{Config, Issuer};
pub use error::AsError;
pub use faults::{Fault, Faults};

use crate::cimd::ClientResolver;
use crate::client_auth::{ClientAuthenticator, ClientDirectory};
use crate::http::AppState;
use crate::mail::Mailer;
use crate::store::{Store, configured_password};
use crate::tokens::TokenSigner;

/// How often expired rows are deleted.
const PURGE_INTERVAL: Duration = Duration::from_mins(1);

/// A running reference AS. Dropping it stops the listener, its connections and its housekeeping.
#[derive(Debug)]
pub struct RunningAs {
    running: mock_kit::Running,
    issuer: Issuer,
    purge: tokio::task::AbortHandle,
}

impl RunningAs {
    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// The absolute URL of an endpoint path such as `/token` (under the issuer's path).
    pub fn url(&self, path: &str) -> String {
        self.issuer.url(path)
    }

    /// The RFC 8414 metadata URL.
    pub fn metadata_url(&self) -> String {
        self.issuer.metadata_url()
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }
}

impl Drop for RunningAs {
    fn drop(&mut self) {
        self.purge.abort();
    }
}

/// Starts the server on `config.listen`.
///
/// TLS comes from `tls` when given (embedders pass e.g. a test CA's server config), else from the
/// `config.tls` PEM files, else the server speaks plain HTTP. The default issuer follows from the
/// scheme, `config.public_host` and the bound port.
pub async fn spawn(
    config: Config,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<RunningAs, AsError> {
    config.validate()?;
    mock_kit::install_crypto_provider();
    let tls = match (tls, &config.tls) {
        (Some(tls), _) => Some(tls),
        (None, Some(files)) => Some(load_tls(&files.cert, &files.key)?),
        (None, None) => None,
    };
    let listener = TcpListener::bind(config.listen).await?;
    let issuer = config.issuer_for(tls.is_some(), listener.local_addr()?.port())?;

    let store = Store::open(&config.storage.database).await?;
    let hashes = futures_util::future::try_join_all(
        config
            .users
            .iter()
            .map(|user| configured_password(user.password.0.clone())),
    )
    .await?;
    for (user, hash) in config.users.iter().zip(&hashes) {
        store.upsert_user(&user.username, &user.email, hash).await?;
    }
    let signer = TokenSigner::generate(issuer.as_str(), config.tokens.access_token_ttl())?;
    let mailer = Mailer::new(&config.smtp.host, config.smtp.port, &config.smtp.from)?;
    let client_auth = ClientAuthenticator::new(
        issuer.as_str(),
        &issuer.url("/token"),
        &config.client_auth,
        &config.ephemeral_clients,
        store.clone(),
        &config.faults,
    )
    .with_par_endpoint(&issuer.url("/par"));
    let registry = dcr::Registry::open(
        config.registration.clone(),
        issuer.clone(),
        &store,
        config.faults.clone(),
    )
    .await?;
    let clients = ClientDirectory::from_config(&config.clients)
        .await?
        .with_registry(Arc::new(registry));
    let resolver = ClientResolver::new(
        config.ephemeral_clients.clone(),
        config.network_settings()?,
        config.faults.clone(),
    )?;
    let state = Arc::new(AppState::new(
        issuer.clone(),
        config.faults.clone(),
        store.clone(),
        signer,
        mailer,
        resolver,
        clients,
        client_auth,
        config.tokens,
        config.par,
    )?);
    // Unrecorded: a journal would keep every request for the server's lifetime (about 900 bytes
    // each, measured under load); the harness judges from its own side of the wire anyway.
    let running = mock_kit::serve_router_unrecorded(listener, http::router(state), tls)?;
    let purge = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(PURGE_INTERVAL);
        loop {
            ticks.tick().await;
            if let Err(error) = store.purge_expired().await {
                tracing::warn!(%error, "purging expired rows failed");
            }
        }
    })
    .abort_handle();
    tracing::info!(issuer = %issuer, addr = %running.addr(), "reference AS listening");
    Ok(RunningAs {
        running,
        issuer,
        purge,
    })
}

/// A rustls server config from PEM files (chain leaf first; PKCS#8, PKCS#1 or SEC1 key), with
/// ALPN for HTTP/2 and HTTP/1.1.
pub fn load_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, AsError> {
    mock_kit::install_crypto_provider();
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| AsError::Tls(format!("certificate file {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(AsError::Tls(format!(
            "certificate file {} holds no certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| AsError::Tls(format!("key file {}: {e}", key.display())))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| AsError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
