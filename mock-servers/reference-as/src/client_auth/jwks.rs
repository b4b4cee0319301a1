//! Client public keys: JWK Sets parsed into verification keys, and the JWKS cache.
//!
//! Only asymmetric signature keys are kept (EC P-256 and P-384, Ed25519, RSA of at least 2048
//! bits); a set carrying private or symmetric key material is refused outright, since whoever
//! published it has leaked it (CIMD-DOC-08). Keys marked for encryption, or of kinds this server
//! cannot verify with, are left out.
//!
//! `jwks_uri` sets come through the resolver's JSON cache ([`ClientResolver::get_json`]): the same
//! SSRF-guarded fetch with the same limits as metadata documents (CIMD-FETCH-02/03/04,
//! CIMD-SEC-01/06) and the same HTTP caching rules. A key rotation shows up as an unknown `kid`:
//! the set is then fetched again at once, but at most once per client per refresh interval, so a
//! stream of made-up `kid`s cannot turn the AS into a request amplifier.
//!
//! Every key carries its RFC 7638 thumbprint, so a grant can be bound to the key that opened it
//! (PKJWT-15) whatever `kid` the client gives that key later.

use std::fmt::{self, Write as _};
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::cimd::{ClientResolver, EphemeralPolicy};
use crate::config::ClientAuthConfig;
use crate::faults::{Fault, Faults};

/// The most keys read from one set (a client needs a few, during a rotation two or three).
const MAX_KEYS: usize = 20;

/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS: usize = 256;

/// The longest refresh interval honoured (moka refuses absurd durations).
const MAX_INTERVAL: Duration = Duration::from_hours(24);

/// JWK members that carry private or symmetric key material.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a key can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    P256,
    P384,
    Ed25519,
    Rsa,
}

impl KeyKind {
    fn verifies(self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (Self::P256, Algorithm::ES256)
                | (Self::P384, Algorithm::ES384)
                | (Self::Ed25519, Algorithm::EdDSA)
                | (Self::Rsa, Algorithm::RS256 | Algorithm::PS256)
        )
    }
}

/// The RFC 7638 JWK thumbprint of a public key (SHA-256, base64url): the key's identity,
/// independent of its `kid`, `alg` and `use`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyThumbprint(String);

impl KeyThumbprint {
    /// A thumbprint as stored (base64url of the SHA-256 digest).
    pub fn new(thumbprint: String) -> Self {
        Self(thumbprint)
    }

    /// The thumbprint as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The thumbprint of a public JWK, or `None` when a required member is missing or not a
    /// string. RFC 7638 §3.2: only the required members of the key type, in lexicographic order,
    /// without whitespace; serde_json escapes strings as §3.3 asks.
    fn of(key: &Value, kind: KeyKind) -> Option<Self> {
        let members: &[&str] = match kind {
            KeyKind::P256 | KeyKind::P384 => &["crv", "kty", "x", "y"],
            KeyKind::Ed25519 => &["crv", "kty", "x"],
            KeyKind::Rsa => &["e", "kty", "n"],
        };
        let mut canonical = String::from("{");
        for (i, member) in members.iter().enumerate() {
            let value = key.get(*member)?.as_str()?;
            if i > 0 {
                canonical.push(',');
            }
            let _ = write!(canonical, "\"{member}\":{}", Value::from(value));
        }
        canonical.push('}');
        let digest = digest::digest(&digest::SHA256, canonical.as_bytes());
        Some(Self(URL_SAFE_NO_PAD.encode(digest)))
    }
}

impl fmt::Display for KeyThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One verification key.
#[derive(Clone)]
pub struct PublicKey {
    kid: Option<String>,
    kind: KeyKind,
    alg: Option<Algorithm>,
    thumbprint: KeyThumbprint,
    key: DecodingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Whether `signature` over `message` verifies with this key under `alg`.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &str) -> bool {
        jsonwebtoken::crypto::verify(signature, message, &self.key, alg).unwrap_or(false)
    }

    /// The key's RFC 7638 thumbprint.
    pub fn thumbprint(&self) -> &KeyThumbprint {
        &self.thumbprint
    }
}

/// The usable signature keys of a JWK Set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<PublicKey>,
    /// Keys left out (encryption keys, unsupported kinds, short RSA moduli, malformed members).
    skipped: usize,
}

