//! The product admin's policy for ephemeral (CIMD) clients, as a config file section.
//!
//! It mirrors what real products let an admin configure (Curity's ephemeral clients, Auth0's
//! dynamic CIMD; catalogue rows CUR-01..05): on/off, allowed grant types ("capabilities"),
//! allowed client authentication, a scope ceiling, a domain allow- or deny-list checked before
//! any fetch (CIMD-SEC-09), allowed login methods, consent, fetch limits and cache bounds. Every
//! field has a default, all of them in [`EphemeralPolicy::default`] and its helpers below, so an
//! empty `[ephemeral_clients]` table is a complete, strict configuration. Unknown keys are
//! refused so a typo cannot silently loosen a policy.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::document::{AuthMethod, ClientMetadata};
use super::url::ClientIdUrl;
use super::{Finding, quote};
use crate::faults::{Fault, Faults};

/// What ephemeral clients may do on this AS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EphemeralPolicy {
    /// Whether URL client IDs are accepted at all (default `true`).
    pub enabled: bool,
    /// Grant types ephemeral clients may use (default `authorization_code`, `refresh_token`);
    /// a client also needs the grant type in its own document.
    pub capabilities: Vec<String>,
    /// Allowed `token_endpoint_auth_method`s (default `none` only).
    pub auth_methods: Vec<AuthMethod>,
    /// The scope ceiling (default: all scopes the AS knows).
    pub scopes: ScopePolicy,
    /// Which client_id hosts are accepted (default: open).
    pub domains: DomainPolicy,
    /// Login methods offered to users of ephemeral clients (default `email-code`, `password`).
    pub authenticators: Vec<String>,
    /// Whether the user must consent before a code is issued (default `true`).
    pub consent_required: bool,
    /// Limits on fetching the document.
    pub fetch: FetchLimits,
    /// Bounds of the document cache.
    pub cache: CacheSettings,
}

impl Default for EphemeralPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            capabilities: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
            // private_key_jwt is supported by the document rules but off until the token endpoint
            // verifies assertions.
            auth_methods: vec![AuthMethod::None],
            scopes: ScopePolicy::All,
            domains: DomainPolicy::default(),
            authenticators: vec!["email-code".to_owned(), "password".to_owned()],
            consent_required: true,
            fetch: FetchLimits::default(),
            cache: CacheSettings::default(),
        }
    }
}

/// Limits on one document fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchLimits {
    /// Total time for connect, TLS, request and body, in milliseconds (default 5000).
    pub timeout_ms: u64,
    /// Time to establish the TCP connection, in milliseconds (default 2000).
    pub connect_timeout_ms: u64,
    /// The most body bytes read (default 5120: CIMD-SEC-06 recommends 5 KB, read as KiB).
    pub max_bytes: u64,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            timeout_ms: 5000,
            connect_timeout_ms: 2000,
            max_bytes: 5120,
        }
    }
}

