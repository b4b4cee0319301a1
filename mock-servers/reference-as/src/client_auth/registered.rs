//! Registered clients: the operator's `[[clients]]` and, built by [`crate::dcr`], dynamically
//! registered ones.
//!
//! Client IDs of registered clients never look like URLs (no `https://` prefix), so they can never
//! collide with ephemeral clients. Secrets are kept only as hashes, in one of two encodings:
//! - `pbkdf2-sha256$ITERATIONS$SALT$HASH` (the password encoding of [`crate::store`]) for secrets
//!   a person may have chosen; a plaintext secret in the config file is hashed this way at start.
//!   Verification costs one PBKDF2 derivation (tens of milliseconds) on the blocking pool.
//! - `sha256$DIGEST` (base64url) for generated secrets of 128 bits or more, where guessing is
//!   hopeless and a slow hash would only cost throughput: one SHA-256 per request. Dynamic
//!   registration issues its 256-bit secrets this way.

use std::fmt;

use aws_lc_rs::{constant_time, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::TokenAuthMethod;
use super::assertion::ALLOWED_ALGORITHMS;
use super::jwks::KeySet;
use crate::cimd::looks_like_url;
use crate::config::ClientConfig;
use crate::error::AsError;
use crate::store::{PasswordHash, hash_password};

/// Grant types a registered client may be given.
const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
];

/// A hashed client secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretHash {
    /// A salted PBKDF2-HMAC-SHA256 hash, for secrets people choose.
    Pbkdf2(PasswordHash),
    /// A plain SHA-256 digest, for generated high-entropy secrets.
    Sha256(Vec<u8>),
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pbkdf2(_) => f.write_str("SecretHash::Pbkdf2(<redacted>)"),
            Self::Sha256(_) => f.write_str("SecretHash::Sha256(<redacted>)"),
        }
    }
}

impl SecretHash {
    /// The prefix of the SHA-256 encoding, `sha256$DIGEST`.
    pub const SHA256_PREFIX: &'static str = "sha256$";

    /// The SHA-256 form of a generated secret.
    pub fn sha256_of(secret: &str) -> Self {
        Self::Sha256(
            digest::digest(&digest::SHA256, secret.as_bytes())
                .as_ref()
                .to_vec(),
        )
    }

    /// Parses either encoding; `None` for anything else (a plaintext secret).
    pub fn decode(encoded: &str) -> Option<Self> {
        if let Some(digest) = encoded.strip_prefix(Self::SHA256_PREFIX) {
            let bytes = URL_SAFE_NO_PAD.decode(digest).ok()?;
            return (bytes.len() == digest::SHA256_OUTPUT_LEN).then_some(Self::Sha256(bytes));
        }
        PasswordHash::decode(encoded).map(Self::Pbkdf2)
    }

    /// The encoded form, for config files and databases.
    pub fn encode(&self) -> String {
        match self {
            Self::Pbkdf2(hash) => hash.encode(),
            Self::Sha256(bytes) => {
                format!("{}{}", Self::SHA256_PREFIX, URL_SAFE_NO_PAD.encode(bytes))
            }
        }
    }

    /// The hash of a configured secret: decoded when encoded, else PBKDF2 of the plaintext.
    pub async fn configured(value: String) -> Result<Self, AsError> {
        match Self::decode(&value) {
            Some(hash) => Ok(hash),
            None => hash_password(value).await.map(Self::Pbkdf2),
        }
    }

    /// Whether `presented` is the secret, in constant time (PBKDF2 on the blocking pool).
    pub async fn verify(&self, presented: &str) -> Result<bool, AsError> {
        match self {
            Self::Sha256(stored) => {
                let computed = digest::digest(&digest::SHA256, presented.as_bytes());
                Ok(constant_time::verify_slices_are_equal(stored, computed.as_ref()).is_ok())
            }
            Self::Pbkdf2(hash) => {
                let hash = hash.clone();
                let presented = presented.to_owned();
                tokio::task::spawn_blocking(move || hash.verify(&presented))
                    .await
                    .map_err(|_| AsError::Crypto("secret verification task failed"))
            }
        }
    }
}

