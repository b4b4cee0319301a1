//! The client_id URL rules, applied to the raw string before any URL parser sees it.
//!
//! WHATWG parsers (the `url` crate, browsers) normalise: they resolve `/a/../b`, drop an empty
//! port, lower-case the scheme and host, and read `\` as `/`. CIMD forbids dot segments and
//! compares client IDs as plain strings, so every rule here inspects the raw bytes, and
//! [`ClientIdUrl`] keeps the string exactly as the client sent it.
//!
//! Decisions where the draft is silent (requirements.md, Ambiguities 8 and 10):
//! - The scheme must be written `https://` in lower case. `HTTPS://` denotes the same URL under
//!   RFC 3986, but a client_id is compared byte for byte, so the mixed-case form is refused as
//!   non-canonical (CIMD-URL-01) rather than silently accepted as a second identity.
//! - A path of only `/` is refused by the AS (CIMD-URL-03 is NOT RECOMMENDED, and the draft's
//!   issue #86 proposes forbidding it); the lint reports it as a warning because it is legal.
//! - The host must be an ASCII DNS name: letters, digits, `-` and `.` (IDNs in punycode), with no
//!   empty label, so no trailing dot (it names the same host as without the dot and would slip past
//!   domain patterns). Upper-case letters are accepted (the lint warns: the document must repeat
//!   them exactly).
//! - IP-literal hosts are refused outright (CIMD-SEC-01), including the numeric forms a WHATWG
//!   parser turns into IPv4 addresses (`2130706433`, `0x7f.1`, `017700000001`): any host whose
//!   last label is a decimal number or `0x…` hex.
//! - A port is allowed (CIMD-URL-08) when written canonically: 1 to 65535, no leading zero, not
//!   empty.
//! - Only RFC 3986 path and query characters are allowed; `%` must start a two-hex-digit escape;
//!   whitespace, control characters, non-ASCII characters and backslashes are refused.
//! - At most [`MAX_CLIENT_ID_LEN`] bytes; the lint warns above [`SHORT_CLIENT_ID_LEN`] (CIMD-URL-09).

use std::fmt;
use std::sync::Arc;

use super::{Finding, Findings, Issues, quote};
use crate::faults::{Fault, Faults};

/// The longest client_id the AS accepts, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 2048;

/// Above this many bytes the lint warns that the URL is not short (CIMD-URL-09; Auth0's limit).
pub const SHORT_CLIENT_ID_LEN: usize = 120;

/// A client_id that passed the URL rules, kept exactly as received (never normalised). Clones
/// share one copy of the string (the metadata cache keys its entry by that same copy).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientIdUrl {
    raw: Arc<str>,
    host: String,
    port: Option<u16>,
}

impl ClientIdUrl {
    /// Checks `raw` against the client_id URL rules; the first refused rule is the error.
    ///
    /// The `lenient-client-id-url` fault tolerates dot segments, fragments, userinfo and an `http`
    /// or mixed-case scheme; `skip-ssrf-guard` tolerates IP-literal hosts; `accept-pathless-client-id`
    /// a missing path; `skip-url-syntax-check` bad escapes and characters in the path or query.
    pub fn parse(raw: &str, faults: &Faults) -> Result<Self, Finding> {
        let analysis = analyse(raw);
        if let Some(finding) = analysis.issues.first_refusal(faults) {
            return Err(finding.clone());
        }
        match analysis.host {
            Some(host) => Ok(Self {
                raw: Arc::from(raw),
                host,
                port: analysis.port,
            }),
            // Unreachable in practice: every path that leaves no host records an unrelaxable error.
            None => Err(Finding::new(
                "CIMD-URL-01",
                format!("client_id {} has no host", quote(raw)),
            )),
        }
    }

    /// The client_id exactly as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The client_id as a shared string: another handle on this URL's one copy.
    pub fn shared(&self) -> Arc<str> {
        self.raw.clone()
    }

