//! The SSRF guard: a DNS resolver that never hands the HTTP client a special-use address.
//!
//! reqwest connects to exactly the addresses its resolver returns, so checking them here means
//! the AS connects only to what it checked: a name that resolves to a public address on one
//! lookup and to 127.0.0.1 on the next (DNS rebinding) gets checked on every connect, and no
//! second lookup happens between the check and the connect. IP-literal URLs never reach a
//! resolver, so the fetcher refuses those itself.
//!
//! A name whose answers include any special-use address is refused as a whole, rather than
//! filtered down to its public answers: mixed answers are a rebinding tell, and a legitimate
//! metadata host has no reason to publish a private address.
//!
//! What counts as special use ([`is_special_use`]): the IANA special-purpose registries (RFC 6890
//! and successors), reserved and multicast space, plus:
//! - IPv4-mapped IPv6 (`::ffff:a.b.c.d`) and the NAT64 well-known prefix (`64:ff9b::/96`, RFC 6052)
//!   are judged by the IPv4 address they carry: a NAT64 gateway would connect to it.
//!   `64:ff9b:1::/48` (local-use NAT64, RFC 8215) is special use outright.
//! - IPv6 outside global unicast `2000::/3` is special use (this covers `::`, `::1`, the deprecated
//!   IPv4-compatible `::/96`, `100::/64`, ULA `fc00::/7`, link-local `fe80::/10`, site-local and
//!   multicast); inside it, `2001::/23` (IETF protocol assignments, including Teredo), the
//!   documentation prefixes `2001:db8::/32` and `3fff::/20`, and 6to4 `2002::/16` (deprecated; its
//!   relays reach the embedded IPv4 address) are special use.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::ResolveRule;

/// Whether `ip` is a special-use address the AS must never connect to on a client's say-so.
pub fn is_special_use(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => is_special_v6(v6),
    }
}

/// IPv4 special-use blocks (IANA IPv4 Special-Purpose Address Registry, plus multicast and
/// the reserved 240/4, which includes the limited broadcast address).
const SPECIAL_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network"
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared address space (CGNAT)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local (cloud metadata endpoints live here)
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // TEST-NET-1
    ([192, 31, 196, 0], 24), // AS112-v4
    ([192, 52, 193, 0], 24), // AMT
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // private
    ([192, 175, 48, 0], 24), // AS112 direct delegation
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // TEST-NET-2
    ([203, 0, 113, 0], 24),  // TEST-NET-3
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, limited broadcast
];

fn is_special_v4(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    SPECIAL_V4.iter().any(|&(network, prefix)| {
        let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
        ip & mask == u32::from_be_bytes(network) & mask
    })
}

fn is_special_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_special_v4(v4);
    }
    let segments = ip.segments();
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., b0, b1, b2, b3] = ip.octets();
        return is_special_v4(Ipv4Addr::new(b0, b1, b2, b3));
    }
    let (first, second) = (segments[0], segments[1]);
    let global_unicast = first & 0xe000 == 0x2000;
    !global_unicast
        || first == 0x2001 && second < 0x0200 // 2001::/23
        || first == 0x2001 && second == 0x0db8 // 2001:db8::/32
        || first == 0x2002 // 6to4
        || first & 0xfff0 == 0x3ff0 // 3fff::/20
}

/// Why the guard refused a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrfRefused {
    /// The catalogue requirement (CIMD-SEC-01).
    pub requirement: &'static str,
    /// What was refused, naming the host and the address.
    pub message: String,
}

impl SsrfRefused {
    /// A refusal for CIMD-SEC-01.
    pub fn new(message: String) -> Self {
        Self {
            requirement: "CIMD-SEC-01",
            message,
        }
    }
}

impl fmt::Display for SsrfRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.requirement)
    }
}

impl StdError for SsrfRefused {}

/// Finds an [`SsrfRefused`] anywhere in an error's source chain (reqwest wraps resolver errors).
pub fn find_refusal<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a SsrfRefused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<SsrfRefused>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}

