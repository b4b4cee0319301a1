//! Redirect URIs: which ones a document may register, and which requested one matches.
//!
//! Registered URIs (CIMD-REDIR-01, RFC 9700 §2.1, RFC 8252) are absolute, carry no fragment and
//! use one of three shapes:
//! - `https://host/…` with no userinfo, for any application type;
//! - `http://127.0.0.1…` or `http://[::1]…` (loopback IP literals), for any application type:
//!   nothing leaves the machine, and native apps use them even when they omit `application_type`
//!   (which defaults to `web`);
//! - `http://localhost…` and private-use schemes (a scheme with a dot, `com.example.app:/cb`) only
//!   for `application_type: native`: a web client has no business receiving codes there.
//!
//! Matching is exact string comparison (BCP-01), with one exception: for a registered loopback
//! IP-literal URI any port is accepted at request time (BCP-02, RFC 8252 §7.3), comparing scheme,
//! host, path and query exactly. `localhost` gets no such leniency: RFC 8252 §8.3 does not
//! recommend it (the name may resolve elsewhere) and the port exception is defined for IP literals.

use super::document::{ApplicationType, ClientMetadata};
use super::{Findings, Issues, quote};
use crate::faults::{Fault, Faults};

/// Whether `requested` matches one of the document's registered redirect URIs.
///
/// The `loose-redirect-match` fault also accepts any URI that merely starts with a registered one.
pub fn redirect_uri_matches(meta: &ClientMetadata, requested: &str, faults: &Faults) -> bool {
    // CIMD-REDIR-01 / BCP-01: simple string comparison, no normalisation.
    let exact = meta
        .redirect_uris()
        .any(|r| r == requested || loopback_equal_ignoring_port(r, requested));
    exact
        || (faults.on(Fault::LooseRedirectMatch)
            && meta.redirect_uris().any(|r| requested.starts_with(r)))
}

/// Every error and warning for a document's `redirect_uris` (the shape rules above).
pub fn check_redirect_uris(uris: &[String], application_type: ApplicationType) -> Findings {
    redirect_issues(uris, application_type).into_findings()
}

/// The shape rules as issues, for the document validator.
pub(super) fn redirect_issues(uris: &[String], application_type: ApplicationType) -> Issues {
    let mut issues = Issues::default();
    for uri in uris {
        match classify(uri) {
            Ok(Shape::Https | Shape::LoopbackIp) => {}
            Ok(Shape::Localhost) if application_type == ApplicationType::Native => issues.warning(
                "BCP-03",
                format!("redirect URI {} uses \"localhost\"; prefer 127.0.0.1 or [::1]", quote(uri)),
            ),
            Ok(Shape::Localhost) => issues.error(
                "CIMD-REDIR-01",
                format!(
                    "redirect URI {} uses http://localhost, which only native applications may register \
                     (set application_type to \"native\", or use http://127.0.0.1)",
                    quote(uri)
                ),
            ),
            Ok(Shape::PrivateUse) if application_type == ApplicationType::Native => {}
            Ok(Shape::PrivateUse) => issues.error(
                "CIMD-REDIR-01",
                format!(
                    "redirect URI {} uses a private-use scheme, which only native applications may register",
                    quote(uri)
                ),
            ),
            Err(why) => issues.error("CIMD-REDIR-01", format!("redirect URI {} is not allowed: {why}", quote(uri))),
        }
    }
    issues
}

/// The allowed shapes of a registered redirect URI.
enum Shape {
    Https,
    LoopbackIp,
    Localhost,
    PrivateUse,
}

fn classify(uri: &str) -> Result<Shape, String> {
    if uri
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || !b.is_ascii() || b == b'\\')
    {
        return Err(
            "it contains whitespace, a control character, a backslash or a non-ASCII character"
                .into(),
        );
    }
    if uri.contains('#') {
        return Err("it has a fragment".into());
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("it is not an absolute URI (no scheme)".into());
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err("it is not an absolute URI (no valid scheme)".into());
    }
    match scheme {
        "https" => {
            let authority = web_authority(rest)?;
            let host = authority.split(':').next().unwrap_or_default();
            if host.is_empty() {
                return Err("it has no host".into());
            }
            Ok(Shape::Https)
        }
        "http" => {
            web_authority(rest)?;
            if split_loopback(uri).is_some() {
                Ok(Shape::LoopbackIp)
            } else if localhost_authority(rest) {
                Ok(Shape::Localhost)
            } else {
                Err("http is allowed only for loopback (127.0.0.1 or [::1]); use https".into())
            }
        }
        _ if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => Err(
            format!("the scheme {} must be written in lower case", quote(scheme)),
        ),
        _ if scheme.contains('.') => Ok(Shape::PrivateUse),
        _ => Err(format!(
            "the scheme {} is neither https, loopback http, nor a private-use scheme (reverse domain name)",
            quote(scheme)
        )),
    }
}

/// The authority of `//authority/…`, refusing userinfo.
fn web_authority(after_scheme: &str) -> Result<&str, String> {
    let Some(rest) = after_scheme.strip_prefix("//") else {
        return Err("it has no \"//\" authority".into());
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("it has a userinfo part".into());
    }
    Ok(authority)
}

/// Whether the authority is `localhost` with an optional port.
fn localhost_authority(after_scheme: &str) -> bool {
    let authority = after_scheme
        .strip_prefix("//")
        .and_then(|r| r.split(['/', '?']).next())
        .unwrap_or_default();
    let (host, port) = authority
        .split_once(':')
        .map_or((authority, None), |(h, p)| (h, Some(p)));
    host == "localhost" && port.is_none_or(valid_port)
}