    /// The host in lower case, without the port. An IPv6 literal (only reachable with the
    /// `skip-ssrf-guard` fault) keeps its brackets, as in the URL.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port, if the URL has one (`:443` counts: it is part of the identity).
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

impl fmt::Display for ClientIdUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl AsRef<str> for ClientIdUrl {
    fn as_ref(&self) -> &str {
        &self.raw
    }
}

impl serde::Serialize for ClientIdUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

/// Whether `raw` is meant as a URL client_id (`https://` or `http://`, any letter case): such a
/// client_id is an ephemeral client to resolve (and, if malformed, to refuse with a URL error),
/// never an unknown registered client.
pub fn looks_like_url(raw: &str) -> bool {
    let starts = |prefix: &str| {
        raw.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    starts("https://") || starts("http://")
}

/// Every error and warning for `raw` as a client_id URL (for the lint command). A root path
/// (CIMD-URL-03) and a query (CIMD-URL-07) are warnings here; the AS refuses the former.
pub fn check_client_id_url(raw: &str) -> Findings {
    analyse(raw).issues.into_findings()
}

/// The outcome of scanning a raw client_id.
struct Analysis {
    issues: Issues,
    host: Option<String>,
    port: Option<u16>,
}

/// Scans `raw` left to right, recording every issue in order.
fn analyse(raw: &str) -> Analysis {
    let mut issues = Issues::default();
    let q = quote(raw);

    if raw.len() > MAX_CLIENT_ID_LEN {
        issues.error(
            "CIMD-URL-09",
            format!(
                "client_id {q} is {} bytes long; the limit is {MAX_CLIENT_ID_LEN}",
                raw.len()
            ),
        );
    } else if raw.len() > SHORT_CLIENT_ID_LEN {
        issues.warning(
            "CIMD-URL-09",
            format!(
                "client_id {q} is {} bytes long; users read it, so keep it under {SHORT_CLIENT_ID_LEN}",
                raw.len()
            ),
        );
    }
    check_characters(raw, &q, &mut issues);

    let Some(rest) = strip_scheme(raw, &q, &mut issues) else {
        return Analysis {
            issues,
            host: None,
            port: None,
        };
    };

    // CIMD-URL-05: a fragment, even an empty one, is not part of a client identifier.
    let rest = match rest.split_once('#') {
        Some((before, _)) => {
            issues.relaxable(
                Fault::LenientClientIdUrl,
                "CIMD-URL-05",
                format!("client_id {q} has a fragment (\"#…\"); not even an empty one is allowed"),
            );
            before
        }
        None => rest,
    };

    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);

    // CIMD-URL-06: userinfo could smuggle credentials and confuses what the host is.
    let host_port = match authority.rsplit_once('@') {
        Some((_, host_port)) => {
            issues.relaxable(
                Fault::LenientClientIdUrl,
                "CIMD-URL-06",
                format!(
                    "client_id {q} has a userinfo part (\"…@\"); not even an empty one is allowed"
                ),
            );
            host_port
        }
        None => authority,
    };

    let (host, port) = check_host_port(host_port, &q, &mut issues);
    check_path_and_query(after, &q, &mut issues);
    Analysis { issues, host, port }
}

/// Whitespace, control characters, non-ASCII characters and backslashes, reported once each.
fn check_characters(raw: &str, q: &str, issues: &mut Issues) {
    if let Some((at, c)) = raw
        .char_indices()
        .find(|(_, c)| c.is_ascii_control() || *c == ' ')
    {
        issues.error(
            "CIMD-URL-01",
            format!(
                "client_id {q} contains whitespace or a control character ({c:?}) at byte {at}"
            ),
        );
    }
    if let Some((at, c)) = raw.char_indices().find(|(_, c)| !c.is_ascii()) {
        issues.error(
            "CIMD-URL-01",
            format!(
                "client_id {q} contains the non-ASCII character {c:?} at byte {at}; write the host in \
                 punycode and percent-encode the path"
            ),
        );
    }
    if let Some(at) = raw.find('\\') {
        issues.error(
            "CIMD-URL-01",
            format!(
                "client_id {q} contains a backslash at byte {at} (WHATWG parsers read it as \"/\")"
            ),
        );
    }
}

/// CIMD-URL-01: returns what follows `https://` (or, recorded as relaxable, `http://` or a
/// mixed-case scheme); `None` when there is no usable scheme at all.
fn strip_scheme<'a>(raw: &'a str, q: &str, issues: &mut Issues) -> Option<&'a str> {
    const HTTPS: &str = "https://";
    const HTTP: &str = "http://";
    if let Some(rest) = raw.strip_prefix(HTTPS) {
        return Some(rest);
    }
    let head = |prefix: &str| {
        raw.get(..prefix.len())
            .filter(|p| p.eq_ignore_ascii_case(prefix))
    };
    if let Some(scheme) = head(HTTPS) {
        issues.relaxable(
            Fault::LenientClientIdUrl,
            "CIMD-URL-01",
            format!(
                "client_id {q} writes the scheme as {scheme:?}; it must be exactly \"https://\" in lower \
                 case, because client IDs are compared byte for byte"
            ),
        );
        return raw.get(HTTPS.len()..);
    }
    if head(HTTP).is_some() {
        issues.relaxable(
            Fault::LenientClientIdUrl,
            "CIMD-URL-01",
            format!("client_id {q} uses the http scheme; it must use https"),
        );
        return raw.get(HTTP.len()..);
    }
    issues.error(
        "CIMD-URL-01",
        format!("client_id {q} must be an https URL starting with \"https://\""),
    );
    None
}

