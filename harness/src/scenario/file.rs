//! The scenario file format: TOML, unknown keys rejected, parsed into typed steps and expectations.
//!
//! A scenario is data. Its steps come from a closed vocabulary (`discover`, `authorize`, `token`,
//! `http`, `route`, `wait`, and for dynamic registration `register`, `initial_access_token` and
//! `edit_template`), each expectation names one requirement and one kind of evidence, and
//! `[negative]` names the reference-AS fault that must make it fail. Metadata-host routes stay as
//! loose TOML until run time, because placeholders and fixture files are filled in first; load-time
//! validation converts them once with dummy bindings so mistakes surface before any run.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// A declarative sentence, free of MUST/SHOULD.
    pub title: String,
    /// The party under test (`AS` for now).
    #[serde(default = "default_actor")]
    pub actor: String,
    /// Free-form tags for `--only` style selection and grouping.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Routes of the metadata host, keyed by URL (with placeholders), mounted before the steps.
    #[serde(default)]
    pub routes: BTreeMap<String, toml::Value>,
    /// Reference-AS settings this scenario needs (its own AS instance in-process; against a
    /// third-party target the scenario is not applicable unless the target declares them).
    #[serde(default)]
    pub reference_as: Option<ReferenceAsSettings>,
    /// The steps, in order.
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
    /// The expectations, judged after the steps.
    #[serde(default, rename = "expect")]
    pub expects: Vec<Expect>,
    /// How the scenario proves it can fail.
    pub negative: Negative,
}

fn default_actor() -> String {
    "AS".to_owned()
}

/// Reference-AS settings a scenario needs (at least one table).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReferenceAsSettings {
    /// The `[ephemeral_clients]` policy table, as in the AS config file (placeholders allowed).
    #[serde(default)]
    pub ephemeral_clients: Option<toml::Value>,
    /// Keys of the AS config file's `[registration]` table that differ from the harness's
    /// registration setup (`access = "open"`, `delete = false`, ...); the rest is kept.
    #[serde(default)]
    pub registration: Option<toml::Value>,
    /// Keys of the AS config file's `[client_auth]` table (`bind_grants_to_key = true`, ...);
    /// the rest keep the AS defaults.
    #[serde(default)]
    pub client_auth: Option<toml::Value>,
    /// Keys of the AS config file's `[tokens]` table (`device_code_ttl_secs = 2`, ...); the rest
    /// keep the AS defaults.
    #[serde(default)]
    pub tokens: Option<toml::Value>,
    /// Keys of the AS config file's `[par]` table (`required = true`, ...); the rest keep the AS
    /// defaults.
    #[serde(default)]
    pub par: Option<toml::Value>,
}

impl ReferenceAsSettings {
    /// The tables set over the AS config's sections of the same name (everything but the
    /// policy), by section name.
    pub fn config_tables(&self) -> impl Iterator<Item = (&'static str, &toml::Value)> {
        [
            ("registration", self.registration.as_ref()),
            ("client_auth", self.client_auth.as_ref()),
            ("tokens", self.tokens.as_ref()),
            ("par", self.par.as_ref()),
        ]
        .into_iter()
        .filter_map(|(section, table)| table.map(|t| (section, t)))
    }
}

/// The negative run: the fault that must make the scenario fail, or why none can.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Negative {
    /// A reference-AS fault name.
    pub fault: Option<String>,
    /// The requirement whose check must fail under the fault (default: the fault's own).
    pub requirement: Option<String>,
    /// Why no fault can break this scenario (instead of `fault`).
    pub reason: Option<String>,
}

/// One step; the TOML table has exactly one key naming the kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// GET the AS metadata.
    Discover(DiscoverStep),
    /// Walk an authorization request as a user agent.
    Authorize(AuthorizeStep),
    /// A token endpoint request.
    Token(TokenStep),
    /// A raw HTTP request.
    Http(HttpStep),
    /// Replace a metadata-host route mid-scenario.
    Route(RouteStep),
    /// Pause.
    Wait(WaitStep),
    /// An RFC 7591 registration request to the target's `registration_endpoint`.
    Register(RegisterStep),
    /// Obtain an initial access token with the target's DCR credentials.
    InitialAccessToken(InitialAccessTokenStep),
    /// Change a template through the reference AS's admin API (reference AS only).
    EditTemplate(EditTemplateStep),
    /// An RFC 8628 device authorization, and optionally the person approving it.
    Device(super::device::DeviceStep),
    /// An RFC 9126 pushed authorization request.
    Par(super::par::ParStep),
}