impl KeySet {
    /// Parses a JWK Set. Refuses anything that is not `{"keys": [...]}` of objects, sets with
    /// more than `MAX_KEYS` (20) keys, and any private or symmetric key material.
    pub fn parse(jwks: &Value) -> Result<Self, String> {
        let Some(keys) = jwks
            .as_object()
            .and_then(|set| set.get("keys"))
            .and_then(Value::as_array)
        else {
            return Err(
                "the key set is not a JWK Set (an object with a \"keys\" array)".to_owned(),
            );
        };
        if keys.len() > MAX_KEYS {
            return Err(format!(
                "the key set has {} keys; at most {MAX_KEYS} are read",
                keys.len()
            ));
        }
        let mut set = Self::default();
        for (index, key) in keys.iter().enumerate() {
            let Some(object) = key.as_object() else {
                return Err(format!("key #{index} of the key set is not a JSON object"));
            };
            let private: Vec<&str> = PRIVATE_MEMBERS
                .iter()
                .copied()
                .filter(|m| object.contains_key(*m))
                .collect();
            if !private.is_empty() || object.get("kty").and_then(Value::as_str) == Some("oct") {
                // CIMD-DOC-08: a published private or symmetric key is a leaked key.
                return Err(format!(
                    "key #{index} of the key set carries private or symmetric key material ({}); \
                     publish public keys only (CIMD-DOC-08)",
                    if private.is_empty() {
                        "kty \"oct\"".to_owned()
                    } else {
                        private.join(", ")
                    }
                ));
            }
            match usable(key) {
                Some(public) => set.keys.push(public),
                None => set.skipped += 1,
            }
        }
        Ok(set)
    }

    /// The keys that can verify `alg`, narrowed to `kid` when the assertion names one.
    pub fn candidates(&self, alg: Algorithm, kid: Option<&str>) -> Vec<&PublicKey> {
        self.keys
            .iter()
            .filter(|k| k.kind.verifies(alg) && k.alg.is_none_or(|a| a == alg))
            .filter(|k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
            .collect()
    }

    /// A short account of the set for error messages: `2 usable keys (kid "a", "b")`.
    pub fn describe(&self) -> String {
        let kids: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                k.kid
                    .as_deref()
                    .map_or("(no kid)".to_owned(), |k| format!("{k:?}"))
            })
            .collect();
        let mut text = format!("{} usable key(s)", self.keys.len());
        if !kids.is_empty() {
            let _ = write!(text, " with kid {}", kids.join(", "));
        }
        if self.skipped > 0 {
            let _ = write!(text, ", {} key(s) not usable for signatures", self.skipped);
        }
        text
    }
}

/// The verification key of one public JWK, or `None` if it cannot verify signatures here.
fn usable(key: &Value) -> Option<PublicKey> {
    if key.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return None;
    }
    let key_kind = match (
        key.get("kty").and_then(Value::as_str),
        key.get("crv").and_then(Value::as_str),
    ) {
        (Some("EC"), Some("P-256")) => KeyKind::P256,
        (Some("EC"), Some("P-384")) => KeyKind::P384,
        (Some("OKP"), Some("Ed25519")) => KeyKind::Ed25519,
        (Some("RSA"), _) => KeyKind::Rsa,
        _ => return None,
    };
    if key_kind == KeyKind::Rsa {
        let modulus = key.get("n").and_then(Value::as_str)?;
        // base64url without padding: 4 characters carry 3 bytes.
        if modulus.len() * 3 / 4 < MIN_RSA_MODULUS {
            return None;
        }
    }
    let alg = match key.get("alg") {
        None => None,
        Some(alg) => {
            let alg: Algorithm = alg.as_str()?.parse().ok()?;
            if !key_kind.verifies(alg) {
                return None;
            }
            Some(alg)
        }
    };
    let kid = match key.get("kid") {
        None => None,
        Some(kid) => Some(kid.as_str()?.to_owned()),
    };
    let thumbprint = KeyThumbprint::of(key, key_kind)?;
    let jwk: Jwk = serde_json::from_value(key.clone()).ok()?;
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some(PublicKey {
        kid,
        kind: key_kind,
        alg,
        thumbprint,
        key: decoding,
    })
}

/// Client key sets from `jwks_uri`, through the resolver's JSON cache, with a rate-limited
/// forced refresh.
pub struct JwksCache {
    /// Clients whose set was force-refreshed within the refresh interval.
    refreshed: moka::future::Cache<String, ()>,
    faults: Faults,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("recently_refreshed", &self.refreshed.entry_count())
            .finish_non_exhaustive()
    }
}

/// How a forced refresh went.
#[derive(Debug)]
pub enum Refresh {
    /// The set was fetched again.
    Fetched(Result<KeySet, String>),
    /// This client's set was refreshed less than the refresh interval ago.
    TooSoon,
    /// Refreshing is switched off (the `no-jwks-refresh` fault).
    Off,
}

