//! Dynamic client registration steps: RFC 7591 `register`, `initial_access_token`, the reference
//! AS's template admin API (`edit_template`), and which targets can run them.
//!
//! Registration is reached the way a client reaches it: the endpoint comes from the target's RFC
//! 8414 metadata, initial access tokens come from a `client_credentials` request with the DCR
//! credentials the target file names, and every response's top-level string and number members
//! are captured (`{reg.client_id}`, `{reg.registration_access_token}`), so RFC 7592 management is
//! plain `http` steps on `{reg.registration_client_uri}`. A target that lacks what a scenario
//! needs (no `registration_endpoint`, no DCR credentials, no template, no management, no admin
//! API) makes that scenario not applicable, with the reason, rather than failed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde::Deserialize;

use super::Scenario;
use super::file::{EditTemplateStep, InitialAccessTokenStep, NO_TOKEN, OBTAIN, RegisterStep, Step};
use super::run::{AsUnderTest, Event, HttpResponse, StepResult};
use super::template::Bindings;
use crate::HarnessError;
use crate::agent::{TokenResponse, UserAgent};

/// The binding name of the target's template `software_id` (`{template}`).
pub const TEMPLATE: &str = "template";
/// The binding name of the target's registration endpoint (`{registration_endpoint}`).
pub const REGISTRATION_ENDPOINT: &str = "registration_endpoint";

/// How a confidential client presents its secret at the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretMethod {
    /// HTTP Basic, id and secret form-urlencoded first (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// A secret the harness holds; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The client that obtains initial access tokens (`client_credentials` with the DCR scope).
#[derive(Debug, Clone)]
pub struct IatClient {
    /// Its client_id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: Secret,
    /// How it authenticates.
    pub method: SecretMethod,
    /// The scope that yields an initial access token (`dcr`).
    pub scope: String,
}

/// What the harness knows about registration at a target beyond its metadata.
#[derive(Debug, Clone)]
pub struct DcrSetup {
    /// Credentials for initial access tokens, if the target needs and names them.
    pub initial_access: Option<IatClient>,
    /// The `software_id` of a template client (templatized DCR).
    pub template: Option<String>,
    /// The bearer token of the reference AS's template admin API (embedded reference AS only).
    pub admin_token: Option<Secret>,
    /// Whether the target supports RFC 7592 management (registration_client_uri).
    pub management: bool,
}

impl Default for DcrSetup {
    fn default() -> Self {
        Self {
            initial_access: None,
            template: None,
            admin_token: None,
            management: true,
        }
    }
}

/// HTTP exchanges the registration steps made, for the evidence log (secrets redacted). Shared by
/// concurrent requests of one step.
#[derive(Debug, Clone, Default)]
pub struct Exchanges(Arc<Mutex<Vec<Event>>>);

impl Exchanges {
    fn push(&self, detail: serde_json::Value) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Event {
                seq: mock_kit::journal::next_sequence(),
                source: "harness",
                detail,
            });
    }

    /// Every recorded exchange, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Members whose values never appear in evidence.
const SECRET_MEMBERS: &[&str] = &[
    "client_secret",
    "registration_access_token",
    "access_token",
    "refresh_token",
    "id_token",
    "admin_token",
];

/// `json` with secret members (at any depth) replaced.
fn redact_json(json: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match json {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if SECRET_MEMBERS.contains(&k.as_str()) && v.is_string() {
                        Value::String("[redacted]".to_owned())
                    } else {
                        redact_json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        other => other.clone(),
    }
}

/// A body for the evidence log: redacted JSON, or at most 300 characters of text.
fn body_evidence(text: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(json) => redact_json(&json),
        Err(_) => serde_json::Value::String(text.chars().take(300).collect()),
    }
}

/// One request to send and log: method, URL, headers, body.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: reqwest::Method,
    /// The URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<String>,
}

