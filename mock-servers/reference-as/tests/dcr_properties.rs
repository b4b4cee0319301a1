//! Property tests: the RFC 7591 registration-body rules (`dcr::metadata`) against independent
//! oracles.
//!
//! The oracles are written from the catalogue rows (DCR-03, DCR-07..16, DCR-20) and the
//! "Dynamic client registration" entry of `docs/decisions.md`, over bodies built from labelled
//! components, so each oracle knows what a component breaks without parsing it and never calls
//! the module's helpers. DCR-19 (the server mints the client_id) is decided in
//! `Registry::register`, not in `parse`, so it is not tested here; what `parse` owns is that a
//! client-sent `client_id`, like every unknown member, is not part of the registered metadata.

#![allow(
    clippy::unwrap_used,
    reason = "test inputs are built here, not sent by a peer"
)]

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::sample::select;
use reference_as::client_auth::TokenAuthMethod;
use reference_as::dcr::TemplateDefinition;
use reference_as::dcr::metadata::{
    ClientFields, Fixed, INVALID_CLIENT_METADATA, INVALID_REDIRECT_URI, INVALID_SOFTWARE_STATEMENT,
    UNAPPROVED_SOFTWARE_STATEMENT, check_redirect_uri, check_scope_syntax, parse,
};
use reference_as::error::{ErrorCode, OAuthError};
use reference_as::faults::{Fault, Faults};
use serde_json::{Map, Value, json};

/// The grant types the decisions entry lets a dynamic client register.
const SUPPORTED_GRANTS: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
];

/// Every member `parse` reads (RFC 7591 §2 plus the language variants it keeps).
const KNOWN_MEMBERS: &[&str] = &[
    "redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "scope",
    "jwks",
    "jwks_uri",
    "token_endpoint_auth_signing_alg",
    "software_id",
    "software_version",
    "contacts",
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "software_statement",
];

/// The codes RFC 7591 §3.2.2 defines for a refused registration body.
const REGISTRATION_CODES: &[ErrorCode] = &[
    INVALID_REDIRECT_URI,
    INVALID_CLIENT_METADATA,
    INVALID_SOFTWARE_STATEMENT,
    UNAPPROVED_SOFTWARE_STATEMENT,
];

