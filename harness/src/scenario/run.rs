//! Running one scenario: mount its routes, walk its steps over the wire, keep the evidence.
//!
//! The runner reaches the AS only through HTTP. It records, per step, what came back (pages,
//! redirects, token answers); the metadata host's journal and the inbox are read afterwards, and
//! everything is merged by the process-wide sequence number into one ordered evidence log. A step
//! that cannot complete (a transport error, a missing captured value) stops the scenario: later
//! expectations that need its result are `untestable`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use metadata_host::MetadataHost;
use serde::Serialize;
use url::Url;

use super::Scenario;
use super::assertion::{ClientAssertion, JWT_BEARER, SigningContext};
use super::file::{AuthorizeStep, ConsentChoice, LoginChoice, PkceChoice, Step, TokenStep};
use super::registration::{self, DcrSetup, Exchanges};
use super::template::Bindings;
use crate::HarnessError;
use crate::agent::{
    self, AuthorizeRequest, Consent, Login, Outcome, Page, TokenResponse, Trust, UserAgent,
};
use crate::pkce::Pkce;

/// Where the AS under test lives and how its users sign in.
#[derive(Debug, Clone)]
pub struct AsUnderTest {
    /// Issuer identifier.
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// RFC 7591 registration endpoint, if the metadata names one.
    pub registration_endpoint: Option<String>,
    /// RFC 9126 pushed authorization request endpoint, if the metadata names one.
    pub par_endpoint: Option<String>,
    /// DCR credentials, template and management support (from the target file).
    pub dcr: DcrSetup,
    /// What a user agent trusts and how it resolves names.
    pub trust: Trust,
}

/// The signed-in user a scenario acts as.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// E-mail address (login codes go here).
    pub email: String,
    /// User name for password login.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Everything a scenario run needs from its surroundings.
#[derive(Debug, Clone, Copy)]
pub struct Surroundings<'a> {
    /// The metadata host.
    pub hosts: &'a MetadataHost,
    /// Base URL of the inbox API.
    pub inbox: &'a str,
    /// Fixture folder.
    pub fixtures: &'a Path,
    /// Where loopback redirects point.
    pub callback: &'a str,
}

/// The result of one step.
#[derive(Debug, Clone)]
pub enum StepResult {
    /// AS metadata fetched.
    Discover {
        /// HTTP status.
        status: u16,
        /// Body as JSON (`Null` if not JSON).
        json: serde_json::Value,
    },
    /// An authorization request walked to its end.
    Authorize {
        /// How it ended.
        outcome: Outcome,
        /// Every page seen.
        pages: Vec<Page>,
    },
    /// Token endpoint answers (several when sent concurrently).
    Token {
        /// The answers, in completion order.
        responses: Vec<TokenResponse>,
    },
    /// A raw HTTP exchange.
    Http {
        /// HTTP status.
        status: u16,
        /// Response headers (lower-case names), in order.
        headers: Vec<(String, String)>,
        /// Body as JSON (`Null` if not JSON).
        json: serde_json::Value,
        /// Body as text.
        body: String,
    },
    /// Registration answers (several when sent concurrently), in completion order.
    Register {
        /// The answers.
        responses: Vec<HttpResponse>,
    },
    /// A route was replaced or time passed.
    Done,
    /// The step could not complete.
    Failed {
        /// Why.
        reason: String,
    },
}

/// An HTTP answer as a registration step saw it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (lower-case names), in order.
    pub headers: Vec<(String, String)>,
    /// Body as JSON (`Null` if not JSON).
    pub json: serde_json::Value,
    /// Body as text.
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One executed step.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Position in the scenario (0-based).
    pub index: usize,
    /// Its id, if declared.
    pub id: Option<String>,
    /// Its kind.
    pub kind: &'static str,
    /// What happened.
    pub result: StepResult,
}

/// One entry of the merged evidence log.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Process-wide order.
    pub seq: u64,
    /// `harness`, `metadata-host`, `mail`, or `metrics` (the target's own counters, never judged).
    pub source: &'static str,
    /// The entry, secrets redacted.
    pub detail: serde_json::Value,
}

