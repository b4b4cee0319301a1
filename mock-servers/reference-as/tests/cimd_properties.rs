//! Property tests: the URL and document validators against independent oracles.
//!
//! Each oracle is written from the catalogue rows (CIMD-URL-*, CIMD-DOC-*, CIMD-SEC-01/02,
//! CIMD-AUTH-04, CIMD-REDIR-01) over inputs built from labelled components, so it knows which
//! rule each component breaks without parsing anything; it never calls the validator's helpers.
//! The validators must agree with it exactly on the set of broken requirements, and must never
//! panic on arbitrary input.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use reference_as::cimd::{ClientIdUrl, ClientMetadata, check_client_id_url, check_document};
use reference_as::faults::{Fault, Faults};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The client_id URL

/// One URL built from components, each labelled with the rules it breaks.
#[derive(Debug, Clone)]
struct UrlCase {
    scheme: &'static str,
    userinfo: Option<&'static str>,
    host: &'static str,
    port: Option<&'static str>,
    segments: Vec<&'static str>,
    root_only: bool,
    query: Option<&'static str>,
    fragment: Option<&'static str>,
}

impl UrlCase {
    fn path(&self) -> String {
        if !self.segments.is_empty() {
            format!("/{}", self.segments.join("/"))
        } else if self.root_only {
            "/".to_owned()
        } else {
            String::new()
        }
    }

    fn render(&self) -> String {
        let userinfo = self.userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let query = self.query.map(|q| format!("?{q}")).unwrap_or_default();
        let fragment = self.fragment.map(|f| format!("#{f}")).unwrap_or_default();
        format!(
            "{}://{userinfo}{}{port}{}{query}{fragment}",
            self.scheme,
            self.host,
            self.path()
        )
    }
}