impl JwksCache {
    /// Refreshes at most once per client per `config.jwks_refresh_interval_secs`, remembering
    /// as many clients as `policy` caches documents.
    pub fn new(policy: &EphemeralPolicy, config: &ClientAuthConfig, faults: &Faults) -> Self {
        let interval = Duration::from_secs(config.jwks_refresh_interval_secs).min(MAX_INTERVAL);
        Self {
            refreshed: moka::future::Cache::builder()
                .max_capacity(policy.cache.max_entries)
                .time_to_live(interval)
                .build(),
            faults: faults.clone(),
        }
    }

    /// The set at `uri`, cached or fetched. The error is a description ending in the
    /// requirement it names.
    pub async fn get(&self, resolver: &ClientResolver, uri: &str) -> Result<KeySet, String> {
        let json = resolver.get_json(uri).await.map_err(|e| e.description)?;
        parse_fetched(uri, &json)
    }

    /// Fetches `client_id`'s set at `uri` again, unless that was done less than the refresh
    /// interval ago.
    pub async fn refresh(&self, resolver: &ClientResolver, client_id: &str, uri: &str) -> Refresh {
        if self.faults.on(Fault::NoJwksRefresh) {
            return Refresh::Off;
        }
        // One atomic insert decides which of many concurrent requests may refresh.
        let entry = self.refreshed.entry_by_ref(client_id).or_insert(()).await;
        if !entry.is_fresh() {
            return Refresh::TooSoon;
        }
        tracing::debug!(client_id, uri, "unknown key: fetching the JWKS again");
        Refresh::Fetched(match resolver.reload_json(uri).await {
            Ok(json) => parse_fetched(uri, &json),
            Err(e) => Err(e.description),
        })
    }
}

/// A fetched set, with errors naming where it came from.
fn parse_fetched(uri: &str, json: &Value) -> Result<KeySet, String> {
    KeySet::parse(json).map_err(|e| format!("the client's jwks_uri {uri:?}: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    const P256: (&str, &str) = (
        "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    );

    fn ec(kid: &str) -> Value {
        json!({ "kty": "EC", "crv": "P-256", "x": P256.0, "y": P256.1, "kid": kid })
    }

    #[test]
    fn keys_are_selected_by_algorithm_and_kid() {
        let set = KeySet::parse(&json!({ "keys": [ec("a"), ec("b")] })).unwrap();
        assert_eq!(set.candidates(Algorithm::ES256, Some("b")).len(), 1);
        assert_eq!(set.candidates(Algorithm::ES256, None).len(), 2);
        assert!(set.candidates(Algorithm::ES256, Some("c")).is_empty());
        assert!(set.candidates(Algorithm::ES384, None).is_empty());
        assert!(set.candidates(Algorithm::RS256, None).is_empty());
        assert!(
            set.describe().contains("\"a\", \"b\""),
            "{}",
            set.describe()
        );
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638 §3.1: the example RSA key and its thumbprint.
        let rsa = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let set = KeySet::parse(&json!({ "keys": [rsa] })).unwrap();
        let key = set.candidates(Algorithm::RS256, None)[0];
        assert_eq!(
            key.thumbprint().as_str(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // The kid is no part of a key's identity.
        let set = KeySet::parse(&json!({ "keys": [ec("a"), ec("b")] })).unwrap();
        let keys = set.candidates(Algorithm::ES256, None);
        assert_eq!(keys[0].thumbprint(), keys[1].thumbprint());
    }

    #[test]
    fn encryption_keys_mismatched_algs_and_short_rsa_keys_are_left_out() {
        let mut enc = ec("enc");
        enc["use"] = json!("enc");
        let mut wrong_alg = ec("alg");
        wrong_alg["alg"] = json!("RS256");
        let short_rsa = json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa" });
        let set = KeySet::parse(&json!({ "keys": [enc, wrong_alg, short_rsa] })).unwrap();
        assert!(set.candidates(Algorithm::ES256, None).is_empty());
        assert!(set.candidates(Algorithm::RS256, None).is_empty());
        assert!(set.describe().contains("3 key(s) not usable"));
    }

    #[test]
    fn private_and_symmetric_keys_refuse_the_whole_set() {
        let mut private = ec("a");
        private["d"] = json!("AAAA");
        assert!(
            KeySet::parse(&json!({ "keys": [private] }))
                .unwrap_err()
                .contains('d')
        );
        let oct = json!({ "kty": "oct", "k": "c2VjcmV0" });
        assert!(KeySet::parse(&json!({ "keys": [oct] })).is_err());
        assert!(KeySet::parse(&json!([ec("a")])).is_err());
        assert!(KeySet::parse(&json!({ "keys": [1] })).is_err());
    }
}