/// Everything a scenario run produced, before judging.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// Step results in order (steps after a failed one are absent).
    pub steps: Vec<StepRecord>,
    /// The bindings at the end (with captured values).
    pub bindings: Bindings,
    /// Requests to this scenario's virtual hosts.
    pub host_requests: Vec<mock_kit::JournalEntry>,
    /// Messages to this scenario's user.
    pub mail: Vec<agent::MailMessage>,
    /// The merged, ordered log.
    pub log: Vec<Event>,
}

/// Runs `scenario`'s routes and steps against `target` as `user`.
pub async fn execute(
    scenario: &Scenario,
    target: &AsUnderTest,
    user: &TestUser,
    around: Surroundings<'_>,
) -> Result<Evidence, HarnessError> {
    let mut bindings = Bindings {
        ns: scenario.namespace(),
        hosts_port: around.hosts.port(),
        issuer: target.issuer.clone(),
        callback: around.callback.to_owned(),
        captured: BTreeMap::new(),
    };
    registration::bind_target(&mut bindings, target);
    // The scenario's hosts resolve to the metadata host for the user agent too (raw http steps).
    let mut trust = target.trust.clone();
    let ns_suffix = format!(".{}", bindings.ns);
    // Requests count as this scenario's when they go to its namespace or to a host its routes name
    // outside it (such as `localhost` in SSRF scenarios).
    let mut own_hosts: Vec<String> = Vec::new();
    for (url, value) in &scenario.file.routes {
        let url = bindings
            .fill(url)
            .map_err(|e| HarnessError::Scenario(e.to_string()))?;
        mount(around, &bindings, &url, value)?;
        if let Some(host) = Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
        {
            trust.resolve.push((host.clone(), around.hosts.addr()));
            own_hosts.push(host);
        }
    }
    let mut ua = UserAgent::new(&trust)?;
    let exchanges = Exchanges::default();
    let mut records = Vec::new();
    for (index, step) in scenario.file.steps.iter().enumerate() {
        let context = StepContext {
            target,
            user,
            around,
            trust: &trust,
            log: &exchanges,
        };
        let result = match run_step(step, context, &mut bindings, &mut ua).await {
            Ok(result) => result,
            Err(error) => StepResult::Failed {
                reason: error.to_string(),
            },
        };
        let failed = matches!(result, StepResult::Failed { .. });
        records.push(StepRecord {
            index,
            id: step.id().map(str::to_owned),
            kind: step.kind(),
            result,
        });
        if failed {
            break;
        }
    }

    let host_requests: Vec<_> = around
        .hosts
        .journal()
        .entries()
        .into_iter()
        .filter(|e| e.host.ends_with(&ns_suffix) || own_hosts.contains(&e.host))
        .collect();
    let mail = agent::Inbox::new(ua.http().clone(), around.inbox)
        .messages_for(&user.email)
        .await
        .unwrap_or_default();
    let mut log: Vec<Event> = ua
        .history()
        .into_iter()
        .map(|x| Event {
            seq: x.seq,
            source: "harness",
            detail: json(&x),
        })
        .collect();
    log.extend(exchanges.events());
    log.extend(host_requests.iter().map(|e| Event {
        seq: e.seq,
        source: "metadata-host",
        detail: json(e),
    }));
    log.extend(mail.iter().map(|m| Event {
        seq: m.seq,
        source: "mail",
        detail: serde_json::json!({ "to": m.rcpt_to, "subject": m.subject, "body": "[redacted: holds a login code]" }),
    }));
    log.sort_by_key(|e| e.seq);
    Ok(Evidence {
        steps: records,
        bindings,
        host_requests,
        mail,
        log,
    })
}

