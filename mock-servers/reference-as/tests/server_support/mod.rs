//! Shared fixture for the server tests: a test CA, an HTTPS metadata host serving client
//! documents, a mail sink, the reference AS wired to both, and a browser-like HTTP client (cookies
//! on, redirects off) that walks the sign-in and consent pages the way a script or person would.

#![allow(clippy::unwrap_used, dead_code, clippy::missing_panics_doc)]

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use metadata_host::{MetadataHost, Route, TestCa};
use mock_mail::MailServer;
use reference_as::{Config, RunningAs};
use reqwest::header::LOCATION;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// The AS's host name when it serves HTTPS.
pub const AS_HOST: &str = "as.example";

/// The host serving client metadata documents.
pub const CLIENT_HOST: &str = "www.client.example";

/// The demo user's address and credentials.
pub const EMAIL: &str = "alice@example.test";
pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "alice-password";

/// A PKCE verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub fn new() -> Self {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        Self::from_verifier(&URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The pair for a given verifier.
    pub fn from_verifier(verifier: &str) -> Self {
        let challenge =
            URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
        Self {
            verifier: verifier.to_owned(),
            challenge,
        }
    }
}

/// Everything one test needs, torn down on drop.
pub struct World {
    pub ca: Arc<TestCa>,
    pub host: MetadataHost,
    pub mail: MailServer,
    pub server: RunningAs,
    pub browser: reqwest::Client,
    /// A cookie-less client for the token endpoint, kept so requests reuse its connection.
    pub api: reqwest::Client,
}

/// A client document mounted on the metadata host.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub redirect_uri: String,
}

impl World {
    /// Starts everything with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts everything; `adjust` edits the AS configuration after the fixture's own settings.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_full(adjust, false).await
    }

    /// Starts everything with the AS on HTTPS as `as.example` (certificate from the test CA).
    pub async fn start_tls() -> Self {
        Self::start_full(|c| AS_HOST.clone_into(&mut c.public_host), true).await
    }

    async fn start_full(adjust: impl FnOnce(&mut Config), tls: bool) -> Self {
        // Server logs show up with a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("reference_as=debug")
            .try_init();
        let ca = TestCa::generate("server tests CA").unwrap();
        let host = MetadataHost::spawn(ca.clone()).await.unwrap();
        let mail = MailServer::spawn(mock_mail::MailConfig::default())
            .await
            .unwrap();
        let mut config = Config::default();
        config.smtp.host = mail.smtp_addr().ip().to_string();
        config.smtp.port = mail.smtp_addr().port();
        config.network.trusted_ca_pem.push(ca.cert_pem().to_owned());
        config
            .network
            .resolve
            .insert(CLIENT_HOST.to_owned(), [127, 0, 0, 1].into());
        config
            .network
            .resolve
            .insert("*.client.example".to_owned(), [127, 0, 0, 1].into());
        adjust(&mut config);
        let server = reference_as::spawn(config, tls.then(|| ca.server_config()))
            .await
            .unwrap();
        let browser = if tls {
            browser_builder()
                .tls_certs_only([reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap()])
                .resolve(AS_HOST, server.addr())
                .build()
                .unwrap()
        } else {
            browser()
        };
        Self {
            ca,
            host,
            mail,
            server,
            browser,
            api: plain(),
        }
    }

    /// Mounts the standard public client document at `path`, with `changes` merged into it.
    pub fn client(&self, path: &str, changes: Value) -> Client {
        let redirect_uri = format!("https://{CLIENT_HOST}/callback");
        let mut document = json!({
            "client_name": "Test App",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        if let (Some(doc), Value::Object(changes)) = (document.as_object_mut(), changes) {
            for (name, value) in changes {
                if value.is_null() {
                    doc.remove(&name);
                } else {
                    doc.insert(name, value);
                }
            }
        }
        self.host
            .mount(CLIENT_HOST, path, Route::document(document));
        Client {
            client_id: self.host.url(CLIENT_HOST, path),
            redirect_uri,
        }
    }

    /// The standard client at `/clients/app.json`.
    pub fn app(&self) -> Client {
        self.client("/clients/app.json", json!({}))
    }

    /// `GET /authorize` with the given parameters.
    pub async fn authorize(&self, params: &[(&str, &str)]) -> Response {
        self.browser
            .get(self.server.url("/authorize"))
            .query(params)
            .send()
            .await
            .unwrap()
    }

    /// A well-formed authorization request for `client`, plus `extra` parameters.
    pub async fn authorize_client(
        &self,
        client: &Client,
        pkce: &Pkce,
        extra: &[(&str, &str)],
    ) -> Response {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "xyz-state"),
        ];
        params.extend_from_slice(extra);
        self.authorize(&params).await
    }

    /// Follows a 303 to one of the AS's own pages.
    pub async fn follow(&self, response: &Response) -> Response {
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "expected a 303, got {response:?}"
        );
        let location = location(response);
        let url = if location.starts_with('/') {
            format!("{}{location}", origin(self.server.issuer()))
        } else {
            location
        };
        self.browser.get(url).send().await.unwrap()
    }

    /// Submits form `form_id` of `html` with its hidden fields plus `fields`.
    pub async fn submit(&self, html: &str, form_id: &str, fields: &[(&str, &str)]) -> Response {
        let form = Form::find(html, form_id);
        let mut body: Vec<(String, String)> = form.hidden.clone();
        body.extend(
            fields
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        let url = format!("{}{}", origin(self.server.issuer()), form.action);
        self.browser.post(url).form(&body).send().await.unwrap()
    }

    /// From the login page: requests a mailed code for `email`, reads it from the inbox and enters
    /// it. Returns the response to the code form.
    pub async fn sign_in_by_mail(&self, login_page: &str, email: &str) -> Response {
        let after = self.mail.inbox().messages().last().map(|m| m.seq);
        let sent = self
            .submit(login_page, "email-form", &[("email", email)])
            .await;
        assert_eq!(sent.status(), StatusCode::OK);
        let code_page = sent.text().await.unwrap();
        let message = self
            .mail
            .inbox()
            .wait_for(email, after, Duration::from_secs(5))
            .await
            .expect("no sign-in mail arrived");
        self.submit(
            &code_page,
            "code-form",
            &[("code", &six_digits(&message.body))],
        )
        .await
    }

    /// The whole browser part for `client`: authorize, then sign in by mail and allow whenever
    /// those pages come up (a signed-in browser with remembered consent sees neither). Returns
    /// the code.
    pub async fn code_for(&self, client: &Client, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
        let mut response = self.authorize_client(client, pkce, extra).await;
        for _ in 0..4 {
            if location(&response).starts_with(&client.redirect_uri) {
                return callback_param(&response, "code").expect("no code in the callback");
            }
            let page = self.follow(&response).await.text().await.unwrap();
            response = if page.contains("id=\"email-form\"") {
                self.sign_in_by_mail(&page, EMAIL).await
            } else {
                self.submit(&page, "consent-form", &[("decision", "allow")])
                    .await
            };
        }
        panic!("the flow did not reach the client");
    }

    /// `POST /token` with `params`; returns the status and JSON body.
    pub async fn token(&self, params: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .api
            .post(self.server.url("/token"))
            .form(params)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "token responses must not be cached"
        );
        (status, response.json().await.unwrap())
    }

    /// Redeems `code` for `client`.
    pub async fn redeem(&self, client: &Client, code: &str, pkce: &Pkce) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("client_id", &client.client_id),
            ("code_verifier", &pkce.verifier),
        ])
        .await
    }

    /// Uses `refresh_token` for `client`.
    pub async fn refresh(&self, client: &Client, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &client.client_id),
        ])
        .await
    }
}

