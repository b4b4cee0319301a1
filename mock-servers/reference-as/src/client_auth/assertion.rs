//! RFC 7523 client assertions (`private_key_jwt`), checked per draft-ietf-oauth-rfc7523bis.
//!
//! Checks run cheapest first, and anything that spends state runs last: the parameters and the
//! JWT's shape (PKJWT-01), who it claims to be (PKJWT-02/03/04), then, once the client is known,
//! the algorithm (PKJWT-10, PKJWT-14), the type (PKJWT-12), audience (PKJWT-05), lifetime
//! (PKJWT-07/08), the signature against the client's published keys (CIMD-AUTH-03), and only then
//! the one-time `jti` (PKJWT-09), so a forged assertion can never use up a real client's `jti`.
//! Keys come only from the client's registration or document, never from the JWT's own `jwk`,
//! `jku` or `x5u` headers. Every refusal is `invalid_client` (PKJWT-11) with a description that
//! says exactly what was wrong and names the requirement.
//!
//! Choices: `jti` is required (OpenID Connect Core §9 requires it; without it replay cannot be
//! stopped); `exp` may lie at most the configured lifetime ahead and `iat` at most that far in
//! the past; an untyped assertion is accepted (PKJWT-12), and so are `typ` `JWT` and
//! `client-authentication+jwt`, but any other type is refused: it marks a token meant for
//! something else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::jwks::{JwksCache, KeySet, KeyThumbprint, Refresh};
use super::registered::ClientKeys;
use super::{AuthFailure, Client};
use crate::cimd::ClientResolver;
use crate::config::{AssertionAudience, ClientAuthConfig};
use crate::faults::{Fault, Faults};
use crate::store::{Store, unix_now};

/// The only `client_assertion_type` for JWT client authentication (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The signature algorithms accepted for client assertions: asymmetric only, never `none`.
pub const ALLOWED_ALGORITHMS: &[&str] = &["ES256", "ES384", "EdDSA", "RS256", "PS256"];

/// The longest `client_assertion` read.
const MAX_ASSERTION: usize = 16 * 1024;

/// The longest `jti` accepted.
const MAX_JTI: usize = 256;

/// A refusal: `invalid_client` with `message (REQUIREMENT)`.
fn refuse(requirement: &str, message: impl AsRef<str>) -> AuthFailure {
    AuthFailure::invalid_client(format!("{} ({requirement})", message.as_ref()))
}

/// A client assertion split into its parts and decoded, not yet trusted.
#[derive(Debug, Clone)]
pub struct Assertion<'a> {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    /// `BASE64URL(header).BASE64URL(payload)`, the signed bytes.
    signing_input: &'a str,
    signature: &'a str,
}

impl Assertion<'_> {
    fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// A string claim; a claim of another type is refused.
    fn string_claim(&self, name: &str, requirement: &str) -> Result<Option<&str>, AuthFailure> {
        match self.claim(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(refuse(
                requirement,
                format!("the assertion's {name} claim must be a string, not {other}"),
            )),
        }
    }

    /// A NumericDate claim as whole seconds; a claim of another type is refused.
    fn time_claim(&self, name: &str, requirement: &str) -> Result<Option<i64>, AuthFailure> {
        match self.claim(name) {
            None => Ok(None),
            Some(value) => value
                .as_i64()
                // Fractional seconds are allowed (RFC 7519 §2); the fraction does not matter.
                .or_else(|| value.as_f64().and_then(whole_seconds))
                .map(Some)
                .ok_or_else(|| {
                    refuse(
                        requirement,
                        format!(
                            "the assertion's {name} claim must be a number of seconds since the \
                             epoch, not {value}"
                        ),
                    )
                }),
        }
    }

    fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }
}

/// The whole seconds of a fractional NumericDate, if it is within any plausible range.
#[allow(
    clippy::cast_possible_truncation,
    reason = "the range is checked first, so the cast only drops the fraction"
)]
fn whole_seconds(seconds: f64) -> Option<i64> {
    (seconds.is_finite() && seconds.abs() < 1e15).then(|| seconds.floor() as i64)
}

