//! Shared fixture for the client-authentication tests: the committed test keys
//! (`fixtures/keys`), their public JWKs, and a small signer for client assertions that builds
//! good and deliberately bad JWTs without going through the AS's own code.

#![allow(clippy::unwrap_used, dead_code, clippy::missing_panics_doc)]

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

/// The client assertion type of RFC 7523 §2.2.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A committed test key: its file under `fixtures/keys`, its `kid` and the algorithm it signs.
#[derive(Debug, Clone, Copy)]
pub struct TestKey {
    pub file: &'static str,
    pub kid: &'static str,
    pub alg: Algorithm,
}

/// The P-256 key most clients publish.
pub const A: TestKey = TestKey {
    file: "es256-a.pem",
    kid: "a",
    alg: Algorithm::ES256,
};
/// A second P-256 key, published after a rotation.
pub const B: TestKey = TestKey {
    file: "es256-b.pem",
    kid: "b",
    alg: Algorithm::ES256,
};
/// A P-256 key no client publishes.
pub const STRANGER: TestKey = TestKey {
    file: "es256-stranger.pem",
    kid: "stranger",
    alg: Algorithm::ES256,
};
/// A P-384 key.
pub const P384: TestKey = TestKey {
    file: "es384.pem",
    kid: "es384",
    alg: Algorithm::ES384,
};
/// An Ed25519 key (PKCS#8 v1, as jsonwebtoken needs).
pub const ED25519: TestKey = TestKey {
    file: "ed25519.pem",
    kid: "ed25519",
    alg: Algorithm::EdDSA,
};
/// A 2048-bit RSA key (RS256 and PS256).
pub const RSA: TestKey = TestKey {
    file: "rsa.pem",
    kid: "rsa",
    alg: Algorithm::RS256,
};

/// Every committed key.
pub const ALL_KEYS: [TestKey; 6] = [A, B, STRANGER, P384, ED25519, RSA];

/// The committed key sets: file name and the keys in it.
pub const KEY_SETS: [(&str, &[TestKey]); 3] = [
    ("jwks-a.json", &[A]),
    ("jwks-ab.json", &[A, B]),
    ("jwks-all.json", &[A, P384, ED25519, RSA]),
];

/// The repository's fixtures folder.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

impl TestKey {
    /// The private key PEM.
    pub fn pem(self) -> Vec<u8> {
        std::fs::read(fixtures().join("keys").join(self.file)).unwrap()
    }

    /// The signing key.
    pub fn encoding_key(self) -> EncodingKey {
        let pem = self.pem();
        match self.alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
            _ => EncodingKey::from_rsa_pem(&pem),
        }
        .unwrap()
    }

    /// The public JWK: kid and `use: sig`, no `alg` (so the RSA key serves RS256 and PS256).
    pub fn public_jwk(self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.encoding_key(), self.alg).unwrap();
        jwk.common.key_algorithm = None;
        jwk.common.key_id = Some(self.kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        serde_json::to_value(jwk).unwrap()
    }
}

/// A JWK Set of the public halves of `keys`.
pub fn jwks(keys: &[TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// 128 random bits, base64url.
pub fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A client assertion under construction: conforming defaults, every part adjustable.
#[derive(Debug, Clone)]
pub struct AssertionBuilder {
    pub key: TestKey,
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub claims: Map<String, Value>,
}

impl AssertionBuilder {
    /// `iss` = `sub` = `client_id`, `aud` = `audience`, `exp` in 60 s, `iat` now, a random
    /// `jti`, signed with `key` under its own `kid`.
    pub fn new(key: TestKey, client_id: &str, audience: &str) -> Self {
        let now = now();
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "exp": now + 60,
            "iat": now,
            "jti": random_jti(),
        });
        Self {
            key,
            alg: key.alg,
            kid: Some(key.kid.to_owned()),
            typ: None,
            claims: claims.as_object().unwrap().clone(),
        }
    }

    /// Sets (or, with `Value::Null`, removes) a claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        if value.is_null() {
            self.claims.remove(name);
        } else {
            self.claims.insert(name.to_owned(), value);
        }
        self
    }

    /// Sets the `kid` header (`None`: no kid).
    pub fn kid(mut self, kid: Option<&str>) -> Self {
        self.kid = kid.map(str::to_owned);
        self
    }

    /// Signs with another algorithm (same key).
    pub fn alg(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// Sets the `typ` header.
    pub fn typ(mut self, typ: &str) -> Self {
        self.typ = Some(typ.to_owned());
        self
    }

    /// The signed JWT.
    pub fn sign(&self) -> String {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let mut header = Header::new(self.alg);
        header.kid.clone_from(&self.kid);
        header.typ.clone_from(&self.typ);
        jsonwebtoken::encode(
            &header,
            &Value::Object(self.claims.clone()),
            &self.key.encoding_key(),
        )
        .unwrap()
    }

    /// The same claims, unsigned (`alg: none`, empty signature).
    pub fn unsigned(&self) -> String {
        let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            part(json!({ "alg": "none", "kid": self.kid })),
            part(Value::Object(self.claims.clone()))
        )
    }

    /// HS256 keyed with the bytes of the public JWK Set: the algorithm-confusion attack.
    pub fn hmac_with_public_key(&self) -> String {
        let secret = jwks(&[self.key]).to_string();
        let mut header = Header::new(Algorithm::HS256);
        header.kid.clone_from(&self.kid);
        jsonwebtoken::encode(
            &header,
            &Value::Object(self.claims.clone()),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }
}

/// The JWT with one bit of its signature flipped.
pub fn tampered(jwt: &str) -> String {
    let (signed, signature) = jwt.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 1;
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
}