/// The oracle's verdict: (requirement, relaxed by the lenient fault) for each error, and
/// whether the strict AS also refuses a root path.
struct UrlVerdict {
    errors: Vec<(&'static str, bool)>,
    root_path: bool,
}

fn url_oracle(case: &UrlCase) -> UrlVerdict {
    let mut errors = Vec::new();
    // CIMD-URL-01: https, written in lower case; anything that is not http(s) at all stops here.
    match case.scheme {
        "https" => {}
        "http" | "HTTPS" | "Https" => errors.push(("CIMD-URL-01", true)),
        _ => {
            return UrlVerdict {
                errors: vec![("CIMD-URL-01", false)],
                root_path: false,
            };
        }
    }
    if case.fragment.is_some() {
        errors.push(("CIMD-URL-05", true));
    }
    if case.userinfo.is_some() {
        errors.push(("CIMD-URL-06", true));
    }
    match case.host {
        "www.client.example" | "a.trusted.test" | "Client.Example" | "x-1.example" => {}
        // CIMD-SEC-01: address literals, including the forms WHATWG reads as IPv4.
        "127.0.0.1" | "2130706433" | "0x7f.1" | "017700000001" | "[::1]" | "8.8.8.8" => {
            errors.push(("CIMD-SEC-01", false));
        }
        // Empty, underscore, trailing dot, leading hyphen.
        _ => errors.push(("CIMD-URL-01", false)),
    }
    // CIMD-URL-08: 1..=65535, canonical digits.
    if let Some(port) = case.port
        && !matches!(port, "443" | "8443" | "1" | "65535")
    {
        errors.push(("CIMD-URL-08", false));
    }
    let path = case.path();
    if path.is_empty() {
        errors.push(("CIMD-URL-02", false));
    }
    // CIMD-URL-04: dot segments, percent-encoded dots included.
    if case
        .segments
        .iter()
        .any(|s| matches!(*s, "." | ".." | "%2e" | "%2E%2e" | ".%2E"))
    {
        errors.push(("CIMD-URL-04", true));
    }
    // `%` must start a two-hex-digit escape.
    if case.segments.iter().any(|s| matches!(*s, "x%2" | "%zz")) {
        errors.push(("CIMD-URL-01", false));
    }
    let root_path = path == "/";
    UrlVerdict { errors, root_path }
}

fn url_case() -> impl Strategy<Value = UrlCase> {
    (
        prop::sample::select(vec![
            "https",
            "https",
            "https",
            "http",
            "HTTPS",
            "Https",
            "ftp",
            "javascript",
        ]),
        prop::option::weighted(0.15, prop::sample::select(vec!["", "u", "u:p"])),
        prop::sample::select(vec![
            "www.client.example",
            "www.client.example",
            "a.trusted.test",
            "Client.Example",
            "x-1.example",
            "127.0.0.1",
            "2130706433",
            "0x7f.1",
            "017700000001",
            "[::1]",
            "8.8.8.8",
            "",
            "bad_host.example",
            "client.example.",
            "-client.example",
        ]),
        prop::option::weighted(
            0.3,
            prop::sample::select(vec![
                "443", "8443", "1", "65535", "0", "", "65536", "08443", "x",
            ]),
        ),
        prop::collection::vec(
            prop::sample::select(vec![
                "a", "c.json", "a", ".", "..", "%2e", "%2E%2e", ".%2E", ".a", "a..", "...", "%41",
                "x%2", "%zz", "",
            ]),
            0..4,
        ),
        any::<bool>(),
        prop::option::weighted(0.2, prop::sample::select(vec!["", "v=1"])),
        prop::option::weighted(0.15, prop::sample::select(vec!["", "x"])),
    )
        .prop_map(
            |(scheme, userinfo, host, port, segments, root_only, query, fragment)| UrlCase {
                scheme,
                userinfo,
                host,
                port,
                segments,
                root_only,
                query,
                fragment,
            },
        )
}

fn ids<'a>(
    findings: impl IntoIterator<Item = &'a reference_as::cimd::Finding>,
) -> BTreeSet<&'static str> {
    findings.into_iter().map(|f| f.requirement).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn url_validator_agrees_with_the_oracle(case in url_case()) {
        let raw = case.render();
        let verdict = url_oracle(&case);
        let expected: BTreeSet<_> = verdict.errors.iter().map(|(id, _)| *id).collect();

        let lint = check_client_id_url(&raw);
        prop_assert_eq!(ids(&lint.errors), expected.clone(), "lint errors for {}", raw);
        prop_assert_eq!(
            lint.warnings.iter().any(|f| f.requirement == "CIMD-URL-03"),
            verdict.root_path,
            "root-path warning for {}", raw
        );

        let strict = ClientIdUrl::parse(&raw, &Faults::none());
        prop_assert_eq!(strict.is_ok(), expected.is_empty() && !verdict.root_path, "parse of {}: {:?}", raw, strict);
        if let Err(finding) = &strict {
            prop_assert!(expected.contains(finding.requirement) || verdict.root_path);
        }
        if let Ok(url) = &strict {
            prop_assert_eq!(url.as_str(), raw.as_str());
            prop_assert_eq!(url.host(), case.host.to_ascii_lowercase());
        }

        let lenient = ClientIdUrl::parse(&raw, &Faults::of([Fault::LenientClientIdUrl]));
        let unrelaxed = verdict.errors.iter().any(|(_, relaxed)| !relaxed);
        prop_assert_eq!(lenient.is_ok(), !unrelaxed && !verdict.root_path, "lenient parse of {}", raw);
    }

    #[test]
    fn url_validators_never_panic_on_arbitrary_strings(raw in ".{0,200}") {
        let _ = ClientIdUrl::parse(&raw, &Faults::none());
        let _ = ClientIdUrl::parse(&raw, &Faults::of(Fault::ALL.iter().copied()));
        let _ = check_client_id_url(&raw);
    }

    #[test]
    fn url_validators_never_panic_on_url_shaped_strings(rest in "[ -~]{0,80}") {
        for raw in [format!("https://{rest}"), format!("HTTP://{rest}"), format!("https://[{rest}")] {
            let _ = ClientIdUrl::parse(&raw, &Faults::none());
            let _ = ClientIdUrl::parse(&raw, &Faults::of(Fault::ALL.iter().copied()));
            let findings = check_client_id_url(&raw);
            // Whatever the AS accepts, the lint must not call an error.
            if ClientIdUrl::parse(&raw, &Faults::none()).is_ok() {
                prop_assert!(findings.is_valid(), "{}: {:?}", raw, findings.errors);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The metadata document

const URL: &str = "https://www.client.example/client.json";

#[derive(Debug, Clone, Copy)]
enum ClientIdMember {
    Match,
    Mismatch,
    Missing,
    Number,
    Null,
}

#[derive(Debug, Clone, Copy)]
enum Jwks {
    Absent,
    Public,
    WithD,
    Oct,
    NotASet,
}

#[derive(Debug, Clone)]
struct DocCase {
    client_id: ClientIdMember,
    method: Option<Value>,
    client_secret: Option<Value>,
    secret_expires: Option<Value>,
    jwks: Jwks,
    jwks_uri: Option<&'static str>,
    redirect_uris: Option<Value>,
    grant_types: Option<Value>,
    unknown_member: bool,
}

impl DocCase {
    fn render(&self) -> Vec<u8> {
        let mut doc = serde_json::Map::new();
        match self.client_id {
            ClientIdMember::Match => {
                doc.insert("client_id".into(), json!(URL));
            }
            ClientIdMember::Mismatch => {
                doc.insert("client_id".into(), json!(format!("{URL}/")));
            }
            ClientIdMember::Missing => {}
            ClientIdMember::Number => {
                doc.insert("client_id".into(), json!(7));
            }
            ClientIdMember::Null => {
                doc.insert("client_id".into(), Value::Null);
            }
        }
        let mut put = |name: &str, value: &Option<Value>| {
            if let Some(v) = value {
                doc.insert(name.into(), v.clone());
            }
        };
        put("token_endpoint_auth_method", &self.method);
        put("client_secret", &self.client_secret);
        put("client_secret_expires_at", &self.secret_expires);
        put("jwks_uri", &self.jwks_uri.map(|u| json!(u)));
        put("redirect_uris", &self.redirect_uris);
        put("grant_types", &self.grant_types);
        let key = json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBB"});
        let jwks = match self.jwks {
            Jwks::Absent => None,
            Jwks::Public => Some(json!({ "keys": [key] })),
            Jwks::WithD => Some(
                json!({ "keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBB", "d": "CCCC"}] }),
            ),
            Jwks::Oct => Some(json!({ "keys": [{"kty": "oct", "k": "AAAA"}] })),
            Jwks::NotASet => Some(json!(["not", "a", "set"])),
        };
        put("jwks", &jwks);
        if self.unknown_member {
            doc.insert("x_custom".into(), json!({"anything": true}));
        }
        serde_json::to_vec(&Value::Object(doc)).unwrap()
    }
}

/// The requirements a document case breaks, from the catalogue rows alone.
fn doc_oracle(case: &DocCase) -> BTreeSet<&'static str> {
    let mut errors = BTreeSet::new();
    match case.client_id {
        ClientIdMember::Match => {}
        ClientIdMember::Mismatch => {
            errors.insert("CIMD-DOC-03");
        }
        ClientIdMember::Missing | ClientIdMember::Number | ClientIdMember::Null => {
            errors.insert("CIMD-DOC-02");
        }
    }
    let method = case.method.as_ref();
    match method.and_then(Value::as_str) {
        None if method.is_some() => {
            errors.insert("CIMD-DOC-01");
        }
        Some("client_secret_basic" | "client_secret_post" | "client_secret_jwt") => {
            errors.insert("CIMD-DOC-06");
        }
        Some("tls_client_auth") => {
            errors.insert("CIMD-DOC-09");
        }
        _ => {}
    }
    if case.client_secret.is_some() || case.secret_expires.is_some() {
        errors.insert("CIMD-DOC-07");
    }
    match case.jwks {
        Jwks::WithD | Jwks::Oct => {
            errors.insert("CIMD-DOC-08");
        }
        Jwks::NotASet => {
            errors.insert("CIMD-DOC-01");
        }
        Jwks::Absent | Jwks::Public => {}
    }
    if case
        .jwks_uri
        .is_some_and(|u| u != "https://keys.example/jwks")
    {
        errors.insert("CIMD-SEC-02");
    }
    let has_jwks = !matches!(case.jwks, Jwks::Absent);
    if has_jwks && case.jwks_uri.is_some() {
        errors.insert("CIMD-DOC-10");
    }
    if method.and_then(Value::as_str) == Some("private_key_jwt")
        && !has_jwks
        && case.jwks_uri.is_none()
    {
        errors.insert("CIMD-AUTH-04");
    }
    let redirect_list: Vec<&str> = match &case.redirect_uris {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(_) => {
            errors.insert("CIMD-DOC-01");
            Vec::new()
        }
        None => Vec::new(),
    };
    if redirect_list
        .iter()
        .any(|u| *u == "http://evil.example/cb" || u.contains('#'))
    {
        errors.insert("CIMD-REDIR-01");
    }
    let code_grant = match &case.grant_types {
        None => true,
        Some(g) => g
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "authorization_code")),
    };
    if code_grant && redirect_list.is_empty() {
        errors.insert("CIMD-DOC-12");
    }
    errors
}