/// POSTs `form` form-encoded to `url` with `http`, like [`send`].
pub async fn post_form(
    http: &reqwest::Client,
    url: String,
    form: &BTreeMap<String, String>,
    log: &Exchanges,
) -> Result<HttpResponse, HarnessError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let request = Request {
        method: reqwest::Method::POST,
        url,
        headers: vec![(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )],
        body: Some(body),
    };
    send(http, &request, log).await
}

/// Sends `request` with `http`, reads the whole answer and logs the exchange.
pub async fn send(
    http: &reqwest::Client,
    request: &Request,
    log: &Exchanges,
) -> Result<HttpResponse, HarnessError> {
    let mut builder = http.request(request.method.clone(), &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let response = builder.send().await?;
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = String::from_utf8_lossy(&response.bytes().await?).into_owned();
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    let shown_headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| {
            let v = if k.eq_ignore_ascii_case("authorization") {
                v.split(' ').next().unwrap_or_default().to_owned() + " [redacted]"
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    let answer_headers: Vec<&(String, String)> = headers
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "content-type" | "www-authenticate" | "allow"))
        .collect();
    log.push(serde_json::json!({
        "method": request.method.as_str(),
        "url": crate::agent::redact_url(&request.url),
        "headers": shown_headers,
        "body": request.body.as_deref().map(body_evidence),
        "status": status,
        "response_headers": answer_headers,
        "response": body_evidence(&body),
    }));
    Ok(HttpResponse {
        status,
        headers,
        json,
        body,
    })
}

/// An `Authorization: Basic` value, id and secret form-urlencoded first (RFC 6749 §2.3.1).
pub fn basic_authorization(client_id: &str, secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A token endpoint request with an optional HTTP Basic header, logged; `None` leaves it to
/// the user agent (which keeps its own history).
pub async fn token_request(
    ua: &UserAgent,
    endpoint: &str,
    form: &[(String, String)],
    basic: Option<&str>,
    log: &Exchanges,
) -> Result<TokenResponse, HarnessError> {
    let Some(authorization) = basic else {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        return ua.token(endpoint, &pairs).await;
    };
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let request = Request {
        method: reqwest::Method::POST,
        url: endpoint.to_owned(),
        headers: vec![
            ("authorization".to_owned(), authorization.to_owned()),
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ],
        body: Some(body),
    };
    let response = send(ua.http(), &request, log).await?;
    let cache_control = response.header("cache-control").map(str::to_owned);
    Ok(TokenResponse {
        status: response.status,
        body: response.json,
        cache_control,
    })
}

/// Binds `{template}` and `{registration_endpoint}` when the target has them.
pub fn bind_target(bindings: &mut Bindings, target: &AsUnderTest) {
    if let Some(template) = &target.dcr.template {
        bindings
            .captured
            .insert(TEMPLATE.to_owned(), template.clone());
    }
    if let Some(endpoint) = &target.registration_endpoint {
        bindings
            .captured
            .insert(REGISTRATION_ENDPOINT.to_owned(), endpoint.clone());
    }
}

/// Captures every top-level string and number member of `json` as `{id.member}`.
pub fn capture_members(bindings: &mut Bindings, id: Option<&str>, json: &serde_json::Value) {
    let (Some(id), Some(map)) = (id, json.as_object()) else {
        return;
    };
    for (name, value) in map {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => continue,
        };
        bindings.captured.insert(format!("{id}.{name}"), text);
    }
}

/// The registration body: (text, content type). `template` is the software_id put in the body
/// when the step asks for it.
pub fn registration_body(
    step: &RegisterStep,
    bindings: &Bindings,
    fixtures: &Path,
    template: Option<&str>,
) -> Result<(String, String), String> {
    let content_type = match &step.content_type {
        Some(c) => bindings.fill(c).map_err(|e| e.to_string())?,
        None => "application/json".to_owned(),
    };
    if let Some(raw) = &step.raw {
        if step.body.is_some() || step.file.is_some() || step.template {
            return Err("register: raw excludes body, file and template".to_owned());
        }
        return Ok((bindings.fill(raw).map_err(|e| e.to_string())?, content_type));
    }
    let mut json = match &step.file {
        Some(file) => {
            let path = fixtures.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("fixture {}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("fixture {}: {e}", path.display()))?
        }
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    let Some(object) = json.as_object_mut() else {
        return Err("register: the registration body is not a JSON object".to_owned());
    };
    if let Some(body) = &step.body {
        let overlay = serde_json::to_value(body).map_err(|e| e.to_string())?;
        let Some(members) = overlay.as_object() else {
            return Err("register: body is not a table".to_owned());
        };
        object.extend(members.clone());
    }
    if step.template {
        let software_id =
            template.ok_or("register: template = true, but the target names no template")?;
        object.insert("software_id".to_owned(), software_id.into());
    }
    let filled = bindings.fill_json(&json).map_err(|e| e.to_string())?;
    Ok((filled.to_string(), content_type))
}

/// Runs a `register` step.
pub async fn register(
    step: &RegisterStep,
    target: &AsUnderTest,
    bindings: &mut Bindings,
    fixtures: &Path,
    ua: &UserAgent,
    log: &Exchanges,
) -> Result<StepResult, HarnessError> {
    let endpoint = target.registration_endpoint.clone().ok_or_else(|| {
        HarnessError::Target("the metadata has no registration_endpoint".to_owned())
    })?;
    let (body, content_type) =
        registration_body(step, bindings, fixtures, target.dcr.template.as_deref())
            .map_err(HarnessError::Scenario)?;
    let token = match step.initial_access_token.as_str() {
        NO_TOKEN => None,
        OBTAIN => Some(obtain_token(target, None, ua, log).await?),
        other => Some(
            bindings
                .fill(other)
                .map_err(|e| HarnessError::Scenario(e.to_string()))?,
        ),
    };
    let mut headers = vec![
        ("content-type".to_owned(), content_type),
        ("accept".to_owned(), "application/json".to_owned()),
    ];
    if let Some(token) = token {
        headers.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    let request = Request {
        method: reqwest::Method::POST,
        url: endpoint,
        headers,
        body: Some(body),
    };
    let mut responses = Vec::new();
    if step.concurrent <= 1 {
        responses.push(send(ua.http(), &request, log).await?);
    } else {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..step.concurrent {
            let (http, request, log) = (ua.http().clone(), request.clone(), log.clone());
            tasks.spawn(async move { send(&http, &request, &log).await });
        }
        while let Some(done) = tasks.join_next().await {
            responses
                .push(done.map_err(|e| HarnessError::Scenario(format!("register task: {e}")))??);
        }
    }
    let id = step.id.as_deref();
    if let Some(first) = responses
        .iter()
        .find(|r| (200..300).contains(&r.status))
        .or(responses.first())
    {
        capture_members(bindings, id, &first.json);
        if let Some(id) = id {
            bindings
                .captured
                .insert(format!("{id}.status"), first.status.to_string());
        }
    }
    Ok(StepResult::Register { responses })
}

/// The `client_credentials` form (and Basic header) of an initial access token request.
fn iat_request(client: &IatClient, scope: &str) -> (Vec<(String, String)>, Option<String>) {
    let mut form = vec![
        ("grant_type".to_owned(), "client_credentials".to_owned()),
        ("scope".to_owned(), scope.to_owned()),
    ];
    let basic = match client.method {
        SecretMethod::ClientSecretBasic => Some(basic_authorization(
            &client.client_id,
            &client.client_secret.0,
        )),
        SecretMethod::ClientSecretPost => {
            form.push(("client_id".to_owned(), client.client_id.clone()));
            form.push(("client_secret".to_owned(), client.client_secret.0.clone()));
            None
        }
    };
    (form, basic)
}

fn iat_client(target: &AsUnderTest) -> Result<&IatClient, HarnessError> {
    target.dcr.initial_access.as_ref().ok_or_else(|| {
        HarnessError::Scenario("the target names no DCR credentials ([dcr] client_id)".to_owned())
    })
}

/// A fresh initial access token, or the target's failure to issue one.
async fn obtain_token(
    target: &AsUnderTest,
    scope: Option<&str>,
    ua: &UserAgent,
    log: &Exchanges,
) -> Result<String, HarnessError> {
    let client = iat_client(target)?;
    let (form, basic) = iat_request(client, scope.unwrap_or(&client.scope));
    let response = token_request(ua, &target.token_endpoint, &form, basic.as_deref(), log).await?;
    match response.str("access_token") {
        Some(token) if response.status == 200 => Ok(token.to_owned()),
        _ => Err(HarnessError::Target(format!(
            "no initial access token: the token endpoint answered {} {}",
            response.status, response.body
        ))),
    }
}

/// Runs an `initial_access_token` step: the token endpoint's answer, captured like a token step.
pub async fn initial_access_token(
    step: &InitialAccessTokenStep,
    target: &AsUnderTest,
    bindings: &mut Bindings,
    ua: &UserAgent,
    log: &Exchanges,
) -> Result<StepResult, HarnessError> {
    let client = iat_client(target)?;
    let scope = match &step.scope {
        Some(scope) => bindings
            .fill(scope)
            .map_err(|e| HarnessError::Scenario(e.to_string()))?,
        None => client.scope.clone(),
    };
    let (form, basic) = iat_request(client, &scope);
    let response = token_request(ua, &target.token_endpoint, &form, basic.as_deref(), log).await?;
    let id = step.id.as_deref();
    capture_members(bindings, id, &response.body);
    if let Some(id) = id {
        bindings
            .captured
            .insert(format!("{id}.status"), response.status.to_string());
    }
    Ok(StepResult::Token {
        responses: vec![response],
    })
}

/// Runs an `edit_template` step: GET the template from the admin API, set the step's members,
/// PUT it back. The PUT's answer is the step's result.
pub async fn edit_template(
    step: &EditTemplateStep,
    target: &AsUnderTest,
    bindings: &mut Bindings,
    ua: &UserAgent,
    log: &Exchanges,
) -> Result<StepResult, HarnessError> {
    let admin = target.dcr.admin_token.as_ref().ok_or_else(|| {
        HarnessError::Scenario("edit_template needs the reference AS's admin token".to_owned())
    })?;
    let software_id = match &step.software_id {
        Some(s) => bindings
            .fill(s)
            .map_err(|e| HarnessError::Scenario(e.to_string()))?,
        None => target.dcr.template.clone().ok_or_else(|| {
            HarnessError::Scenario("edit_template: the target names no template".to_owned())
        })?,
    };
    let url = format!(
        "{}/admin/templates/{}",
        target.issuer.trim_end_matches('/'),
        url::form_urlencoded::byte_serialize(software_id.as_bytes()).collect::<String>()
    );
    let authorization = ("authorization".to_owned(), format!("Bearer {}", admin.0));
    let read = Request {
        method: reqwest::Method::GET,
        url: url.clone(),
        headers: vec![authorization.clone()],
        body: None,
    };
    let current = send(ua.http(), &read, log).await?;
    let Some(mut template) = current
        .json
        .as_object()
        .cloned()
        .filter(|_| current.status == 200)
    else {
        return Err(HarnessError::Target(format!(
            "GET {url} answered {}: {}",
            current.status, current.body
        )));
    };
    // The path names the template; the body holds the rest.
    template.remove("software_id");
    let set = serde_json::to_value(&step.set).map_err(|e| HarnessError::Scenario(e.to_string()))?;
    let set = bindings
        .fill_json(&set)
        .map_err(|e| HarnessError::Scenario(e.to_string()))?;
    let Some(set) = set.as_object() else {
        return Err(HarnessError::Scenario(
            "edit_template: set is not a table".to_owned(),
        ));
    };
    template.extend(set.clone());
    let write = Request {
        method: reqwest::Method::PUT,
        url,
        headers: vec![
            authorization,
            ("content-type".to_owned(), "application/json".to_owned()),
        ],
        body: Some(serde_json::Value::Object(template).to_string()),
    };
    let response = send(ua.http(), &write, log).await?;
    let id = step.id.as_deref();
    if let Some(id) = id {
        bindings
            .captured
            .insert(format!("{id}.status"), response.status.to_string());
    }
    Ok(StepResult::Http {
        status: response.status,
        headers: response.headers,
        json: response.json,
        body: response.body,
    })
}

/// Why `scenario` cannot run against `target`, if it cannot: it registers and the target offers
/// no registration endpoint, it obtains initial access tokens and the target names no DCR
/// credentials, it uses a template the target does not name, it manages registrations and the
/// target declares no RFC 7592 support, or it edits templates through the reference AS's admin
/// API.
pub fn applicability(scenario: &Scenario, target: &AsUnderTest) -> Option<String> {
    let steps = &scenario.file.steps;
    let strings: Vec<String> = steps.iter().flat_map(step_strings).collect();
    let mentions = |needle: &str| strings.iter().any(|s| s.contains(needle));
    let registers = steps.iter().any(|s| matches!(s, Step::Register(_)));
    if (registers || mentions("{registration_endpoint}")) && target.registration_endpoint.is_none()
    {
        return Some(
            "the target's metadata has no registration_endpoint (it offers no RFC 7591 registration)"
                .to_owned(),
        );
    }
    let obtains = steps.iter().any(|s| match s {
        Step::Register(r) => r.initial_access_token == OBTAIN,
        Step::InitialAccessToken(_) => true,
        _ => false,
    });
    if obtains && target.dcr.initial_access.is_none() {
        return Some(
            "the scenario obtains initial access tokens and the target file names no DCR \
             credentials ([dcr] client_id)"
                .to_owned(),
        );
    }
    let templated = steps
        .iter()
        .any(|s| matches!(s, Step::Register(r) if r.template));
    if (templated || mentions("{template}")) && target.dcr.template.is_none() {
        return Some(
            "the scenario registers from a template and the target file names none ([dcr] template)"
                .to_owned(),
        );
    }
    if !target.dcr.management
        && (mentions(".registration_client_uri}") || mentions(".registration_access_token}"))
    {
        return Some(
            "the scenario manages a registration (RFC 7592) and the target file says [dcr] \
             management = false"
                .to_owned(),
        );
    }
    let pushes = steps.iter().any(|s| matches!(s, Step::Par(_)));
    if (pushes || mentions("{par_endpoint}")) && target.par_endpoint.is_none() {
        return Some(
            "the target's metadata has no pushed_authorization_request_endpoint (it offers no \
             RFC 9126 pushed authorization requests)"
                .to_owned(),
        );
    }
    let edits = steps.iter().any(|s| matches!(s, Step::EditTemplate(_)));
    if edits && target.dcr.admin_token.is_none() {
        return Some(
            "the scenario changes a template through the reference AS's admin API, which a \
             third-party AS does not offer"
                .to_owned(),
        );
    }
    None
}

/// Every string of a TOML tree (values, not keys).
fn toml_strings(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| toml_strings(v, out)),
        toml::Value::Table(table) => table.values().for_each(|v| toml_strings(v, out)),
        _ => {}
    }
}

/// Every placeholder-bearing string of a step.
pub fn step_strings(step: &Step) -> Vec<String> {
    match step {
        Step::Authorize(s) => {
            let mut v = vec![s.client_id.clone(), s.redirect_uri.clone()];
            v.extend(s.scope.clone());
            v.extend(s.extra.values().cloned());
            // Checks at load time that `pushed` names a step that captures a request_uri.
            v.extend(
                s.pushed
                    .iter()
                    .map(|push| format!("{{{push}.request_uri}}")),
            );
            v
        }
        Step::Token(s) => {
            let mut v: Vec<String> = s.form.values().cloned().collect();
            if let Some(assertion) = &s.client_assertion {
                v.extend(assertion.strings());
            }
            if let Some(basic) = &s.client_secret_basic {
                v.extend([basic.client_id.clone(), basic.client_secret.clone()]);
            }
            v
        }
        Step::Http(s) => {
            let mut v = vec![s.url.clone()];
            v.extend(s.headers.values().cloned());
            v.extend(s.body.clone());
            if let Some(json) = &s.json {
                toml_strings(json, &mut v);
            }
            v
        }
        Step::Route(s) => vec![s.url.clone()],
        Step::Register(s) => {
            let mut v = Vec::new();
            if ![OBTAIN, NO_TOKEN].contains(&s.initial_access_token.as_str()) {
                v.push(s.initial_access_token.clone());
            }
            v.extend(s.raw.clone());
            v.extend(s.content_type.clone());
            if let Some(body) = &s.body {
                toml_strings(body, &mut v);
            }
            v
        }
        Step::InitialAccessToken(s) => s.scope.iter().cloned().collect(),
        Step::EditTemplate(s) => {
            let mut v: Vec<String> = s.software_id.iter().cloned().collect();
            toml_strings(&s.set, &mut v);
            v
        }
        Step::Device(s) => s.strings(),
        Step::Par(s) => s.strings(),
        Step::Discover(_) | Step::Wait(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(text: &str) -> RegisterStep {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn bindings() -> Bindings {
        let mut b = Bindings {
            callback: "http://127.0.0.1:49200".to_owned(),
            ..Bindings::default()
        };
        b.captured.insert("reg.client_id".into(), "abc".into());
        b
    }

    fn fixtures() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
    }

    #[test]
    fn a_register_step_defaults_to_an_obtained_token_and_json() {
        let s = step("body = { client_name = 'n', redirect_uris = ['{callback}/cb'] }");
        assert_eq!(s.initial_access_token, OBTAIN);
        assert_eq!(s.concurrent, 1);
        let (body, content_type) = registration_body(&s, &bindings(), &fixtures(), None).unwrap();
        assert_eq!(content_type, "application/json");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "client_name": "n", "redirect_uris": ["http://127.0.0.1:49200/cb"] })
        );
    }

    #[test]
    fn a_template_registration_names_the_target_template_and_body_members_override_the_file() {
        let s = step(
            "template = true\nfile = 'registrations/web-client.json'\nbody = { client_name = 'over' }",
        );
        let (body, _) = registration_body(&s, &bindings(), &fixtures(), Some("agent")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["software_id"], "agent");
        assert_eq!(json["client_name"], "over");
        assert!(json["redirect_uris"].is_array(), "{json}");
        assert!(registration_body(&s, &bindings(), &fixtures(), None).is_err());
    }

    #[test]
    fn raw_bodies_are_sent_as_written_and_exclude_json_members() {
        let s = step(
            "raw = 'client_id={reg.client_id}'\ncontent_type = 'application/x-www-form-urlencoded'",
        );
        let (body, content_type) = registration_body(&s, &bindings(), &fixtures(), None).unwrap();
        assert_eq!(body, "client_id=abc");
        assert_eq!(content_type, "application/x-www-form-urlencoded");
        let both = step("raw = 'x'\nbody = { a = 'b' }");
        assert!(registration_body(&both, &bindings(), &fixtures(), None).is_err());
    }

    #[test]
    fn responses_capture_top_level_strings_and_numbers_only() {
        let mut b = Bindings::default();
        let json = serde_json::json!({
            "client_id": "c1", "client_secret_expires_at": 0, "redirect_uris": ["x"],
            "nested": { "a": "b" }
        });
        capture_members(&mut b, Some("reg"), &json);
        assert_eq!(
            b.captured.get("reg.client_id").map(String::as_str),
            Some("c1")
        );
        assert_eq!(
            b.captured
                .get("reg.client_secret_expires_at")
                .map(String::as_str),
            Some("0")
        );
        assert!(!b.captured.contains_key("reg.redirect_uris"));
        assert!(!b.captured.contains_key("reg.nested"));
    }

    #[test]
    fn basic_credentials_are_form_urlencoded_before_base64() {
        let value = basic_authorization("id:1", "s e/c");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "id%3A1:s+e%2Fc");
    }

    fn scenario(steps: &str) -> Scenario {
        Scenario {
            id: "dcr/x".to_owned(),
            path: std::path::PathBuf::new(),
            file: toml::from_str(&format!("title = 't'\n{steps}\n[negative]\nreason = 'r'\n"))
                .unwrap_or_else(|e| panic!("{e}")),
        }
    }

    fn target(setup: DcrSetup, endpoint: bool) -> AsUnderTest {
        AsUnderTest {
            issuer: "https://as.test".to_owned(),
            authorization_endpoint: "https://as.test/authorize".to_owned(),
            token_endpoint: "https://as.test/token".to_owned(),
            registration_endpoint: endpoint.then(|| "https://as.test/register".to_owned()),
            par_endpoint: None,
            dcr: setup,
            trust: crate::agent::Trust::default(),
        }
    }

    #[test]
    fn registration_scenarios_need_what_the_target_offers() {
        let iat = IatClient {
            client_id: "c".into(),
            client_secret: Secret("s".into()),
            method: SecretMethod::ClientSecretBasic,
            scope: "dcr".into(),
        };
        let full = DcrSetup {
            initial_access: Some(iat),
            template: Some("agent".into()),
            admin_token: Some(Secret("a".into())),
            management: true,
        };
        let obtaining =
            scenario("[[step]]\nregister = { id = 'reg', body = { client_name = 'n' } }");
        let open = scenario("[[step]]\nregister = { initial_access_token = 'none', body = {} }");
        let templated =
            scenario("[[step]]\nregister = { template = true, initial_access_token = 'none' }");
        let managing = scenario(
            "[[step]]\nregister = { id = 'reg', initial_access_token = 'none' }\n\
             [[step]]\nhttp = { url = '{reg.registration_client_uri}' }",
        );
        let editing = scenario("[[step]]\nedit_template = { set = { scope = 'openid' } }");
        assert_eq!(applicability(&obtaining, &target(full.clone(), true)), None);
        assert_eq!(applicability(&editing, &target(full.clone(), true)), None);
        let why = |s: &Scenario, setup: DcrSetup, endpoint| {
            applicability(s, &target(setup, endpoint)).unwrap_or_default()
        };
        assert!(why(&open, full.clone(), false).contains("no registration_endpoint"));
        assert!(why(&obtaining, DcrSetup::default(), true).contains("[dcr] client_id"));
        assert_eq!(
            applicability(&open, &target(DcrSetup::default(), true)),
            None
        );
        assert!(why(&templated, DcrSetup::default(), true).contains("[dcr] template"));
        let unmanaged = DcrSetup {
            management: false,
            ..DcrSetup::default()
        };
        assert!(why(&managing, unmanaged, true).contains("management = false"));
        let third_party = DcrSetup {
            admin_token: None,
            ..full
        };
        assert!(why(&editing, third_party, true).contains("admin API"));
    }

    #[test]
    fn secrets_never_reach_the_evidence() {
        let shown = body_evidence(
            r#"{"client_id":"c","client_secret":"s3cret","registration_access_token":"t0k"}"#,
        );
        let text = shown.to_string();
        assert!(!text.contains("s3cret") && !text.contains("t0k"), "{text}");
        assert!(text.contains("\"c\""), "{text}");
        assert!(!format!("{:?}", Secret("hidden".into())).contains("hidden"));
    }
}