fn json(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn mount(
    around: Surroundings<'_>,
    bindings: &Bindings,
    url: &str,
    value: &toml::Value,
) -> Result<(), HarnessError> {
    let parsed =
        Url::parse(url).map_err(|e| HarnessError::Scenario(format!("route URL {url}: {e}")))?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let route = super::build_route(value, bindings, around.fixtures)
        .map_err(|e| HarnessError::Scenario(format!("route {url}: {e}")))?;
    around.hosts.mount(&host, parsed.path(), route);
    Ok(())
}

/// `text` with its placeholders filled.
pub(super) fn fill(bindings: &Bindings, text: &str) -> Result<String, HarnessError> {
    bindings
        .fill(text)
        .map_err(|e| HarnessError::Scenario(e.to_string()))
}

/// Finishes the form of a token-endpoint-style request (token, device authorization, PAR): the
/// step's client assertion, signed for `context`, goes in with the jwt-bearer type, then the
/// step's own `form` entries (an empty value removes a field). Returns the signed assertion.
pub(super) fn finish_form(
    form: &mut BTreeMap<String, String>,
    assertion: Option<&ClientAssertion>,
    context: SigningContext<'_>,
    overrides: &BTreeMap<String, String>,
) -> Result<Option<String>, HarnessError> {
    let bindings = context.bindings;
    let signed = match assertion {
        Some(assertion) => {
            let signed = assertion.sign(context).map_err(HarnessError::Scenario)?;
            form.insert("client_assertion_type".into(), JWT_BEARER.into());
            form.insert("client_assertion".into(), signed.clone());
            Some(signed)
        }
        None => None,
    };
    for (name, value) in overrides {
        if value.is_empty() {
            form.remove(name);
        } else {
            form.insert(name.clone(), fill(bindings, value)?);
        }
    }
    Ok(signed)
}

/// What every step may use besides the bindings and the user agent.
#[derive(Clone, Copy)]
struct StepContext<'a> {
    target: &'a AsUnderTest,
    user: &'a TestUser,
    around: Surroundings<'a>,
    trust: &'a Trust,
    log: &'a Exchanges,
}

async fn run_step(
    step: &Step,
    context: StepContext<'_>,
    bindings: &mut Bindings,
    ua: &mut UserAgent,
) -> Result<StepResult, HarnessError> {
    let StepContext {
        target,
        user,
        around,
        trust,
        log,
    } = context;
    match step {
        Step::Discover(s) => {
            let url = crate::target::metadata_url(&target.issuer)?;
            let response = ua.http().get(url).send().await?;
            let status = response.status().as_u16();
            let json = response.json().await.unwrap_or(serde_json::Value::Null);
            capture(bindings, s.id.as_deref(), "status", &status.to_string());
            Ok(StepResult::Discover { status, json })
        }
        Step::Authorize(s) => {
            if s.fresh_browser {
                *ua = UserAgent::new(trust)?;
            }
            authorize(s, target, user, around, bindings, ua).await
        }
        Step::Token(s) => token(s, target, around, bindings, ua, log).await,
        Step::Http(s) => {
            let url = fill(bindings, &s.url)?;
            let method = reqwest::Method::from_bytes(s.method.as_bytes())
                .map_err(|e| HarnessError::Scenario(format!("method {}: {e}", s.method)))?;
            let mut headers = Vec::new();
            for (name, value) in &s.headers {
                headers.push((name.clone(), fill(bindings, value)?));
            }
            let mut body = s.body.as_deref().map(|b| fill(bindings, b)).transpose()?;
            if let Some(table) = &s.json {
                let json = serde_json::to_value(table)
                    .map_err(|e| HarnessError::Scenario(format!("http json: {e}")))?;
                let filled = bindings
                    .fill_json(&json)
                    .map_err(|e| HarnessError::Scenario(e.to_string()))?;
                body = Some(filled.to_string());
                if !headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                {
                    headers.push(("content-type".to_owned(), "application/json".to_owned()));
                }
            }
            let request = registration::Request {
                method,
                url,
                headers,
                body,
            };
            let response = registration::send(ua.http(), &request, log).await?;
            // Every member is captured: a registration read or update hands out new values.
            registration::capture_members(bindings, s.id.as_deref(), &response.json);
            capture(
                bindings,
                s.id.as_deref(),
                "status",
                &response.status.to_string(),
            );
            Ok(StepResult::Http {
                status: response.status,
                headers: response.headers,
                json: response.json,
                body: response.body,
            })
        }
        Step::Register(s) => {
            registration::register(s, target, bindings, around.fixtures, ua, log).await
        }
        Step::InitialAccessToken(s) => {
            registration::initial_access_token(s, target, bindings, ua, log).await
        }
        Step::EditTemplate(s) => registration::edit_template(s, target, bindings, ua, log).await,
        Step::Device(s) => super::device::run(s, target, user, around, bindings, ua, log).await,
        Step::Par(s) => super::par::run(s, target, around, bindings, ua, log).await,
        Step::Route(s) => {
            let url = fill(bindings, &s.url)?;
            mount(around, bindings, &url, &s.reply)?;
            Ok(StepResult::Done)
        }
        Step::Wait(s) => {
            tokio::time::sleep(Duration::from_millis(s.ms)).await;
            Ok(StepResult::Done)
        }
    }
}

