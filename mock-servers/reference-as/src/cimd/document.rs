//! The client metadata document rules: what a fetched body must be before the AS trusts it.
//!
//! The body is parsed strictly (valid UTF-8, one JSON object, no duplicate member names at any
//! depth, nothing after the closing brace), then each member is checked against its registry type
//! and the CIMD restrictions. Decisions where the drafts are silent:
//! - `token_endpoint_auth_method` absent means `none`: RFC 7591's default `client_secret_basic`
//!   is a shared-secret method, which CIMD forbids, so it cannot be what an absent member means
//!   (requirements.md, Ambiguity 11). Methods other than `none` and `private_key_jwt` are refused.
//! - `private_key_jwt` with neither `jwks` nor `jwks_uri` is refused: the AS would have no key to
//!   verify assertions with (CIMD-AUTH-04, issue #100).
//! - `null` is not accepted as "absent" for any member; `client_secret: null` is refused too.
//! - `application_type` absent means `web` (the OpenID Connect Registration default).
//! - URLs shown to users (`logo_uri`, `client_uri`, `policy_uri`, `tos_uri`) must be https URLs
//!   with a DNS-name host and no userinfo (CIMD-SEC-04), so nothing else is ever rendered as a link.
//! - The served Content-Type must be `application/json` or `application/<anything>+json`,
//!   parameters ignored; anything else, or none, is refused (CIMD-DOC-05; the draft only says
//!   "may", and a strict AS should not guess at an HTML error page).

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::redirect::redirect_issues;
use super::url::{ClientIdUrl, Fragment, check_member_url};
use super::{Finding, Findings, Issues, quote};
use crate::faults::{Fault, Faults};

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client: no client authentication.
    None,
    /// RFC 7523 JWT assertions signed with a key published in the document.
    PrivateKeyJwt,
}

impl AuthMethod {
    /// The registry name (`none`, `private_key_jwt`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of application (OpenID Connect Registration §2); it decides which redirect URIs are
/// allowed (see [`crate::cimd::redirect`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationType {
    /// A web application (the default when the member is absent).
    #[default]
    Web,
    /// A native application: may use `http://localhost` and private-use scheme redirect URIs.
    Native,
}

/// A validated client metadata document: the members the server acts on after validation.
///
/// A cache holds one per client, so it is kept small: no parsed JSON map (unknown members, and
/// those that are only checked, like `logo_uri`, are dropped once validated), and the string
/// members share one buffer, read through methods, instead of taking one allocation each.
#[derive(Clone)]
pub struct ClientMetadata {
    /// The URL the document was fetched from (its `client_id` equals it byte for byte).
    pub client_id: ClientIdUrl,
    /// `token_endpoint_auth_method` (default `none`, see the module docs).
    pub token_endpoint_auth_method: AuthMethod,
    /// `application_type` (default `web`).
    pub application_type: ApplicationType,
    /// `jwks`: public keys only (boxed: most documents have none).
    pub jwks: Option<Box<Value>>,
    strings: Strings,
}

/// The optional single-string members [`Strings`] keeps, each in its own slot.
#[derive(Debug, Clone, Copy)]
enum Member {
    ClientName,
    Scope,
    SigningAlg,
    JwksUri,
}

/// Slots before the lists: one per [`Member`].
const MEMBER_SLOTS: usize = 4;

/// The string members of one document in two allocations: every string one after the other in
/// `text`, and where each ends. Slots: one per [`Member`] (empty when absent; `present` tells),
/// then the redirect URIs, the grant types and the response types.
#[derive(Clone)]
struct Strings {
    text: Box<str>,
    ends: Box<[u32]>,
    /// Bit `1 << member` for each [`Member`] the document has.
    present: u8,
    redirect_uris: u32,
    grant_types: u32,
}

impl Strings {
    /// The string in slot `index` ("" past the end; slots come from [`StringsBuilder`]).
    fn slot(&self, index: usize) -> &str {
        let end = self.ends.get(index).copied().unwrap_or(0);
        let start = match index.checked_sub(1) {
            Some(before) => self.ends.get(before).copied().unwrap_or(end),
            None => 0,
        };
        let range = usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0);
        self.text.get(range).unwrap_or_default()
    }

    fn member(&self, member: Member) -> Option<&str> {
        let index = member as usize;
        (self.present & (1 << index) != 0).then(|| self.slot(index))
    }

    /// `count` slots from `start`.
    fn list(&self, start: usize, count: usize) -> impl ExactSizeIterator<Item = &str> + Clone {
        (start..start + count).map(|index| self.slot(index))
    }

    fn redirect_count(&self) -> usize {
        usize::try_from(self.redirect_uris).unwrap_or(0)
    }

    fn grant_count(&self) -> usize {
        usize::try_from(self.grant_types).unwrap_or(0)
    }
}

/// Builds [`Strings`]: the members first, in [`Member`] order, then the three lists in order.
#[derive(Default)]
struct StringsBuilder {
    text: String,
    ends: Vec<u32>,
    present: u8,
}