/// Lifetimes and bounds of the metadata cache (CIMD-CACHE-02, CIMD-FETCH-05).
///
/// A document's lifetime comes from its response, per RFC 9111 for a private cache: `max-age`,
/// else `Expires` against `Date`, less the `Age` the host reports. A response that states neither
/// gets `default_ttl_secs`, this server's heuristic freshness (RFC 9111 §4.2.2; `Last-Modified`
/// alone buys nothing). The lifetime is then clamped to `[min_ttl_secs, max_ttl_secs]`, except
/// that the host's explicit refusals always win over the minimum: `no-store` is never stored,
/// `no-cache` is revalidated on every use, and a `must-revalidate` lifetime is never stretched.
/// When `min_ttl_secs` exceeds `max_ttl_secs` the maximum wins. A stale entry that carries a
/// validator (`ETag`, `Last-Modified`) is kept a while for a conditional request; one without is
/// dropped. Both bounds, entries and bytes, are enforced together (see `max_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Lifetime of a document whose response has no `max-age`, `Expires` or `no-cache`, in
    /// seconds (default 300: five minutes, the lifetime this server used before it read headers).
    pub default_ttl_secs: u64,
    /// Shortest lifetime, in seconds; raises shorter `max-age`/`Expires` lifetimes (default 0:
    /// the host's word is honoured down to zero; raise it to bound how often one host is asked).
    pub min_ttl_secs: u64,
    /// Longest lifetime, in seconds, whatever the response says (default 3600: a withdrawn or
    /// changed document, or a removed key, takes effect within an hour; CIMD-FETCH-05, CIMD-CACHE-06).
    /// 0 makes every use ask the host again.
    pub max_ttl_secs: u64,
    /// The most documents kept (default 10 000).
    pub max_entries: u64,
    /// The most bytes kept, by each entry's estimated resident size: key, parsed document (about
    /// eight times its body), kept headers and bookkeeping (default 64 MiB: room for 10 000
    /// typical 400-byte documents, or about 1 600 at the 5 KiB fetch cap). Every entry counts at
    /// least `max_bytes / max_entries`, which is how one bound enforces both.
    pub max_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            default_ttl_secs: 300,
            min_ttl_secs: 0,
            max_ttl_secs: 3600,
            max_entries: 10_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The scope ceiling. In TOML: `scopes = "all"` or `scopes = ["openid", "mcp:read"]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ScopePolicy {
    /// Any scope the AS knows.
    #[default]
    All,
    /// Only these scopes.
    List(Vec<String>),
}

impl ScopePolicy {
    /// Whether `scope` is under the ceiling.
    pub fn allows(&self, scope: &str) -> bool {
        match self {
            ScopePolicy::All => true,
            ScopePolicy::List(list) => list.iter().any(|s| s == scope),
        }
    }
}

impl Serialize for ScopePolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ScopePolicy::All => serializer.serialize_str("all"),
            ScopePolicy::List(list) => list.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ScopePolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Word(word) if word == "all" => Ok(ScopePolicy::All),
            Raw::Word(word) => Err(serde::de::Error::custom(format!(
                "scopes must be \"all\" or a list of scope names, not {}",
                quote(&word)
            ))),
            Raw::List(list) => Ok(ScopePolicy::List(list)),
        }
    }
}

/// Which client_id hosts are accepted (CIMD-SEC-09).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainPolicy {
    /// How the patterns are used (default `open`: patterns ignored).
    pub mode: DomainMode,
    /// Host patterns: `exact.example` or `*.suffix.example`.
    pub patterns: Vec<DomainPattern>,
}

/// How [`DomainPolicy::patterns`] are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainMode {
    /// Every host is accepted.
    #[default]
    Open,
    /// Only hosts matching a pattern are accepted.
    AllowList,
    /// Hosts matching a pattern are refused.
    DenyList,
}

/// A host pattern: an exact DNS name, or `*.` and a suffix matching every name below the suffix
/// (any depth) but not the suffix itself. Compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPattern {
    /// The lower-case name or suffix, without the `*.`.
    name: String,
    /// Whether the pattern was `*.name`.
    wildcard: bool,
}

impl DomainPattern {
    /// Whether `host` (lower case, no port) matches.
    pub fn matches(&self, host: &str) -> bool {
        if self.wildcard {
            host.strip_suffix(self.name.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty())
        } else {
            host == self.name
        }
    }
}

impl std::str::FromStr for DomainPattern {
    type Err = String;

    fn from_str(pattern: &str) -> Result<Self, String> {
        let (wildcard, name) = match pattern.strip_prefix("*.") {
            Some(suffix) => (true, suffix),
            None => (false, pattern),
        };
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            Ok(Self {
                name: name.to_ascii_lowercase(),
                wildcard,
            })
        } else {
            Err(format!(
                "domain pattern {} must be a DNS name (\"exact.example\") or \"*.\" and one (\"*.trusted.example\")",
                quote(pattern)
            ))
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.name)
    }
}

impl Serialize for DomainPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DomainPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl EphemeralPolicy {
    /// CIMD-SEC-09: whether the client_id's host is acceptable; runs before any fetch, so a
    /// refused host is never contacted. The `skip-allow-list` fault accepts every host.
    pub fn check_domain(&self, url: &ClientIdUrl, faults: &Faults) -> Result<(), Finding> {
        if faults.on(Fault::SkipAllowList) {
            return Ok(());
        }
        let host = url.host();
        let matched = self.domains.patterns.iter().find(|p| p.matches(host));
        match (self.domains.mode, matched) {
            (DomainMode::Open, _)
            | (DomainMode::AllowList, Some(_))
            | (DomainMode::DenyList, None) => Ok(()),
            (DomainMode::AllowList, None) => Err(Finding::new(
                "CIMD-SEC-09",
                format!(
                    "the host {} of client_id {} is not on this server's allow-list for ephemeral clients",
                    quote(host),
                    quote(url.as_str())
                ),
            )),
            (DomainMode::DenyList, Some(pattern)) => Err(Finding::new(
                "CIMD-SEC-09",
                format!(
                    "the host {} of client_id {} is on this server's deny-list for ephemeral clients (pattern {})",
                    quote(host),
                    quote(url.as_str()),
                    quote(&pattern.to_string())
                ),
            )),
        }
    }

    /// Whether a validated document is acceptable under this policy (its authentication method;
    /// CIMD-DOC-09). The `skip-auth-method-policy` fault accepts every method.
    pub fn check_client(&self, meta: &ClientMetadata, faults: &Faults) -> Result<(), Finding> {
        let method = meta.token_endpoint_auth_method;
        if self.auth_methods.contains(&method) || faults.on(Fault::SkipAuthMethodPolicy) {
            return Ok(());
        }
        let allowed: Vec<&str> = self.auth_methods.iter().map(|m| m.as_str()).collect();
        Err(Finding::new(
            "CIMD-DOC-09",
            format!(
                "client {} uses token_endpoint_auth_method \"{method}\", but this server allows only [{}] \
                 for ephemeral clients",
                quote(meta.client_id.as_str()),
                allowed.join(", ")
            ),
        ))
    }

    /// Whether the client may use `grant_type`: its document lists it and the policy's
    /// capabilities include it (CUR-03; the `skip-capability-policy` fault skips the latter).
    pub fn grant_allowed(&self, meta: &ClientMetadata, grant_type: &str, faults: &Faults) -> bool {
        meta.has_grant_type(grant_type)
            && (faults.on(Fault::SkipCapabilityPolicy)
                || self.capabilities.iter().any(|c| c == grant_type))
    }

    /// The scopes to grant for a space-separated `requested` list: each one must be under the
    /// policy's ceiling (CUR-03; the `skip-scope-policy` fault skips this) and, if the document has a
    /// `scope` member, listed there. Duplicates are dropped, order kept. An error means
    /// `invalid_scope`.
    pub fn filter_scopes(
        &self,
        requested: &str,
        meta: &ClientMetadata,
        faults: &Faults,
    ) -> Result<String, Finding> {
        let declared: Option<Vec<&str>> = meta.scope().map(|s| s.split(' ').collect());
        let mut granted: Vec<&str> = Vec::new();
        for scope in requested.split(' ').filter(|s| !s.is_empty()) {
            if !faults.on(Fault::SkipScopePolicy) && !self.scopes.allows(scope) {
                return Err(Finding::new(
                    "CUR-03",
                    format!(
                        "scope {} is not allowed for ephemeral clients on this server",
                        quote(scope)
                    ),
                ));
            }
            if declared.as_ref().is_some_and(|d| !d.contains(&scope)) {
                return Err(Finding::new(
                    "CUR-03",
                    format!(
                        "scope {} is not among the scopes {} declared in the client's metadata document",
                        quote(scope),
                        quote(meta.scope().unwrap_or_default())
                    ),
                ));
            }
            if !granted.contains(&scope) {
                granted.push(scope);
            }
        }
        Ok(granted.join(" "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn url(raw: &str) -> ClientIdUrl {
        ClientIdUrl::parse(raw, &Faults::none()).unwrap()
    }

    fn meta(extra: &serde_json::Value) -> ClientMetadata {
        let mut doc = serde_json::json!({
            "client_id": "https://c.example/c",
            "redirect_uris": ["https://c.example/cb"],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        ClientMetadata::parse(
            &url("https://c.example/c"),
            &serde_json::to_vec(&doc).unwrap(),
            &Faults::none(),
        )
        .unwrap()
    }

    #[test]
    fn an_empty_table_is_the_documented_default() {
        let policy: EphemeralPolicy = toml::from_str("").unwrap();
        assert_eq!(policy, EphemeralPolicy::default());
        assert!(policy.enabled);
        assert_eq!(policy.fetch.max_bytes, 5120);
        assert_eq!(policy.cache.default_ttl_secs, 300);
        assert_eq!(policy.cache.max_ttl_secs, 3600);
    }

    #[test]
    fn parses_a_full_policy_from_toml() {
        let policy: EphemeralPolicy = toml::from_str(
            r#"
            enabled = false
            capabilities = ["authorization_code"]
            auth_methods = ["none", "private_key_jwt"]
            scopes = ["openid", "mcp:read"]
            authenticators = ["password"]
            consent_required = false
            domains = { mode = "allow-list", patterns = ["*.trusted.test", "Exact.Example"] }
            fetch = { timeout_ms = 300 }
            cache = { max_entries = 5, max_ttl_secs = 60 }
            "#,
        )
        .unwrap();
        assert!(!policy.enabled);
        assert_eq!(
            policy.auth_methods,
            [AuthMethod::None, AuthMethod::PrivateKeyJwt]
        );
        assert_eq!(
            policy.scopes,
            ScopePolicy::List(vec!["openid".into(), "mcp:read".into()])
        );
        assert_eq!(policy.domains.mode, DomainMode::AllowList);
        assert_eq!(policy.domains.patterns[1].to_string(), "exact.example");
        assert_eq!(
            policy.fetch,
            FetchLimits {
                timeout_ms: 300,
                ..FetchLimits::default()
            }
        );
        assert_eq!(
            policy.cache,
            CacheSettings {
                max_entries: 5,
                max_ttl_secs: 60,
                ..CacheSettings::default()
            }
        );
        let all: EphemeralPolicy = toml::from_str("scopes = \"all\"").unwrap();
        assert_eq!(all.scopes, ScopePolicy::All);
        let round_trip: EphemeralPolicy =
            toml::from_str(&toml::to_string(&policy).unwrap()).unwrap();
        assert_eq!(round_trip, policy);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        for bad in [
            "enable = true",
            "scopes = \"some\"",
            "fetch = { timeout = 1 }",
            "cache = { ttl_secs = 1 }",
            "domains = { mode = \"allowlist\" }",
            "domains = { patterns = [\"*.\"] }",
            "domains = { patterns = [\"a..b\"] }",
            "domains = { patterns = [\"*.*.x\"] }",
            "auth_methods = [\"client_secret_basic\"]",
        ] {
            assert!(toml::from_str::<EphemeralPolicy>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn domain_patterns_match_exact_names_and_strict_subdomains() {
        let wild: DomainPattern = "*.trusted.test".parse().unwrap();
        assert!(wild.matches("a.trusted.test"));
        assert!(wild.matches("a.b.trusted.test"));
        assert!(!wild.matches("trusted.test"));
        assert!(!wild.matches("eviltrusted.test"));
        assert!(!wild.matches("a.trusted.test.evil"));
        let exact: DomainPattern = "Exact.Example".parse().unwrap();
        assert!(exact.matches("exact.example"));
        assert!(!exact.matches("a.exact.example"));
    }

    #[test]
    fn allow_and_deny_lists_decide_before_any_fetch() {
        let mut policy = EphemeralPolicy::default();
        policy.domains.mode = DomainMode::AllowList;
        policy.domains.patterns = vec!["*.trusted.test".parse().unwrap()];
        let none = Faults::none();
        assert!(
            policy
                .check_domain(&url("https://a.trusted.test/c"), &none)
                .is_ok()
        );
        let err = policy
            .check_domain(&url("https://evil.test/c"), &none)
            .unwrap_err();
        assert_eq!(err.requirement, "CIMD-SEC-09");
        assert!(err.message.contains("allow-list"));
        assert!(
            policy
                .check_domain(
                    &url("https://evil.test/c"),
                    &Faults::of([Fault::SkipAllowList])
                )
                .is_ok()
        );

        policy.domains.mode = DomainMode::DenyList;
        assert!(
            policy
                .check_domain(&url("https://evil.test/c"), &none)
                .is_ok()
        );
        let err = policy
            .check_domain(&url("https://A.Trusted.test/c"), &none)
            .unwrap_err();
        assert!(err.message.contains("deny-list"));

        policy.domains.mode = DomainMode::Open;
        assert!(
            policy
                .check_domain(&url("https://a.trusted.test/c"), &none)
                .is_ok()
        );
    }

    #[test]
    fn only_allowed_auth_methods_pass() {
        let policy = EphemeralPolicy::default();
        let none = Faults::none();
        assert!(
            policy
                .check_client(&meta(&serde_json::json!({})), &none)
                .is_ok()
        );
        let pkj = meta(&serde_json::json!({
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://c.example/jwks",
        }));
        assert_eq!(
            policy.check_client(&pkj, &none).unwrap_err().requirement,
            "CIMD-DOC-09"
        );
        let open = EphemeralPolicy {
            auth_methods: vec![AuthMethod::None, AuthMethod::PrivateKeyJwt],
            ..EphemeralPolicy::default()
        };
        assert!(open.check_client(&pkj, &none).is_ok());
    }

    #[test]
    fn grants_need_both_the_document_and_the_policy() {
        let policy = EphemeralPolicy::default();
        let m =
            meta(&serde_json::json!({"grant_types": ["authorization_code", "client_credentials"]}));
        let none = Faults::none();
        assert!(policy.grant_allowed(&m, "authorization_code", &none));
        assert!(!policy.grant_allowed(&m, "refresh_token", &none));
        assert!(!policy.grant_allowed(&m, "client_credentials", &none));
        assert!(policy.grant_allowed(
            &m,
            "client_credentials",
            &Faults::of([Fault::SkipCapabilityPolicy])
        ));
        assert!(!policy.grant_allowed(
            &m,
            "refresh_token",
            &Faults::of([Fault::SkipCapabilityPolicy])
        ));
    }

    #[test]
    fn scopes_are_limited_by_the_policy_and_the_document() {
        let none = Faults::none();
        let policy = EphemeralPolicy {
            scopes: ScopePolicy::List(vec!["a".into(), "b".into()]),
            ..EphemeralPolicy::default()
        };
        let open_doc = meta(&serde_json::json!({}));
        assert_eq!(
            policy.filter_scopes("a b a", &open_doc, &none).unwrap(),
            "a b"
        );
        assert_eq!(policy.filter_scopes("", &open_doc, &none).unwrap(), "");
        let err = policy.filter_scopes("a c", &open_doc, &none).unwrap_err();
        assert_eq!(err.requirement, "CUR-03");
        assert!(err.message.contains("\"c\""));
        assert_eq!(
            policy
                .filter_scopes("a c", &open_doc, &Faults::of([Fault::SkipScopePolicy]))
                .unwrap(),
            "a c"
        );

        let narrow_doc = meta(&serde_json::json!({"scope": "a"}));
        assert_eq!(policy.filter_scopes("a", &narrow_doc, &none).unwrap(), "a");
        assert!(
            policy
                .filter_scopes("b", &narrow_doc, &none)
                .unwrap_err()
                .message
                .contains("declared")
        );
        assert!(
            EphemeralPolicy::default()
                .filter_scopes("zzz", &open_doc, &none)
                .is_ok()
        );
    }
}
