//! Registration bodies (RFC 7591 §2): member types, values, defaults and consistency, turned into
//! [`ClientFields`] or an RFC 7591 §3.2.2 error whose description names the rule.
//!
//! Choices beyond the RFC (see `docs/decisions.md`): redirect URIs are https, or http on a
//! loopback IP literal for native apps; only the `code` response type exists; `jwks` and
//! `jwks_uri` go only with `private_key_jwt`; a `null` member counts as absent; unknown members
//! are ignored (RFC 7591 §2) and not echoed; `client_uri`, `logo_uri`, `tos_uri` and
//! `policy_uri` must be https and, when the client has https redirect URIs, on the registrable
//! domain of one of them (DCR-20); no software statement issuer is trusted, so every statement
//! is refused (DCR-09/10). For an instance of a template, the template fixes the method, the
//! grants and the redirect URIs (the body may repeat them unchanged or leave them out) and caps
//! the scope: a scope outside the ceiling is refused, not narrowed.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::templates::TemplateDefinition;
use crate::client_auth::assertion::ALLOWED_ALGORITHMS;
use crate::client_auth::{KeySet, TokenAuthMethod};
use crate::error::{ErrorCode, OAuthError};
use crate::faults::{Fault, Faults};

/// RFC 7591 §3.2.2: a redirect URI is invalid.
pub const INVALID_REDIRECT_URI: ErrorCode = ErrorCode::other("invalid_redirect_uri");
/// RFC 7591 §3.2.2: another metadata value is invalid.
pub const INVALID_CLIENT_METADATA: ErrorCode = ErrorCode::other("invalid_client_metadata");
/// RFC 7591 §3.2.2: the software statement is malformed or does not verify.
pub const INVALID_SOFTWARE_STATEMENT: ErrorCode = ErrorCode::other("invalid_software_statement");
/// RFC 7591 §3.2.2: the software statement's issuer is not accepted.
pub const UNAPPROVED_SOFTWARE_STATEMENT: ErrorCode =
    ErrorCode::other("unapproved_software_statement");

/// The device authorization grant (RFC 8628 §3.4).
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Grant types a dynamic client may register.
pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    DEVICE_CODE,
];

/// Members with human-readable values, which may have `#lang` variants (RFC 7591 §2.2).
const HUMAN_MEMBERS: &[&str] = &[
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
];

/// The human-readable members that are URLs.
const URL_MEMBERS: &[&str] = &["client_uri", "logo_uri", "tos_uri", "policy_uri"];

/// A client's validated registration, after defaults: what the server registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFields {
    /// Redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// How the client authenticates at the token endpoint.
    pub token_endpoint_auth_method: TokenAuthMethod,
    /// Grant types.
    pub grant_types: Vec<String>,
    /// Response types (`code`, or none).
    pub response_types: Vec<String>,
    /// The registered scope (space-separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Public keys inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// Where the public keys are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The algorithm pinned for client assertions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// The software (for instances: the template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// The software's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// Contacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    /// `client_name`, `client_uri`, `logo_uri`, `tos_uri`, `policy_uri` and their `#lang`
    /// variants, by member name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub human: BTreeMap<String, String>,
}

impl ClientFields {
    /// The registered metadata as response members.
    pub fn members(&self) -> Map<String, Value> {
        let mut members = match serde_json::to_value(self) {
            Ok(Value::Object(members)) => members,
            // A struct of strings, lists and JSON values always serialises to an object.
            _ => Map::new(),
        };
        members.remove("human");
        for (name, value) in &self.human {
            members.insert(name.clone(), Value::String(value.clone()));
        }
        members
    }

    /// The display name.
    pub fn client_name(&self) -> Option<&str> {
        self.human.get("client_name").map(String::as_str)
    }

    /// Whether the client registered `grant_type`.
    pub fn has_grant_type(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// The template an instance's body is read against.
#[derive(Debug, Clone, Copy)]
pub struct Fixed<'a> {
    /// The template's name.
    pub software_id: &'a str,
    /// Its definition.
    pub template: &'a TemplateDefinition,
}

fn metadata_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(INVALID_CLIENT_METADATA, description)
}