/// Where a registered client's public keys come from.
#[derive(Debug, Clone)]
pub enum ClientKeys {
    /// Registered inline (parsed once).
    Inline(KeySet),
    /// Fetched from this https URL through the JWKS cache.
    Uri(String),
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    /// The client_id (never a URL).
    pub client_id: String,
    /// Display name for the consent page.
    pub client_name: Option<String>,
    /// How it authenticates at the token endpoint.
    pub auth_method: TokenAuthMethod,
    /// The hashed secret (`client_secret_basic` / `client_secret_post`).
    pub secret: Option<SecretHash>,
    /// Its public keys (`private_key_jwt`).
    pub keys: Option<ClientKeys>,
    /// The algorithm its assertions must use, if pinned.
    pub signing_alg: Option<String>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Grant types it may use.
    pub grant_types: Vec<String>,
    /// The scopes it may ask for (`None`: any).
    pub scope: Option<Vec<String>>,
}

impl RegisteredClient {
    /// Builds a client from its `[[clients]]` entry (checked by [`check_config`]), hashing a
    /// plaintext secret.
    pub async fn from_config(config: ClientConfig) -> Result<Self, AsError> {
        check_config(&config).map_err(AsError::Config)?;
        let secret = match config.client_secret {
            Some(secret) => Some(SecretHash::configured(secret.0).await?),
            None => None,
        };
        let keys = match (config.jwks, config.jwks_uri) {
            (Some(jwks), _) => Some(ClientKeys::Inline(
                KeySet::parse(&jwks).map_err(AsError::Config)?,
            )),
            (None, Some(uri)) => Some(ClientKeys::Uri(uri)),
            (None, None) => None,
        };
        Ok(Self {
            client_id: config.client_id,
            client_name: config.client_name,
            auth_method: config.token_endpoint_auth_method,
            secret,
            keys,
            signing_alg: config.token_endpoint_auth_signing_alg,
            redirect_uris: config.redirect_uris,
            grant_types: config.grant_types,
            scope: config
                .scope
                .map(|s| s.split(' ').map(str::to_owned).collect()),
        })
    }