impl StringsBuilder {
    fn push(&mut self, value: &str) {
        self.text.push_str(value);
        // The text is smaller than a body under the fetch cap; should a cap above 4 GiB ever let
        // a larger one through, `Strings::slot` reads "" rather than panicking.
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    fn member(&mut self, member: Member, value: Option<&str>) {
        debug_assert_eq!(
            self.ends.len(),
            member as usize,
            "members come first, in order"
        );
        if value.is_some() {
            self.present |= 1 << (member as usize);
        }
        self.push(value.unwrap_or_default());
    }

    /// Pushes a list; its length.
    fn list(&mut self, values: &[String]) -> u32 {
        for value in values {
            self.push(value);
        }
        u32::try_from(values.len()).unwrap_or(u32::MAX)
    }
}

impl ClientMetadata {
    /// `client_name`, if any.
    pub fn client_name(&self) -> Option<&str> {
        self.strings.member(Member::ClientName)
    }

    /// `redirect_uris`, exactly as written.
    pub fn redirect_uris(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        let s = &self.strings;
        s.list(MEMBER_SLOTS, s.redirect_count())
    }

    /// `grant_types` (default `["authorization_code"]`).
    pub fn grant_types(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        let s = &self.strings;
        s.list(MEMBER_SLOTS + s.redirect_count(), s.grant_count())
    }

    /// `response_types` (default `["code"]`).
    pub fn response_types(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        let s = &self.strings;
        let start = MEMBER_SLOTS + s.redirect_count() + s.grant_count();
        s.list(start, s.ends.len().saturating_sub(start))
    }

    /// `scope`: the space-separated scopes the client may ask for, if it limits them.
    pub fn scope(&self) -> Option<&str> {
        self.strings.member(Member::Scope)
    }

    /// `token_endpoint_auth_signing_alg`: the one algorithm the client signs assertions with, if
    /// it pins one.
    pub fn token_endpoint_auth_signing_alg(&self) -> Option<&str> {
        self.strings.member(Member::SigningAlg)
    }

    /// `jwks_uri`: an https URL.
    pub fn jwks_uri(&self) -> Option<&str> {
        self.strings.member(Member::JwksUri)
    }
}

#[allow(
    clippy::missing_fields_in_debug,
    reason = "the shared string buffer is shown member by member, through the accessors"
)]
impl fmt::Debug for ClientMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientMetadata")
            .field("client_id", &self.client_id)
            .field("client_name", &self.client_name())
            .field("redirect_uris", &self.redirect_uris().collect::<Vec<_>>())
            .field("grant_types", &self.grant_types().collect::<Vec<_>>())
            .field("response_types", &self.response_types().collect::<Vec<_>>())
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field(
                "token_endpoint_auth_signing_alg",
                &self.token_endpoint_auth_signing_alg(),
            )
            .field("scope", &self.scope())
            .field("application_type", &self.application_type)
            .field("jwks", &self.jwks)
            .field("jwks_uri", &self.jwks_uri())
            .finish()
    }
}

impl ClientMetadata {
    /// Parses and checks `body` as the document fetched from `client_id`; the first refused rule
    /// is the error. Faults: `skip-client-id-equality`, `allow-shared-secrets` (a shared-secret
    /// method is then treated as `none`: the AS holds no secret to check), `allow-private-keys`,
    /// `lenient-json`, `skip-member-types`, `skip-client-id-presence`, `refuse-unknown-members` and
    /// `allow-jwks-and-jwks-uri`.
    pub fn parse(client_id: &ClientIdUrl, body: &[u8], faults: &Faults) -> Result<Self, Finding> {
        let analysis = analyse(client_id, body, faults);
        if let Some(finding) = analysis.issues.first_refusal(faults) {
            return Err(finding.clone());
        }
        // Unreachable in practice: a body that is not an object records an unrelaxable error.
        analysis
            .metadata
            .ok_or_else(|| Finding::new("CIMD-DOC-01", "the document is not a JSON object"))
    }

    /// Whether the document lists `grant_type` in `grant_types`.
    pub fn has_grant_type(&self, grant_type: &str) -> bool {
        self.grant_types().any(|g| g == grant_type)
    }
}

/// Every error and warning for `body` as the document fetched from `client_id` (for the lint).
pub fn check_document(client_id: &ClientIdUrl, body: &[u8]) -> Findings {
    analyse(client_id, body, &Faults::none())
        .issues
        .into_findings()
}

/// CIMD-DOC-05: the document must be served as JSON (see the module docs for the choice).
pub fn check_content_type(content_type: Option<&str>) -> Result<(), Finding> {
    let Some(value) = content_type else {
        return Err(Finding::new(
            "CIMD-DOC-05",
            "the document was served without a (readable) Content-Type; expected application/json",
        ));
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || essence
            .strip_prefix("application/")
            .and_then(|sub| sub.strip_suffix("+json"))
            .is_some_and(|name| !name.is_empty() && name.bytes().all(is_token_byte));
    if json {
        Ok(())
    } else {
        Err(Finding::new(
            "CIMD-DOC-05",
            format!(
                "the document was served as {}; expected application/json or application/<name>+json",
                quote(value)
            ),
        ))
    }
}

/// RFC 9110 `tchar`, as allowed in a media subtype.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b)
}