impl Step {
    /// The step's id (for captured values and expectations).
    pub fn id(&self) -> Option<&str> {
        match self {
            Step::Discover(s) => s.id.as_deref(),
            Step::Authorize(s) => s.id.as_deref(),
            Step::Token(s) => s.id.as_deref(),
            Step::Http(s) => s.id.as_deref(),
            Step::Register(s) => s.id.as_deref(),
            Step::InitialAccessToken(s) => s.id.as_deref(),
            Step::EditTemplate(s) => s.id.as_deref(),
            Step::Device(s) => s.id.as_deref(),
            Step::Par(s) => s.id.as_deref(),
            Step::Route(_) | Step::Wait(_) => None,
        }
    }

    /// The step kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Discover(_) => "discover",
            Step::Authorize(_) => "authorize",
            Step::Token(_) => "token",
            Step::Http(_) => "http",
            Step::Route(_) => "route",
            Step::Wait(_) => "wait",
            Step::Register(_) => "register",
            Step::InitialAccessToken(_) => "initial_access_token",
            Step::EditTemplate(_) => "edit_template",
            Step::Device(_) => "device",
            Step::Par(_) => "par",
        }
    }
}

/// `discover = { id = "meta" }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverStep {
    /// Step id.
    pub id: Option<String>,
}

/// PKCE choice for an authorization request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkceChoice {
    /// A fresh S256 challenge.
    #[default]
    S256,
    /// `code_challenge_method=plain` with the verifier as challenge.
    Plain,
    /// No challenge at all.
    None,
}

/// How the user signs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginChoice {
    /// A one-time code by e-mail, read from the inbox.
    #[default]
    Email,
    /// Username and password.
    Password,
}

/// The user's answer on the consent page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentChoice {
    /// Allow.
    #[default]
    Allow,
    /// Deny.
    Deny,
}

/// `authorize = { id = "flow", client_id = "{host:www}/c.json", redirect_uri = "{callback}/cb" }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeStep {
    /// Step id.
    pub id: Option<String>,
    /// The client_id to send.
    pub client_id: String,
    /// The redirect_uri to send.
    pub redirect_uri: String,
    /// `scope`, if any.
    pub scope: Option<String>,
    /// `response_type` (default `code`).
    pub response_type: Option<String>,
    /// PKCE (default S256).
    #[serde(default)]
    pub pkce: PkceChoice,
    /// Login method (default e-mail code).
    #[serde(default)]
    pub login: LoginChoice,
    /// Consent answer (default allow).
    #[serde(default)]
    pub consent: ConsentChoice,
    /// Extra query parameters (placeholders allowed).
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
    /// Send the request as a fresh browser (no cookies from earlier steps); default false.
    #[serde(default)]
    pub fresh_browser: bool,
    /// Continue from this `par` step: send only `client_id`, its `request_uri` and `extra`
    /// (RFC 9126 §4), and keep its PKCE verifier for the exchange.
    pub pushed: Option<String>,
}

/// `token = { id = "tok", exchange = "flow" }` or `token = { form = { grant_type = "…" } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenStep {
    /// Step id.
    pub id: Option<String>,
    /// Exchange the code captured by this authorize step (its client_id, redirect_uri, verifier).
    pub exchange: Option<String>,
    /// Use the refresh token captured by this token step.
    pub refresh: Option<String>,
    /// Form fields to send, or to override in an exchange/refresh (placeholders allowed; an empty
    /// string removes a field).
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// Send the same request this many times at once (one-time tokens under concurrency).
    #[serde(default = "one")]
    pub concurrent: u16,
    /// Sign a client assertion (`private_key_jwt`) and send it with the request.
    pub client_assertion: Option<Box<super::assertion::ClientAssertion>>,
    /// Authenticate with HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1).
    pub client_secret_basic: Option<BasicCredentials>,
}

/// `client_secret_basic = { client_id = "{reg.client_id}", client_secret = "{reg.client_secret}" }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicCredentials {
    /// The client_id (placeholders allowed).
    pub client_id: String,
    /// The client secret (placeholders allowed).
    pub client_secret: String,
}