/// A `reqwest` resolver: mapped names go to their rule's address; every other name goes to the
/// system resolver and is refused if any answer is special use (unless `allow_special_use`, the
/// `skip-ssrf-guard` fault).
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    rules: Arc<[ResolveRule]>,
    allow_special_use: bool,
}

impl GuardedResolver {
    /// A resolver with the given mappings.
    pub fn new(rules: Vec<ResolveRule>, allow_special_use: bool) -> Self {
        Self {
            rules: rules.into(),
            allow_special_use,
        }
    }

    /// Resolves `name` under the guard (port 0: reqwest substitutes the URL's port).
    pub async fn lookup(
        &self,
        name: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn StdError + Send + Sync>> {
        if let Some(rule) = self.rules.iter().find(|r| r.matches(name)) {
            return Ok(vec![SocketAddr::new(rule.addr, 0)]);
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, 0))
            .await
            .map_err(|e| format!("could not resolve {name:?}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{name:?} has no addresses").into());
        }
        if !self.allow_special_use
            && let Some(bad) = addrs.iter().find(|a| is_special_use(a.ip()))
        {
            // CIMD-SEC-01: never connect to a special-use address on a client's say-so.
            return Err(Box::new(SsrfRefused::new(format!(
                "the host {name:?} resolves to the special-use address {}, which the AS does not fetch from",
                bad.ip()
            ))));
        }
        Ok(addrs)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_the_catalogue_addresses() {
        for special in [
            "127.0.0.1",
            "10.0.0.5",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(
                is_special_use(ip(special)),
                "{special} should be special use"
            );
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_special_use(ip(public)), "{public} should be public");
        }
    }

    #[test]
    fn classifies_range_edges_and_embedded_addresses() {
        for special in [
            "0.255.255.255",
            "100.127.255.255",
            "172.31.255.255",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.7",
            "240.0.0.1",
            "192.0.0.8",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::8.8.8.8",
            "64:ff9b:1::1",
            "2001::1",
            "2002:7f00:1::1",
            "3fff::1",
            "ff02::1",
            "fec0::1",
            "100::1",
        ] {
            assert!(
                is_special_use(ip(special)),
                "{special} should be special use"
            );
        }
        for public in [
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.3.1",
            "192.169.0.1",
            "223.255.255.255",
            "11.0.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2001:200::1",
            "2400:cb00::1",
        ] {
            assert!(!is_special_use(ip(public)), "{public} should be public");
        }
    }

    #[tokio::test]
    async fn mapped_names_resolve_to_their_rule_even_on_loopback() {
        let resolver =
            GuardedResolver::new(vec!["*.client.test=127.0.0.1".parse().unwrap()], false);
        let addrs = resolver.lookup("www.client.test").await.unwrap();
        assert_eq!(addrs, [SocketAddr::from(([127, 0, 0, 1], 0))]);
    }

    #[tokio::test]
    async fn unmapped_names_on_special_use_addresses_are_refused() {
        let resolver =
            GuardedResolver::new(vec!["www.client.test=127.0.0.1".parse().unwrap()], false);
        let error = resolver.lookup("localhost").await.unwrap_err();
        let refused = find_refusal(error.as_ref()).unwrap();
        assert_eq!(refused.requirement, "CIMD-SEC-01");
        assert!(
            refused.message.contains("\"localhost\""),
            "{}",
            refused.message
        );
        // Numeric names go through getaddrinfo too; the guard still sees the address.
        assert!(resolver.lookup("127.0.0.1").await.is_err());
    }

    #[tokio::test]
    async fn the_fault_lets_special_use_addresses_through() {
        let resolver = GuardedResolver::new(Vec::new(), true);
        let addrs = resolver.lookup("localhost").await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[tokio::test]
    async fn unresolvable_names_fail_without_a_refusal() {
        let resolver = GuardedResolver::new(Vec::new(), false);
        let error = resolver.lookup("no-such-host.invalid").await.unwrap_err();
        assert!(find_refusal(error.as_ref()).is_none());
    }
}