fn jwks() -> Value {
    json!({ "keys": [{ "kty": "EC", "crv": "P-256", "kid": "a",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] })
}

fn parse_plain(body: &Map<String, Value>) -> Result<ClientFields, OAuthError> {
    parse(body, None, &Faults::none())
}

/// The registered metadata as a sorted map, so comparisons ignore member order.
fn registered(fields: &ClientFields) -> BTreeMap<String, Value> {
    fields.members().into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Redirect URIs (DCR-07, RFC 6749 §3.1.2, RFC 8252 §7.3)

/// A redirect URI built from components, each labelled by what it breaks.
#[derive(Debug, Clone)]
struct UriCase {
    pad: &'static str,
    scheme: &'static str,
    separator: &'static str,
    host: &'static str,
    port: Option<&'static str>,
    path: &'static str,
    query: Option<&'static str>,
    fragment: Option<&'static str>,
}

impl UriCase {
    fn render(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let query = self.query.map(|q| format!("?{q}")).unwrap_or_default();
        let fragment = self.fragment.map(|f| format!("#{f}")).unwrap_or_default();
        format!(
            "{pad}{}{}{}{port}{}{query}{fragment}{pad}",
            self.scheme,
            self.separator,
            self.host,
            self.path,
            pad = self.pad
        )
    }
}

/// Whether the case is a registrable redirect URI: an absolute RFC 3986 URI (only URI
/// characters, `scheme://authority`), without a fragment, https, or http on a loopback IP
/// literal.
fn uri_oracle(case: &UriCase) -> bool {
    // RFC 3986 §2: space, backslash, control and non-ASCII characters are not URI characters.
    let uri_chars = [case.pad, case.path]
        .iter()
        .all(|part| !part.contains([' ', '\\', '\n', '\t', 'é']));
    // A scheme and `://` with a non-empty host: anything else is relative, or an http(s) URI
    // without an authority, which RFC 9110 §4.2 does not allow.
    let absolute = !case.scheme.is_empty() && case.separator == "://" && !case.host.is_empty();
    let allowed_scheme = match case.scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        // RFC 8252 §7.3 loopback literals as written: 127.0.0.0/8 in four decimal numbers, or
        // an IPv6 loopback; the numeric shorthands are RFC 3986 registered names.
        "http" => matches!(
            case.host,
            "127.0.0.1" | "127.0.0.2" | "[::1]" | "[0:0:0:0:0:0:0:1]"
        ),
        _ => false,
    };
    uri_chars && absolute && case.fragment.is_none() && allowed_scheme
}

fn uri_case() -> impl Strategy<Value = UriCase> {
    (
        select(vec!["", "", "", "", " ", "\n"]),
        select(vec![
            "https",
            "https",
            "https",
            "http",
            "http",
            "HTTPS",
            "ftp",
            "com.example.app",
            "javascript",
            "",
        ]),
        select(vec![
            "://", "://", "://", "://", ":", ":/", ":///", "//", "",
        ]),
        select(vec![
            "app.example",
            "App.Example",
            "127.0.0.1",
            "[::1]",
            "localhost",
            "127.0.0.1.nip.io",
            "127.0.0.2",
            "[0:0:0:0:0:0:0:1]",
            "2130706433",
            "0x7f.1",
            "127.1",
            "203.0.113.5",
            "[2001:db8::1]",
            "",
        ]),
        prop::option::weighted(0.3, select(vec!["8080", "443", "1"])),
        select(vec![
            "/cb", "/cb", "", "/", "/a/b%7E", "/c b", "/a\\b", "/é", "/x\ty",
        ]),
        prop::option::weighted(0.3, select(vec!["x=1", "a=b&c=%20"])),
        prop::option::weighted(0.15, select(vec!["", "f"])),
    )
        .prop_map(
            |(pad, scheme, separator, host, port, path, query, fragment)| UriCase {
                pad,
                scheme,
                separator,
                host,
                port,
                path,
                query,
                fragment,
            },
        )
        // `https:/` + no host + `/cb` reads as `https://cb`: a host after all, not the label.
        .prop_filter("an empty host would merge into the path", |c| {
            !(c.separator == ":/" && c.host.is_empty() && c.path.starts_with('/'))
        })
}

// ---------------------------------------------------------------------------------------------
// Scope syntax (RFC 6749 §3.3)

/// RFC 6749 §3.3 transcribed: `scope = scope-token *( SP scope-token )`,
/// `scope-token = 1*NQCHAR`, `NQCHAR = %x21 / %x23-5B / %x5D-7E`.
fn scope_oracle(scope: &str) -> bool {
    let nqchar = |c: char| matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
    let mut in_token = false;
    for c in scope.chars() {
        if c == ' ' {
            if !in_token {
                return false;
            }
            in_token = false;
        } else if nqchar(c) {
            in_token = true;
        } else {
            return false;
        }
    }
    in_token
}

// ---------------------------------------------------------------------------------------------
// Valid registration bodies

/// A valid redirect URI from components (https anywhere, or http on a loopback literal).
#[derive(Debug, Clone)]
struct Redirect {
    https: bool,
    host: &'static str,
    rest: String,
}

impl Redirect {
    fn render(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.host, self.rest)
    }
}

fn redirect() -> impl Strategy<Value = Redirect> {
    let path = select(vec!["/cb", "/", "/oauth/callback", "/a%20b", "/x;y=1"]);
    let query = prop::option::weighted(0.3, select(vec!["?x=1", "?a=b&c=d"]));
    let rest = (prop::option::of(1u16..), path, query).prop_map(|(port, path, query)| {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{port}{path}{}", query.unwrap_or_default())
    });
    (
        any::<bool>(),
        select(vec![
            "app.example",
            "App.Example",
            "login.app.example",
            "tool.example.org",
        ]),
        select(vec!["127.0.0.1", "[::1]"]),
        rest,
    )
        .prop_map(|(https, domain, loopback, rest)| Redirect {
            https,
            host: if https { domain } else { loopback },
            rest,
        })
}

/// Where a `private_key_jwt` client's keys are.
#[derive(Debug, Clone, Copy)]
enum KeySource {
    Jwks,
    JwksUri,
}

/// A valid registration body, kept as components so the oracle can say what it registers.
#[derive(Debug, Clone)]
struct Valid {
    /// `None`: the member is left out.
    redirect_uris: Option<Vec<Redirect>>,
    method: Option<&'static str>,
    keys: Option<(KeySource, Option<&'static str>)>,
    grant_types: Option<Vec<&'static str>>,
    response_types: Option<Vec<&'static str>>,
    scope: Option<String>,
    software_id: Option<String>,
    software_version: Option<String>,
    contacts: Option<Vec<String>>,
    /// Human-readable members (DCR-16), by member name.
    human: BTreeMap<String, String>,
    /// Absent members sent as `null`, which counts as absent.
    nulls: Vec<&'static str>,
    /// Members `parse` does not read, `client_id` among them.
    unknown: bool,
}

impl Valid {
    /// Whether the body registers the authorization_code grant (DCR-13's default included).
    fn code_grant(&self) -> bool {
        self.grant_types
            .as_ref()
            .is_none_or(|g| g.contains(&"authorization_code"))
    }