/// Parses and checks a registration body (the first error wins).
pub fn parse(
    body: &Map<String, Value>,
    fixed: Option<Fixed<'_>>,
    faults: &Faults,
) -> Result<ClientFields, OAuthError> {
    if let Some(statement) = present(body, "software_statement") {
        return Err(software_statement(statement));
    }
    let method = match string(body, "token_endpoint_auth_method")? {
        // DCR-12: RFC 7591 §2's default, or the template's.
        None => fixed.map_or(TokenAuthMethod::ClientSecretBasic, |f| {
            f.template.token_endpoint_auth_method
        }),
        Some(raw) => auth_method(raw)?,
    };
    if let Some(f) = fixed
        && method != f.template.token_endpoint_auth_method
    {
        return Err(metadata_error(format!(
            "template {:?} fixes token_endpoint_auth_method {}; an instance cannot choose {method} \
             (CUR-07)",
            f.software_id, f.template.token_endpoint_auth_method
        )));
    }
    let grant_types = grant_types(body, fixed)?;
    let has = |g: &str| grant_types.iter().any(|x| x == g);
    let response_types = response_types(body, has("authorization_code"))?;
    let redirect_uris = redirect_uris(body, fixed, faults)?;
    // DCR-11: redirect-based flows register their redirect URIs.
    if has("authorization_code") && redirect_uris.is_empty() {
        return Err(OAuthError::new(
            INVALID_REDIRECT_URI,
            "redirect_uris is missing or empty; the authorization_code grant needs at least one \
             redirect URI (DCR-11)",
        ));
    }
    if has("client_credentials") && !method.is_confidential() {
        return Err(metadata_error(
            "the client_credentials grant needs a client that authenticates; \
             token_endpoint_auth_method none cannot use it",
        ));
    }
    let (jwks, jwks_uri, signing_alg) = keys(body, method, faults)?;
    let scope = scope(body, fixed)?;
    let software_id = match fixed {
        Some(f) => Some(f.software_id.to_owned()),
        None => string(body, "software_id")?.map(str::to_owned),
    };
    let software_version = string(body, "software_version")?.map(str::to_owned);
    let contacts = strings(body, "contacts")?;
    let human = human_members(body, &redirect_uris)?;
    Ok(ClientFields {
        redirect_uris,
        token_endpoint_auth_method: method,
        grant_types,
        response_types,
        scope,
        jwks,
        jwks_uri,
        token_endpoint_auth_signing_alg: signing_alg,
        software_id,
        software_version,
        contacts,
        human,
    })
}

/// A member's value; `null` counts as absent.
fn present<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

/// A string member.
fn string<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, OAuthError> {
    match present(body, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(metadata_error(format!(
            "{name} must be a JSON string (RFC 7591 §2)"
        ))),
    }
}