    /// Whether the client was given `grant_type`.
    pub fn has_grant_type(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    /// The requested scopes, deduplicated in order, if all are registered for the client.
    pub fn filter_scopes(&self, requested: &str) -> Result<String, String> {
        let mut granted: Vec<&str> = Vec::new();
        for scope in requested.split(' ').filter(|s| !s.is_empty()) {
            if let Some(allowed) = &self.scope
                && !allowed.iter().any(|a| a == scope)
            {
                return Err(format!(
                    "scope {scope:?} is not among the scopes registered for client {:?}",
                    self.client_id
                ));
            }
            if !granted.contains(&scope) {
                granted.push(scope);
            }
        }
        Ok(granted.join(" "))
    }
}

/// Checks one `[[clients]]` entry: an id that is not a URL, the credentials its method needs
/// and no others, known grant types, redirect URIs for the code grant.
pub fn check_config(client: &ClientConfig) -> Result<(), String> {
    let id = &client.client_id;
    let bad = |why: String| Err(format!("client {id:?}: {why}"));
    if id.is_empty() || !id.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return bad("client_id must be non-empty printable ASCII without spaces".to_owned());
    }
    if looks_like_url(id) || id.to_ascii_lowercase().starts_with("https://") {
        return bad(
            "client_id must not be a URL: https URLs are client metadata documents".to_owned(),
        );
    }
    let method = client.token_endpoint_auth_method;
    let has_secret = client.client_secret.is_some();
    let has_keys = client.jwks.is_some() || client.jwks_uri.is_some();
    match method {
        TokenAuthMethod::ClientSecretBasic | TokenAuthMethod::ClientSecretPost => {
            if !has_secret || has_keys {
                return bad(format!(
                    "{method} needs client_secret and no jwks or jwks_uri"
                ));
            }
        }
        TokenAuthMethod::PrivateKeyJwt => {
            if has_secret || client.jwks.is_some() == client.jwks_uri.is_some() {
                return bad(format!(
                    "{method} needs exactly one of jwks and jwks_uri, and no client_secret"
                ));
            }
        }
        TokenAuthMethod::None => {
            if has_secret || has_keys {
                return bad("none takes no client_secret, jwks or jwks_uri".to_owned());
            }
        }
    }
    if let Some(jwks) = &client.jwks {
        KeySet::parse(jwks).map_err(|e| format!("client {id:?}: {e}"))?;
    }
    if let Some(uri) = &client.jwks_uri
        && !url::Url::parse(uri).is_ok_and(|u| u.scheme() == "https" && u.host().is_some())
    {
        return bad(format!("jwks_uri {uri:?} must be an https URL"));
    }
    if let Some(alg) = &client.token_endpoint_auth_signing_alg
        && !ALLOWED_ALGORITHMS.contains(&alg.as_str())
    {
        return bad(format!(
            "token_endpoint_auth_signing_alg {alg:?} is not one of {}",
            ALLOWED_ALGORITHMS.join(", ")
        ));
    }
    for grant in &client.grant_types {
        if !GRANT_TYPES.contains(&grant.as_str()) {
            return bad(format!(
                "grant type {grant:?} is not one of {}",
                GRANT_TYPES.join(", ")
            ));
        }
    }
    let has = |g: &str| client.grant_types.iter().any(|x| x == g);
    if has("client_credentials") && !method.is_confidential() {
        return bad("client_credentials needs a client that authenticates".to_owned());
    }
    if has("authorization_code") && client.redirect_uris.is_empty() {
        return bad("the authorization_code grant needs redirect_uris".to_owned());
    }
    for uri in &client.redirect_uris {
        if !url::Url::parse(uri).is_ok_and(|u| !u.cannot_be_a_base()) || uri.contains('#') {
            return bad(format!(
                "redirect URI {uri:?} must be an absolute URL without a fragment"
            ));
        }
    }
    if let Some(scope) = &client.scope
        && (scope.is_empty() || scope.split(' ').any(str::is_empty))
    {
        return bad("scope must be scope names separated by single spaces".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::ClientSecret;

    fn config(method: TokenAuthMethod) -> ClientConfig {
        ClientConfig {
            client_id: "backend".to_owned(),
            client_name: None,
            token_endpoint_auth_method: method,
            client_secret: Some(ClientSecret("s3cret".to_owned())),
            jwks: None,
            jwks_uri: None,
            token_endpoint_auth_signing_alg: None,
            redirect_uris: Vec::new(),
            grant_types: vec!["client_credentials".to_owned()],
            scope: None,
        }
    }

    #[tokio::test]
    async fn a_sha256_secret_verifies_fast_and_round_trips() {
        let hash = SecretHash::sha256_of("generated-secret");
        let decoded = SecretHash::decode(&hash.encode()).unwrap();
        assert!(decoded.verify("generated-secret").await.unwrap());
        assert!(!decoded.verify("generated-secreT").await.unwrap());
        assert!(SecretHash::decode("sha256$AAAA").is_none());
        assert!(format!("{decoded:?}").contains("redacted"));
    }

    #[tokio::test]
    async fn a_plaintext_configured_secret_is_hashed_with_pbkdf2() {
        let hash = SecretHash::configured("s3cret".to_owned()).await.unwrap();
        assert!(matches!(hash, SecretHash::Pbkdf2(_)));
        assert!(hash.verify("s3cret").await.unwrap());
        assert!(!hash.verify("s3cre").await.unwrap());
    }

    #[test]
    fn client_ids_that_are_urls_are_refused() {
        for id in ["https://app.example/c", "HTTPS://x", "has space", ""] {
            let mut c = config(TokenAuthMethod::ClientSecretBasic);
            id.clone_into(&mut c.client_id);
            assert!(check_config(&c).is_err(), "{id}");
        }
        assert!(check_config(&config(TokenAuthMethod::ClientSecretBasic)).is_ok());
    }

    #[test]
    fn each_method_needs_its_own_credentials_and_no_others() {
        assert!(check_config(&config(TokenAuthMethod::PrivateKeyJwt)).is_err());
        let mut keyed = config(TokenAuthMethod::PrivateKeyJwt);
        keyed.client_secret = None;
        assert!(check_config(&keyed).is_err(), "no keys at all");
        keyed.jwks_uri = Some("https://keys.example/jwks".to_owned());
        assert!(check_config(&keyed).is_ok());
        keyed.jwks_uri = Some("http://keys.example/jwks".to_owned());
        assert!(check_config(&keyed).is_err(), "plain http jwks_uri");

        let mut public = config(TokenAuthMethod::None);
        public.client_secret = None;
        assert!(
            check_config(&public).is_err(),
            "client_credentials for a public client"
        );
        public.grant_types = vec!["authorization_code".to_owned()];
        assert!(
            check_config(&public).is_err(),
            "code grant without redirect URIs"
        );
        public.redirect_uris = vec!["https://app.example/cb".to_owned()];
        assert!(check_config(&public).is_ok());
        public.grant_types.push("password".to_owned());
        assert!(check_config(&public).is_err(), "unknown grant type");
    }
}