fn capture(bindings: &mut Bindings, id: Option<&str>, name: &str, value: &str) {
    if let Some(id) = id {
        bindings
            .captured
            .insert(format!("{id}.{name}"), value.to_owned());
    }
}

async fn authorize(
    s: &AuthorizeStep,
    target: &AsUnderTest,
    user: &TestUser,
    around: Surroundings<'_>,
    bindings: &mut Bindings,
    ua: &UserAgent,
) -> Result<StepResult, HarnessError> {
    let client_id = fill(bindings, &s.client_id)?;
    let redirect_uri = fill(bindings, &s.redirect_uri)?;
    let (url, state, code_verifier) = if let Some(push) = &s.pushed {
        let mut extra = Vec::new();
        for (name, value) in &s.extra {
            extra.push((name.clone(), fill(bindings, value)?));
        }
        let pushed = super::par::pushed_authorization(push, &client_id, &extra, target, bindings)?;
        (pushed.url, pushed.state, pushed.code_verifier)
    } else {
        let mut request = AuthorizeRequest::new(&client_id, &redirect_uri);
        request.scope = s.scope.as_deref().map(|v| fill(bindings, v)).transpose()?;
        let pkce = Pkce::generate();
        match s.pkce {
            PkceChoice::S256 => request.pkce = Some(pkce.clone()),
            PkceChoice::None => request.pkce = None,
            PkceChoice::Plain => {
                request.pkce = None;
                request
                    .extra
                    .push(("code_challenge".to_owned(), pkce.verifier.clone()));
                request
                    .extra
                    .push(("code_challenge_method".to_owned(), "plain".to_owned()));
            }
        }
        for (name, value) in &s.extra {
            request.extra.push((name.clone(), fill(bindings, value)?));
        }
        let mut url = request.url(&target.authorization_endpoint)?;
        if let Some(response_type) = &s.response_type {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    if k == "response_type" {
                        (k.into_owned(), response_type.clone())
                    } else {
                        (k.into_owned(), v.into_owned())
                    }
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(&pairs);
        }
        (url, request.state, pkce.verifier)
    };
    let login = match s.login {
        LoginChoice::Email => Login::EmailCode {
            email: user.email.clone(),
            inbox: around.inbox.to_owned(),
        },
        LoginChoice::Password => Login::Password {
            username: user.username.clone(),
            password: user.password.clone(),
        },
    };
    let consent = match s.consent {
        ConsentChoice::Allow => Consent::Allow,
        ConsentChoice::Deny => Consent::Deny,
    };
    let walk = ua.authorize(&url, &login, consent).await?;
    let id = s.id.as_deref();
    capture(bindings, id, "client_id", &client_id);
    capture(bindings, id, "redirect_uri", &redirect_uri);
    capture(bindings, id, "state", &state);
    capture(bindings, id, "code_verifier", &code_verifier);
    if let Outcome::Redirected { params, .. } = &walk.outcome {
        for name in ["code", "iss", "error"] {
            if let Some(value) = params.get(name) {
                capture(bindings, id, name, value);
            }
        }
    }
    Ok(StepResult::Authorize {
        outcome: walk.outcome,
        pages: walk.pages,
    })
}