/// An array-of-strings member, without repeats (first occurrence kept).
fn strings(body: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, OAuthError> {
    let Some(value) = present(body, name) else {
        return Ok(None);
    };
    let wrong = || {
        metadata_error(format!(
            "{name} must be a JSON array of strings (RFC 7591 §2)"
        ))
    };
    let Value::Array(items) = value else {
        return Err(wrong());
    };
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(s) = item else {
            return Err(wrong());
        };
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(Some(out))
}

fn auth_method(raw: &str) -> Result<TokenAuthMethod, OAuthError> {
    Ok(match raw {
        "none" => TokenAuthMethod::None,
        "client_secret_basic" => TokenAuthMethod::ClientSecretBasic,
        "client_secret_post" => TokenAuthMethod::ClientSecretPost,
        "private_key_jwt" => TokenAuthMethod::PrivateKeyJwt,
        other => {
            return Err(metadata_error(format!(
                "token_endpoint_auth_method {other:?} is not supported; use none, \
                 client_secret_basic, client_secret_post or private_key_jwt (DCR-08)"
            )));
        }
    })
}

fn set(list: &[String]) -> BTreeSet<&str> {
    list.iter().map(String::as_str).collect()
}

fn grant_types(
    body: &Map<String, Value>,
    fixed: Option<Fixed<'_>>,
) -> Result<Vec<String>, OAuthError> {
    let Some(grants) = strings(body, "grant_types")? else {
        // DCR-13: RFC 7591 §2's default, or the template's.
        return Ok(fixed.map_or_else(
            || vec!["authorization_code".to_owned()],
            |f| f.template.grant_types.clone(),
        ));
    };
    if let Some(bad) = grants.iter().find(|g| !GRANT_TYPES.contains(&g.as_str())) {
        return Err(metadata_error(format!(
            "grant type {bad:?} is not supported; use {} (DCR-08)",
            GRANT_TYPES.join(", ")
        )));
    }
    if let Some(f) = fixed
        && set(&grants) != set(&f.template.grant_types)
    {
        return Err(metadata_error(format!(
            "template {:?} fixes grant_types to [{}]; send them unchanged or leave grant_types \
             out (CUR-07)",
            f.software_id,
            f.template.grant_types.join(", ")
        )));
    }
    Ok(grants)
}

fn response_types(body: &Map<String, Value>, code_grant: bool) -> Result<Vec<String>, OAuthError> {
    let types = match strings(body, "response_types")? {
        // DCR-13: `code` by default; a client without the code grant has no response type.
        None if code_grant => return Ok(vec!["code".to_owned()]),
        None => return Ok(Vec::new()),
        Some(types) => types,
    };
    if let Some(bad) = types.iter().find(|t| *t != "code") {
        return Err(metadata_error(format!(
            "response type {bad:?} is not supported; this server has only the code response \
             type (DCR-14)"
        )));
    }
    // DCR-14: RFC 7591 §2.1 links authorization_code and code both ways.
    if code_grant != types.iter().any(|t| t == "code") {
        return Err(metadata_error(
            "grant_types and response_types disagree: the authorization_code grant goes with \
             the code response type, and the code response type with that grant (DCR-14)",
        ));
    }
    Ok(types)
}

fn redirect_uris(
    body: &Map<String, Value>,
    fixed: Option<Fixed<'_>>,
    faults: &Faults,
) -> Result<Vec<String>, OAuthError> {
    let uris = match strings(body, "redirect_uris") {
        Ok(uris) => uris,
        Err(e) => return Err(OAuthError::new(INVALID_REDIRECT_URI, e.description)),
    };
    let Some(uris) = uris else {
        return Ok(fixed.map_or_else(Vec::new, |f| f.template.redirect_uris.clone()));
    };
    // DCR-07: the `accept-bad-redirect-uri` fault registers whatever was sent.
    if !faults.on(Fault::AcceptBadRedirectUri) {
        for uri in &uris {
            check_redirect_uri(uri).map_err(|why| {
                OAuthError::new(
                    INVALID_REDIRECT_URI,
                    format!("redirect URI {uri:?} {why} (DCR-07)"),
                )
            })?;
        }
    }
    if let Some(f) = fixed
        && set(&uris) != set(&f.template.redirect_uris)
    {
        return Err(OAuthError::new(
            INVALID_REDIRECT_URI,
            format!(
                "template {:?} fixes the redirect URIs to [{}]; send them unchanged or leave \
                 redirect_uris out (CUR-07)",
                f.software_id,
                f.template.redirect_uris.join(", ")
            ),
        ));
    }
    Ok(uris)
}

/// Why `uri` cannot be a registered redirect URI: it must be an absolute RFC 3986 URI of the
/// form `scheme://authority...`, without a fragment, and https, or http on a loopback IP literal
/// (RFC 8252 §7.3).
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    // RFC 3986 §2: the WHATWG parser below quietly trims, encodes or rewrites other characters
    // (spaces, line breaks, backslashes), so the string registered and matched exactly would not
    // be the URI the parser checked.
    let uri_char = |b: u8| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b);
    if !uri.bytes().all(uri_char) {
        return Err("holds characters a URI cannot (RFC 3986 §2)".to_owned());
    }
    let Ok(url) = url::Url::parse(uri) else {
        return Err("is not an absolute URI".to_owned());
    };
    // The WHATWG parser also finds a host in `https:host/p` and `https:///host/p`; an http(s)
    // URI writes it as `scheme://authority` (RFC 9110 §4.2).
    let authority = uri
        .get(url.scheme().len()..)
        .and_then(|rest| rest.strip_prefix("://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if url.cannot_be_a_base() || url.host().is_none() || !authority {
        return Err("is not an absolute URI with a host".to_owned());
    }
    if uri.contains('#') {
        return Err("has a fragment".to_owned());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if written_loopback_literal(uri) => Ok(()),
        _ => Err(
            "must use https, or http only on a loopback IP literal (127.0.0.0/8 as four decimal \
             numbers, or [::1])"
                .to_owned(),
        ),
    }
}