/// The outcome of checking one document: every issue, and the metadata built with fallbacks for
/// relaxed members (`None` only when the body is not a JSON object).
struct Analysis {
    issues: Issues,
    metadata: Option<ClientMetadata>,
}

/// Registry members whose value is a string.
const STRING_MEMBERS: &[&str] = &[
    "client_id",
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
    "scope",
    "software_id",
    "software_version",
    "software_statement",
    "token_endpoint_auth_method",
    "token_endpoint_auth_signing_alg",
    "application_type",
    "sector_identifier_uri",
    "subject_type",
    "initiate_login_uri",
    "id_token_signed_response_alg",
    "id_token_encrypted_response_alg",
    "id_token_encrypted_response_enc",
    "userinfo_signed_response_alg",
    "userinfo_encrypted_response_alg",
    "userinfo_encrypted_response_enc",
    "request_object_signing_alg",
    "request_object_encryption_alg",
    "request_object_encryption_enc",
    "authorization_signed_response_alg",
    "authorization_encrypted_response_alg",
    "authorization_encrypted_response_enc",
    "introspection_signed_response_alg",
    "introspection_encrypted_response_alg",
    "introspection_encrypted_response_enc",
    "frontchannel_logout_uri",
    "backchannel_logout_uri",
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",
    "tls_client_auth_san_email",
];

/// Registry members whose value is an array of strings.
const STRING_ARRAY_MEMBERS: &[&str] = &[
    "redirect_uris",
    "grant_types",
    "response_types",
    "contacts",
    "post_logout_redirect_uris",
    "request_uris",
    "default_acr_values",
    "authorization_details_types",
];

/// Other registry members (any type is left to the feature that uses them).
const OTHER_MEMBERS: &[&str] = &[
    "jwks",
    "client_secret",
    "client_secret_expires_at",
    "client_id_issued_at",
    "registration_access_token",
    "registration_client_uri",
    "default_max_age",
    "require_auth_time",
    "frontchannel_logout_session_required",
    "backchannel_logout_session_required",
    "tls_client_certificate_bound_access_tokens",
    "dpop_bound_access_tokens",
    "require_pushed_authorization_requests",
    "require_signed_request_object",
];

/// Shared-secret authentication methods (CIMD-DOC-06).
const SHARED_SECRET_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
];

/// JWK members that carry private or symmetric key material (CIMD-DOC-08).
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn analyse(client_id: &ClientIdUrl, body: &[u8], faults: &Faults) -> Analysis {
    let mut issues = Issues::default();
    let object = match parse_object(body, faults.on(Fault::LenientJson)) {
        Ok(object) => object,
        Err(message) => {
            issues.error("CIMD-DOC-01", message);
            return Analysis {
                issues,
                metadata: None,
            };
        }
    };
    let mut doc = DocumentCheck {
        object: &object,
        issues,
        allow_ip: faults.on(Fault::SkipSsrfGuard),
    };
    doc.check_types();
    doc.check_client_id(client_id);
    let method = doc.auth_method();
    doc.check_secrets();
    let (jwks, jwks_uri) = doc.keys(method);
    let application_type = doc.application_type();
    let redirect_uris = doc.string_array("redirect_uris").unwrap_or_default();
    let grant_types = doc
        .string_array("grant_types")
        .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    let response_types = doc
        .string_array("response_types")
        .unwrap_or_else(|| vec!["code".to_owned()]);
    doc.check_redirects(&redirect_uris, &grant_types, application_type);
    let scope = doc.scope();
    for member in ["logo_uri", "client_uri", "policy_uri", "tos_uri"] {
        doc.display_url(member);
    }
    let client_name = doc.string("client_name");
    let signing_alg = doc.string("token_endpoint_auth_signing_alg");
    doc.warn_unknown_members(faults);
    let issues = doc.issues;
    let mut strings = StringsBuilder::default();
    strings.member(Member::ClientName, client_name.as_deref());
    strings.member(Member::Scope, scope.as_deref());
    strings.member(Member::SigningAlg, signing_alg.as_deref());
    strings.member(Member::JwksUri, jwks_uri.as_deref());
    let redirect_count = strings.list(&redirect_uris);
    let grant_count = strings.list(&grant_types);
    strings.list(&response_types);
    let metadata = ClientMetadata {
        client_id: client_id.clone(),
        token_endpoint_auth_method: method,
        application_type,
        jwks: jwks.map(Box::new),
        strings: Strings {
            text: strings.text.into_boxed_str(),
            ends: strings.ends.into_boxed_slice(),
            present: strings.present,
            redirect_uris: redirect_count,
            grant_types: grant_count,
        },
    };
    Analysis {
        issues,
        metadata: Some(metadata),
    }
}