async fn token(
    s: &TokenStep,
    target: &AsUnderTest,
    around: Surroundings<'_>,
    bindings: &mut Bindings,
    ua: &UserAgent,
    log: &Exchanges,
) -> Result<StepResult, HarnessError> {
    let mut form: BTreeMap<String, String> = BTreeMap::new();
    let captured = |bindings: &Bindings, step: &str, name: &str| {
        bindings
            .captured
            .get(&format!("{step}.{name}"))
            .cloned()
            .ok_or_else(|| HarnessError::Scenario(format!("step {step:?} captured no {name}")))
    };
    if let Some(flow) = &s.exchange {
        form.insert("grant_type".into(), "authorization_code".into());
        form.insert("code".into(), captured(bindings, flow, "code")?);
        form.insert(
            "redirect_uri".into(),
            captured(bindings, flow, "redirect_uri")?,
        );
        form.insert("client_id".into(), captured(bindings, flow, "client_id")?);
        form.insert(
            "code_verifier".into(),
            captured(bindings, flow, "code_verifier")?,
        );
    }
    if let Some(previous) = &s.refresh {
        form.insert("grant_type".into(), "refresh_token".into());
        form.insert(
            "refresh_token".into(),
            captured(bindings, previous, "refresh_token")?,
        );
        if let Ok(client_id) = captured(bindings, previous, "client_id") {
            form.insert("client_id".into(), client_id);
        }
    }
    // iss and sub default to the client_id the request ends up sending, or, when the form removes
    // it, the one it would have sent.
    let client_id = match s.form.get("client_id").filter(|v| !v.is_empty()) {
        Some(value) => Some(fill(bindings, value)?),
        None => form.get("client_id").cloned(),
    };
    let signed = finish_form(
        &mut form,
        s.client_assertion.as_deref(),
        SigningContext {
            fixtures: around.fixtures,
            bindings,
            client_id: client_id.as_deref(),
            token_endpoint: &target.token_endpoint,
        },
        &s.form,
    )?;
    if let Some(signed) = signed {
        capture(bindings, s.id.as_deref(), "client_assertion", &signed);
    }
    let basic = match &s.client_secret_basic {
        Some(b) => Some(registration::basic_authorization(
            &fill(bindings, &b.client_id)?,
            &fill(bindings, &b.client_secret)?,
        )),
        None => None,
    };
    let owned: Vec<(String, String)> = form.clone().into_iter().collect();
    let responses =
        send_tokens(ua, &target.token_endpoint, owned, basic, s.concurrent, log).await?;
    let id = s.id.as_deref();
    if let Some(first) = responses
        .iter()
        .find(|r| r.status == 200)
        .or(responses.first())
    {
        capture(bindings, id, "status", &first.status.to_string());
        for name in ["access_token", "refresh_token", "error"] {
            if let Some(value) = first.str(name) {
                capture(bindings, id, name, value);
            }
        }
        if let Some(client_id) = form.get("client_id") {
            capture(bindings, id, "client_id", client_id);
        }
    }
    Ok(StepResult::Token { responses })
}

/// Sends one token request, or `concurrent` identical ones at once; answers in completion order.
async fn send_tokens(
    ua: &UserAgent,
    endpoint: &str,
    owned: Vec<(String, String)>,
    basic: Option<String>,
    concurrent: u16,
    log: &Exchanges,
) -> Result<Vec<TokenResponse>, HarnessError> {
    let mut responses = Vec::new();
    if concurrent <= 1 {
        responses
            .push(registration::token_request(ua, endpoint, &owned, basic.as_deref(), log).await?);
    } else {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrent {
            let (ua, log) = (ua.clone(), log.clone());
            let endpoint = endpoint.to_owned();
            let (owned, basic) = (owned.clone(), basic.clone());
            tasks.spawn(async move {
                registration::token_request(&ua, &endpoint, &owned, basic.as_deref(), &log).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            responses.push(done.map_err(|e| HarnessError::Scenario(format!("token task: {e}")))??);
        }
    }
    Ok(responses)
}