/// A browser: cookies on, redirects off (every hop is inspected).
pub fn browser() -> reqwest::Client {
    browser_builder().build().unwrap()
}

fn browser_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}

/// A plain API client: no cookies, no redirects.
pub fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// `scheme://host:port` of a URL.
pub fn origin(url: &str) -> String {
    let parsed = url::Url::parse(url).unwrap();
    parsed.origin().ascii_serialization()
}

/// The Location header.
pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location in {response:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// A query parameter of the redirect in `response` (a 303 to the client).
pub fn callback_param(response: &Response, name: &str) -> Option<String> {
    if response.status() != StatusCode::SEE_OTHER {
        return None;
    }
    let url = url::Url::parse(&location(response)).ok()?;
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// Asserts `response` is a redirect to `redirect_uri` and returns its query parameters.
pub fn callback(response: &Response, redirect_uri: &str) -> Vec<(String, String)> {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect, got {response:?}"
    );
    let target = location(response);
    assert!(
        target.starts_with(&format!("{redirect_uri}?")),
        "redirected to {target}, not to {redirect_uri}"
    );
    let url = url::Url::parse(&target).unwrap();
    url.query_pairs()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

/// The value of `name` in a parameter list.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The single run of exactly six digits in a mail body.
pub fn six_digits(body: &str) -> String {
    let runs: Vec<&str> = body
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() == 6)
        .collect();
    assert_eq!(
        runs.len(),
        1,
        "expected exactly one six-digit run in {body:?}"
    );
    runs[0].to_owned()
}

/// The text of the element with `id` (error pages mark `error` and `error_description`).
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let open_end = start + html[start..].find('>')? + 1;
    let close = open_end + html[open_end..].find('<')?;
    Some(html[open_end..close].to_owned())
}

/// A form found in a page: its action and hidden fields.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub hidden: Vec<(String, String)>,
}

impl Form {
    /// The form with `id` in `html` (panics with the page if it is missing).
    pub fn find(html: &str, id: &str) -> Self {
        let start = html
            .find(&format!("<form id=\"{id}\""))
            .unwrap_or_else(|| panic!("no form {id:?} in page:\n{html}"));
        let end = start + html[start..].find("</form>").unwrap();
        let form = &html[start..end];
        let action = attribute(form, "action").unwrap();
        let hidden = form
            .split("<input")
            .skip(1)
            .filter(|tag| tag.contains("type=\"hidden\""))
            .map(|tag| {
                (
                    attribute(tag, "name").unwrap(),
                    attribute(tag, "value").unwrap(),
                )
            })
            .collect();
        Self { action, hidden }
    }

    /// A hidden field's value.
    pub fn hidden(&self, name: &str) -> &str {
        self.hidden
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }
}

/// The (unescaped) value of the first `name="…"` attribute in `tag`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}