/// Splits `http://127.0.0.1[:port]rest` or `http://[::1][:port]rest` into (host, rest), where
/// rest is empty or starts with `/` or `?`. `None` for anything else, including a bad port.
fn split_loopback(uri: &str) -> Option<(&str, &str)> {
    let after = uri.strip_prefix("http://")?;
    let host = ["127.0.0.1", "[::1]"]
        .into_iter()
        .find(|h| after.starts_with(h))?;
    let after_host = after.get(host.len()..)?;
    let rest = match after_host.strip_prefix(':') {
        Some(port_and_rest) => {
            let end = port_and_rest
                .find(['/', '?'])
                .unwrap_or(port_and_rest.len());
            let (port, rest) = port_and_rest.split_at(end);
            valid_port(port).then_some(rest)?
        }
        None => after_host,
    };
    (rest.is_empty() || rest.starts_with(['/', '?'])).then_some((host, rest))
}

/// A canonical port: 1 to 65535, digits only, no leading zero.
fn valid_port(port: &str) -> bool {
    !port.starts_with('0')
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0)
}

/// BCP-02: a loopback IP-literal URI matches whatever the port, if all else is equal.
fn loopback_equal_ignoring_port(registered: &str, requested: &str) -> bool {
    matches!((split_loopback(registered), split_loopback(requested)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::cimd::url::ClientIdUrl;

    fn meta(uris: &[&str]) -> ClientMetadata {
        let body = serde_json::json!({
            "client_id": "https://c.example/c",
            "redirect_uris": uris,
            "application_type": "native",
        });
        let url = ClientIdUrl::parse("https://c.example/c", &Faults::none()).unwrap();
        ClientMetadata::parse(&url, &serde_json::to_vec(&body).unwrap(), &Faults::none()).unwrap()
    }

    #[test]
    fn matches_registered_uris_exactly() {
        let m = meta(&["https://app.example/cb", "com.example.app:/cb"]);
        let none = Faults::none();
        assert!(redirect_uri_matches(&m, "https://app.example/cb", &none));
        assert!(redirect_uri_matches(&m, "com.example.app:/cb", &none));
        for other in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://app.example/CB",
            "http://app.example/cb",
            "https://app.example:443/cb",
            "https://APP.example/cb",
            "https://app.example/cb#",
            "https://app.example/c",
            "",
        ] {
            assert!(!redirect_uri_matches(&m, other, &none), "{other}");
        }
    }

    #[test]
    fn loopback_ip_literals_match_any_port_but_nothing_else_varies() {
        let m = meta(&[
            "http://127.0.0.1/cb",
            "http://[::1]:3000/cb?x=1",
            "http://localhost:3000/cb",
        ]);
        let none = Faults::none();
        for ok in [
            "http://127.0.0.1/cb",
            "http://127.0.0.1:53124/cb",
            "http://127.0.0.1:1/cb",
            "http://[::1]:3000/cb?x=1",
            "http://[::1]/cb?x=1",
            "http://[::1]:65535/cb?x=1",
            "http://localhost:3000/cb",
        ] {
            assert!(redirect_uri_matches(&m, ok, &none), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:53124/other",
            "http://127.0.0.1:53124/cb/",
            "https://127.0.0.1:53124/cb",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:0080/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:x/cb",
            "http://127.0.0.2:80/cb",
            "http://[::1]:3000/cb",
            "http://127.0.0.1:3000/cb?x=1",
            "http://localhost:3001/cb",
            "http://localhost/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://127.0.0.1@evil.example/cb",
        ] {
            assert!(!redirect_uri_matches(&m, bad, &none), "{bad}");
        }
    }

    #[test]
    fn loose_fault_accepts_prefix_matches() {
        let m = meta(&["https://app.example/cb"]);
        let loose = Faults::of([Fault::LooseRedirectMatch]);
        assert!(redirect_uri_matches(
            &m,
            "https://app.example/cb/../evil",
            &loose
        ));
        assert!(!redirect_uri_matches(
            &m,
            "https://app.example/cb/../evil",
            &Faults::none()
        ));
        assert!(!redirect_uri_matches(&m, "https://evil.example/cb", &loose));
    }

    #[test]
    fn web_clients_may_register_https_and_loopback_ip_literals_only() {
        let web = ApplicationType::Web;
        for ok in [
            "https://app.example/cb",
            "https://app.example:8443/cb?x=1",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
        ] {
            assert!(
                check_redirect_uris(&[ok.to_owned()], web).is_valid(),
                "{ok}"
            );
        }
        for bad in [
            "http://localhost/cb",
            "com.example.app:/cb",
            "http://app.example/cb",
            "https://app.example/cb#",
            "https://app.example/cb#x",
            "/cb",
            "cb",
            "https:/app.example/cb",
            "https:///cb",
            "https://u@app.example/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "HTTPS://app.example/cb",
            "https://app.example/c b",
            "",
        ] {
            let findings = check_redirect_uris(&[bad.to_owned()], web);
            assert_eq!(findings.errors.len(), 1, "{bad}");
            assert_eq!(findings.errors[0].requirement, "CIMD-REDIR-01");
        }
    }

    #[test]
    fn native_clients_may_also_use_localhost_and_private_use_schemes() {
        let native = ApplicationType::Native;
        let findings = check_redirect_uris(&["http://localhost:3000/cb".to_owned()], native);
        assert!(findings.is_valid());
        assert_eq!(findings.warnings[0].requirement, "BCP-03");
        assert!(check_redirect_uris(&["com.example.app:/cb".to_owned()], native).is_valid());
        assert!(!check_redirect_uris(&["myapp:/cb".to_owned()], native).is_valid());
        assert!(!check_redirect_uris(&["http://app.example/cb".to_owned()], native).is_valid());
    }
}
