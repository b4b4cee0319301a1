//! Outbound HTTPS for the AS: the SSRF-guarded resolver and the bounded metadata fetcher.
//!
//! Everything the AS fetches on a client's say-so (the metadata document now, `jwks_uri` later)
//! goes through [`fetch::Fetcher`], which connects only to addresses that
//! [`ssrf::GuardedResolver`] vetted. Tests and the harness reach mock hosts on loopback through
//! explicit [`ResolveRule`]s (like `curl --resolve`); every other name is resolved normally and
//! refused if it lands on a special-use address.
//!
//! Layout:
//! - [`ssrf`]: [`ssrf::is_special_use`] and the resolver that enforces it (CIMD-SEC-01).
//! - [`fetch`]: [`fetch::Fetcher`], one GET with no redirects, a 200-only rule, timeouts and a
//!   byte cap counted while reading; conditional GETs for the cache's revalidations.

pub mod fetch;
pub mod ssrf;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

pub use fetch::{FetchError, Fetched, Fetcher, Revalidation, Validators};
pub use ssrf::{GuardedResolver, SsrfRefused, is_special_use};

/// How the AS reaches the network: extra trusted roots and explicit name mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSettings {
    /// PEM certificates (each string may hold several) trusted in addition to the platform roots,
    /// e.g. a test CA.
    pub extra_roots_pem: Vec<String>,
    /// Names mapped to fixed addresses; mapped names skip DNS and the special-use check.
    pub resolve: Vec<ResolveRule>,
}

/// A name mapped to an address: `www.client.example=127.0.0.1` or `*.trusted.test=127.0.0.1`.
///
/// A mapped name is trusted even when its address is loopback: that is how tests and the harness
/// reach mock hosts, and why mappings come only from the operator, never from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRule {
    /// `exact.name`, or `*.suffix` for every name below `suffix` (not `suffix` itself);
    /// lower case.
    pub pattern: String,
    /// The address the name resolves to.
    pub addr: IpAddr,
}

impl ResolveRule {
    /// A rule from a pattern and an address (the pattern is lower-cased).
    pub fn new(pattern: &str, addr: IpAddr) -> Result<Self, NetError> {
        let name = pattern.strip_prefix("*.").unwrap_or(pattern);
        let valid = !name.is_empty()
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(NetError::BadResolveRule {
                rule: pattern.to_owned(),
                reason: "the name must be a DNS name or \"*.\" followed by one",
            });
        }
        Ok(Self {
            pattern: pattern.to_ascii_lowercase(),
            addr,
        })
    }

    /// Whether `name` (as reqwest passes it: lower case, no port) is covered by this rule.
    pub fn matches(&self, name: &str) -> bool {
        match self.pattern.strip_prefix("*.") {
            Some(suffix) => name
                .strip_suffix(suffix)
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty()),
            None => name == self.pattern,
        }
    }
}

impl FromStr for ResolveRule {
    type Err = NetError;

    /// Parses `name=ip` or `*.suffix=ip` (IPv6 with or without brackets), for command-line flags.
    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = |reason| NetError::BadResolveRule {
            rule: s.to_owned(),
            reason,
        };
        let (pattern, addr) = s.split_once('=').ok_or_else(|| bad("expected name=ip"))?;
        let addr = addr.trim();
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        let addr = addr
            .parse()
            .map_err(|_| bad("the part after \"=\" is not an IP address"))?;
        ResolveRule::new(pattern.trim(), addr)
    }
}

impl fmt::Display for ResolveRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.pattern, self.addr)
    }
}

/// Everything that can go wrong while setting up outbound networking.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A resolve rule could not be parsed.
    #[error("invalid resolve rule {rule:?}: {reason}")]
    BadResolveRule {
        /// The rule as given.
        rule: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An extra trusted root is not PEM or holds no certificate.
    #[error("extra trusted root #{index} is not a PEM certificate: {reason}")]
    BadRoot {
        /// Position in [`NetworkSettings::extra_roots_pem`].
        index: usize,
        /// What the TLS library said.
        reason: String,
    },
    /// The HTTP client could not be built (e.g. the platform verifier failed to load).
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_exact_and_wildcard_rules() {
        let rule: ResolveRule = "WWW.Client.Example=127.0.0.1".parse().unwrap();
        assert_eq!(rule.pattern, "www.client.example");
        assert_eq!(rule.addr, IpAddr::from([127, 0, 0, 1]));
        assert!(rule.matches("www.client.example"));
        assert!(!rule.matches("a.www.client.example"));
        assert_eq!(rule.to_string(), "www.client.example=127.0.0.1");

        let wild: ResolveRule = "*.trusted.test=[::1]".parse().unwrap();
        assert_eq!(wild.addr, "::1".parse::<IpAddr>().unwrap());
        assert!(wild.matches("a.trusted.test"));
        assert!(wild.matches("a.b.trusted.test"));
        assert!(!wild.matches("trusted.test"));
        assert!(!wild.matches("xtrusted.test"));
        assert!("*.trusted.test=::1".parse::<ResolveRule>().is_ok());
    }

    #[test]
    fn refuses_malformed_rules() {
        for bad in [
            "",
            "name",
            "=127.0.0.1",
            "name=",
            "name=localhost",
            "*.=1.2.3.4",
            "a..b=1.2.3.4",
            "a b=1.2.3.4",
            "*=1.2.3.4",
        ] {
            assert!(bad.parse::<ResolveRule>().is_err(), "{bad}");
        }
    }
}