fn one() -> u16 {
    1
}

/// `http = { id = "raw", method = "POST", url = "{issuer}/token", body = "…" }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    /// Step id.
    pub id: Option<String>,
    /// Method (default GET).
    #[serde(default = "get")]
    pub method: String,
    /// The URL (placeholders allowed).
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Raw request body.
    pub body: Option<String>,
    /// A JSON body written as a TOML table (placeholders filled in its strings), sent with
    /// `Content-Type: application/json` unless `headers` names another; excludes `body`.
    pub json: Option<toml::Value>,
}

fn get() -> String {
    "GET".to_owned()
}

/// `register = { id = "reg", body = { redirect_uris = ["{callback}/callback"] } }`
///
/// The body is the fixture `file` (under `fixtures/`), with the members of `body` set over it,
/// placeholders filled in every string, and with `template = true` the target's template
/// `software_id`; or `raw` text sent as it is. It is POSTed as `content_type` (default
/// `application/json`) with the initial access token the target needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterStep {
    /// Step id.
    pub id: Option<String>,
    /// `obtain` (default): a fresh token from the target's DCR credentials; `none`: no
    /// `Authorization` header; anything else: this token (placeholders allowed).
    #[serde(default = "obtain")]
    pub initial_access_token: String,
    /// Put the target's template `software_id` in the body.
    #[serde(default)]
    pub template: bool,
    /// A JSON object of registration metadata (placeholders allowed in strings).
    pub body: Option<toml::Value>,
    /// A registration body fixture (`registrations/x.json`); `body` members are set over it.
    pub file: Option<String>,
    /// Raw body text instead of JSON (placeholders allowed).
    pub raw: Option<String>,
    /// The `Content-Type` header (default `application/json`).
    pub content_type: Option<String>,
    /// Send the same request this many times at once, with one initial access token.
    #[serde(default = "one")]
    pub concurrent: u16,
}

/// The `initial_access_token` value that obtains a fresh token.
pub const OBTAIN: &str = "obtain";
/// The `initial_access_token` value that sends none.
pub const NO_TOKEN: &str = "none";

fn obtain() -> String {
    OBTAIN.to_owned()
}

/// `initial_access_token = { id = "iat" }`: a client_credentials request with the target's DCR
/// credentials; captures `{iat.access_token}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialAccessTokenStep {
    /// Step id.
    pub id: Option<String>,
    /// The scope to ask for (default: the target's DCR scope, `dcr`).
    pub scope: Option<String>,
}

/// `edit_template = { set = { scope = "openid" } }`: reads the template through the reference AS's
/// admin API, sets these members and writes it back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditTemplateStep {
    /// Step id.
    pub id: Option<String>,
    /// The template (default: the target's template).
    pub software_id: Option<String>,
    /// Members to set (placeholders allowed in strings).
    pub set: toml::Value,
}

/// `route = { url = "{host:www}/c.json", reply = { status = 500 } }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteStep {
    /// The route's URL (placeholders allowed).
    pub url: String,
    /// The route, as in `[routes]`.
    pub reply: toml::Value,
}

/// `wait = { ms = 1100 }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    /// Milliseconds.
    pub ms: u64,
}

/// One expectation: a requirement and exactly one kind of evidence to judge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The requirement this check names.
    pub requirement: String,
    /// The step whose result is judged (default: the last step that has an id or, failing that,
    /// the last authorize/token/http/discover step).
    pub step: Option<String>,
    /// How an authorize step ended.
    pub outcome: Option<OutcomeKind>,
    /// HTTP status of a token/http/discover step.
    pub status: Option<u16>,
    /// The OAuth `error` (token JSON, or redirect parameter).
    pub error: Option<String>,
    /// A JSON member of a discover/token/http response.
    pub json: Option<JsonExpect>,
    /// A claim of the JWT access token a token step received (payload read, not verified).
    pub claims: Option<JsonExpect>,
    /// A parameter of the redirect an authorize step ended with.
    pub param: Option<ParamExpect>,
    /// Text on the pages an authorize step saw (login, consent, error).
    pub page: Option<PageExpect>,
    /// Requests the metadata host received.
    pub metadata_requests: Option<RequestsExpect>,
    /// Of concurrent token or register requests, how many succeeded (200, or 2xx for register).
    pub successes: Option<u16>,
    /// Mail received by the scenario's user.
    pub mail: Option<MailExpect>,
    /// A response header of an http, register or edit_template step.
    pub header: Option<HeaderExpect>,
}