    /// Whether some redirect URI is https, so the client has a site (DCR-20).
    fn has_site(&self) -> bool {
        self.redirect_uris
            .as_ref()
            .is_some_and(|r| r.iter().any(|u| u.https))
    }

    fn render(&self) -> Map<String, Value> {
        let mut body = Map::new();
        if let Some(uris) = &self.redirect_uris {
            body.insert(
                "redirect_uris".into(),
                uris.iter().map(Redirect::render).collect(),
            );
        }
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                body.insert(name.into(), value);
            }
        };
        put("token_endpoint_auth_method", self.method.map(Value::from));
        put("grant_types", self.grant_types.as_ref().map(|g| json!(g)));
        put(
            "response_types",
            self.response_types.as_ref().map(|r| json!(r)),
        );
        put("scope", self.scope.as_ref().map(|s| json!(s)));
        put("software_id", self.software_id.as_ref().map(|s| json!(s)));
        put(
            "software_version",
            self.software_version.as_ref().map(|s| json!(s)),
        );
        put("contacts", self.contacts.as_ref().map(|c| json!(c)));
        if let Some((source, alg)) = self.keys {
            match source {
                KeySource::Jwks => put("jwks", Some(jwks())),
                KeySource::JwksUri => put("jwks_uri", Some(json!("https://keys.app.example/jwks"))),
            }
            put("token_endpoint_auth_signing_alg", alg.map(Value::from));
        }
        for (name, value) in &self.human {
            body.insert(name.clone(), json!(value));
        }
        for name in &self.nulls {
            body.entry(*name).or_insert(Value::Null);
        }
        if self.unknown {
            body.insert("client_id".into(), json!("https://victim.example/app.json"));
            body.insert("client_id_issued_at".into(), json!(1));
            body.insert("client_secret".into(), json!("chosen-by-the-client"));
            body.insert("x_custom".into(), json!({ "nested": [1, 2] }));
            body.insert("client_name_fr".into(), json!("not a language variant"));
        }
        body
    }

    /// DCR-03: the registered metadata is every supplied member unchanged, plus the defaults
    /// of DCR-12 (client_secret_basic) and DCR-13 (authorization_code, and code with it), and
    /// nothing else.
    fn expected(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let uris: Vec<String> = self
            .redirect_uris
            .iter()
            .flatten()
            .map(Redirect::render)
            .collect();
        out.insert("redirect_uris".to_owned(), json!(uris));
        out.insert(
            "token_endpoint_auth_method".to_owned(),
            json!(self.method.unwrap_or("client_secret_basic")),
        );
        out.insert(
            "grant_types".to_owned(),
            json!(
                self.grant_types
                    .clone()
                    .unwrap_or_else(|| vec!["authorization_code"])
            ),
        );
        let default_response: Vec<&str> = if self.code_grant() {
            vec!["code"]
        } else {
            Vec::new()
        };
        out.insert(
            "response_types".to_owned(),
            json!(self.response_types.clone().unwrap_or(default_response)),
        );
        let body = self.render();
        for name in [
            "scope",
            "software_id",
            "software_version",
            "contacts",
            "jwks",
            "jwks_uri",
            "token_endpoint_auth_signing_alg",
        ] {
            if let Some(value) = body.get(name).filter(|v| !v.is_null()) {
                out.insert(name.to_owned(), value.clone());
            }
        }
        for (name, value) in &self.human {
            out.insert(name.clone(), json!(value));
        }
        out
    }
}

/// Language tags with BCP 47 subtag shapes (DCR-16).
const TAGS: &[&str] = &["fr", "ja-Jpan-JP", "en-US", "de-CH-1901", "x-private"];