/// CIMD-DOC-01: valid UTF-8, one JSON object, no duplicate names, nothing trailing. With
/// `lenient` (the `lenient-json` fault) the last duplicate wins and trailing bytes are ignored.
fn parse_object(body: &[u8], lenient: bool) -> Result<Map<String, Value>, String> {
    let text = std::str::from_utf8(body).map_err(|e| {
        format!(
            "the document is not valid UTF-8 (first bad byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = if lenient {
        Value::deserialize(&mut deserializer)
            .map_err(|e| format!("the document is not valid JSON: {e}"))?
    } else {
        StrictValue::deserialize(&mut deserializer)
            .and_then(|value| deserializer.end().map(|()| value.0))
            .map_err(|e| format!("the document is not valid JSON: {e}"))?
    };
    match value {
        Value::Object(object) => Ok(object),
        other => Err(format!(
            "the document is a JSON {}, not an object",
            kind(&other)
        )),
    }
}

/// A JSON value deserialised with duplicate member names refused at every depth (serde_json
/// alone keeps the last one, which would let two parsers see two different documents).
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if object.contains_key(&name) {
                return Err(de::Error::custom(format!(
                    "duplicate member name {}",
                    quote(&name)
                )));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(name, value);
        }
        Ok(Value::Object(object))
    }
}

/// The JSON kind of a value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The member checks over one parsed object.
struct DocumentCheck<'a> {
    object: &'a Map<String, Value>,
    issues: Issues,
    allow_ip: bool,
}