/// Whether the host of `uri` *as written* is a loopback IP literal (RFC 8252 §7.3). The WHATWG
/// parser turns `2130706433`, `0x7f.1` or `127.1` into 127.0.0.1, but RFC 3986 reads those as
/// registered names, and the string registered is the one written.
fn written_loopback_literal(uri: &str) -> bool {
    let Some((_, rest)) = uri.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(bracketed) = host_port.strip_prefix('[') {
        return bracketed
            .split_once(']')
            .and_then(|(inner, _)| inner.parse::<std::net::Ipv6Addr>().ok())
            .is_some_and(|ip| ip.is_loopback());
    }
    let host = host_port.split(':').next().unwrap_or_default();
    // std parses only the dotted-quad of four decimal numbers, RFC 3986's IPv4address.
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Why `scope` is not a space-separated list of RFC 6749 §3.3 scope tokens.
pub fn check_scope_syntax(scope: &str) -> Result<(), String> {
    let token_char = |b: u8| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
    if scope.is_empty()
        || scope
            .split(' ')
            .any(|t| t.is_empty() || !t.bytes().all(token_char))
    {
        return Err(format!(
            "scope {scope:?} must be scope tokens separated by single spaces (RFC 6749 §3.3)"
        ));
    }
    Ok(())
}

type Keys = (Option<Value>, Option<String>, Option<String>);

fn keys(
    body: &Map<String, Value>,
    method: TokenAuthMethod,
    faults: &Faults,
) -> Result<Keys, OAuthError> {
    let jwks = match present(body, "jwks") {
        None => None,
        Some(jwks @ Value::Object(_)) => {
            KeySet::parse(jwks).map_err(|e| metadata_error(format!("jwks: {e}")))?;
            Some(jwks.clone())
        }
        Some(_) => return Err(metadata_error("jwks must be a JSON object (a JWK Set)")),
    };
    let jwks_uri = string(body, "jwks_uri")?.map(str::to_owned);
    if let Some(uri) = &jwks_uri
        && !url::Url::parse(uri).is_ok_and(|u| u.scheme() == "https" && u.host().is_some())
    {
        return Err(metadata_error(format!(
            "jwks_uri {uri:?} must be an absolute https URL"
        )));
    }
    // DCR-15: one source of keys; the `accept-jwks-and-jwks-uri` fault registers both.
    if jwks.is_some() && jwks_uri.is_some() && !faults.on(Fault::AcceptJwksAndJwksUri) {
        return Err(metadata_error(
            "jwks and jwks_uri are both present; register exactly one of them (DCR-15)",
        ));
    }
    let keyed = method == TokenAuthMethod::PrivateKeyJwt;
    if keyed && jwks.is_none() && jwks_uri.is_none() {
        return Err(metadata_error(
            "private_key_jwt needs the client's public keys in jwks or jwks_uri",
        ));
    }
    if !keyed && (jwks.is_some() || jwks_uri.is_some()) {
        return Err(metadata_error(format!(
            "jwks and jwks_uri serve private_key_jwt here; a client using {method} registers no \
             keys"
        )));
    }
    let alg = string(body, "token_endpoint_auth_signing_alg")?;
    if let Some(alg) = alg {
        if !keyed {
            return Err(metadata_error(
                "token_endpoint_auth_signing_alg goes only with private_key_jwt",
            ));
        }
        if !ALLOWED_ALGORITHMS.contains(&alg) {
            return Err(metadata_error(format!(
                "token_endpoint_auth_signing_alg {alg:?} is not one of {} (PKJWT-10)",
                ALLOWED_ALGORITHMS.join(", ")
            )));
        }
    }
    Ok((jwks, jwks_uri, alg.map(str::to_owned)))
}

fn scope(
    body: &Map<String, Value>,
    fixed: Option<Fixed<'_>>,
) -> Result<Option<String>, OAuthError> {
    let Some(scope) = string(body, "scope")? else {
        return Ok(None);
    };
    check_scope_syntax(scope).map_err(metadata_error)?;
    if let Some(f) = fixed
        && let Some(ceiling) = f.template.scopes()
        && let Some(outside) = scope.split(' ').find(|s| !ceiling.contains(s))
    {
        return Err(metadata_error(format!(
            "scope {outside:?} is outside the scopes of template {:?} ({}); ask for a subset \
             (CUR-07)",
            f.software_id,
            ceiling.join(" ")
        )));
    }
    Ok(Some(scope.to_owned()))
}

/// The human-readable members and their language variants (DCR-16), with the URL rules
/// (DCR-20).
fn human_members(
    body: &Map<String, Value>,
    redirect_uris: &[String],
) -> Result<BTreeMap<String, String>, OAuthError> {
    // DCR-20: the client's own pages share the registrable domain of an https redirect URI.
    let sites: BTreeSet<String> = redirect_uris
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .filter(|u| u.scheme() == "https")
        .filter_map(|u| u.host_str().map(site))
        .collect();
    let mut human = BTreeMap::new();
    for (name, value) in body {
        let (base, tag) = match name.split_once('#') {
            Some((base, tag)) => (base, Some(tag)),
            None => (name.as_str(), None),
        };
        if !HUMAN_MEMBERS.contains(&base) || value.is_null() {
            continue;
        }
        let Value::String(text) = value else {
            return Err(metadata_error(format!(
                "{name} must be a JSON string (RFC 7591 §2)"
            )));
        };
        if let Some(tag) = tag
            && !language_tag(tag)
        {
            return Err(metadata_error(format!(
                "{name}: {tag:?} is not a BCP 47 language tag (DCR-16)"
            )));
        }
        if URL_MEMBERS.contains(&base) {
            let url = url::Url::parse(text)
                .ok()
                .filter(|u| u.scheme() == "https" && u.host_str().is_some());
            let Some(host) = url.as_ref().and_then(url::Url::host_str) else {
                return Err(metadata_error(format!(
                    "{name} {text:?} must be an absolute https URL"
                )));
            };
            if !sites.is_empty() && !sites.contains(&site(host)) {
                return Err(metadata_error(format!(
                    "{name} {text:?} is not on the site of any https redirect URI ({}); a \
                     client's own pages share its redirect URIs' registrable domain (DCR-20)",
                    sites.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        human.insert(name.clone(), text.clone());
    }
    Ok(human)
}

/// The registrable domain of `host` (the host itself for IP literals and unknown suffixes).
fn site(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    psl::domain_str(&host).map_or_else(|| host.clone(), str::to_owned)
}

/// BCP 47 syntax, loosely: subtags of 1 to 8 letters or digits, the first all letters.
fn language_tag(tag: &str) -> bool {
    let mut subtags = tag.split('-');
    let first_ok = subtags
        .next()
        .is_some_and(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()));
    first_ok
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// DCR-09/10: a software statement is refused either way, since no issuer is trusted; a
/// well-formed one is unapproved, anything else invalid.
fn software_statement(statement: &Value) -> OAuthError {
    let invalid = |why: &str| {
        OAuthError::new(
            INVALID_SOFTWARE_STATEMENT,
            format!("software_statement {why} (DCR-09)"),
        )
    };
    let Value::String(jwt) = statement else {
        return invalid("must be a JWT string");
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let json = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
    };
    let [header, payload, _signature] = parts.as_slice() else {
        return invalid("is not a JWS in compact serialization (three base64url parts)");
    };
    let Some(header) = json(header) else {
        return invalid("has no JSON object as its JWS header");
    };
    if header
        .get("alg")
        .and_then(Value::as_str)
        .is_none_or(|alg| alg == "none")
    {
        return invalid("is not signed: its header names no algorithm, or none");
    }
    let Some(issuer) = json(payload)
        .and_then(|claims| claims.get("iss").and_then(Value::as_str).map(str::to_owned))
    else {
        return invalid("has no iss claim in a JSON payload");
    };
    OAuthError::new(
        UNAPPROVED_SOFTWARE_STATEMENT,
        format!(
            "software statements from {issuer:?} are not accepted: this server trusts no \
             software statement issuer (DCR-10)"
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn body(value: &Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn parse_plain(value: &Value) -> Result<ClientFields, OAuthError> {
        parse(&body(value), None, &Faults::none())
    }

    #[test]
    fn an_empty_body_gets_the_rfc_defaults_and_then_needs_redirect_uris() {
        let error = parse_plain(&json!({})).unwrap_err();
        assert_eq!(error.code, INVALID_REDIRECT_URI);
        assert!(error.description.ends_with("(DCR-11)"));
        let fields = parse_plain(&json!({ "redirect_uris": ["https://app.example/cb"] })).unwrap();
        assert_eq!(fields.grant_types, ["authorization_code"]);
        assert_eq!(fields.response_types, ["code"]);
        assert_eq!(
            fields.token_endpoint_auth_method,
            TokenAuthMethod::ClientSecretBasic
        );
    }

    #[test]
    fn language_tags_follow_bcp47_subtag_shapes() {
        for good in ["fr", "ja-Jpan-JP", "en-US", "x-private", "de-CH-1901"] {
            assert!(language_tag(good), "{good}");
        }
        for bad in ["", "-fr", "fr-", "1fr", "toolongtag", "fr_FR", "fr--x"] {
            assert!(!language_tag(bad), "{bad}");
        }
    }

    #[test]
    fn scope_tokens_exclude_quotes_backslashes_and_empty_tokens() {
        assert!(check_scope_syntax("openid profile mcp:read").is_ok());
        for bad in ["", "a  b", " a", "a\"b", "a\\b", "a\tb"] {
            assert!(check_scope_syntax(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn redirect_uris_are_https_or_loopback_http_without_fragments() {
        for good in [
            "https://app.example/cb",
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
        ] {
            assert!(check_redirect_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "http://app.example/cb",
            "http://localhost/cb",
            "https://app.example/cb#x",
            "/cb",
            "com.example.app:/cb",
            "mailto:a@b.example",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_uris_the_url_parser_would_rewrite_are_refused() {
        for bad in [
            "https://app.example/c b",
            " https://app.example/cb",
            "https://app.example/c\nb",
            "https://app.example\\cb",
            "https://app.example/é",
            "https:app.example/cb",
            "https:/app.example/cb",
            "https:///app.example/cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad:?}");
        }
        assert!(check_redirect_uri("https://app.example/a%20b?x=1&y=~").is_ok());
    }

    #[test]
    fn http_is_allowed_only_on_loopback_literals_as_written() {
        for good in [
            "http://127.0.0.1/cb",
            "http://127.0.0.1:8080/cb",
            "http://127.0.0.2/cb",
            "http://[::1]:49152/cb",
            "http://[0:0:0:0:0:0:0:1]/cb",
        ] {
            assert!(check_redirect_uri(good).is_ok(), "{good:?}");
        }
        for bad in [
            "http://2130706433/cb",
            "http://0x7f.1/cb",
            "http://127.1/cb",
            "http://localhost/cb",
            "http://127.0.0.1.nip.io/cb",
            "http://[2001:db8::1]/cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn software_statements_are_invalid_or_unapproved() {
        let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let good = format!(
            "{}.{}.c2ln",
            part(json!({ "alg": "RS256" })),
            part(json!({ "iss": "https://issuer.example" }))
        );
        let unsigned = format!(
            "{}.{}.",
            part(json!({ "alg": "none" })),
            part(json!({ "iss": "x" }))
        );
        let code = |s: &str| {
            parse_plain(&json!({ "software_statement": s }))
                .unwrap_err()
                .code
        };
        assert_eq!(code(&good), UNAPPROVED_SOFTWARE_STATEMENT);
        assert_eq!(code(&unsigned), INVALID_SOFTWARE_STATEMENT);
        assert_eq!(code("not-a-jwt"), INVALID_SOFTWARE_STATEMENT);
    }
}