fn human(site: Option<&'static str>) -> impl Strategy<Value = BTreeMap<String, String>> {
    let host = site.unwrap_or("elsewhere.example");
    let name = prop::option::of("[ -~]{0,16}|名前|Ünïcødé");
    let tagged = prop::collection::btree_map(select(TAGS.to_vec()), "[ -~]{1,12}", 0..3);
    let urls = prop::collection::btree_map(
        (
            select(vec!["client_uri", "logo_uri", "tos_uri", "policy_uri"]),
            prop::option::weighted(0.3, select(TAGS.to_vec())),
        ),
        select(vec!["/", "/logo.png", "/terms?v=2", "/privacy#top"]),
        0..4,
    );
    (name, tagged, urls).prop_map(move |(name, tagged, urls)| {
        let mut out = BTreeMap::new();
        if let Some(name) = name {
            out.insert("client_name".to_owned(), name);
        }
        for (tag, text) in tagged {
            out.insert(format!("client_name#{tag}"), text);
        }
        for ((member, tag), path) in urls {
            let member = tag.map_or_else(|| member.to_owned(), |t| format!("{member}#{t}"));
            out.insert(member, format!("https://{host}{path}"));
        }
        out
    })
}

fn valid() -> impl Strategy<Value = Valid> {
    let core = (
        prop::collection::vec(redirect(), 1..4),
        any::<bool>(),
        select(vec![
            None,
            Some("none"),
            Some("client_secret_basic"),
            Some("client_secret_post"),
            Some("private_key_jwt"),
        ]),
        prop::option::of(
            prop::sample::subsequence(SUPPORTED_GRANTS.to_vec(), 1..=SUPPORTED_GRANTS.len())
                .prop_shuffle(),
        ),
        any::<bool>(),
        (
            select(vec![KeySource::Jwks, KeySource::JwksUri]),
            prop::option::of(select(vec!["ES256", "RS256", "PS256"])),
        ),
    );
    let extras = (
        prop::option::of(
            prop::collection::vec(r"[!#-\[\]-~]{1,6}", 1..4).prop_map(|t| t.join(" ")),
        ),
        prop::option::of("[a-z0-9-]{1,12}"),
        prop::option::of("[0-9.]{1,6}"),
        prop::option::of(prop::collection::btree_set(
            "[a-z]{1,5}@[a-z]{1,5}\\.example",
            0..3,
        )),
        prop::sample::subsequence(
            vec![
                "scope",
                "software_id",
                "contacts",
                "client_name",
                "logo_uri",
                "jwks",
                "jwks_uri",
                "token_endpoint_auth_signing_alg",
                "software_statement",
                "grant_types",
                "response_types",
                "token_endpoint_auth_method",
            ],
            0..4,
        ),
        any::<bool>(),
    );
    (core, extras).prop_flat_map(|(core, extras)| {
        let (redirects, omit_redirects, method, grants, send_response_types, keys) = core;
        let (scope, software_id, software_version, contacts, nulls, unknown) = extras;
        let mut redirects = redirects;
        let mut seen = BTreeSet::new();
        redirects.retain(|r| seen.insert(r.render()));
        let mut grants = grants;
        if let Some(g) = &mut grants {
            // A public client cannot use client_credentials; keep a grant it can use.
            if method == Some("none") {
                g.retain(|g| *g != "client_credentials");
            }
            if g.is_empty() {
                g.push("authorization_code");
            }
        }
        let code_grant = grants
            .as_ref()
            .is_none_or(|g| g.contains(&"authorization_code"));
        let redirect_uris = if omit_redirects && !code_grant {
            None
        } else {
            Some(redirects)
        };
        let response_types =
            send_response_types.then(|| if code_grant { vec!["code"] } else { Vec::new() });
        let keys = (method == Some("private_key_jwt")).then_some(keys);
        let valid = Valid {
            redirect_uris,
            method,
            keys,
            grant_types: grants,
            response_types,
            scope,
            software_id,
            software_version,
            contacts: contacts.map(|c| c.into_iter().collect()),
            human: BTreeMap::new(),
            nulls,
            unknown,
        };
        let site = valid
            .redirect_uris
            .iter()
            .flatten()
            .find(|r| r.https)
            .map(|r| r.host);
        human(site).prop_map(move |human| Valid {
            human,
            ..valid.clone()
        })
    })
}

// ---------------------------------------------------------------------------------------------
// One-member mutations of a valid body