impl DocumentCheck<'_> {
    /// CIMD-DOC-01: registry members have their registry types (`client_name#fr` like `client_name`).
    fn check_types(&mut self) {
        for (name, value) in self.object {
            let base = name.split('#').next().unwrap_or_default();
            let expected = if STRING_MEMBERS.contains(&base) {
                value.is_string().then_some(()).ok_or("a string")
            } else if STRING_ARRAY_MEMBERS.contains(&base) {
                value
                    .as_array()
                    .filter(|items| items.iter().all(Value::is_string))
                    .map(|_| ())
                    .ok_or("an array of strings")
            } else {
                Ok(())
            };
            if let Err(expected) = expected {
                // client_id has its own requirement (CIMD-DOC-02), reported by check_client_id.
                // The `skip-member-types` fault ignores such members instead.
                if name != "client_id" {
                    self.issues.relaxable(
                        Fault::SkipMemberTypes,
                        "CIMD-DOC-01",
                        format!(
                            "the member {} must be {expected}, not a {}",
                            quote(name),
                            kind(value)
                        ),
                    );
                }
            }
        }
    }

    /// CIMD-DOC-02/03: `client_id` is a string equal, byte for byte, to the URL fetched. The
    /// `skip-client-id-presence` fault tolerates a missing or non-string one.
    fn check_client_id(&mut self, url: &ClientIdUrl) {
        match self.object.get("client_id") {
            None => self.issues.relaxable(
                Fault::SkipClientIdPresence,
                "CIMD-DOC-02",
                "the document has no client_id member",
            ),
            Some(Value::String(id)) if id == url.as_str() => {}
            Some(Value::String(id)) => self.issues.relaxable(
                Fault::SkipClientIdEquality,
                "CIMD-DOC-03",
                format!(
                    "client_id {} in the document does not equal the URL {} it was fetched from",
                    quote(id),
                    quote(url.as_str())
                ),
            ),
            Some(other) => {
                self.issues.relaxable(
                    Fault::SkipClientIdPresence,
                    "CIMD-DOC-02",
                    format!("client_id must be a string, not a {}", kind(other)),
                );
            }
        }
    }

    /// CIMD-DOC-06/09: `none` or `private_key_jwt`; absent means `none` (see the module docs).
    fn auth_method(&mut self) -> AuthMethod {
        match self.object.get("token_endpoint_auth_method") {
            None => {
                self.issues.warning(
                    "CIMD-DOC-06",
                    "token_endpoint_auth_method is absent and is taken as \"none\" (RFC 7591's default \
                     client_secret_basic cannot apply to a metadata document); state it explicitly",
                );
                AuthMethod::None
            }
            Some(Value::String(method)) => match method.as_str() {
                "none" => AuthMethod::None,
                "private_key_jwt" => AuthMethod::PrivateKeyJwt,
                shared if SHARED_SECRET_METHODS.contains(&shared) => {
                    // CIMD-DOC-06: a secret published in a public document is no secret.
                    self.issues.relaxable(
                        Fault::AllowSharedSecrets,
                        "CIMD-DOC-06",
                        format!(
                            "token_endpoint_auth_method {} uses a shared secret, which a metadata document \
                             cannot have; use \"none\" or \"private_key_jwt\"",
                            quote(shared)
                        ),
                    );
                    AuthMethod::None
                }
                other => {
                    self.issues.error(
                        "CIMD-DOC-09",
                        format!(
                            "token_endpoint_auth_method {} is not supported for metadata documents; use \
                             \"none\" or \"private_key_jwt\"",
                            quote(other)
                        ),
                    );
                    AuthMethod::None
                }
            },
            // Type error already reported by check_types.
            Some(_) => AuthMethod::None,
        }
    }

    /// CIMD-DOC-07: no `client_secret` or `client_secret_expires_at`, whatever the value.
    fn check_secrets(&mut self) {
        for member in ["client_secret", "client_secret_expires_at"] {
            if let Some(value) = self.object.get(member) {
                self.issues.relaxable(
                    Fault::AllowSharedSecrets,
                    "CIMD-DOC-07",
                    format!(
                        "the document has a {member} member (here a {}); it must not have one",
                        kind(value)
                    ),
                );
            }
        }
    }

    /// CIMD-DOC-08/10, CIMD-AUTH-04, CIMD-SEC-02: public keys only, one key source, and one
    /// at all when the client authenticates with `private_key_jwt`.
    fn keys(&mut self, method: AuthMethod) -> (Option<Value>, Option<String>) {
        let jwks = self.object.get("jwks").cloned();
        if let Some(jwks) = &jwks {
            self.check_jwks(jwks);
        }
        let jwks_uri = self.string("jwks_uri");
        if let Some(uri) = &jwks_uri
            && let Err(why) = check_member_url(uri, Fragment::Refused, self.allow_ip)
        {
            self.issues.error(
                "CIMD-SEC-02",
                format!("jwks_uri {} is not fetchable: {why}", quote(uri)),
            );
        }
        let has_jwks_uri = self.object.contains_key("jwks_uri");
        if jwks.is_some() && has_jwks_uri {
            self.issues.relaxable(
                Fault::AllowJwksAndJwksUri,
                "CIMD-DOC-10",
                "the document has both jwks and jwks_uri; use one of them",
            );
        }
        if method == AuthMethod::PrivateKeyJwt && jwks.is_none() && !has_jwks_uri {
            self.issues.error(
                "CIMD-AUTH-04",
                "token_endpoint_auth_method is \"private_key_jwt\" but the document has neither jwks nor \
                 jwks_uri, so no assertion could be verified",
            );
        }
        (jwks, jwks_uri)
    }

    /// The JWK Set shape, and CIMD-DOC-08 for each key.
    fn check_jwks(&mut self, jwks: &Value) {
        let Some(keys) = jwks
            .as_object()
            .and_then(|set| set.get("keys"))
            .and_then(Value::as_array)
        else {
            self.issues.error(
                "CIMD-DOC-01",
                "jwks must be a JWK Set: an object with a \"keys\" array",
            );
            return;
        };
        for (index, key) in keys.iter().enumerate() {
            let Some(key) = key.as_object() else {
                self.issues.error(
                    "CIMD-DOC-01",
                    format!("jwks key #{index} is a {}, not an object", kind(key)),
                );
                continue;
            };
            let mut private: Vec<&str> = PRIVATE_JWK_MEMBERS
                .iter()
                .copied()
                .filter(|m| key.contains_key(*m))
                .collect();
            if key.get("kty").and_then(Value::as_str) == Some("oct") {
                private.push("kty \"oct\"");
            }
            if !private.is_empty() {
                // CIMD-DOC-08: the document is public, so any private or symmetric key in it is leaked.
                self.issues.relaxable(
                    Fault::AllowPrivateKeys,
                    "CIMD-DOC-08",
                    format!(
                        "jwks key #{index} carries private or symmetric key material ({}); publish public keys only",
                        private.join(", ")
                    ),
                );
            }
        }
    }

    /// `application_type`: `web` (default) or `native`.
    fn application_type(&mut self) -> ApplicationType {
        match self.string("application_type").as_deref() {
            None | Some("web") => ApplicationType::Web,
            Some("native") => ApplicationType::Native,
            Some(other) => {
                self.issues.error(
                    "CIMD-DOC-01",
                    format!(
                        "application_type {} is neither \"web\" nor \"native\"",
                        quote(other)
                    ),
                );
                ApplicationType::Web
            }
        }
    }

    /// CIMD-DOC-12 and the redirect URI shape rules (CIMD-REDIR-01).
    fn check_redirects(
        &mut self,
        uris: &[String],
        grant_types: &[String],
        application_type: ApplicationType,
    ) {
        if grant_types.iter().any(|g| g == "authorization_code") && uris.is_empty() {
            self.issues.error(
                "CIMD-DOC-12",
                "the document allows the authorization_code grant (the default) but lists no redirect_uris",
            );
        }
        for issue in redirect_issues(uris, application_type).0 {
            self.issues.0.push(issue);
        }
    }

    /// `scope`: scope tokens (RFC 6749 §3.3 NQCHAR) separated by single spaces.
    fn scope(&mut self) -> Option<String> {
        let scope = self.string("scope")?;
        let well_formed = !scope.is_empty()
            && scope.split(' ').all(|token| {
                !token.is_empty()
                    && token.bytes().all(|b| {
                        b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
                    })
            });
        if !well_formed {
            self.issues.error(
                "CIMD-DOC-01",
                format!(
                    "scope {} is not a list of scope tokens separated by single spaces",
                    quote(&scope)
                ),
            );
        }
        Some(scope)
    }

    /// CIMD-SEC-04: a URL the AS may show or link to must be a plain https URL.
    fn display_url(&mut self, member: &'static str) {
        let Some(value) = self.string(member) else {
            return;
        };
        if let Err(why) = check_member_url(&value, Fragment::Allowed, self.allow_ip) {
            self.issues.error(
                "CIMD-SEC-04",
                format!(
                    "{member} {} is not a usable https URL: {why}",
                    quote(&value)
                ),
            );
        }
    }

    /// CIMD-DOC-04: unknown members are allowed, and worth a lint warning (an error with the
    /// `refuse-unknown-members` fault).
    fn warn_unknown_members(&mut self, faults: &Faults) {
        let known: BTreeSet<&str> = STRING_MEMBERS
            .iter()
            .chain(STRING_ARRAY_MEMBERS)
            .chain(OTHER_MEMBERS)
            .copied()
            .collect();
        for name in self.object.keys() {
            let base = name.split('#').next().unwrap_or_default();
            if !known.contains(base) {
                let message = format!(
                    "the member {} is not in the OAuth client metadata registry and is ignored",
                    quote(name)
                );
                if faults.on(Fault::RefuseUnknownMembers) {
                    self.issues.error("CIMD-DOC-04", message);
                } else {
                    self.issues.warning("CIMD-DOC-04", message);
                }
            }
        }
    }

    /// A string member (type errors were reported by `check_types`).
    fn string(&self, member: &str) -> Option<String> {
        self.object
            .get(member)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// An array-of-strings member (type errors were reported by `check_types`).
    fn string_array(&self, member: &str) -> Option<Vec<String>> {
        let items = self.object.get(member)?.as_array()?;
        items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    const URL: &str = "https://www.client.example/client.json";

    fn url() -> ClientIdUrl {
        ClientIdUrl::parse(URL, &Faults::none()).unwrap()
    }

    fn doc(extra: &Value) -> Vec<u8> {
        let mut base = json!({
            "client_id": URL,
            "client_name": "Example",
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "none",
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() && k.starts_with('-') {
                base.as_object_mut().unwrap().remove(&k[1..]);
            } else {
                base[k] = v.clone();
            }
        }
        serde_json::to_vec(&base).unwrap()
    }

    fn refusal(body: &[u8]) -> Option<&'static str> {
        ClientMetadata::parse(&url(), body, &Faults::none())
            .err()
            .map(|f| f.requirement)
    }

    fn refusal_of(extra: &Value) -> Option<&'static str> {
        refusal(&doc(extra))
    }

    #[test]
    fn accepts_a_minimal_public_client_with_defaults() {
        let meta = ClientMetadata::parse(&url(), &doc(&json!({})), &Faults::none()).unwrap();
        assert_eq!(meta.client_id.as_str(), URL);
        assert_eq!(meta.client_name(), Some("Example"));
        assert_eq!(
            meta.redirect_uris().collect::<Vec<_>>(),
            ["https://app.example/cb"]
        );
        assert_eq!(
            meta.grant_types().collect::<Vec<_>>(),
            ["authorization_code"]
        );
        assert_eq!(meta.response_types().collect::<Vec<_>>(), ["code"]);
        assert_eq!(meta.scope(), None);
        assert_eq!(meta.jwks_uri(), None);
        assert_eq!(meta.token_endpoint_auth_method, AuthMethod::None);
        assert_eq!(meta.application_type, ApplicationType::Web);
        assert!(meta.has_grant_type("authorization_code"));
    }

    #[test]
    fn string_members_read_back_exactly_from_the_shared_buffer() {
        let body = doc(&json!({
            "client_name": "",
            "redirect_uris": ["https://app.example/a", "https://app.example/b", "https://app.example/a"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code", "code id_token"],
            "scope": "read write",
        }));
        let meta = ClientMetadata::parse(&url(), &body, &Faults::none()).unwrap();
        // Present but empty is not absent.
        assert_eq!(meta.client_name(), Some(""));
        assert_eq!(
            meta.redirect_uris().collect::<Vec<_>>(),
            [
                "https://app.example/a",
                "https://app.example/b",
                "https://app.example/a"
            ]
        );
        assert_eq!(
            meta.grant_types().collect::<Vec<_>>(),
            ["authorization_code", "refresh_token"]
        );
        assert_eq!(
            meta.response_types().collect::<Vec<_>>(),
            ["code", "code id_token"]
        );
        assert_eq!(meta.scope(), Some("read write"));
        assert_eq!(meta.token_endpoint_auth_signing_alg(), None);
        assert!(meta.has_grant_type("refresh_token"));
        assert!(!meta.has_grant_type("code"));
    }

    #[test]
    fn absent_auth_method_means_none() {
        let meta = ClientMetadata::parse(
            &url(),
            &doc(&json!({"-token_endpoint_auth_method": null})),
            &Faults::none(),
        )
        .unwrap();
        assert_eq!(meta.token_endpoint_auth_method, AuthMethod::None);
    }

    #[test]
    fn refuses_bodies_that_are_not_one_json_object() {
        for body in [
            &b""[..],
            b"[]",
            b"\"https://www.client.example/client.json\"",
            b"null",
            b"{\"client_id\": \"x\"} trailing",
            b"{\"client_id\": \"x\"}{}",
            b"{\"client_id\": \"\xff\"}",
            b"\xef\xbb\xbf{}",
            b"{\"a\": 1, \"a\": 2}",
            b"{\"jwks\": {\"keys\": [{\"kty\": \"EC\", \"kty\": \"oct\"}]}}",
            b"{'a': 1}",
        ] {
            assert_eq!(
                refusal(body),
                Some("CIMD-DOC-01"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn duplicate_member_message_names_the_member() {
        let err = ClientMetadata::parse(
            &url(),
            br#"{"client_id": "a", "client_id": "b"}"#,
            &Faults::none(),
        )
        .unwrap_err();
        assert!(
            err.message.contains("duplicate member name \"client_id\""),
            "{}",
            err.message
        );
    }

    #[test]
    fn refuses_a_missing_or_mistyped_client_id() {
        assert_eq!(
            refusal_of(&json!({"-client_id": null})),
            Some("CIMD-DOC-02")
        );
        for bad in [json!(null), json!(1), json!([URL]), json!({})] {
            assert_eq!(
                refusal_of(&json!({ "client_id": bad })),
                Some("CIMD-DOC-02")
            );
        }
    }

    #[test]
    fn refuses_any_client_id_that_differs_from_the_url_byte_for_byte() {
        for other in [
            "https://WWW.client.example/client.json",
            "HTTPS://www.client.example/client.json",
            "https://www.client.example:443/client.json",
            "https://www.client.example/client.json/",
            "https://www.client.example/client%2Ejson",
            "https://www.client.example./client.json",
            "https://www.client.example/client.json?x",
            " https://www.client.example/client.json",
        ] {
            assert_eq!(
                refusal_of(&json!({ "client_id": other })),
                Some("CIMD-DOC-03"),
                "{other}"
            );
        }
        let err = ClientMetadata::parse(
            &url(),
            &doc(&json!({"client_id": "https://evil.example/c"})),
            &Faults::none(),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "client_id \"https://evil.example/c\" in the document does not equal the URL \
             \"https://www.client.example/client.json\" it was fetched from"
        );
        let faults = Faults::of([Fault::SkipClientIdEquality]);
        let meta = ClientMetadata::parse(
            &url(),
            &doc(&json!({"client_id": "https://evil.example/c"})),
            &faults,
        )
        .unwrap();
        assert_eq!(meta.client_id.as_str(), URL);
        assert_eq!(
            ClientMetadata::parse(&url(), &doc(&json!({"client_id": 5})), &faults)
                .unwrap_err()
                .requirement,
            "CIMD-DOC-02"
        );
    }

    #[test]
    fn refuses_shared_secret_methods_and_secret_members() {
        for method in SHARED_SECRET_METHODS {
            assert_eq!(
                refusal_of(&json!({ "token_endpoint_auth_method": method })),
                Some("CIMD-DOC-06")
            );
        }
        for value in [json!("s3cret"), json!(""), json!(null), json!(0)] {
            assert_eq!(
                refusal_of(&json!({ "client_secret": value.clone() })),
                Some("CIMD-DOC-07")
            );
            assert_eq!(
                refusal_of(&json!({ "client_secret_expires_at": value })),
                Some("CIMD-DOC-07")
            );
        }
        let faults = Faults::of([Fault::AllowSharedSecrets]);
        let body = doc(
            &json!({"token_endpoint_auth_method": "client_secret_basic", "client_secret": "x"}),
        );
        let meta = ClientMetadata::parse(&url(), &body, &faults).unwrap();
        assert_eq!(meta.token_endpoint_auth_method, AuthMethod::None);
    }

    #[test]
    fn refuses_unknown_auth_methods() {
        for method in ["tls_client_auth", "bogus", "None", ""] {
            assert_eq!(
                refusal_of(&json!({ "token_endpoint_auth_method": method })),
                Some("CIMD-DOC-09")
            );
        }
        assert_eq!(
            refusal_of(&json!({ "token_endpoint_auth_method": 1 })),
            Some("CIMD-DOC-01")
        );
    }

    fn ec_key() -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "k1"})
    }

    #[test]
    fn private_key_jwt_needs_exactly_one_public_key_source() {
        let pkj = |extra: Value| {
            let mut e = json!({"token_endpoint_auth_method": "private_key_jwt"});
            for (k, v) in extra.as_object().unwrap() {
                e[k] = v.clone();
            }
            refusal_of(&e)
        };
        assert_eq!(pkj(json!({"jwks": {"keys": [ec_key()]}})), None);
        assert_eq!(
            pkj(json!({"jwks_uri": "https://keys.example/jwks.json"})),
            None
        );
        assert_eq!(pkj(json!({})), Some("CIMD-AUTH-04"));
        assert_eq!(
            pkj(
                json!({"jwks": {"keys": [ec_key()]}, "jwks_uri": "https://keys.example/jwks.json"})
            ),
            Some("CIMD-DOC-10")
        );
        for bad in [
            "http://keys.example/j",
            "https://keys.example/j#k",
            "https://u@keys.example/j",
            "https://10.0.0.1/j",
        ] {
            assert_eq!(
                pkj(json!({ "jwks_uri": bad })),
                Some("CIMD-SEC-02"),
                "{bad}"
            );
        }
        let meta = ClientMetadata::parse(
            &url(),
            &doc(&json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://keys.example/j",
                         "token_endpoint_auth_signing_alg": "ES256"})),
            &Faults::none(),
        )
        .unwrap();
        assert_eq!(meta.token_endpoint_auth_method, AuthMethod::PrivateKeyJwt);
        assert_eq!(meta.jwks_uri(), Some("https://keys.example/j"));
        assert_eq!(meta.token_endpoint_auth_signing_alg(), Some("ES256"));
    }

    #[test]
    fn refuses_private_or_symmetric_key_material() {
        for member in PRIVATE_JWK_MEMBERS {
            let mut key = ec_key();
            key[*member] = json!("AAAA");
            assert_eq!(
                refusal_of(&json!({"jwks": {"keys": [key]}})),
                Some("CIMD-DOC-08"),
                "{member}"
            );
        }
        let oct = json!({"kty": "oct", "kid": "s"});
        assert_eq!(
            refusal_of(&json!({"jwks": {"keys": [oct.clone()]}})),
            Some("CIMD-DOC-08")
        );
        let faults = Faults::of([Fault::AllowPrivateKeys]);
        assert!(
            ClientMetadata::parse(&url(), &doc(&json!({"jwks": {"keys": [oct]}})), &faults).is_ok()
        );
        for bad in [
            json!([]),
            json!({"keys": {}}),
            json!({"keys": [1]}),
            json!("x"),
        ] {
            assert_eq!(refusal_of(&json!({ "jwks": bad })), Some("CIMD-DOC-01"));
        }
    }

    #[test]
    fn members_must_have_their_registry_types() {
        for extra in [
            json!({"client_name": 1}),
            json!({"client_name#fr": ["x"]}),
            json!({"redirect_uris": "https://app.example/cb"}),
            json!({"redirect_uris": ["https://app.example/cb", 1]}),
            json!({"grant_types": "authorization_code"}),
            json!({"response_types": [null]}),
            json!({"scope": ["a"]}),
            json!({"scope": "a  b"}),
            json!({"scope": "a\"b"}),
            json!({"scope": ""}),
            json!({"contacts": "me@example.com"}),
            json!({"application_type": "desktop"}),
            json!({"jwks_uri": null}),
        ] {
            assert_eq!(refusal_of(&extra), Some("CIMD-DOC-01"), "{extra}");
        }
    }

    #[test]
    fn redirect_uris_are_required_for_the_code_grant_only() {
        assert_eq!(
            refusal_of(&json!({"-redirect_uris": null})),
            Some("CIMD-DOC-12")
        );
        assert_eq!(
            refusal_of(&json!({"redirect_uris": []})),
            Some("CIMD-DOC-12")
        );
        assert_eq!(
            refusal_of(&json!({"-redirect_uris": null, "grant_types": ["client_credentials"]})),
            None
        );
        assert_eq!(
            refusal_of(&json!({"redirect_uris": ["http://evil.example/cb"]})),
            Some("CIMD-REDIR-01")
        );
    }

    #[test]
    fn display_urls_must_be_https() {
        for member in ["logo_uri", "client_uri", "policy_uri", "tos_uri"] {
            for bad in [
                "javascript:alert(1)",
                "data:image/png;base64,AA",
                "http://x.example/",
                "file:///etc/passwd",
            ] {
                assert_eq!(
                    refusal_of(&json!({ member: bad })),
                    Some("CIMD-SEC-04"),
                    "{member} {bad}"
                );
            }
            assert_eq!(
                refusal_of(&json!({ member: "https://x.example/p#a" })),
                None
            );
        }
    }

    #[test]
    fn unknown_members_are_accepted_with_a_lint_warning() {
        let body = doc(&json!({"x_custom": {"any": "thing"}, "client_name#ja": "例"}));
        assert_eq!(refusal(&body), None);
        let findings = check_document(&url(), &body);
        assert!(findings.is_valid());
        let warnings: Vec<_> = findings.warnings.iter().map(|f| f.requirement).collect();
        assert_eq!(warnings, ["CIMD-DOC-04"]);
        assert!(findings.warnings[0].message.contains("x_custom"));
    }

    #[test]
    fn lint_reports_every_error() {
        let body = doc(&json!({
            "client_id": "https://evil.example/c",
            "token_endpoint_auth_method": "client_secret_post",
            "client_secret": "x",
            "jwks": {"keys": [{"kty": "oct", "k": "AA"}]},
            "jwks_uri": "http://keys.example/j",
        }));
        let ids: BTreeSet<_> = check_document(&url(), &body)
            .errors
            .iter()
            .map(|f| f.requirement)
            .collect();
        let expected: BTreeSet<_> = [
            "CIMD-DOC-03",
            "CIMD-DOC-06",
            "CIMD-DOC-07",
            "CIMD-DOC-08",
            "CIMD-SEC-02",
            "CIMD-DOC-10",
        ]
        .into();
        assert_eq!(ids, expected);
    }

    #[test]
    fn content_type_must_be_json() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/oauth-client+json",
            "application/cimd+json;profile=x",
        ] {
            assert!(check_content_type(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            None,
            Some("text/html"),
            Some("text/plain"),
            Some("application/+json"),
            Some("application/jsonx"),
            Some(""),
        ] {
            assert_eq!(
                check_content_type(bad).unwrap_err().requirement,
                "CIMD-DOC-05",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn deeply_nested_bodies_are_refused_without_overflowing_the_stack() {
        let body = format!("{{\"x\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(refusal(body.as_bytes()), Some("CIMD-DOC-01"));
    }
}
