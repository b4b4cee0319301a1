//! Client assertions that a `token` step signs itself (RFC 7523 `private_key_jwt`).
//!
//! `token = { exchange = "flow", client_assertion = { key = "keys/es256-a.pem", kid = "a" } }`
//! signs a fresh JWT with a private key from the fixtures and sends it as `client_assertion`
//! (with the jwt-bearer `client_assertion_type`). Every claim has a conforming default
//! (`iss` = `sub` = the request's client_id, `aud` = the issuer, `exp` in 60 s, `iat` now, a
//! random `jti`) and every one can be bent to build a bad assertion: other values, times
//! relative to now, claims left out, `alg` `none` or HMAC keyed with a public key (algorithm
//! confusion), a tampered signature. This is the harness's own signer, written from RFC 7515/7523
//! and independent of the reference AS's verifier (design principle 6).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::template::Bindings;

/// The RFC 7523 §2.2 assertion type, sent unless the step's form overrides it.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The placeholder for the target's token endpoint, known only to `aud`.
const TOKEN_ENDPOINT: &str = "{token_endpoint}";

/// Claims `omit` may name.
const CLAIMS: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// How a token step's client assertion is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAssertion {
    /// The private key, a PKCS#8 PEM file under the fixtures folder; for `HS256` its bytes are
    /// the HMAC secret (to imitate algorithm confusion); not used with `alg = "none"`.
    pub key: Option<String>,
    /// `ES256` (default), `ES384`, `EdDSA`, `RS256`, `PS256`, `HS256` or `none`.
    #[serde(default = "es256")]
    pub alg: String,
    /// The `kid` header, if any.
    pub kid: Option<String>,
    /// The `typ` header, if any (absent by default: an untyped assertion).
    pub typ: Option<String>,
    /// `iss` (default: the request's client_id; placeholders allowed).
    pub iss: Option<String>,
    /// `sub` (default: the request's client_id; placeholders allowed).
    pub sub: Option<String>,
    /// `aud`: a string or an array of strings (default `"{issuer}"`; `"{token_endpoint}"` is
    /// the target's token endpoint).
    pub aud: Option<toml::Value>,
    /// `exp`, in seconds from now (default 60; negative for an expired assertion).
    pub exp_in_secs: Option<i64>,
    /// `nbf`, in seconds from now (default: no `nbf`).
    pub nbf_in_secs: Option<i64>,
    /// `iat`, in seconds from now (default 0).
    pub iat_in_secs: Option<i64>,
    /// `jti`: `"random"` (default) or a fixed value (placeholders allowed).
    pub jti: Option<String>,
    /// Claims to leave out (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`).
    #[serde(default)]
    pub omit: Vec<String>,
    /// Flip one bit of the signature.
    #[serde(default)]
    pub tamper: bool,
}

fn es256() -> String {
    "ES256".to_owned()
}

/// What signing needs from the run.
#[derive(Debug, Clone, Copy)]
pub struct SigningContext<'a> {
    /// The fixtures folder.
    pub fixtures: &'a Path,
    /// The scenario's bindings (for placeholders).
    pub bindings: &'a Bindings,
    /// The client_id the request sends, the default `iss` and `sub`.
    pub client_id: Option<&'a str>,
    /// The target's token endpoint, for `aud = "{token_endpoint}"`.
    pub token_endpoint: &'a str,
}

/// The signing algorithm, or `None` for an unsigned JWT.
fn algorithm(name: &str) -> Result<Option<Algorithm>, String> {
    match name {
        "none" => Ok(None),
        "ES256" | "ES384" | "EdDSA" | "RS256" | "PS256" | "HS256" => name
            .parse()
            .map(Some)
            .map_err(|e| format!("alg {name}: {e}")),
        other => Err(format!(
            "alg {other:?} is not one of ES256, ES384, EdDSA, RS256, PS256, HS256, none"
        )),
    }
}

impl ClientAssertion {
    /// Load-time problems: an unknown algorithm or claim, a missing or unusable key file.
    pub fn problems(&self, fixtures: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        for claim in &self.omit {
            if !CLAIMS.contains(&claim.as_str()) {
                problems.push(format!(
                    "client_assertion.omit names {claim:?}, not one of {}",
                    CLAIMS.join(", ")
                ));
            }
        }
        if let Err(e) = self.aud_values("x") {
            problems.push(e);
        }
        match algorithm(&self.alg) {
            Err(e) => problems.push(format!("client_assertion: {e}")),
            Ok(alg) => {
                if let Err(e) = self.encoding_key(alg, fixtures) {
                    problems.push(format!("client_assertion: {e}"));
                }
            }
        }
        problems
    }

