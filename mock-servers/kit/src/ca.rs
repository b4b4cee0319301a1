//! A test certificate authority generated at run time, or kept in a state folder.
//!
//! Real CIMD client IDs carry real host names, so the mock hosts need certificates for those names.
//! Rather than pre-declaring names, [`TestCa::server_config`] installs a rustls certificate
//! resolver that issues (and caches) a leaf for the SNI name of each new connection. Clients trust
//! the CA's certificate (`TestCa::cert_pem`) and nothing else. A third-party server under test is
//! configured by hand to trust that certificate, so [`TestCa::load_or_generate`] keeps the CA in a
//! folder (`ca.pem`, `ca-key.pem`) and reuses it on every later run.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::KitError;

/// Name used for connections that carry no SNI (clients connecting to an IP literal).
const NO_SNI_NAME: &str = "localhost";

/// File name of the CA certificate in a state folder (what a server under test trusts).
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA's private key in a state folder (PKCS#8 PEM, mode 0600).
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// The name a reloaded CA signs a probe leaf for, to prove its key matches its certificate.
const PROBE_NAME: &str = "ca-probe.invalid";

/// A CA whose key lives only in this process; it signs one leaf per host name on demand.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    leaves: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs; the certificate is public anyway.
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// Generates a fresh CA (ECDSA P-256) named `common_name`.
    pub fn generate(common_name: &str) -> Result<Arc<Self>, KitError> {
        crate::install_crypto_provider();
        let params = ca_params(common_name)?;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Arc::new(Self::from_parts(
            params,
            key,
            cert.der().clone(),
            cert.pem(),
        )))
    }

    /// The CA kept in `dir` (`ca.pem` and `ca-key.pem`), or a fresh one named `common_name`
    /// written there (the folder is created; the key file gets mode 0600) when neither file exists.
    ///
    /// A reloaded CA keeps the stored certificate byte for byte (operators have told their servers
    /// to trust exactly that file) and signs with the stored key under parameters rebuilt from
    /// `common_name`, so leaves name the same issuer. Before it is returned it signs a probe leaf
    /// and verifies it against the stored certificate: a key from another CA, a different
    /// `common_name` or a folder holding only one of the two files is an error
    /// ([`KitError::StoredCa`]), never a silently regenerated CA.
    pub fn load_or_generate(dir: &Path, common_name: &str) -> Result<Arc<Self>, KitError> {
        crate::install_crypto_provider();
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let stored = |reason: String| KitError::StoredCa {
            dir: dir.to_owned(),
            reason,
        };
        match (cert_path.try_exists()?, key_path.try_exists()?) {
            (false, false) => {
                std::fs::create_dir_all(dir)?;
                let params = ca_params(common_name)?;
                let key = KeyPair::generate()?;
                let cert = params.self_signed(&key)?;
                // The key first: a half-written folder then fails loudly on the next load
                // instead of holding a certificate nobody can sign with.
                write_private(&key_path, key.serialize_pem().as_bytes())?;
                std::fs::write(&cert_path, cert.pem())?;
                Ok(Arc::new(Self::from_parts(
                    params,
                    key,
                    cert.der().clone(),
                    cert.pem(),
                )))
            }
            (true, true) => {
                let cert_pem = std::fs::read_to_string(&cert_path)?;
                let key_pem = std::fs::read_to_string(&key_path)?;
                let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
                    .map_err(|e| stored(format!("{CA_CERT_FILE} holds no certificate: {e}")))?;
                let key = KeyPair::from_pem(&key_pem)
                    .map_err(|e| stored(format!("{CA_KEY_FILE} holds no usable key: {e}")))?;
                let ca = Self::from_parts(ca_params(common_name)?, key, cert_der, cert_pem);
                ca.verify_own_leaf().map_err(|e| {
                    stored(format!(
                        "a leaf signed with {CA_KEY_FILE} as {common_name:?} does not verify \
                         against {CA_CERT_FILE} ({e}); the files belong to different CAs or the \
                         CA had another name"
                    ))
                })?;
                Ok(Arc::new(ca))
            }
            (has_cert, _) => {
                let (present, missing) = if has_cert {
                    (CA_CERT_FILE, CA_KEY_FILE)
                } else {
                    (CA_KEY_FILE, CA_CERT_FILE)
                };
                Err(stored(format!(
                    "{present} exists but {missing} does not; restore it, or remove the folder \
                     to make a new CA (servers must then trust the new {CA_CERT_FILE})"
                )))
            }
        }
    }

    fn from_parts(
        params: CertificateParams,
        key: KeyPair,
        cert_der: CertificateDer<'static>,
        cert_pem: String,
    ) -> Self {
        Self {
            issuer: Issuer::new(params, key),
            cert_der,
            cert_pem,
            leaves: Mutex::new(HashMap::new()),
        }
    }

    /// Signs a probe leaf and verifies it with the certificate clients are given.
    fn verify_own_leaf(&self) -> Result<(), String> {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let leaf = leaf_params(PROBE_NAME)
            .and_then(|params| params.signed_by(&key, &self.issuer))
            .map_err(|e| e.to_string())?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.cert_der.clone())
            .map_err(|e| e.to_string())?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()
        .map_err(|e| e.to_string())?;
        let name = ServerName::try_from(PROBE_NAME).map_err(|e| e.to_string())?;
        verifier
            .verify_server_cert(leaf.der(), &[], &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The CA certificate in PEM form: what a client must trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate in DER form.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Writes the CA certificate (PEM) to `path`, e.g. for `curl --cacert`.
    pub fn write_pem(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, &self.cert_pem)
    }

    /// The leaf for `name` (a DNS name or an IP literal), issued on first use and cached.
    pub fn leaf(&self, name: &str) -> Result<Arc<CertifiedKey>, KitError> {
        let name = name.to_ascii_lowercase();
        let mut leaves = self
            .leaves
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = leaves.get(&name) {
            return Ok(found.clone());
        }
        let key = KeyPair::generate()?;
        let params = leaf_params(&name)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let certified = Arc::new(CertifiedKey::from_der(
            vec![cert.der().clone(), self.cert_der.clone()],
            key_der,
            &provider,
        )?);
        leaves.insert(name, certified.clone());
        Ok(certified)
    }

    /// A new leaf for `name` with its own key, as PEM text for servers that read certificate
    /// files (`--tls-cert`/`--tls-key`); not cached, and not the leaf [`TestCa::leaf`] serves.
    pub fn issue_pem(&self, name: &str) -> Result<IssuedPem, KitError> {
        let key = KeyPair::generate()?;
        let cert = leaf_params(&name.to_ascii_lowercase())?.signed_by(&key, &self.issuer)?;
        Ok(IssuedPem {
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }

    /// A rustls server configuration that answers every SNI name with a leaf from this CA and
    /// offers HTTP/2 and HTTP/1.1 through ALPN.
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        crate::install_crypto_provider();
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver(self.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A leaf certificate chain and its key in PEM form (see [`TestCa::issue_pem`]).
#[derive(Clone)]
pub struct IssuedPem {
    /// The leaf certificate followed by the CA certificate.
    pub chain_pem: String,
    /// The leaf's PKCS#8 private key.
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedPem")
            .field("chain_pem", &self.chain_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// The CA's certificate parameters: a pure function of the name, so a reloaded key signs leaves
/// whose issuer matches the stored certificate's subject.
fn ca_params(common_name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "cimd-conformance test CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// A leaf's parameters for `name` (lower-case DNS name or IP literal).
fn leaf_params(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    if name == NO_SNI_NAME {
        // Clients that dial 127.0.0.1 or [::1] directly send no SNI and check IP SANs.
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }
    Ok(params)
}

/// Writes a file only its owner can read (a private key), refusing to overwrite one.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

/// Issues a leaf for the SNI name of each TLS handshake.
#[derive(Debug)]
struct SniResolver(Arc<TestCa>);

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().unwrap_or(NO_SNI_NAME);
        match self.0.leaf(name) {
            Ok(leaf) => Some(leaf),
            Err(error) => {
                // A name rcgen cannot encode: fail this handshake only.
                tracing::warn!(%name, %error, "no certificate for SNI name");
                None
            }
        }
    }
}