/// Checks the host and the port (each judged on its own); returns the lower-case host (if it is
/// valid) and the port (if it is valid).
fn check_host_port(host_port: &str, q: &str, issues: &mut Issues) -> (Option<String>, Option<u16>) {
    let (host, port) = if host_port.starts_with('[') {
        let Some(close) = host_port.find(']') else {
            issues.error(
                "CIMD-URL-01",
                format!("client_id {q} has an unclosed \"[\" in its host"),
            );
            return (None, None);
        };
        let (host, port) = host_port.split_at(close + 1);
        (host, Some(port).filter(|p| !p.is_empty()))
    } else {
        match host_port.find(':') {
            Some(colon) => {
                let (host, port) = host_port.split_at(colon);
                (host, Some(port))
            }
            None => (host_port, None),
        }
    };
    let host = match classify_host(host) {
        HostKind::Empty => {
            issues.error("CIMD-URL-01", format!("client_id {q} has an empty host"));
            None
        }
        HostKind::Invalid(why) => {
            issues.error(
                "CIMD-URL-01",
                format!("client_id {q} has an invalid host {}: {why}", quote(host)),
            );
            None
        }
        HostKind::IpLiteral => {
            // CIMD-SEC-01: an address literal skips the resolver's special-use check entirely.
            issues.relaxable(
                Fault::SkipSsrfGuard,
                "CIMD-SEC-01",
                format!(
                    "client_id {q} names its host {} as an IP address; only DNS names are fetched",
                    quote(host)
                ),
            );
            Some(host.to_ascii_lowercase())
        }
        HostKind::Name => {
            if host.bytes().any(|b| b.is_ascii_uppercase()) {
                issues.warning(
                    "CIMD-DOC-03",
                    format!(
                        "client_id {q} has upper-case letters in its host; the document's client_id must \
                         repeat them exactly, and hosts are conventionally lower case"
                    ),
                );
            }
            Some(host.to_ascii_lowercase())
        }
    };
    let port = match port.map(|p| p.strip_prefix(':').ok_or(p)) {
        None => None,
        Some(Err(junk)) => {
            issues.error(
                "CIMD-URL-01",
                format!(
                    "client_id {q} has {} after its IPv6 host instead of a port",
                    quote(junk)
                ),
            );
            None
        }
        Some(Ok(digits)) => check_port(digits, q, issues),
    };
    (host, port)
}

/// CIMD-URL-08: a port is part of the identity and must be written canonically.
fn check_port(digits: &str, q: &str, issues: &mut Issues) -> Option<u16> {
    let problem = if digits.is_empty() {
        "an empty port after \":\"".to_owned()
    } else if !digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("the port {} which is not a number", quote(digits))
    } else if digits.len() > 1 && digits.starts_with('0') {
        format!("the port {} with a leading zero", quote(digits))
    } else {
        match digits.parse::<u16>() {
            Ok(0) => "port 0".to_owned(),
            Ok(port) => return Some(port),
            Err(_) => format!("the port {} which is above 65535", quote(digits)),
        }
    };
    issues.error("CIMD-URL-08", format!("client_id {q} has {problem}"));
    None
}

