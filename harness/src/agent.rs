//! A scripted user agent: the browser and the user in one, driven over the real wire.
//!
//! It walks an authorization code flow the way a person would: it follows the AS's redirects,
//! fills in the login form (reading the mailed one-time code from the mock-mail inbox API, or
//! typing a password), answers the consent page, and stops at the first redirect that leaves the
//! AS, which is the response to the client. It knows only the field names a user types (`email`,
//! `code`, `username`, `password`, the consent `decision`); everything else on a form is sent back
//! as the page gave it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::redirect::Policy;
use serde::Deserialize;
use url::Url;

use crate::HarnessError;
use crate::forms::{self, Form};
use crate::pkce::Pkce;

/// Upper bound on pages visited in one flow; a loop between pages is a target failure, not a hang.
const MAX_STEPS: usize = 12;

/// How long to wait for a login code to arrive by mail.
const MAIL_WAIT: Duration = Duration::from_secs(10);

/// What the user agent trusts and how it resolves the test network's names.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// PEM certificates to trust (the test CA); empty means the platform roots.
    pub ca_pem: Vec<String>,
    /// Host names routed to fixed addresses, like `curl --resolve`.
    pub resolve: Vec<(String, SocketAddr)>,
}

impl Trust {
    /// `builder` trusting these certificates (besides the platform roots) and routing these
    /// names.
    pub fn apply(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, HarnessError> {
        if !self.ca_pem.is_empty() {
            let certs = self
                .ca_pem
                .iter()
                .map(|pem| reqwest::Certificate::from_pem(pem.as_bytes()))
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.tls_certs_merge(certs);
        }
        for (name, addr) in &self.resolve {
            builder = builder.resolve(name, *addr);
        }
        Ok(builder)
    }
}

/// A response as the user agent saw it.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL that was requested.
    pub url: Url,
    /// HTTP status.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body as text (lossy).
    pub body: String,
}

impl Page {
    /// Whether this is a redirect with a `Location`.
    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status) && self.location.is_some()
    }

    /// The redirect target resolved against the page URL.
    pub fn redirect_target(&self) -> Option<Url> {
        self.location.as_deref().and_then(|l| self.url.join(l).ok())
    }

    /// The first form with the given `id`.
    pub fn form(&self, id: &str) -> Option<Form> {
        forms::forms(&self.body)
            .into_iter()
            .find(|f| f.id.as_deref() == Some(id))
    }
}

/// How the user logs in.
#[derive(Debug, Clone)]
pub enum Login {
    /// Ask for a one-time code by e-mail and read it from the inbox API at `inbox` (mock-mail).
    EmailCode {
        /// The user's address.
        email: String,
        /// Base URL of the inbox HTTP API.
        inbox: String,
    },
    /// Username and password.
    Password {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
}

/// The user's answer on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Press "allow".
    Allow,
    /// Press "deny".
    Deny,
}

/// Where an authorization request ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The AS redirected away from itself (normally to the client's redirect_uri).
    Redirected {
        /// The full redirect target.
        location: Url,
        /// Its query parameters.
        params: BTreeMap<String, String>,
    },
    /// The AS answered with an error status and showed a page.
    ErrorPage {
        /// HTTP status (4xx or 5xx).
        status: u16,
        /// The page body.
        body: String,
    },
    /// A page the user agent could not act on (no known form, a loop, an unexpected status).
    Stuck {
        /// The last page's URL.
        url: String,
        /// HTTP status of the last page.
        status: u16,
        /// Why the user agent stopped.
        reason: String,
    },
}

/// One OAuth token endpoint answer.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    /// HTTP status.
    pub status: u16,
    /// The JSON body (or `Null` if the body was not JSON).
    pub body: serde_json::Value,
    /// The `Cache-Control` header.
    pub cache_control: Option<String>,
}

impl TokenResponse {
    /// A string member of the body.
    pub fn str(&self, member: &str) -> Option<&str> {
        self.body.get(member).and_then(serde_json::Value::as_str)
    }
}