fn doc_case() -> impl Strategy<Value = DocCase> {
    let client_id = prop::sample::select(vec![
        ClientIdMember::Match,
        ClientIdMember::Match,
        ClientIdMember::Match,
        ClientIdMember::Mismatch,
        ClientIdMember::Missing,
        ClientIdMember::Number,
        ClientIdMember::Null,
    ]);
    let method = prop::option::of(prop::sample::select(vec![
        json!("none"),
        json!("private_key_jwt"),
        json!("client_secret_basic"),
        json!("client_secret_post"),
        json!("client_secret_jwt"),
        json!("tls_client_auth"),
        json!(5),
    ]));
    let secret = prop::option::weighted(
        0.2,
        prop::sample::select(vec![json!("s3cret"), json!(""), Value::Null]),
    );
    let expires = prop::option::weighted(0.2, prop::sample::select(vec![json!(0), Value::Null]));
    let jwks = prop::sample::select(vec![
        Jwks::Absent,
        Jwks::Absent,
        Jwks::Public,
        Jwks::WithD,
        Jwks::Oct,
        Jwks::NotASet,
    ]);
    let jwks_uri = prop::option::weighted(
        0.4,
        prop::sample::select(vec![
            "https://keys.example/jwks",
            "http://keys.example/jwks",
            "https://keys.example/jwks#k",
            "https://127.0.0.1/jwks",
        ]),
    );
    let redirect_uris = prop::option::weighted(
        0.8,
        prop::sample::select(vec![
            json!([]),
            json!(["https://app.example/cb"]),
            json!(["https://app.example/cb", "http://127.0.0.1/cb"]),
            json!(["http://evil.example/cb"]),
            json!(["https://app.example/cb#frag"]),
            json!("https://app.example/cb"),
        ]),
    );
    let grant_types = prop::option::of(prop::sample::select(vec![
        json!(["authorization_code"]),
        json!(["authorization_code", "refresh_token"]),
        json!(["client_credentials"]),
    ]));
    (
        client_id,
        method,
        secret,
        expires,
        jwks,
        jwks_uri,
        redirect_uris,
        grant_types,
        any::<bool>(),
    )
        .prop_map(
            |(
                client_id,
                method,
                client_secret,
                secret_expires,
                jwks,
                jwks_uri,
                redirect_uris,
                grant_types,
                unknown_member,
            )| {
                DocCase {
                    client_id,
                    method,
                    client_secret,
                    secret_expires,
                    jwks,
                    jwks_uri,
                    redirect_uris,
                    grant_types,
                    unknown_member,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn document_validator_agrees_with_the_oracle(case in doc_case()) {
        let url = ClientIdUrl::parse(URL, &Faults::none()).unwrap();
        let body = case.render();
        let expected = doc_oracle(&case);

        let lint = check_document(&url, &body);
        prop_assert_eq!(ids(&lint.errors), expected.clone(), "lint of {}", String::from_utf8_lossy(&body));
        prop_assert_eq!(
            lint.warnings.iter().any(|f| f.requirement == "CIMD-DOC-04"),
            case.unknown_member
        );

        let strict = ClientMetadata::parse(&url, &body, &Faults::none());
        prop_assert_eq!(strict.is_ok(), expected.is_empty(), "parse of {}", String::from_utf8_lossy(&body));
        if let Err(finding) = &strict {
            prop_assert!(expected.contains(finding.requirement));
        }

        // The document faults relax exactly their own requirements.
        let relaxable = ["CIMD-DOC-03", "CIMD-DOC-06", "CIMD-DOC-07", "CIMD-DOC-08"];
        let faults = Faults::of([Fault::SkipClientIdEquality, Fault::AllowSharedSecrets, Fault::AllowPrivateKeys]);
        let relaxed = ClientMetadata::parse(&url, &body, &faults);
        prop_assert_eq!(relaxed.is_ok(), expected.iter().all(|id| relaxable.contains(id)));
        if let Ok(meta) = relaxed {
            prop_assert_eq!(meta.client_id.as_str(), URL);
        }
    }

    #[test]
    fn document_validators_never_panic_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let url = ClientIdUrl::parse(URL, &Faults::none()).unwrap();
        let strict = ClientMetadata::parse(&url, &body, &Faults::none());
        let _ = ClientMetadata::parse(&url, &body, &Faults::of(Fault::ALL.iter().copied()));
        // Random bytes never form an acceptable document.
        prop_assert!(strict.is_err());
        prop_assert!(!check_document(&url, &body).is_valid());
    }

    #[test]
    fn document_validators_never_panic_on_json_shaped_text(body in r#"[{}\[\]",:a-z_0-9 .\\/-]{0,160}"#) {
        let url = ClientIdUrl::parse(URL, &Faults::none()).unwrap();
        let _ = ClientMetadata::parse(&url, body.as_bytes(), &Faults::none());
        let _ = ClientMetadata::parse(&url, body.as_bytes(), &Faults::of(Fault::ALL.iter().copied()));
        let _ = check_document(&url, body.as_bytes());
    }

    #[test]
    fn documents_with_arbitrary_member_values_never_panic(
        name in prop::sample::select(vec![
            "client_id", "redirect_uris", "grant_types", "response_types", "jwks", "jwks_uri",
            "token_endpoint_auth_method", "scope", "application_type", "logo_uri", "client_name#fr",
        ]),
        value in arbitrary_json(),
    ) {
        let url = ClientIdUrl::parse(URL, &Faults::none()).unwrap();
        let mut doc = json!({"client_id": URL, "redirect_uris": ["https://app.example/cb"]});
        doc[name] = value;
        let body = serde_json::to_vec(&doc).unwrap();
        let accepted = ClientMetadata::parse(&url, &body, &Faults::none()).is_ok();
        prop_assert_eq!(accepted, check_document(&url, &body).is_valid());
    }
}

/// Small arbitrary JSON values.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,20}".prop_map(Value::String),
        Just(json!(URL)),
        Just(json!("https://app.example/cb")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