/// One change that breaks (at most) one rule of a valid body.
#[derive(Debug, Clone)]
enum Mutation {
    /// One more redirect URI, invalid under DCR-07, at this index.
    BadRedirect(&'static str, prop::sample::Index),
    /// `redirect_uris` of the wrong JSON type.
    RedirectUrisType(Value),
    /// `private_key_jwt` with both `jwks` and `jwks_uri` (DCR-15).
    BothKeys,
    /// An unsupported grant type added (DCR-08).
    UnknownGrant(&'static str),
    /// `response_types` that disagree with `grant_types` (DCR-14).
    FlipResponseTypes,
    /// A response type other than `code` added (DCR-14).
    UnsupportedResponseType(&'static str),
    /// An unknown token endpoint authentication method (DCR-08).
    UnknownMethod(&'static str),
    /// A member of the wrong JSON type.
    WrongType(&'static str, Value),
    /// A scope outside the RFC 6749 §3.3 syntax.
    BadScope(&'static str),
    /// `client_name#tag` with a tag that is not BCP 47 (DCR-16).
    BadTag(&'static str),
    /// A client page on another site (DCR-20).
    OffsitePage(&'static str),
    /// A client page that is not https.
    InsecurePage(&'static str),
    /// `redirect_uris` left out (DCR-11).
    DropRedirects,
    /// A software statement: (value, well-formed) (DCR-09/10).
    Statement(Value, bool),
}

/// What the oracle expects of a mutated body.
#[derive(Debug)]
enum Expect {
    /// Registered, with `member` registered as `value` (`None`: left unchecked).
    Accept(Option<(&'static str, Value)>),
    /// Refused with `code`; the description ends with `(id)` and names `member`.
    Refuse {
        code: ErrorCode,
        id: Option<&'static str>,
        member: Option<&'static str>,
    },
}

fn refuse(code: ErrorCode, id: &'static str) -> Expect {
    Expect::Refuse {
        code,
        id: Some(id),
        member: None,
    }
}

fn refuse_member(code: ErrorCode, member: &'static str) -> Expect {
    Expect::Refuse {
        code,
        id: None,
        member: Some(member),
    }
}

fn unsigned_jwt(header: &Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.c2lnbmF0dXJl", part(header), part(claims))
}

/// Redirect URIs DCR-07's test names (non-loopback http, a fragment, relative), and strings the
/// WHATWG parser would read as an https URL though they are not RFC 3986 URIs.
const BAD_REDIRECTS: &[&str] = &[
    "http://app.example/cb",
    "http://localhost:8080/cb",
    "http://127.0.0.1.nip.io/cb",
    "https://app.example/cb#frag",
    "http://127.0.0.1/cb#",
    "/cb",
    "cb",
    "//app.example/cb",
    "?x=1",
    "com.example.app:/cb",
    "urn:ietf:wg:oauth:2.0:oob",
    "",
    "https://app.example/c b",
    "https://app.example\\cb",
    "https:app.example/cb",
    "https:///app.example/cb",
    " https://app.example/cb",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let well_formed = unsigned_jwt(
        &json!({ "alg": "RS256" }),
        &json!({ "iss": "https://issuer.example", "software_id": "x" }),
    );
    let alg_none = unsigned_jwt(&json!({ "alg": "none" }), &json!({ "iss": "x" }));
    prop_oneof![
        (select(BAD_REDIRECTS.to_vec()), any::<prop::sample::Index>())
            .prop_map(|(uri, at)| Mutation::BadRedirect(uri, at)),
        select(vec![
            json!("https://app.example/cb"),
            json!(["https://app.example/cb", 7]),
            json!({ "uri": "https://app.example/cb" }),
        ])
        .prop_map(Mutation::RedirectUrisType),
        Just(Mutation::BothKeys),
        select(vec![
            "password",
            "implicit",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "Authorization_Code",
            "",
        ])
        .prop_map(Mutation::UnknownGrant),
        Just(Mutation::FlipResponseTypes),
        select(vec!["token", "id_token", "code token", "none"])
            .prop_map(Mutation::UnsupportedResponseType),
        select(vec![
            "client_secret_jwt",
            "tls_client_auth",
            "None",
            "",
            "private_key_jwt "
        ])
        .prop_map(Mutation::UnknownMethod),
        select(vec![
            ("token_endpoint_auth_method", json!(5)),
            ("grant_types", json!("authorization_code")),
            ("grant_types", json!([true])),
            ("response_types", json!("code")),
            ("scope", json!(["openid"])),
            ("software_id", json!(7)),
            ("software_version", json!(false)),
            ("contacts", json!("a@b.example")),
            ("contacts", json!([1])),
            ("client_name", json!(5)),
            ("client_name#fr", json!([])),
            ("logo_uri", json!({})),
            ("jwks_uri", json!(7)),
            ("jwks", json!("keys")),
            ("token_endpoint_auth_signing_alg", json!(256)),
        ])
        .prop_map(|(member, value)| Mutation::WrongType(member, value)),
        select(vec![
            "", " ", "a  b", " a", "a ", "a\"b", "a\\b", "a\tb", "é"
        ])
        .prop_map(Mutation::BadScope),
        select(vec![
            "fr_FR",
            "",
            "1fr",
            "toolongtag",
            "fr-",
            "-fr",
            "fr--x"
        ])
        .prop_map(Mutation::BadTag),
        select(vec!["client_uri", "logo_uri", "tos_uri", "policy_uri#fr"])
            .prop_map(Mutation::OffsitePage),
        select(vec!["client_uri", "logo_uri", "tos_uri#de", "policy_uri"])
            .prop_map(Mutation::InsecurePage),
        Just(Mutation::DropRedirects),
        select(vec![
            (json!(well_formed), true),
            (json!(alg_none), false),
            (json!("not-a-jwt"), false),
            (json!("a.b.c"), false),
            (json!(7), false),
            (json!({ "alg": "RS256" }), false),
        ])
        .prop_map(|(value, ok)| Mutation::Statement(value, ok)),
    ]
}

/// The member name without its language tag, which is what a description names.
fn untagged(member: &str) -> &'static str {
    let base = member.split('#').next().unwrap();
    KNOWN_MEMBERS.iter().find(|m| **m == base).unwrap()
}

/// Applies `mutation` to `base`'s body and says, from the rows alone, what `parse` must do.
fn mutate(base: &Valid, mutation: &Mutation) -> (Map<String, Value>, Expect) {
    let mut body = base.render();
    let expect = match mutation {
        Mutation::BadRedirect(uri, at) => {
            let mut uris: Vec<Value> = base
                .redirect_uris
                .iter()
                .flatten()
                .map(|r| json!(r.render()))
                .collect();
            uris.insert(at.index(uris.len() + 1), json!(uri));
            body.insert("redirect_uris".into(), Value::Array(uris));
            refuse(INVALID_REDIRECT_URI, "DCR-07")
        }
        Mutation::RedirectUrisType(value) => {
            body.insert("redirect_uris".into(), value.clone());
            refuse_member(INVALID_REDIRECT_URI, "redirect_uris")
        }
        Mutation::BothKeys => {
            // private_key_jwt is confidential, so the method change breaks nothing else.
            body.insert(
                "token_endpoint_auth_method".into(),
                json!("private_key_jwt"),
            );
            body.insert("jwks".into(), jwks());
            body.insert("jwks_uri".into(), json!("https://keys.app.example/jwks"));
            refuse(INVALID_CLIENT_METADATA, "DCR-15")
        }
        Mutation::UnknownGrant(grant) => {
            let mut grants = base
                .grant_types
                .clone()
                .unwrap_or_else(|| vec!["authorization_code"]);
            grants.push(grant);
            body.insert("grant_types".into(), json!(grants));
            refuse(INVALID_CLIENT_METADATA, "DCR-08")
        }
        Mutation::FlipResponseTypes => {
            let flipped: &[&str] = if base.code_grant() { &[] } else { &["code"] };
            body.insert("response_types".into(), json!(flipped));
            refuse(INVALID_CLIENT_METADATA, "DCR-14")
        }
        Mutation::UnsupportedResponseType(kind) => {
            let types = if base.code_grant() {
                vec!["code", *kind]
            } else {
                vec![*kind]
            };
            body.insert("response_types".into(), json!(types));
            refuse(INVALID_CLIENT_METADATA, "DCR-14")
        }
        Mutation::UnknownMethod(method) => {
            body.insert("token_endpoint_auth_method".into(), json!(method));
            refuse(INVALID_CLIENT_METADATA, "DCR-08")
        }
        Mutation::WrongType(member, value) => {
            body.insert((*member).into(), value.clone());
            refuse_member(INVALID_CLIENT_METADATA, untagged(member))
        }
        Mutation::BadScope(scope) => {
            body.insert("scope".into(), json!(scope));
            refuse_member(INVALID_CLIENT_METADATA, "scope")
        }
        Mutation::BadTag(tag) => {
            body.insert(format!("client_name#{tag}"), json!("Nom"));
            refuse(INVALID_CLIENT_METADATA, "DCR-16")
        }
        Mutation::OffsitePage(member) => {
            let page = "https://elsewhere.example/page";
            body.insert((*member).into(), json!(page));
            // DCR-20 and the decisions entry: a client with no https redirect URI has no site.
            if base.has_site() {
                refuse(INVALID_CLIENT_METADATA, "DCR-20")
            } else {
                Expect::Accept(Some((member, json!(page))))
            }
        }
        Mutation::InsecurePage(member) => {
            body.insert((*member).into(), json!("http://app.example/page"));
            refuse_member(INVALID_CLIENT_METADATA, untagged(member))
        }
        Mutation::DropRedirects => {
            body.remove("redirect_uris");
            if base.code_grant() {
                refuse(INVALID_REDIRECT_URI, "DCR-11")
            } else {
                Expect::Accept(Some(("redirect_uris", json!([]))))
            }
        }
        Mutation::Statement(value, well_formed) => {
            body.insert("software_statement".into(), value.clone());
            if *well_formed {
                refuse(UNAPPROVED_SOFTWARE_STATEMENT, "DCR-10")
            } else {
                refuse(INVALID_SOFTWARE_STATEMENT, "DCR-09")
            }
        }
    };
    (body, expect)
}

// ---------------------------------------------------------------------------------------------
// Arbitrary bodies

/// Small arbitrary JSON values, with a few that look like registration values.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[ -~]{0,20}".prop_map(Value::String),
        ".{0,8}".prop_map(Value::String),
        select(vec![
            "https://app.example/cb",
            "http://127.0.0.1/cb",
            "authorization_code",
            "code",
            "private_key_jwt",
            "none",
            "ES256",
            "a.b.c",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A member name: mostly ones `parse` reads, some language-tagged, some unknown.
fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(KNOWN_MEMBERS.to_vec()).prop_map(str::to_owned),
        1 => (
            select(vec!["client_name", "logo_uri", "policy_uri", "redirect_uris"]),
            "[a-zA-Z0-9_-]{0,10}",
        )
            .prop_map(|(m, tag)| format!("{m}#{tag}")),
        1 => "[a-z_#]{1,12}",
    ]
}

/// A refusal a registration endpoint may send: an RFC 7591 §3.2.2 code and a description.
fn check_refusal(error: &OAuthError) -> Result<(), TestCaseError> {
    prop_assert!(
        REGISTRATION_CODES.contains(&error.code),
        "not an RFC 7591 §3.2.2 code: {:?}",
        error
    );
    prop_assert!(!error.description.trim().is_empty(), "{:?}", error);
    Ok(())
}

/// The rows every accepted plain registration obeys, whatever was sent.
fn check_accepted(fields: &ClientFields) -> Result<(), TestCaseError> {
    let members = registered(fields);
    // Unknown members (client_id among them) are not part of the registration.
    for name in members.keys() {
        let base = name.split('#').next().unwrap();
        prop_assert!(KNOWN_MEMBERS.contains(&base), "registered {:?}", name);
    }
    prop_assert!(!members.contains_key("client_id"));
    prop_assert!(!members.contains_key("software_statement"));
    for grant in &fields.grant_types {
        prop_assert!(SUPPORTED_GRANTS.contains(&grant.as_str()), "{}", grant);
    }
    // DCR-14: only code, and code exactly with authorization_code.
    prop_assert!(fields.response_types.iter().all(|t| t == "code"));
    prop_assert_eq!(
        fields.has_grant_type("authorization_code"),
        fields.response_types.iter().any(|t| t == "code")
    );
    // DCR-11.
    if fields.has_grant_type("authorization_code") {
        prop_assert!(!fields.redirect_uris.is_empty());
    }
    // DCR-15.
    prop_assert!(fields.jwks.is_none() || fields.jwks_uri.is_none());
    // DCR-07: a URI with a fragment, or not https nor http on a loopback literal, never lands.
    for uri in &fields.redirect_uris {
        let lower = uri.to_ascii_lowercase();
        let loopback = ["http://127.0.0.1", "http://[::1]"].iter().any(|p| {
            lower
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/', '?']))
        });
        prop_assert!(!uri.contains('#'), "{}", uri);
        prop_assert!(lower.starts_with("https://") || loopback, "{}", uri);
    }
    // The registration survives the JSON the store keeps it as.
    let stored = serde_json::to_value(fields).unwrap();
    prop_assert_eq!(
        &serde_json::from_value::<ClientFields>(stored).unwrap(),
        fields
    );
    Ok(())
}

fn template() -> TemplateDefinition {
    TemplateDefinition {
        client_name: Some("Tool".to_owned()),
        token_endpoint_auth_method: TokenAuthMethod::ClientSecretBasic,
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        redirect_uris: vec!["https://app.example/cb".to_owned()],
        scope: Some("openid mcp:read".to_owned()),
        authenticators: vec!["password".to_owned()],
    }
}

/// `parse` as plain, as an instance of a template, and with every fault on: it never panics
/// and refuses only with registration codes; the plain verdict obeys the rows.
fn check_any_body(body: &Map<String, Value>) -> Result<(), TestCaseError> {
    match parse_plain(body) {
        Ok(fields) => check_accepted(&fields)?,
        Err(error) => check_refusal(&error)?,
    }
    let template = template();
    let fixed = Fixed {
        software_id: "tool",
        template: &template,
    };
    if let Err(error) = parse(body, Some(fixed), &Faults::none()) {
        check_refusal(&error)?;
    }
    if let Err(error) = parse(body, None, &Faults::of(Fault::ALL.iter().copied())) {
        check_refusal(&error)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn redirect_uri_check_agrees_with_the_oracle(case in uri_case()) {
        let uri = case.render();
        let verdict = check_redirect_uri(&uri);
        prop_assert_eq!(verdict.is_ok(), uri_oracle(&case), "{:?}: {:?}", uri, verdict);
        if let Err(why) = verdict {
            prop_assert!(!why.is_empty());
        }
    }

    #[test]
    fn scope_syntax_check_agrees_with_rfc_6749_abnf(
        scope in prop::collection::vec(
            select(vec![' ', ' ', 'a', 'z', '!', '#', '[', ']', '~', ':', '"', '\\', '\t', '\x7f', 'é']),
            0..10,
        ).prop_map(|c| c.into_iter().collect::<String>()),
    ) {
        let verdict = check_scope_syntax(&scope);
        prop_assert_eq!(verdict.is_ok(), scope_oracle(&scope), "{:?}: {:?}", scope, verdict);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_as_a_body_or_in_its_strings_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        member in select(KNOWN_MEMBERS.to_vec()),
    ) {
        // DCR-01: the endpoint reads a JSON object; only objects reach `parse`.
        if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&bytes) {
            check_any_body(&body)?;
        }
        // Random bytes rarely form an object, so they also go where a peer's strings go: a
        // member value, a redirect URI, a member name.
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let base = json!({ "redirect_uris": ["https://app.example/cb"] });
        let mut as_value = base.as_object().unwrap().clone();
        as_value.insert(member.to_owned(), json!(text));
        check_any_body(&as_value)?;
        let as_uri = json!({ "redirect_uris": ["https://app.example/cb", text] });
        check_any_body(as_uri.as_object().unwrap())?;
        let mut as_name = base.as_object().unwrap().clone();
        as_name.insert(text, json!("https://app.example/x"));
        check_any_body(&as_name)?;
    }

    #[test]
    fn json_shaped_text_as_a_body_never_panics(
        text in r#"\{("(redirect_uris|grant_types|scope|jwks|client_name#fr)":[\[\]{}",:a-z0-9 ./#-]{0,24},?){0,4}\}"#,
    ) {
        if let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&text) {
            check_any_body(&body)?;
        }
    }

    #[test]
    fn arbitrary_member_values_never_panic_and_refusals_carry_registration_codes(
        members in prop::collection::vec((member_name(), arbitrary_json()), 0..6),
        from_valid_base in any::<bool>(),
    ) {
        let mut body = Map::new();
        if from_valid_base {
            body.insert("redirect_uris".into(), json!(["https://app.example/cb"]));
        }
        for (name, value) in members {
            body.insert(name, value);
        }
        check_any_body(&body)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_bodies_register_every_member_unchanged_with_the_rfc_defaults(valid in valid()) {
        let body = valid.render();
        let fields = parse_plain(&body);
        prop_assert!(fields.is_ok(), "{}: {:?}", Value::Object(body.clone()), fields);
        let fields = fields.unwrap();
        prop_assert_eq!(registered(&fields), valid.expected(), "body {}", Value::Object(body));
        check_accepted(&fields)?;
    }

    #[test]
    fn one_invalid_member_is_refused_with_the_code_its_row_names(
        valid in valid(),
        mutation in mutation(),
    ) {
        let (body, expect) = mutate(&valid, &mutation);
        let shown = Value::Object(body.clone());
        let result = parse_plain(&body);
        match (expect, result) {
            (Expect::Accept(member), Ok(fields)) => {
                check_accepted(&fields)?;
                if let Some((name, value)) = member {
                    let members = registered(&fields);
                    prop_assert_eq!(members.get(name), Some(&value), "{}", shown);
                }
            }
            (Expect::Refuse { code, id, member }, Err(error)) => {
                prop_assert_eq!(error.code, code, "{}: {:?}", shown, error);
                check_refusal(&error)?;
                if let Some(id) = id {
                    prop_assert!(error.description.ends_with(&format!("({id})")), "{}: {:?}", shown, error);
                }
                if let Some(member) = member {
                    prop_assert!(error.description.contains(member), "{}: {:?}", shown, error);
                }
            }
            (expect, result) => {
                prop_assert!(false, "{}: expected {:?}, got {:?}", shown, expect, result);
            }
        }
    }
}