    /// Every placeholder-bearing string, for load-time checks (`{token_endpoint}` filled).
    pub fn strings(&self) -> Vec<String> {
        let mut strings: Vec<String> = [&self.iss, &self.sub, &self.jti]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        strings.extend(
            self.aud_values("https://token.validate.example")
                .unwrap_or_default(),
        );
        strings
    }

    /// The `aud` values with `{token_endpoint}` filled (other placeholders left for `fill`).
    fn aud_values(&self, token_endpoint: &str) -> Result<Vec<String>, String> {
        let values = match &self.aud {
            None => vec!["{issuer}".to_owned()],
            Some(toml::Value::String(aud)) => vec![aud.clone()],
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| "client_assertion.aud items must be strings".to_owned())
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("client_assertion.aud must be a string or an array".to_owned()),
        };
        Ok(values
            .into_iter()
            .map(|v| v.replace(TOKEN_ENDPOINT, token_endpoint))
            .collect())
    }

    /// The key for `alg` (`None` for an unsigned JWT).
    fn encoding_key(
        &self,
        alg: Option<Algorithm>,
        fixtures: &Path,
    ) -> Result<Option<EncodingKey>, String> {
        let Some(alg) = alg else {
            return Ok(None);
        };
        let Some(file) = &self.key else {
            return Err(format!("alg {alg:?} needs a key file"));
        };
        let path = fixtures.join(file);
        let bytes = std::fs::read(&path).map_err(|e| format!("key {}: {e}", path.display()))?;
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&bytes),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&bytes),
            Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(&bytes),
            _ => Ok(EncodingKey::from_secret(&bytes)),
        };
        key.map(Some)
            .map_err(|e| format!("key {} for {alg:?}: {e}", path.display()))
    }

    /// Signs the assertion.
    pub fn sign(&self, cx: SigningContext<'_>) -> Result<String, String> {
        // Names the provider so a missing crypto feature fails to compile; an Err only means
        // one is installed already.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let fill = |text: &str| cx.bindings.fill(text).map_err(|e| e.to_string());
        let identity = |explicit: &Option<String>, claim: &str| match explicit {
            Some(value) => fill(value),
            None => cx.client_id.map(str::to_owned).ok_or_else(|| {
                format!("client_assertion.{claim} is needed: the request sends no client_id")
            }),
        };
        let now = unix_now();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(identity(&self.iss, "iss")?));
        claims.insert("sub".into(), json!(identity(&self.sub, "sub")?));
        let aud: Vec<String> = self
            .aud_values(cx.token_endpoint)?
            .iter()
            .map(|v| fill(v))
            .collect::<Result<_, _>>()?;
        let aud = match (&self.aud, aud.as_slice()) {
            (Some(toml::Value::Array(_)), _) => json!(aud),
            (_, [one]) => json!(one),
            _ => json!(aud),
        };
        claims.insert("aud".into(), aud);
        claims.insert("exp".into(), json!(now + self.exp_in_secs.unwrap_or(60)));
        if let Some(nbf) = self.nbf_in_secs {
            claims.insert("nbf".into(), json!(now + nbf));
        }
        claims.insert("iat".into(), json!(now + self.iat_in_secs.unwrap_or(0)));
        let jti = match self.jti.as_deref() {
            None | Some("random") => random_jti(),
            Some(fixed) => fill(fixed)?,
        };
        claims.insert("jti".into(), json!(jti));
        for claim in &self.omit {
            claims.remove(claim);
        }

        let alg = algorithm(&self.alg)?;
        let key = self.encoding_key(alg, cx.fixtures)?;
        let jwt = if let (Some(alg), Some(key)) = (alg, key) {
            let mut header = Header::new(alg);
            header.typ.clone_from(&self.typ);
            header.kid.clone_from(&self.kid);
            jsonwebtoken::encode(&header, &Value::Object(claims), &key)
                .map_err(|e| format!("signing the client assertion: {e}"))?
        } else {
            // RFC 7519 §6: an Unsecured JWT has alg "none" and an empty signature.
            let mut header = Map::new();
            header.insert("alg".into(), json!("none"));
            if let Some(typ) = &self.typ {
                header.insert("typ".into(), json!(typ));
            }
            if let Some(kid) = &self.kid {
                header.insert("kid".into(), json!(kid));
            }
            let part = |v: Map<String, Value>| URL_SAFE_NO_PAD.encode(Value::Object(v).to_string());
            format!("{}.{}.", part(header), part(claims))
        };
        Ok(if self.tamper { tamper(&jwt) } else { jwt })
    }
}

