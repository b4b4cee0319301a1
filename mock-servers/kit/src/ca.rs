//! A test certificate authority generated at run time.
//!
//! Real CIMD client IDs carry real host names, so the mock hosts need certificates for those names.
//! Rather than pre-declaring names, [`TestCa::server_config`] installs a rustls certificate
//! resolver that issues (and caches) a leaf for the SNI name of each new connection. Clients trust
//! the CA's certificate (`TestCa::cert_pem`) and nothing else.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::KitError;

/// Name used for connections that carry no SNI (clients connecting to an IP literal).
const NO_SNI_NAME: &str = "localhost";

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
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Arc::new(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            leaves: Mutex::new(HashMap::new()),
        }))
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
        let mut params = CertificateParams::new(vec![name.clone()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, name.as_str());
        if name == NO_SNI_NAME {
            // Clients that dial 127.0.0.1 or [::1] directly send no SNI and check IP SANs.
            params
                .subject_alt_names
                .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            params
                .subject_alt_names
                .push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        }
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