/// The assertion rules of one AS: its audience values, time bounds and faults.
#[derive(Debug, Clone)]
pub struct AssertionRules {
    issuer: String,
    token_endpoint: String,
    audience: AssertionAudience,
    max_lifetime: i64,
    skew: i64,
    same_origin: bool,
    faults: Faults,
    /// Set on the rules for assertions sent to the PAR endpoint: its URL (PKJWT-13).
    par_endpoint: Option<String>,
}

impl AssertionRules {
    /// The rules for the AS `issuer` with token endpoint `token_endpoint`.
    pub fn new(
        issuer: &str,
        token_endpoint: &str,
        config: &ClientAuthConfig,
        faults: &Faults,
    ) -> Self {
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        Self {
            issuer: issuer.to_owned(),
            token_endpoint: token_endpoint.to_owned(),
            audience: config.assertion_audience,
            max_lifetime: secs(config.max_assertion_lifetime_secs),
            skew: secs(config.clock_skew_secs),
            same_origin: config.jwks_uri_same_origin,
            faults: faults.clone(),
            par_endpoint: None,
        }
    }

    /// The same rules for assertions sent to the pushed authorization request endpoint at
    /// `par_endpoint`: strict mode still takes the issuer alone (PKJWT-13); legacy mode also
    /// takes that endpoint's URL.
    #[must_use]
    pub fn at_par_endpoint(&self, par_endpoint: &str) -> Self {
        Self {
            par_endpoint: Some(par_endpoint.to_owned()),
            ..self.clone()
        }
    }