/// One HTTP exchange the user agent made, for the evidence log (secrets redacted).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exchange {
    /// Position in the process-wide order shared with the mock parties' journals.
    pub seq: u64,
    /// Request method.
    pub method: String,
    /// Request URL, with secret query parameters redacted.
    pub url: String,
    /// Form fields sent, secrets redacted.
    pub form: Vec<(String, String)>,
    /// Response status.
    pub status: u16,
    /// Response `Location`, secrets redacted.
    pub location: Option<String>,
}

/// Parameters whose values never appear in evidence.
const SECRET_NAMES: &[&str] = &[
    "code",
    "code_verifier",
    "refresh_token",
    "access_token",
    "password",
    "client_secret",
    "client_assertion",
    "csrf",
];

/// `value` unless `name` is a secret.
fn redact_value(name: &str, value: &str) -> String {
    if SECRET_NAMES.contains(&name) && !value.is_empty() {
        "[redacted]".to_owned()
    } else {
        value.to_owned()
    }
}

/// A URL with secret query parameters redacted.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return url.to_owned();
    };
    if parsed.query().is_none() {
        return url.to_owned();
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.to_string(), redact_value(&k, &v)))
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(&pairs);
    parsed.to_string()
}

/// The browser-and-user.
#[derive(Debug, Clone)]
pub struct UserAgent {
    http: reqwest::Client,
    history: std::sync::Arc<std::sync::Mutex<Vec<Exchange>>>,
}

/// Where an authorization request ended, with every page seen on the way.
#[derive(Debug, Clone)]
pub struct Walk {
    /// How it ended.
    pub outcome: Outcome,
    /// Every response, in order (login, consent and error pages included).
    pub pages: Vec<Page>,
}

impl UserAgent {
    /// A user agent with its own cookie jar, trusting `trust`, following no redirects by itself.
    pub fn new(trust: &Trust) -> Result<Self, HarnessError> {
        let builder = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .user_agent("cimd-conformance-user-agent");
        let builder = trust.apply(builder)?;
        Ok(Self {
            http: builder.build()?,
            history: std::sync::Arc::default(),
        })
    }