/// The JWT with one bit of its signature flipped (or a one-byte signature if it had none).
fn tamper(jwt: &str) -> String {
    let (signed, signature) = jwt.rsplit_once('.').unwrap_or((jwt, ""));
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    match bytes.first_mut() {
        Some(first) => *first ^= 0x01,
        None => bytes.push(0),
    }
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// 128 random bits, base64url.
fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    // The system generator failing leaves zeros; the AS then sees a replay, which a scenario
    // would report, not hide.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
    }

    fn assertion(toml_text: &str) -> ClientAssertion {
        toml::from_str(toml_text).unwrap()
    }

    fn sign(a: &ClientAssertion) -> String {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let bindings = Bindings {
            issuer: "https://as.example".to_owned(),
            ..Bindings::default()
        };
        a.sign(SigningContext {
            fixtures: &fixtures(),
            bindings: &bindings,
            client_id: Some("https://app.example/c.json"),
            token_endpoint: "https://as.example/token",
        })
        .unwrap()
    }

    fn part(jwt: &str, index: usize) -> Value {
        let segment = jwt.split('.').nth(index).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    #[test]
    fn the_default_assertion_is_a_conforming_es256_jwt() {
        let jwt = sign(&assertion("key = \"keys/es256-a.pem\"\nkid = \"a\""));
        let public = std::fs::read(fixtures().join("keys/jwks-a.json")).unwrap();
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&public).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["https://as.example"]);
        validation.set_issuer(&["https://app.example/c.json"]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        let data = jsonwebtoken::decode::<Value>(
            &jwt,
            &DecodingKey::from_jwk(set.find("a").unwrap()).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "https://app.example/c.json");
        assert!(data.claims["jti"].as_str().unwrap().len() >= 22);
        assert_eq!(data.header.kid.as_deref(), Some("a"));
        assert_eq!(part(&jwt, 0).get("typ"), None, "untyped by default");
    }

    #[test]
    fn claims_can_be_bent_and_left_out() {
        let jwt = sign(&assertion(
            "key = \"keys/es256-a.pem\"\naud = [\"{issuer}\", \"{token_endpoint}\"]\n\
             exp_in_secs = -300\nomit = [\"iat\", \"jti\"]\niss = \"someone-else\"\n\
             typ = \"client-authentication+jwt\"",
        ));
        let claims = part(&jwt, 1);
        assert_eq!(
            claims["aud"],
            json!(["https://as.example", "https://as.example/token"])
        );
        assert!(claims["exp"].as_i64().unwrap() < unix_now() - 200);
        assert!(claims.get("iat").is_none() && claims.get("jti").is_none());
        assert_eq!(claims["iss"], "someone-else");
        assert_eq!(part(&jwt, 0)["typ"], "client-authentication+jwt");
    }

    #[test]
    fn unsigned_hmac_and_tampered_assertions_can_be_made() {
        let none = sign(&assertion("alg = \"none\""));
        assert!(none.ends_with('.'));
        assert_eq!(part(&none, 0)["alg"], "none");
        let hmac = sign(&assertion("alg = \"HS256\"\nkey = \"keys/jwks-a.json\""));
        assert_eq!(part(&hmac, 0)["alg"], "HS256");
        let a = assertion("key = \"keys/es256-a.pem\"\njti = \"fixed\"\ntamper = true");
        let tampered = sign(&a);
        assert_eq!(part(&tampered, 1)["jti"], "fixed");
        assert_eq!(tamper(&tamper(&tampered)), tampered);
    }

    #[test]
    fn load_time_checks_find_bad_algorithms_claims_and_keys() {
        let problems = assertion("alg = \"HS999\"\nomit = [\"nope\"]").problems(&fixtures());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            assertion("").problems(&fixtures()).len(),
            1,
            "ES256 needs a key"
        );
        assert_eq!(
            assertion("key = \"keys/missing.pem\"")
                .problems(&fixtures())
                .len(),
            1
        );
        assert!(
            assertion("key = \"keys/rsa.pem\"\nalg = \"RS256\"")
                .problems(&fixtures())
                .is_empty()
        );
    }
}