    /// PKJWT-01: the exact assertion type and exactly one JWT, split and decoded.
    pub fn parse<'a>(
        &self,
        assertion_type: Option<&str>,
        assertion: Option<&'a str>,
    ) -> Result<Assertion<'a>, AuthFailure> {
        match assertion_type {
            None => {
                return Err(refuse(
                    "PKJWT-01",
                    format!("client_assertion_type is missing; it must be {JWT_BEARER}"),
                ));
            }
            // The `lenient-assertion-type` fault takes any type.
            Some(t) if t != JWT_BEARER && !self.faults.on(Fault::LenientAssertionType) => {
                return Err(refuse(
                    "PKJWT-01",
                    format!("client_assertion_type {t:?} is not {JWT_BEARER}"),
                ));
            }
            Some(_) => {}
        }
        let Some(jwt) = assertion else {
            return Err(refuse(
                "PKJWT-01",
                "client_assertion is missing; send one JWT signed with the client's key",
            ));
        };
        if jwt.len() > MAX_ASSERTION {
            return Err(refuse(
                "PKJWT-01",
                format!("client_assertion is longer than {MAX_ASSERTION} bytes"),
            ));
        }
        let parts: Vec<&str> = jwt.split('.').collect();
        let base64url = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let [header, payload, signature] = parts.as_slice() else {
            return Err(refuse(
                "PKJWT-01",
                format!(
                    "client_assertion must be exactly one JWT in compact form (three base64url \
                     parts separated by dots); it has {} parts",
                    parts.len()
                ),
            ));
        };
        if !parts.iter().all(|p| base64url(p)) {
            return Err(refuse(
                "PKJWT-01",
                "client_assertion must be exactly one JWT in compact form; it holds characters \
                 outside base64url and dots",
            ));
        }
        let object = |part: &str, what: &str| -> Result<Map<String, Value>, AuthFailure> {
            URL_SAFE_NO_PAD
                .decode(part)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
                .ok_or_else(|| {
                    refuse(
                        "PKJWT-01",
                        format!("the client_assertion's {what} is not base64url of a JSON object"),
                    )
                })
        };
        let header_end = header.len() + 1 + payload.len();
        Ok(Assertion {
            header: object(header, "header")?,
            claims: object(payload, "payload")?,
            signing_input: &jwt[..header_end],
            signature,
        })
    }

    /// PKJWT-02/03/04: the client the assertion authenticates: the `client_id` parameter when
    /// sent, else the assertion's `sub`; `iss` and `sub` must both name it.
    pub fn identity<'a>(
        &self,
        assertion: &'a Assertion<'_>,
        client_id: Option<&'a str>,
    ) -> Result<&'a str, AuthFailure> {
        let Some(iss) = assertion.string_claim("iss", "PKJWT-03")? else {
            return Err(refuse(
                "PKJWT-03",
                "the assertion has no iss claim; it must be the client_id",
            ));
        };
        let Some(sub) = assertion.string_claim("sub", "PKJWT-04")? else {
            return Err(refuse(
                "PKJWT-04",
                "the assertion has no sub claim; it must be the client_id",
            ));
        };
        let identity = match client_id {
            // The `ignore-client-id-mismatch` fault authenticates whoever the assertion names.
            Some(id)
                if iss != id && sub != id && !self.faults.on(Fault::IgnoreClientIdMismatch) =>
            {
                return Err(refuse(
                    "PKJWT-02",
                    format!(
                        "the client_id parameter {id:?} names another client than the assertion \
                         (iss {iss:?}, sub {sub:?})"
                    ),
                ));
            }
            Some(id) if !self.faults.on(Fault::IgnoreClientIdMismatch) => id,
            _ => sub,
        };
        if iss != identity && !self.faults.on(Fault::AcceptForeignIssuer) {
            return Err(refuse(
                "PKJWT-03",
                format!("the assertion's iss {iss:?} is not the client_id {identity:?}"),
            ));
        }
        if sub != identity && !self.faults.on(Fault::AcceptForeignSubject) {
            return Err(refuse(
                "PKJWT-04",
                format!("the assertion's sub {sub:?} is not the client_id {identity:?}"),
            ));
        }
        Ok(identity)
    }

    /// Every remaining rule for `client`, ending with the one-time use of the `jti`. Returns the
    /// thumbprint of the key the signature verified with (`None` when a fault skipped the
    /// signature), for binding grants to it (PKJWT-15).
    pub async fn verify(
        &self,
        client: &Client,
        assertion: &Assertion<'_>,
        resolver: &ClientResolver,
        jwks: &JwksCache,
        store: &Store,
    ) -> Result<Option<KeyThumbprint>, AuthFailure> {
        let alg = self.algorithm(client, assertion)?;
        self.check_type(assertion)?;
        self.check_audience(assertion)?;
        let (exp, jti) = self.check_lifetime(assertion)?;
        // CIMD-AUTH-03: the `skip-assertion-signature` fault trusts any signature.
        let mut key = None;
        if let Some(alg) = alg
            && !self.faults.on(Fault::SkipAssertionSignature)
        {
            key = Some(
                self.check_signature(client, assertion, alg, resolver, jwks)
                    .await?,
            );
        }
        // PKJWT-09: one atomic insert decides the single winner among concurrent replays; the
        // entry lives as long as the assertion could still be accepted.
        if self.faults.on(Fault::ReplayableJti) {
            return Ok(key);
        }
        let first_use = store
            .use_assertion_jti(client.id(), jti, exp.saturating_add(self.skew))
            .await?;
        if first_use {
            Ok(key)
        } else {
            Err(refuse(
                "PKJWT-09",
                format!(
                    "the assertion's jti {jti:?} was already used; every assertion is good for \
                     one request"
                ),
            ))
        }
    }

    /// PKJWT-10/14: the algorithm: allow-listed and, when the client pinned one, that one.
    /// `None` means an unsigned assertion let through by the `accept-alg-none` fault.
    fn algorithm(
        &self,
        client: &Client,
        assertion: &Assertion<'_>,
    ) -> Result<Option<Algorithm>, AuthFailure> {
        let Some(alg) = assertion.header_str("alg") else {
            return Err(refuse("PKJWT-10", "the assertion header has no alg"));
        };
        if alg.eq_ignore_ascii_case("none") {
            if self.faults.on(Fault::AcceptAlgNone) {
                return Ok(None);
            }
            return Err(refuse(
                "PKJWT-10",
                "the assertion is unsigned (alg \"none\"); it must be signed with the client's \
                 private key",
            ));
        }
        if alg.starts_with("HS") {
            return Err(refuse(
                "PKJWT-10",
                format!(
                    "the assertion uses the symmetric algorithm {alg:?}; private_key_jwt needs \
                     an asymmetric signature made with the client's private key"
                ),
            ));
        }
        if !ALLOWED_ALGORITHMS.contains(&alg) {
            return Err(refuse(
                "PKJWT-10",
                format!(
                    "the assertion's alg {alg:?} is not accepted; use one of {}",
                    ALLOWED_ALGORITHMS.join(", ")
                ),
            ));
        }
        // The `ignore-signing-alg-pin` fault takes any allowed algorithm.
        if let Some(pinned) = client.signing_alg()
            && pinned != alg
            && !self.faults.on(Fault::IgnoreSigningAlgPin)
        {
            return Err(refuse(
                "PKJWT-14",
                format!(
                    "the assertion is signed with {alg}, but the client registered \
                     token_endpoint_auth_signing_alg {pinned:?}"
                ),
            ));
        }
        if assertion.header.contains_key("crit") {
            return Err(refuse(
                "PKJWT-10",
                "the assertion header lists crit extensions, which this server does not \
                 understand",
            ));
        }
        alg.parse::<Algorithm>().map(Some).map_err(|_| {
            refuse(
                "PKJWT-10",
                format!("the assertion's alg {alg:?} is unknown"),
            )
        })
    }

    /// PKJWT-12: untyped assertions are accepted; a type naming another kind of token is not.
    fn check_type(&self, assertion: &Assertion<'_>) -> Result<(), AuthFailure> {
        match assertion.header.get("typ") {
            // The `refuse-untyped-assertion` fault refuses them instead.
            None if self.faults.on(Fault::RefuseUntypedAssertion) => Err(refuse(
                "PKJWT-12",
                "the assertion header has no typ; set typ \"client-authentication+jwt\"",
            )),
            None => Ok(()),
            Some(Value::String(typ)) => {
                let bare = typ.to_ascii_lowercase();
                let bare = bare.strip_prefix("application/").unwrap_or(&bare);
                if matches!(bare, "jwt" | "client-authentication+jwt") {
                    Ok(())
                } else {
                    Err(refuse(
                        "PKJWT-12",
                        format!(
                            "the assertion's typ {typ:?} marks another kind of token; use \
                             \"client-authentication+jwt\" or leave typ out"
                        ),
                    ))
                }
            }
            Some(other) => Err(refuse(
                "PKJWT-12",
                format!("the assertion's typ must be a string, not {other}"),
            )),
        }
    }

    /// PKJWT-05/06/13: `aud` is the issuer identifier, alone (a one-element array is fine), at
    /// the token and PAR endpoints alike; the legacy mode also accepts the token endpoint URL (and
    /// at the PAR endpoint, its URL) and arrays naming any of them.
    fn check_audience(&self, assertion: &Assertion<'_>) -> Result<(), AuthFailure> {
        // The `accept-any-audience` fault skips the check.
        if self.faults.on(Fault::AcceptAnyAudience) {
            return Ok(());
        }
        let values: Vec<&str> = match assertion.claim("aud") {
            None => {
                return Err(refuse(
                    "PKJWT-05",
                    format!(
                        "the assertion has no aud claim; it must be this server's issuer \
                         identifier {:?}",
                        self.issuer
                    ),
                ));
            }
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(other) => {
                return Err(refuse(
                    "PKJWT-05",
                    format!("the assertion's aud must be a string, not {other}"),
                ));
            }
        };
        let par = self.par_endpoint.as_deref();
        let names_par = |v: &&str| par.is_some_and(|p| *v == p);
        let accepted = match self.audience {
            // The `par-accepts-endpoint-audience` fault takes the PAR endpoint URL too.
            AssertionAudience::Strict => {
                values == [self.issuer.as_str()]
                    || (self.faults.on(Fault::ParAcceptsEndpointAudience)
                        && values.len() == 1
                        && values.iter().any(names_par))
            }
            AssertionAudience::Legacy => values
                .iter()
                .any(|v| *v == self.issuer || *v == self.token_endpoint || names_par(v)),
        };
        if accepted {
            return Ok(());
        }
        let aud = assertion
            .claim("aud")
            .map(ToString::to_string)
            .unwrap_or_default();
        // PKJWT-13: at the PAR endpoint, naming that endpoint is the mistake to point out.
        if let Some(par) = par
            && values.iter().any(names_par)
        {
            return Err(refuse(
                "PKJWT-13",
                format!(
                    "the assertion's aud {aud} names the pushed authorization request endpoint \
                     {par:?}; assertions sent there must name this server's issuer identifier \
                     {:?} alone",
                    self.issuer
                ),
            ));
        }
        Err(refuse(
            "PKJWT-05",
            match self.audience {
                AssertionAudience::Strict => format!(
                    "the assertion's aud {aud} is not this server's issuer identifier {:?} \
                     alone; the token endpoint URL and other audiences are not accepted",
                    self.issuer
                ),
                AssertionAudience::Legacy => format!(
                    "the assertion's aud {aud} names neither this server's issuer identifier \
                     {:?} nor its token endpoint {:?}",
                    self.issuer, self.token_endpoint
                ),
            },
        ))
    }

    /// PKJWT-07/08/09: `exp` present, not past and not too far ahead; `nbf` and `iat` not in the
    /// future, `iat` not too old; a `jti`. Returns `exp` and the `jti`.
    fn check_lifetime<'a>(
        &self,
        assertion: &'a Assertion<'_>,
    ) -> Result<(i64, &'a str), AuthFailure> {
        let now = unix_now();
        let Some(exp) = assertion.time_claim("exp", "PKJWT-07")? else {
            return Err(refuse(
                "PKJWT-07",
                "the assertion has no exp claim; assertions must expire",
            ));
        };
        // The `accept-expired-assertion` fault skips the expiry comparison.
        if exp.saturating_add(self.skew) <= now && !self.faults.on(Fault::AcceptExpiredAssertion) {
            return Err(refuse(
                "PKJWT-07",
                format!(
                    "the assertion expired {} s ago (exp {exp}; {} s of clock skew allowed)",
                    now.saturating_sub(exp),
                    self.skew
                ),
            ));
        }
        let horizon = now
            .saturating_add(self.max_lifetime)
            .saturating_add(self.skew);
        if exp > horizon {
            return Err(refuse(
                "PKJWT-07",
                format!(
                    "the assertion's exp {exp} lies {} s ahead; this server accepts assertions \
                     valid for at most {} s",
                    exp.saturating_sub(now),
                    self.max_lifetime
                ),
            ));
        }
        let early = self.faults.on(Fault::AcceptEarlyAssertion);
        if let Some(nbf) = assertion.time_claim("nbf", "PKJWT-08")?
            && nbf > now.saturating_add(self.skew)
            && !early
        {
            return Err(refuse(
                "PKJWT-08",
                format!(
                    "the assertion is not valid before {nbf}, {} s from now",
                    nbf.saturating_sub(now)
                ),
            ));
        }
        if let Some(iat) = assertion.time_claim("iat", "PKJWT-08")? {
            if iat > now.saturating_add(self.skew) && !early {
                return Err(refuse(
                    "PKJWT-08",
                    format!(
                        "the assertion's iat {iat} lies {} s in the future",
                        iat.saturating_sub(now)
                    ),
                ));
            }
            if now.saturating_sub(iat) > self.max_lifetime.saturating_add(self.skew) {
                return Err(refuse(
                    "PKJWT-08",
                    format!(
                        "the assertion was issued {} s ago (iat {iat}); this server accepts \
                         assertions at most {} s old",
                        now.saturating_sub(iat),
                        self.max_lifetime
                    ),
                ));
            }
        }
        let jti = match assertion.string_claim("jti", "PKJWT-09")? {
            Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI => jti,
            Some(_) => {
                return Err(refuse(
                    "PKJWT-09",
                    format!("the assertion's jti must be 1 to {MAX_JTI} characters"),
                ));
            }
            None => {
                return Err(refuse(
                    "PKJWT-09",
                    "the assertion has no jti claim; this server needs a unique jti in every \
                     assertion to stop replays",
                ));
            }
        };
        Ok((exp, jti))
    }

    /// CIMD-AUTH-03 / PKJWT-10: the signature verifies with one of the client's own keys,
    /// chosen by `kid` and algorithm; an unknown `kid` earns one (rate-limited) JWKS refresh.
    /// Returns the thumbprint of the key that verified it.
    async fn check_signature(
        &self,
        client: &Client,
        assertion: &Assertion<'_>,
        alg: Algorithm,
        resolver: &ClientResolver,
        jwks: &JwksCache,
    ) -> Result<KeyThumbprint, AuthFailure> {
        let kid = assertion.header_str("kid");
        let (mut set, uri) = self.key_set(client, resolver, jwks).await?;
        let mut refreshed = "";
        if set.candidates(alg, kid).is_empty()
            && let Some(uri) = &uri
        {
            match jwks.refresh(resolver, client.id(), uri).await {
                Refresh::Fetched(Ok(fresh)) => {
                    set = fresh;
                    refreshed = " (after fetching the jwks_uri again)";
                }
                Refresh::Fetched(Err(e)) => return Err(refuse("CIMD-AUTH-03", e)),
                Refresh::TooSoon => {
                    refreshed = " (the jwks_uri was fetched again moments ago, so not again yet)";
                }
                Refresh::Off => {}
            }
        }
        let candidates = set.candidates(alg, kid);
        if candidates.is_empty() {
            let wanted = match kid {
                Some(kid) => format!("kid {kid:?} usable with {alg:?}"),
                None => format!("any key usable with {alg:?}"),
            };
            return Err(refuse(
                "PKJWT-10",
                format!(
                    "the client's key set has no {wanted}{refreshed}; it has {}",
                    set.describe()
                ),
            ));
        }
        let message = assertion.signing_input.as_bytes();
        if let Some(key) = candidates
            .iter()
            .find(|key| key.verify(alg, message, assertion.signature))
        {
            return Ok(key.thumbprint().clone());
        }
        let which = match kid {
            Some(kid) => format!("the client's key {kid:?}"),
            None => format!("any of the client's {} {alg:?} key(s)", candidates.len()),
        };
        Err(refuse(
            "CIMD-AUTH-03",
            format!("the assertion's signature does not verify with {which}"),
        ))
    }

    /// The client's key set, and the URL it came from when it was fetched.
    async fn key_set(
        &self,
        client: &Client,
        resolver: &ClientResolver,
        jwks: &JwksCache,
    ) -> Result<(KeySet, Option<String>), AuthFailure> {
        let uri = match client {
            Client::Ephemeral(meta) => match (&meta.jwks, meta.jwks_uri()) {
                (Some(inline), _) => {
                    let set = KeySet::parse(inline)
                        .map_err(|e| refuse("CIMD-AUTH-03", format!("the document's jwks: {e}")))?;
                    return Ok((set, None));
                }
                (None, Some(uri)) => {
                    if self.same_origin && origin(uri) != origin(meta.client_id.as_str()) {
                        return Err(refuse(
                            "CIMD-AUTH-03",
                            format!(
                                "the document's jwks_uri {uri:?} is not on the client_id's \
                                 origin, which this server's policy requires"
                            ),
                        ));
                    }
                    uri.to_string()
                }
                (None, None) => {
                    return Err(refuse(
                        "CIMD-AUTH-04",
                        "the client's document publishes no keys (neither jwks nor jwks_uri)",
                    ));
                }
            },
            Client::Registered(registered) => match &registered.keys {
                Some(ClientKeys::Inline(set)) => {
                    return Ok((set.clone(), None));
                }
                Some(ClientKeys::Uri(uri)) => uri.clone(),
                None => {
                    return Err(refuse("CIMD-AUTH-03", "the client has no registered keys"));
                }
            },
        };
        let set = jwks
            .get(resolver, &uri)
            .await
            .map_err(AuthFailure::invalid_client)?;
        Ok((set, Some(uri)))
    }
}