    /// The exchanges made so far, oldest first.
    pub fn history(&self) -> Vec<Exchange> {
        self.history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn record(
        &self,
        method: &str,
        url: &str,
        form: &[(String, String)],
        status: u16,
        location: Option<&str>,
    ) {
        let exchange = Exchange {
            seq: mock_kit::journal::next_sequence(),
            method: method.to_owned(),
            url: redact_url(url),
            form: form
                .iter()
                .map(|(k, v)| (k.clone(), redact_value(k, v)))
                .collect(),
            status,
            location: location.map(redact_url),
        };
        self.history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(exchange);
    }

    /// The underlying HTTP client (cookies included), for raw requests.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// GET `url`.
    pub async fn get(&self, url: &Url) -> Result<Page, HarnessError> {
        let response = self.http.get(url.clone()).send().await?;
        let page = page(url.clone(), response).await?;
        self.record(
            "GET",
            url.as_str(),
            &[],
            page.status,
            page.location.as_deref(),
        );
        Ok(page)
    }

    /// Submits `form` (found on `on`) with the user's `input` and optional button.
    pub async fn submit(
        &self,
        on: &Page,
        form: &Form,
        input: &[(&str, &str)],
        button: Option<(&str, &str)>,
    ) -> Result<Page, HarnessError> {
        let target = on.url.join(&form.action)?;
        let fields = form.submission(input, button);
        let (method, response) = if form.method == "post" {
            (
                "POST",
                self.http.post(target.clone()).form(&fields).send().await?,
            )
        } else {
            let mut get_url = target.clone();
            get_url.query_pairs_mut().extend_pairs(&fields);
            ("GET", self.http.get(get_url).send().await?)
        };
        let page = page(target, response).await?;
        self.record(
            method,
            page.url.as_str(),
            &fields,
            page.status,
            page.location.as_deref(),
        );
        Ok(page)
    }

    /// Sends a token request (form-encoded) and reads the JSON answer.
    pub async fn token(
        &self,
        token_endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, HarnessError> {
        let response = self.http.post(token_endpoint).form(form).send().await?;
        let status = response.status().as_u16();
        let cache_control = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        let sent: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.record("POST", token_endpoint, &sent, status, None);
        Ok(TokenResponse {
            status,
            body,
            cache_control,
        })
    }

    /// Walks an authorization request from `authorize_url` to wherever it ends.
    ///
    /// Redirects inside the AS's origin are followed; the first one that leaves it ends the walk.
    pub async fn authorize(
        &self,
        authorize_url: &Url,
        login: &Login,
        consent: Consent,
    ) -> Result<Walk, HarnessError> {
        let first = self.get(authorize_url).await?;
        self.walk_from(first, Vec::new(), login, consent).await
    }

    /// Walks on from `current`, a page of the AS the browser is on, as [`UserAgent::authorize`]
    /// does; `pages` are those seen before it (they stay first in the walk).
    pub async fn walk_from(
        &self,
        mut current: Page,
        mut pages: Vec<Page>,
        login: &Login,
        consent: Consent,
    ) -> Result<Walk, HarnessError> {
        let as_origin = current.url.origin();
        let outcome = loop {
            pages.push(current.clone());
            if pages.len() > MAX_STEPS {
                break stuck(&current, "too many steps: the pages loop");
            }
            if current.is_redirect() {
                let Some(target) = current.redirect_target() else {
                    break stuck(&current, "unparseable Location header");
                };
                if target.origin() != as_origin {
                    let params = target.query_pairs().into_owned().collect();
                    break Outcome::Redirected {
                        location: target,
                        params,
                    };
                }
                current = self.get(&target).await?;
                continue;
            }
            if current.status >= 400 {
                break Outcome::ErrorPage {
                    status: current.status,
                    body: current.body.clone(),
                };
            }
            if current.status != 200 {
                break stuck(&current, "unexpected status");
            }
            match self.act_on(&current, login, consent).await? {
                Some(next) => current = next,
                None => {
                    break stuck(
                        &current,
                        "no login or consent form this user agent can fill in",
                    );
                }
            }
        };
        Ok(Walk { outcome, pages })
    }

    /// Fills in the one form on `page` the user would act on, if any.
    async fn act_on(
        &self,
        page: &Page,
        login: &Login,
        consent: Consent,
    ) -> Result<Option<Page>, HarnessError> {
        if let Some(form) = page.form("consent-form") {
            let decision = match consent {
                Consent::Allow => "allow",
                Consent::Deny => "deny",
            };
            return Ok(Some(
                self.submit(page, &form, &[], Some(("decision", decision)))
                    .await?,
            ));
        }
        match login {
            Login::EmailCode { email, inbox } => {
                if let Some(form) = page.form("code-form") {
                    let code = self.mail_code(inbox, email, page).await?;
                    return Ok(Some(
                        self.submit(page, &form, &[("code", &code)], None).await?,
                    ));
                }
                if let Some(form) = page.form("email-form") {
                    return Ok(Some(
                        self.submit(page, &form, &[("email", email)], None).await?,
                    ));
                }
            }
            Login::Password { username, password } => {
                if let Some(form) = page.form("password-form") {
                    let input = [
                        ("username", username.as_str()),
                        ("password", password.as_str()),
                    ];
                    return Ok(Some(self.submit(page, &form, &input, None).await?));
                }
            }
        }
        Ok(None)
    }

    /// Waits for the newest login code mailed to `email` and returns its six digits.
    async fn mail_code(
        &self,
        inbox: &str,
        email: &str,
        page: &Page,
    ) -> Result<String, HarnessError> {
        let inbox = Inbox::new(self.http.clone(), inbox);
        // The code was mailed before the code form was shown: take the newest message.
        let message = inbox.newest_for(email, MAIL_WAIT).await?.ok_or_else(|| {
            HarnessError::Target(format!("no login code reached {email} (page {})", page.url))
        })?;
        six_digit_code(&message.body).ok_or_else(|| {
            HarnessError::Target(format!(
                "the mail to {email} holds no six-digit code: {:?}",
                message.body
            ))
        })
    }
}

/// A message as the mock-mail inbox API lists it (only the members the harness reads).
#[derive(Debug, Clone, Deserialize)]
pub struct MailMessage {
    /// Process-wide order (shared with request journals).
    pub seq: u64,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// Subject header.
    pub subject: String,
    /// Decoded text body.
    pub body: String,
}

/// The mock-mail inbox, read over its HTTP API as a third-party run would.
#[derive(Debug, Clone)]
pub struct Inbox {
    http: reqwest::Client,
    base: String,
}

impl Inbox {
    /// The inbox API at `base` (e.g. `http://127.0.0.1:PORT`).
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// All messages to `recipient`, oldest first.
    pub async fn messages_for(&self, recipient: &str) -> Result<Vec<MailMessage>, HarnessError> {
        let response = self
            .http
            .get(format!("{}/api/messages", self.base))
            .query(&[("to", recipient)])
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// The newest message to `recipient`, waiting up to `wait` for one to exist.
    pub async fn newest_for(
        &self,
        recipient: &str,
        wait: Duration,
    ) -> Result<Option<MailMessage>, HarnessError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(newest) = self
                .messages_for(recipient)
                .await?
                .into_iter()
                .max_by_key(|m| m.seq)
            {
                return Ok(Some(newest));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The visible text of an HTML page, whitespace folded, at most `max` characters.
pub fn page_text(html: &str, max: usize) -> String {
    // Style and script contents are not visible text.
    let mut visible = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<style").or_else(|| rest.find("<script")) {
        visible.push_str(&rest[..start]);
        let closing = if rest[start..].starts_with("<style") {
            "</style>"
        } else {
            "</script>"
        };
        rest = rest[start..]
            .find(closing)
            .map_or("", |end| &rest[start + end + closing.len()..]);
    }
    visible.push_str(rest);
    let mut text = String::new();
    let mut in_tag = false;
    for c in visible.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    folded.chars().take(max).collect()
}

/// The only run of exactly six ASCII digits in `text`.
pub fn six_digit_code(text: &str) -> Option<String> {
    let mut found = None;
    for run in text.split(|c: char| !c.is_ascii_digit()) {
        if run.len() == 6 {
            if found.is_some() {
                return None;
            }
            found = Some(run.to_owned());
        }
    }
    found
}

/// An authorization request as a client builds it.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The client's identifier (for CIMD, the document URL).
    pub client_id: String,
    /// The redirect URI to send.
    pub redirect_uri: String,
    /// Requested scope, if any.
    pub scope: Option<String>,
    /// The `state` value.
    pub state: String,
    /// PKCE pair; `None` sends no challenge.
    pub pkce: Option<Pkce>,
    /// Extra or overriding query parameters.
    pub extra: Vec<(String, String)>,
}

impl AuthorizeRequest {
    /// A typical public-client request: response_type=code, S256 PKCE and a random state.
    pub fn new(client_id: &str, redirect_uri: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scope: None,
            state: crate::pkce::random_token(),
            pkce: Some(Pkce::generate()),
            extra: Vec::new(),
        }
    }

    /// The full URL at `authorization_endpoint`.
    pub fn url(&self, authorization_endpoint: &str) -> Result<Url, HarnessError> {
        let mut url = Url::parse(authorization_endpoint)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", &self.client_id);
            q.append_pair("redirect_uri", &self.redirect_uri);
            q.append_pair("state", &self.state);
            if let Some(scope) = &self.scope {
                q.append_pair("scope", scope);
            }
            if let Some(pkce) = &self.pkce {
                q.append_pair("code_challenge", &pkce.challenge);
                q.append_pair("code_challenge_method", "S256");
            }
            for (k, v) in &self.extra {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }
}

async fn page(url: Url, response: reqwest::Response) -> Result<Page, HarnessError> {
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let location = header(reqwest::header::LOCATION);
    let content_type = header(reqwest::header::CONTENT_TYPE);
    let body = String::from_utf8_lossy(&response.bytes().await?).into_owned();
    Ok(Page {
        url,
        status,
        location,
        content_type,
        body,
    })
}

fn stuck(page: &Page, reason: &str) -> Outcome {
    Outcome::Stuck {
        url: page.url.to_string(),
        status: page.status,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::six_digit_code;

    #[test]
    fn finds_exactly_one_six_digit_run() {
        assert_eq!(
            six_digit_code("Your code is 042137.\nIt expires in 10 minutes.").as_deref(),
            Some("042137")
        );
        assert_eq!(six_digit_code("no code"), None);
        assert_eq!(six_digit_code("1234567 is seven digits"), None);
        assert_eq!(six_digit_code("111111 and 222222"), None);
    }
}