/// `header = { name = "WWW-Authenticate", contains = "error=\"invalid_token\"" }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderExpect {
    /// Header name (case-insensitive).
    pub name: String,
    /// Some value of the header contains this text (case-insensitive; placeholders allowed).
    pub contains: Option<String>,
    /// The header is present (true) or absent (false).
    pub present: Option<bool>,
}

/// How an authorization request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// A 4xx page from the AS, no redirect to the client.
    ErrorPage,
    /// A redirect to the client carrying a code.
    RedirectCode,
    /// A redirect to the client carrying an error.
    RedirectError,
    /// Anything but a redirect to the client (error page or a stop inside the AS).
    NotRedirected,
}

/// `json = { pointer = "/code_challenge_methods_supported", contains = "S256" }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonExpect {
    /// RFC 6901 pointer.
    pub pointer: String,
    /// The member equals this value.
    pub equals: Option<toml::Value>,
    /// The member is an array containing this value.
    pub contains: Option<toml::Value>,
    /// The member is present (true) or absent (false).
    pub present: Option<bool>,
    /// The member is present and differs from this value.
    pub not_equals: Option<toml::Value>,
    /// The member is a string starting with this text.
    pub prefix: Option<String>,
    /// The member is a string not starting with this text.
    pub not_prefix: Option<String>,
    /// The member is a string not containing this text.
    pub lacks: Option<String>,
    /// The member has this JSON type.
    pub kind: Option<JsonKind>,
    /// The member is an integer at least this large.
    pub min: Option<i64>,
}

/// A JSON value's type, for `json = { pointer = "/x", kind = "integer" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonKind {
    /// A string.
    String,
    /// A number without a fractional part.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// An array.
    Array,
    /// An object.
    Object,
}

/// `param = { name = "iss", equals = "{issuer}" }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamExpect {
    /// Parameter name.
    pub name: String,
    /// Expected value (placeholders allowed).
    pub equals: Option<String>,
    /// Present (true) or absent (false).
    pub present: Option<bool>,
}

/// `page = { contains = "{hostname:www}" }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageExpect {
    /// Some page shows this text.
    pub contains: Option<String>,
    /// No page shows this text.
    pub lacks: Option<String>,
    /// Only pages whose form has this id (e.g. `consent-form`).
    pub form: Option<String>,
}

/// `metadata_requests = { url = "{host:www}/c.json", count = 0 }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestsExpect {
    /// Exact URL (scheme://host:port/path); or use `host` for any path on a host.
    pub url: Option<String>,
    /// Any path on this virtual host name (placeholders allowed).
    pub host: Option<String>,
    /// Exactly this many.
    pub count: Option<usize>,
    /// At least this many.
    pub min: Option<usize>,
    /// At most this many.
    pub max: Option<usize>,
    /// None of the requests carried these headers.
    #[serde(default)]
    pub without_headers: Vec<String>,
    /// Every request used this method.
    pub method: Option<String>,
    /// Every request carried these headers, each value containing the given text
    /// (case-insensitive).
    #[serde(default)]
    pub with_headers: std::collections::BTreeMap<String, String>,
}

/// `mail = { count = 1 }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailExpect {
    /// Exactly this many messages reached the scenario's user.
    pub count: usize,
}

impl Expect {
    /// The names of the evidence kinds this expectation sets (exactly one is valid; `error` may
    /// accompany `outcome` or `status`).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        let mut add = |set: bool, name| {
            if set {
                kinds.push(name);
            }
        };
        add(self.outcome.is_some(), "outcome");
        add(self.status.is_some(), "status");
        add(
            self.error.is_some() && self.outcome.is_none() && self.status.is_none(),
            "error",
        );
        add(self.json.is_some(), "json");
        add(self.claims.is_some(), "claims");
        add(self.param.is_some(), "param");
        add(self.page.is_some(), "page");
        add(self.metadata_requests.is_some(), "metadata_requests");
        add(self.successes.is_some(), "successes");
        add(self.mail.is_some(), "mail");
        add(self.header.is_some(), "header");
        kinds
    }
}