/// The ASCII origin of a URL (empty for a malformed one, which then matches nothing real).
fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn rules(audience: AssertionAudience, faults: &[Fault]) -> AssertionRules {
        let config = ClientAuthConfig {
            assertion_audience: audience,
            ..ClientAuthConfig::default()
        };
        AssertionRules::new(
            "https://as.example",
            "https://as.example/token",
            &config,
            &Faults::of(faults.iter().copied()),
        )
    }

    fn unsigned(claims: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", part(&json!({"alg": "ES256"})), part(claims))
    }

    fn description(failure: AuthFailure) -> String {
        assert_eq!(failure.error.code.as_str(), "invalid_client");
        failure.error.description
    }

    #[test]
    fn the_assertion_type_must_be_exact_and_the_assertion_one_jwt() {
        let r = rules(AssertionAudience::Strict, &[]);
        let jwt = unsigned(&json!({}));
        assert!(r.parse(Some(JWT_BEARER), Some(&jwt)).is_ok());
        let wrong = description(r.parse(Some("urn:x"), Some(&jwt)).unwrap_err());
        assert!(wrong.ends_with("(PKJWT-01)"), "{wrong}");
        let two = format!("{jwt},{jwt}");
        assert!(
            description(r.parse(Some(JWT_BEARER), Some(&two)).unwrap_err()).contains("one JWT")
        );
        assert!(r.parse(Some(JWT_BEARER), None).is_err());
        assert!(r.parse(None, Some(&jwt)).is_err());
        assert!(
            r.parse(Some(JWT_BEARER), Some("a.b.c")).is_err(),
            "not JSON"
        );
        let lenient = rules(AssertionAudience::Strict, &[Fault::LenientAssertionType]);
        assert!(lenient.parse(Some("urn:x"), Some(&jwt)).is_ok());
    }

    #[test]
    fn iss_and_sub_must_both_name_the_client_id() {
        let r = rules(AssertionAudience::Strict, &[]);
        let check = |claims: Value, client_id: Option<&str>| {
            let jwt = unsigned(&claims);
            let a = r.parse(Some(JWT_BEARER), Some(&jwt)).unwrap();
            r.identity(&a, client_id)
                .map(str::to_owned)
                .map_err(description)
        };
        assert_eq!(check(json!({"iss": "a", "sub": "a"}), None).unwrap(), "a");
        assert_eq!(
            check(json!({"iss": "a", "sub": "a"}), Some("a")).unwrap(),
            "a"
        );
        assert!(
            check(json!({"iss": "b", "sub": "b"}), Some("a"))
                .unwrap_err()
                .ends_with("(PKJWT-02)")
        );
        assert!(
            check(json!({"iss": "b", "sub": "a"}), Some("a"))
                .unwrap_err()
                .ends_with("(PKJWT-03)")
        );
        assert!(
            check(json!({"iss": "a", "sub": "b"}), Some("a"))
                .unwrap_err()
                .ends_with("(PKJWT-04)")
        );
        assert!(
            check(json!({"iss": "a", "sub": "b"}), None)
                .unwrap_err()
                .ends_with("(PKJWT-03)")
        );
        assert!(
            check(json!({"sub": "a"}), None)
                .unwrap_err()
                .ends_with("(PKJWT-03)")
        );
        assert!(check(json!({"iss": 1, "sub": "a"}), None).is_err());
    }

    #[test]
    fn strict_audience_is_the_issuer_alone_and_legacy_adds_the_token_endpoint() {
        let cases = [
            (json!("https://as.example"), true, true),
            (json!(["https://as.example"]), true, true),
            (json!("https://as.example/token"), false, true),
            (
                json!(["https://as.example", "https://other.example"]),
                false,
                true,
            ),
            (json!("https://as.example/"), false, false),
            (json!(["https://other.example"]), false, false),
            (json!(42), false, false),
        ];
        for (aud, strict_ok, legacy_ok) in cases {
            let jwt = unsigned(&json!({ "aud": aud }));
            for (mode, expected) in [
                (AssertionAudience::Strict, strict_ok),
                (AssertionAudience::Legacy, legacy_ok),
            ] {
                let r = rules(mode, &[]);
                let a = r.parse(Some(JWT_BEARER), Some(&jwt)).unwrap();
                assert_eq!(r.check_audience(&a).is_ok(), expected, "{aud} in {mode:?}");
            }
        }
        let jwt = unsigned(&json!({}));
        let r = rules(AssertionAudience::Strict, &[]);
        let a = r.parse(Some(JWT_BEARER), Some(&jwt)).unwrap();
        assert!(description(r.check_audience(&a).unwrap_err()).ends_with("(PKJWT-05)"));
    }

    #[test]
    fn lifetimes_are_bounded_on_both_sides_with_a_small_skew() {
        let now = unix_now();
        let r = rules(AssertionAudience::Strict, &[]);
        let check = |claims: Value| {
            let jwt = unsigned(&claims);
            let a = r.parse(Some(JWT_BEARER), Some(&jwt)).unwrap();
            r.check_lifetime(&a)
                .map(|(exp, jti)| (exp, jti.to_owned()))
                .map_err(description)
        };
        assert!(check(json!({"exp": now + 60, "jti": "j"})).is_ok());
        assert!(
            check(json!({"exp": now - 5, "jti": "j"})).is_ok(),
            "within the skew"
        );
        assert!(
            check(json!({"exp": now - 300, "jti": "j"}))
                .unwrap_err()
                .ends_with("(PKJWT-07)")
        );
        assert!(
            check(json!({"jti": "j"}))
                .unwrap_err()
                .ends_with("(PKJWT-07)")
        );
        assert!(
            check(json!({"exp": now + 86_400, "jti": "j"}))
                .unwrap_err()
                .contains("at most")
        );
        assert!(
            check(json!({"exp": now + 60, "nbf": now + 600, "jti": "j"}))
                .unwrap_err()
                .ends_with("(PKJWT-08)")
        );
        assert!(
            check(json!({"exp": now + 60, "iat": now + 600, "jti": "j"}))
                .unwrap_err()
                .ends_with("(PKJWT-08)")
        );
        assert!(check(json!({"exp": now + 60, "iat": now - 86_400, "jti": "j"})).is_err());
        assert!(
            check(json!({"exp": now + 60}))
                .unwrap_err()
                .ends_with("(PKJWT-09)")
        );
        assert!(check(json!({"exp": serde_json::from_str::<Value>(&format!("{}.5", now + 60)).unwrap(), "jti": "j"})).is_ok());
        assert!(check(json!({"exp": "soon", "jti": "j"})).is_err());
    }

    #[test]
    fn untyped_and_client_authentication_types_pass_other_types_do_not() {
        let r = rules(AssertionAudience::Strict, &[]);
        let typed = |typ: Option<&str>| {
            let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
            let mut header = json!({"alg": "ES256"});
            if let Some(typ) = typ {
                header["typ"] = json!(typ);
            }
            format!("{}.{}.c2ln", part(&header), part(&json!({})))
        };
        for (typ, ok) in [
            (None, true),
            (Some("JWT"), true),
            (Some("client-authentication+jwt"), true),
            (Some("application/client-authentication+jwt"), true),
            (Some("at+jwt"), false),
        ] {
            let jwt = typed(typ);
            let a = r.parse(Some(JWT_BEARER), Some(&jwt)).unwrap();
            assert_eq!(r.check_type(&a).is_ok(), ok, "{typ:?}");
        }
        let strict = rules(AssertionAudience::Strict, &[Fault::RefuseUntypedAssertion]);
        let jwt = typed(None);
        let a = strict.parse(Some(JWT_BEARER), Some(&jwt)).unwrap();
        assert!(strict.check_type(&a).is_err());
    }
}
