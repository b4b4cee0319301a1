//! Access tokens: an ES256 key generated at start, JWT access tokens (RFC 9068 shape) and the
//! JWKS document that lets resource servers verify them.
//!
//! The key lives only in memory: a restart rotates it, which is what a test server wants. The
//! `kid` is the key's RFC 7638 thumbprint, so it is stable for the key and needs no bookkeeping.

use std::fmt;
use std::time::Duration;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::error::AsError;
use crate::store::{Secret, unix_now};

/// Claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The issuer identifier.
    pub iss: String,
    /// The user (username).
    pub sub: String,
    /// The audience: the RFC 8707 resource if one was requested, else the client id.
    pub aud: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated granted scope.
    pub scope: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

/// What an access token is issued for.
#[derive(Debug, Clone, Copy)]
pub struct AccessGrant<'a> {
    /// The user's username.
    pub subject: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// The granted scope.
    pub scope: &'a str,
    /// The RFC 8707 resource, if any.
    pub resource: Option<&'a str>,
}

/// Signs access tokens and publishes the verification key.
pub struct TokenSigner {
    issuer: String,
    key: EncodingKey,
    kid: String,
    jwks: JwkSet,
    ttl: Duration,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Generates a fresh P-256 key for `issuer`; tokens live for `ttl`.
    pub fn generate(issuer: &str, ttl: Duration) -> Result<Self, AsError> {
        // Naming the provider makes a missing crypto feature a compile error instead of a panic at
        // the first signature; an Err only means a provider is already installed.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| AsError::Crypto("P-256 key generation failed"))?;
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            issuer: issuer.to_owned(),
            key,
            kid,
            jwks: JwkSet { keys: vec![jwk] },
            ttl,
        })
    }

    /// The public keys, for `/jwks`.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// The signing key's id (its RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Access-token lifetime in seconds, for `expires_in`.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs()
    }

    /// Signs an access token for `grant`.
    pub fn access_token(&self, grant: AccessGrant<'_>) -> Result<String, AsError> {
        let iat = unix_now();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: grant.subject.to_owned(),
            // BCP-07: audience-restricted to the requested resource when there is one.
            aud: grant.resource.unwrap_or(grant.client_id).to_owned(),
            client_id: grant.client_id.to_owned(),
            scope: grant.scope.to_owned(),
            iat,
            exp: iat.saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)),
            jti: Secret::generate()?.expose().to_owned(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        // RFC 9068 §2.1: explicit typing keeps access tokens from being mistaken for ID tokens.
        header.typ = Some("at+jwt".to_owned());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    #[test]
    fn access_tokens_verify_against_the_published_jwk_and_carry_the_resource_as_audience() {
        let signer = TokenSigner::generate("https://as.test", Duration::from_mins(5)).unwrap();
        let token = signer
            .access_token(AccessGrant {
                subject: "alice",
                client_id: "https://app.example/client.json",
                scope: "read",
                resource: Some("https://mcp.example/"),
            })
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        let jwk = signer.jwks().find(header.kid.as_deref().unwrap()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["https://mcp.example/"]);
        validation.set_issuer(&["https://as.test"]);
        let data = jsonwebtoken::decode::<AccessClaims>(
            &token,
            &DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(data.claims.client_id, "https://app.example/client.json");
        assert_eq!(data.claims.exp - data.claims.iat, 300);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    }
}