/// CIMD-URL-02/03/04/07 and the RFC 3986 character rules for the part after the authority.
fn check_path_and_query(after: &str, q: &str, issues: &mut Issues) {
    let (path, query) = match after.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (after, None),
    };
    if path.is_empty() {
        issues.relaxable(
            Fault::AcceptPathlessClientId,
            "CIMD-URL-02",
            format!("client_id {q} has no path; it needs one, e.g. \"/client.json\""),
        );
    } else if path == "/" {
        issues.strict(
            "CIMD-URL-03",
            format!(
                "client_id {q} has only \"/\" as its path, which is not recommended; the reference AS \
                 refuses it"
            ),
        );
    }
    check_component(path, "path", q, issues);
    // CIMD-URL-04: decode only the dot, so `%2e%2E` is caught while other escapes stay opaque.
    if let Some(segment) = path.split('/').find(|s| is_dot_segment(s)) {
        issues.relaxable(
            Fault::LenientClientIdUrl,
            "CIMD-URL-04",
            format!(
                "client_id {q} has the dot segment {} in its path",
                quote(segment)
            ),
        );
    }
    if let Some(query) = query {
        issues.warning(
            "CIMD-URL-07",
            format!("client_id {q} has a query component, which is discouraged"),
        );
        check_component(query, "query", q, issues);
    }
}

/// Whether a path segment is `.` or `..`, with each dot possibly written `%2e` or `%2E`.
pub(crate) fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment;
    let mut dots = 0;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else if rest.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("%2e")) {
            rest = rest.get(3..).unwrap_or_default();
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

/// RFC 3986 characters of a path or query: unreserved, sub-delims, `:`, `@`, `/`, `?` (query
/// only; a `?` in the path starts the query anyway) and `%XX` escapes. Reports the first
/// bad escape and the first bad character. Whitespace, control and non-ASCII characters were
/// already reported for the whole string and are skipped here.
fn check_component(component: &str, what: &str, q: &str, issues: &mut Issues) {
    let bytes = component.as_bytes();
    let mut bad_escape = None;
    let mut bad_char = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) && bad_escape.is_none() {
                bad_escape = Some(i);
            }
        } else if !(is_pchar(b)
            || b == b'/'
            || b == b'?'
            || b.is_ascii_control()
            || b == b' '
            || !b.is_ascii())
            && bad_char.is_none()
            && b != b'\\'
        {
            bad_char = Some(b);
        }
        i += 1;
    }
    // The `skip-url-syntax-check` fault tolerates both findings below, as WHATWG parsers do.
    if let Some(at) = bad_escape {
        issues.relaxable(
            Fault::SkipUrlSyntaxCheck,
            "CIMD-URL-01",
            format!("client_id {q} has a \"%\" not followed by two hex digits in its {what} (offset {at})"),
        );
    }
    if let Some(b) = bad_char {
        issues.relaxable(
            Fault::SkipUrlSyntaxCheck,
            "CIMD-URL-01",
            format!(
                "client_id {q} has the character {:?} in its {what}; percent-encode it",
                char::from(b)
            ),
        );
    }
}

/// RFC 3986 `pchar` minus the `%` escape: unreserved, sub-delims, `:` and `@`.
fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

/// What a raw host string is.
pub(crate) enum HostKind {
    /// Nothing between `//` and the port or path.
    Empty,
    /// An IPv6 literal, a dotted IPv4 address, or a number a WHATWG parser reads as IPv4.
    IpLiteral,
    /// A well-formed ASCII DNS name.
    Name,
    /// Anything else, with the reason.
    Invalid(String),
}

/// Classifies a raw host (brackets included for IPv6).
pub(crate) fn classify_host(host: &str) -> HostKind {
    if host.is_empty() {
        return HostKind::Empty;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return if inner.parse::<std::net::Ipv6Addr>().is_ok() {
            HostKind::IpLiteral
        } else {
            HostKind::Invalid(format!("{} is not an IPv6 address", quote(inner)))
        };
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return HostKind::Invalid(format!(
            "the character {c:?} is not allowed (letters, digits, \"-\" and \".\" only; IDNs in punycode)"
        ));
    }
    if host.len() > 253 {
        return HostKind::Invalid("longer than 253 characters".to_owned());
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.last().is_some_and(|l| l.is_empty()) && labels.len() > 1 {
        return HostKind::Invalid("a trailing dot is not allowed".to_owned());
    }
    if labels.iter().any(|l| l.is_empty()) {
        return HostKind::Invalid("it has an empty label".to_owned());
    }
    // WHATWG "ends in a number": such a host is parsed as an IPv4 address in some notation.
    if labels.last().is_some_and(|l| is_numeric_label(l)) {
        return HostKind::IpLiteral;
    }
    if let Some(label) = labels.iter().find(|l| l.len() > 63) {
        return HostKind::Invalid(format!(
            "the label {} is longer than 63 characters",
            quote(label)
        ));
    }
    if let Some(label) = labels
        .iter()
        .find(|l| l.starts_with('-') || l.ends_with('-'))
    {
        return HostKind::Invalid(format!(
            "the label {} starts or ends with \"-\"",
            quote(label)
        ));
    }
    HostKind::Name
}

/// A decimal number, or `0x`/`0X` followed by hex digits (or nothing), as WHATWG reads IPv4 parts.
fn is_numeric_label(label: &str) -> bool {
    if let Some(hex) = label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"))
    {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    label.bytes().all(|b| b.is_ascii_digit())
}

/// How [`check_member_url`] treats a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment {
    /// Refused (`jwks_uri`: a fragment has no meaning for a fetch).
    Refused,
    /// Allowed (links shown to the user, e.g. `policy_uri#privacy`).
    Allowed,
}

/// The rules for a URL found inside a document (`jwks_uri`, `logo_uri`, …): `https://` in lower
/// case, a DNS-name host, no userinfo, no whitespace or control characters, optionally no
/// fragment; IP literals are refused unless `allow_ip` (the `skip-ssrf-guard` fault).
/// Returns a description of the first problem.
pub(crate) fn check_member_url(
    value: &str,
    fragment: Fragment,
    allow_ip: bool,
) -> Result<(), String> {
    if value
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || !b.is_ascii() || b == b'\\')
    {
        return Err(
            "it contains whitespace, a control character, a backslash or a non-ASCII character"
                .into(),
        );
    }
    let Some(rest) = value.strip_prefix("https://") else {
        return Err("it does not start with \"https://\"".into());
    };
    let rest = match rest.split_once('#') {
        Some(_) if fragment == Fragment::Refused => return Err("it has a fragment".into()),
        Some((before, _)) => before,
        None => rest,
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("it has a userinfo part".into());
    }
    let host = if authority.starts_with('[') {
        authority.find(']').map_or(authority, |close| {
            authority.get(..=close).unwrap_or(authority)
        })
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    match classify_host(host) {
        HostKind::Name => Ok(()),
        HostKind::IpLiteral if allow_ip => Ok(()),
        HostKind::IpLiteral => Err(format!("its host {} is an IP address", quote(host))),
        HostKind::Empty => Err("it has an empty host".into()),
        HostKind::Invalid(why) => Err(format!("its host {} is invalid: {why}", quote(host))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn refusal(raw: &str) -> Option<&'static str> {
        ClientIdUrl::parse(raw, &Faults::none())
            .err()
            .map(|f| f.requirement)
    }

    #[test]
    fn accepts_well_formed_client_ids() {
        for raw in [
            "https://www.client.example/client.json",
            "https://client.example:8443/c.json",
            "https://client.example:443/c.json",
            "https://client.example/a/b/c",
            "https://client.example/c.json?v=1",
            "https://xn--bcher-kva.example/c",
            "https://client.example//double",
            "https://client.example/a%20b",
            "https://client.example/.well-known/client",
            "https://client.example/..x/x..",
            "https://single/c",
        ] {
            assert_eq!(refusal(raw), None, "{raw}");
        }
    }

    #[test]
    fn refuses_each_broken_rule_with_its_requirement() {
        let cases: &[(&str, &str)] = &[
            ("http://client.example/c", "CIMD-URL-01"),
            ("HTTPS://client.example/c", "CIMD-URL-01"),
            ("Https://client.example/c", "CIMD-URL-01"),
            ("ftp://client.example/c", "CIMD-URL-01"),
            ("javascript:alert(1)", "CIMD-URL-01"),
            ("data:text/plain,x", "CIMD-URL-01"),
            ("file:///etc/passwd", "CIMD-URL-01"),
            ("client.example/c", "CIMD-URL-01"),
            ("", "CIMD-URL-01"),
            ("https:///x", "CIMD-URL-01"),
            ("https://:443/x", "CIMD-URL-01"),
            (" https://client.example/c", "CIMD-URL-01"),
            ("https://client.example/c ", "CIMD-URL-01"),
            ("https://client.example/a\tb", "CIMD-URL-01"),
            ("https://client.example/a\\b", "CIMD-URL-01"),
            ("https://client.example/a%2", "CIMD-URL-01"),
            ("https://client.example/a%zz", "CIMD-URL-01"),
            ("https://client.example/a<b", "CIMD-URL-01"),
            ("https://client.example/é", "CIMD-URL-01"),
            ("https://bücher.example/c", "CIMD-URL-01"),
            ("https://client.example./c", "CIMD-URL-01"),
            ("https://client..example/c", "CIMD-URL-01"),
            ("https://-client.example/c", "CIMD-URL-01"),
            ("https://client_x.example/c", "CIMD-URL-01"),
            ("https://client.example", "CIMD-URL-02"),
            ("https://client.example?x=1", "CIMD-URL-02"),
            ("https://client.example:8443", "CIMD-URL-02"),
            ("https://client.example/", "CIMD-URL-03"),
            ("https://client.example/a/./b", "CIMD-URL-04"),
            ("https://client.example/a/../b", "CIMD-URL-04"),
            ("https://client.example/..", "CIMD-URL-04"),
            ("https://client.example/a/.", "CIMD-URL-04"),
            ("https://client.example/a/%2e%2e/b", "CIMD-URL-04"),
            ("https://client.example/a/%2E%2e/b", "CIMD-URL-04"),
            ("https://client.example/a/.%2e", "CIMD-URL-04"),
            ("https://client.example/c.json#x", "CIMD-URL-05"),
            ("https://client.example/c.json#", "CIMD-URL-05"),
            ("https://u:p@client.example/c", "CIMD-URL-06"),
            ("https://u@client.example/c", "CIMD-URL-06"),
            ("https://@client.example/c", "CIMD-URL-06"),
            ("https://client.example:0/c", "CIMD-URL-08"),
            ("https://client.example:/c", "CIMD-URL-08"),
            ("https://client.example:65536/c", "CIMD-URL-08"),
            ("https://client.example:0443/c", "CIMD-URL-08"),
            ("https://client.example:x/c", "CIMD-URL-08"),
            ("https://127.0.0.1/c", "CIMD-SEC-01"),
            ("https://2130706433/c", "CIMD-SEC-01"),
            ("https://0x7f.1/c", "CIMD-SEC-01"),
            ("https://017700000001/c", "CIMD-SEC-01"),
            ("https://10.0.0.5:8443/c", "CIMD-SEC-01"),
            ("https://[::1]/c", "CIMD-SEC-01"),
            ("https://[::ffff:127.0.0.1]:443/c", "CIMD-SEC-01"),
            ("https://8.8.8.8/c", "CIMD-SEC-01"),
        ];
        for (raw, requirement) in cases {
            assert_eq!(refusal(raw), Some(*requirement), "{raw}");
        }
        let long = format!("https://client.example/{}", "a".repeat(MAX_CLIENT_ID_LEN));
        assert_eq!(refusal(&long), Some("CIMD-URL-09"));
    }

    #[test]
    fn keeps_the_raw_string_and_exposes_lower_case_host_and_port() {
        let url =
            ClientIdUrl::parse("https://WWW.Client.Example:8443/C.json", &Faults::none()).unwrap();
        assert_eq!(url.as_str(), "https://WWW.Client.Example:8443/C.json");
        assert_eq!(url.host(), "www.client.example");
        assert_eq!(url.port(), Some(8443));
        let url = ClientIdUrl::parse("https://client.example/c", &Faults::none()).unwrap();
        assert_eq!(url.port(), None);
    }

    #[test]
    fn lenient_fault_relaxes_dots_fragments_userinfo_and_scheme_only() {
        let lenient = Faults::of([Fault::LenientClientIdUrl]);
        for raw in [
            "https://client.example/a/../b",
            "https://client.example/c#x",
            "https://u:p@client.example/c",
            "http://client.example/c",
            "HTTPS://client.example/c",
        ] {
            assert!(ClientIdUrl::parse(raw, &lenient).is_ok(), "{raw}");
        }
        let with_userinfo =
            ClientIdUrl::parse("https://u:p@client.example:8443/c", &lenient).unwrap();
        assert_eq!(with_userinfo.host(), "client.example");
        assert_eq!(with_userinfo.port(), Some(8443));
        for raw in [
            "https://client.example",
            "https://127.0.0.1/c",
            "https://client.example/",
        ] {
            assert!(ClientIdUrl::parse(raw, &lenient).is_err(), "{raw}");
        }
    }

    #[test]
    fn ssrf_fault_lets_ip_literals_through() {
        let faults = Faults::of([Fault::SkipSsrfGuard]);
        let url = ClientIdUrl::parse("https://[::1]:8443/c", &faults).unwrap();
        assert_eq!(url.host(), "[::1]");
        assert_eq!(url.port(), Some(8443));
        assert!(ClientIdUrl::parse("https://127.0.0.1/c", &faults).is_ok());
    }

    #[test]
    fn first_error_wins() {
        let err =
            ClientIdUrl::parse("https://u@client.example/a/../b#f", &Faults::none()).unwrap_err();
        assert_eq!(err.requirement, "CIMD-URL-05");
    }

    #[test]
    fn lint_reports_every_error_and_the_warnings() {
        let findings = check_client_id_url("https://u@client.example/a/../b#f");
        let ids: Vec<_> = findings.errors.iter().map(|f| f.requirement).collect();
        assert_eq!(ids, ["CIMD-URL-05", "CIMD-URL-06", "CIMD-URL-04"]);

        let findings = check_client_id_url("https://client.example/");
        assert!(findings.is_valid());
        assert_eq!(findings.warnings[0].requirement, "CIMD-URL-03");

        let findings = check_client_id_url("https://client.example/c?v=1");
        assert!(findings.is_valid());
        assert_eq!(findings.warnings[0].requirement, "CIMD-URL-07");

        let long = format!("https://client.example/{}", "a".repeat(200));
        let findings = check_client_id_url(&long);
        assert!(findings.is_valid());
        assert_eq!(findings.warnings[0].requirement, "CIMD-URL-09");

        let findings = check_client_id_url("https://Client.example/c");
        assert!(findings.is_valid());
        assert_eq!(findings.warnings[0].requirement, "CIMD-DOC-03");
    }

    #[test]
    fn messages_quote_the_offending_value() {
        let err =
            ClientIdUrl::parse("https://client.example/a/%2e%2e/b", &Faults::none()).unwrap_err();
        assert!(err.message.contains("\"%2e%2e\""), "{}", err.message);
        assert_eq!(err.to_string(), format!("CIMD-URL-04: {}", err.message));
    }

    #[test]
    fn looks_like_url_decides_by_prefix_only() {
        assert!(looks_like_url("https://x"));
        assert!(looks_like_url("HTTP://x"));
        assert!(looks_like_url("http://"));
        assert!(!looks_like_url("my-client"));
        assert!(!looks_like_url("ftp://x"));
        assert!(!looks_like_url("htt"));
        assert!(!looks_like_url("ééééééééé"));
    }

    #[test]
    fn dot_segment_detection_decodes_only_dots() {
        for s in [".", "..", "%2e", "%2E", "%2e%2E", ".%2e", "%2e."] {
            assert!(is_dot_segment(s), "{s}");
        }
        for s in ["", "...", "a", ".a", "%2e%2e%2e", "%2f", "%2"] {
            assert!(!is_dot_segment(s), "{s}");
        }
    }

    #[test]
    fn member_urls_follow_the_fetch_rules() {
        let check = |v| check_member_url(v, Fragment::Refused, false);
        assert!(check("https://keys.example/jwks.json").is_ok());
        assert!(check("https://keys.example:8443/jwks.json").is_ok());
        assert!(check("https://keys.example").is_ok());
        for bad in [
            "http://keys.example/j",
            "https://keys.example/j#x",
            "https://u@keys.example/j",
            "https://127.0.0.1/j",
            "https://[::1]/j",
            "https:///j",
            "javascript:alert(1)",
            "https://keys example/j",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
        assert!(check_member_url("https://x.example/p#a", Fragment::Allowed, false).is_ok());
        assert!(check_member_url("https://127.0.0.1/j", Fragment::Refused, true).is_ok());
    }
}
