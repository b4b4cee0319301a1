//! The end-to-end checks behind `cimd-conformance run`, until the scenario engine replaces them.
//!
//! Each check names one requirement ID and is judged only from what crossed the wire: the AS's
//! HTTP answers, the metadata host's journal and the inbox. Flows run against the ecosystem's
//! reference AS; with a fault switched on (`run --fault NAME`) the checks for that fault's
//! requirement fail, which is how a reader sees that they test something.

use std::fmt;

use metadata_host::Route;
use serde_json::json;

use crate::HarnessError;
use crate::agent::{AuthorizeRequest, Consent, Login, Outcome, TokenResponse};
use crate::ecosystem::{self, DEMO_NATIVE, DEMO_WEB, Ecosystem};

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The requirement held.
    Pass,
    /// The requirement was violated.
    Fail,
}

/// One judged expectation.
#[derive(Debug, Clone)]
pub struct Check {
    /// The requirement ID from the catalogue.
    pub requirement: &'static str,
    /// What was expected, as a declarative sentence.
    pub title: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What was observed (always filled, so a failure shows expected and actual).
    pub observed: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
        };
        write!(f, "{mark}  {:<14} {}", self.requirement, self.title)?;
        if self.verdict == Verdict::Fail {
            write!(f, "\n      observed: {}", self.observed)?;
        }
        Ok(())
    }
}

/// Collects checks as the flows go.
#[derive(Debug, Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn judge(
        &mut self,
        requirement: &'static str,
        title: &'static str,
        held: bool,
        observed: impl Into<String>,
    ) {
        let verdict = if held { Verdict::Pass } else { Verdict::Fail };
        self.0.push(Check {
            requirement,
            title,
            verdict,
            observed: observed.into(),
        });
    }
}

/// Runs every demo flow against `eco` and returns the judged checks in order.
pub async fn run(eco: &Ecosystem) -> Result<Vec<Check>, HarnessError> {
    let mut checks = Checks::default();
    discovery(eco, &mut checks).await?;
    native_flow_with_mailed_code(eco, &mut checks).await?;
    web_flow_with_password(eco, &mut checks).await?;
    refusals(eco, &mut checks).await?;
    Ok(checks.0)
}

async fn discovery(eco: &Ecosystem, checks: &mut Checks) -> Result<(), HarnessError> {
    let url = format!("{}/.well-known/oauth-authorization-server", eco.issuer());
    let ua = eco.user_agent()?;
    let response = ua.http().get(&url).send().await?;
    let status = response.status().as_u16();
    let meta: serde_json::Value = response.json().await.unwrap_or_default();
    checks.judge(
        "AS-META-06",
        "The metadata document is served at the RFC 8414 well-known URL",
        status == 200 && meta.is_object(),
        format!("status {status}"),
    );
    let flag = &meta["client_id_metadata_document_supported"];
    checks.judge(
        "CIMD-META-01",
        "The AS metadata advertises client_id_metadata_document_supported: true",
        flag == &json!(true),
        format!("client_id_metadata_document_supported = {flag}"),
    );
    checks.judge(
        "AS-META-01",
        "The metadata issuer equals the issuer it was fetched for",
        meta["issuer"] == json!(eco.issuer()),
        format!("issuer = {}", meta["issuer"]),
    );
    let methods = &meta["code_challenge_methods_supported"];
    checks.judge(
        "PKCE-07",
        "The AS metadata lists S256 in code_challenge_methods_supported",
        methods
            .as_array()
            .is_some_and(|m| m.contains(&json!("S256"))),
        format!("code_challenge_methods_supported = {methods}"),
    );
    let iss = &meta["authorization_response_iss_parameter_supported"];
    checks.judge(
        "AS-META-10",
        "The AS metadata advertises authorization_response_iss_parameter_supported",
        iss == &json!(true),
        format!("authorization_response_iss_parameter_supported = {iss}"),
    );
    Ok(())
}

fn token_endpoint(eco: &Ecosystem) -> String {
    format!("{}/token", eco.issuer())
}

fn authorize_endpoint(eco: &Ecosystem) -> String {
    format!("{}/authorize", eco.issuer())
}

fn mail_login(eco: &Ecosystem) -> Login {
    Login::EmailCode {
        email: ecosystem::DEMO_EMAIL.to_owned(),
        inbox: eco.inbox_url(),
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Redirected { location, .. } => format!("redirected to {location}"),
        Outcome::ErrorPage { status, body } => {
            format!(
                "error page (status {status}): {}",
                body.chars().take(300).collect::<String>()
            )
        }
        Outcome::Stuck {
            url,
            status,
            reason,
        } => format!("stuck at {url} (status {status}): {reason}"),
    }
}

fn describe_token(response: &TokenResponse) -> String {
    format!("status {}, body {}", response.status, response.body)
}

#[allow(
    clippy::too_many_lines,
    reason = "one linear flow reads best top to bottom"
)]
async fn native_flow_with_mailed_code(
    eco: &Ecosystem,
    checks: &mut Checks,
) -> Result<(), HarnessError> {
    let client_id = eco.client_id(DEMO_NATIVE);
    // RFC 8252: the registered loopback URI has no port; the client picks one at run time.
    let redirect_uri = "http://127.0.0.1:49152/callback";
    let fetches_before = eco.hosts.requests(DEMO_NATIVE.0, DEMO_NATIVE.1).len();
    let request = AuthorizeRequest::new(&client_id, redirect_uri);
    let ua = eco.user_agent()?;
    let outcome = ua
        .authorize(
            &request.url(&authorize_endpoint(eco))?,
            &mail_login(eco),
            Consent::Allow,
        )
        .await?
        .outcome;

    let fetches = eco.hosts.requests(DEMO_NATIVE.0, DEMO_NATIVE.1);
    checks.judge(
        "CIMD-FETCH-01",
        "The AS fetches the client metadata document from the client_id URL",
        fetches.len() > fetches_before && fetches.iter().all(|e| e.method == "GET"),
        format!(
            "{} GET request(s) to the document",
            fetches.len() - fetches_before
        ),
    );
    let leaked: Vec<&str> = fetches
        .iter()
        .flat_map(|e| e.headers.iter())
        .filter(|(n, _)| {
            n.eq_ignore_ascii_case("cookie") || n.eq_ignore_ascii_case("authorization")
        })
        .map(|(n, _)| n.as_str())
        .collect();
    checks.judge(
        "CIMD-SEC-10",
        "The document fetch carries no cookies and no Authorization header",
        leaked.is_empty(),
        format!("headers sent: {leaked:?}"),
    );

    let params = match &outcome {
        Outcome::Redirected { location, params } if location.as_str().starts_with(redirect_uri) => {
            params.clone()
        }
        other => {
            checks.judge(
                "CIMD-REDIR-04",
                "A loopback redirect URI is accepted on any port",
                false,
                describe(other),
            );
            return Ok(());
        }
    };
    checks.judge(
        "CIMD-REDIR-04",
        "A loopback redirect URI is accepted on any port",
        params.contains_key("code"),
        format!("callback parameters {params:?}"),
    );
    checks.judge(
        "MCP-SEC-02",
        "The authorization response returns the client's state unchanged",
        params.get("state") == Some(&request.state),
        format!("state = {:?}", params.get("state")),
    );
    checks.judge(
        "MCP-ISS-01",
        "The authorization response carries iss equal to the issuer",
        params.get("iss") == Some(&eco.issuer()),
        format!("iss = {:?}", params.get("iss")),
    );
    let Some(code) = params.get("code") else {
        return Ok(());
    };
    let Some(pkce) = &request.pkce else {
        return Ok(());
    };

    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri),
        ("client_id", client_id.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let tokens = ua.token(&token_endpoint(eco), &exchange).await?;
    checks.judge(
        "PKCE-05",
        "The code is exchanged for tokens with the matching code_verifier",
        tokens.status == 200
            && tokens.str("access_token").is_some()
            && tokens.str("token_type").is_some(),
        describe_token(&tokens),
    );
    let Some(first_refresh) = tokens.str("refresh_token").map(str::to_owned) else {
        checks.judge(
            "MCP-SEC-03",
            "Refresh tokens rotate on use",
            false,
            describe_token(&tokens),
        );
        return Ok(());
    };

    let refresh = |rt: &str| {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", client_id.as_str()),
        ]
        .map(|(k, v)| (k, v.to_owned()));
        let ua = ua.clone();
        let endpoint = token_endpoint(eco);
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ua.token(&endpoint, &form).await
        }
    };
    let rotated = refresh(&first_refresh).await?;
    let second_refresh = rotated.str("refresh_token").map(str::to_owned);
    let replayed = refresh(&first_refresh).await?;
    checks.judge(
        "MCP-SEC-03",
        "Refresh tokens rotate: a used refresh token is refused",
        rotated.status == 200
            && second_refresh
                .as_deref()
                .is_some_and(|rt| rt != first_refresh)
            && replayed.status == 400
            && replayed.str("error") == Some("invalid_grant"),
        format!(
            "rotation: {}; replay: {}",
            describe_token(&rotated),
            describe_token(&replayed)
        ),
    );

    let replay = ua.token(&token_endpoint(eco), &exchange).await?;
    checks.judge(
        "OAUTH-02",
        "An authorization code is redeemed at most once",
        replay.status == 400 && replay.str("error") == Some("invalid_grant"),
        describe_token(&replay),
    );
    Ok(())
}

async fn web_flow_with_password(eco: &Ecosystem, checks: &mut Checks) -> Result<(), HarnessError> {
    let client_id = eco.client_id(DEMO_WEB);
    let redirect_uri = "https://web.client.example/oauth/callback";
    let request = AuthorizeRequest::new(&client_id, redirect_uri);
    let login = Login::Password {
        username: ecosystem::DEMO_USERNAME.to_owned(),
        password: ecosystem::DEMO_PASSWORD.to_owned(),
    };
    let outcome = eco
        .user_agent()?
        .authorize(
            &request.url(&authorize_endpoint(eco))?,
            &login,
            Consent::Allow,
        )
        .await?
        .outcome;
    let held = matches!(&outcome, Outcome::Redirected { location, params }
        if location.as_str().starts_with(redirect_uri) && params.contains_key("code"));
    checks.judge(
        "CIMD-REDIR-01",
        "A redirect URI listed in the document is accepted by exact match",
        held,
        describe(&outcome),
    );
    Ok(())
}

/// Starts an authorization request for `client_id` and returns where it ended.
async fn attempt(
    eco: &Ecosystem,
    client_id: &str,
    redirect_uri: &str,
) -> Result<Outcome, HarnessError> {
    let request = AuthorizeRequest::new(client_id, redirect_uri);
    eco.user_agent()?
        .authorize(
            &request.url(&authorize_endpoint(eco))?,
            &mail_login(eco),
            Consent::Allow,
        )
        .await
        .map(|walk| walk.outcome)
}

fn is_error_page(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::ErrorPage { status, .. } if (400..500).contains(status))
}

#[allow(
    clippy::too_many_lines,
    reason = "one probe per requirement, in sequence"
)]
async fn refusals(eco: &Ecosystem, checks: &mut Checks) -> Result<(), HarnessError> {
    let host = "refusals.client.example";
    let callback = "http://127.0.0.1:49153/callback";
    let document = json!({
        "client_name": "Refusal probe",
        "application_type": "native",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none",
    });

    // CIMD-FETCH-03: the hop answers 302 to a document whose client_id is the hop's URL, so only a
    // fetcher that follows redirects could ever get a matching document.
    let hop = eco.hosts.url(host, "/hop.json");
    let mut target_doc = document.clone();
    target_doc["client_id"] = json!(hop);
    eco.hosts
        .mount(host, "/hop-target.json", Route::json(target_doc));
    eco.hosts.mount(
        host,
        "/hop.json",
        Route::redirect(302, &eco.hosts.url(host, "/hop-target.json")),
    );
    let outcome = attempt(eco, &hop, callback).await?;
    let followed = eco.hosts.requests(host, "/hop-target.json").len();
    checks.judge(
        "CIMD-FETCH-03",
        "A redirect from the client_id URL is not followed",
        followed == 0,
        format!(
            "{followed} request(s) reached the redirect target; {}",
            describe(&outcome)
        ),
    );
    checks.judge(
        "OAUTH-01",
        "A client whose document cannot be fetched gets an error page, not a redirect",
        is_error_page(&outcome),
        describe(&outcome),
    );

    // CIMD-DOC-03: the document names another URL as its client_id.
    let mut mismatched = document.clone();
    mismatched["client_id"] = json!("{origin}/other.json");
    eco.hosts
        .mount(host, "/mismatch.json", Route::json(mismatched));
    let outcome = attempt(eco, &eco.hosts.url(host, "/mismatch.json"), callback).await?;
    checks.judge(
        "CIMD-DOC-03",
        "A document whose client_id differs from its URL is refused",
        is_error_page(&outcome),
        describe(&outcome),
    );

    // CIMD-DOC-07: a client_secret has no place in a public document.
    let mut with_secret = document.clone();
    with_secret["client_secret"] = json!("s3cr3t");
    eco.hosts
        .mount(host, "/secret.json", Route::document(with_secret));
    let outcome = attempt(eco, &eco.hosts.url(host, "/secret.json"), callback).await?;
    checks.judge(
        "CIMD-DOC-07",
        "A document carrying client_secret is refused",
        is_error_page(&outcome),
        describe(&outcome),
    );

    // CIMD-REDIR-01 / OAUTH-01: a redirect URI the document does not list.
    let native = eco.client_id(DEMO_NATIVE);
    let outcome = attempt(eco, &native, "http://127.0.0.1:49154/elsewhere").await?;
    checks.judge(
        "BCP-01",
        "A redirect URI not listed in the document gets an error page, never a redirect",
        is_error_page(&outcome),
        describe(&outcome),
    );

    // CIMD-URL-01: an http client_id is refused before any fetch.
    let before = eco.hosts.journal().entries().len();
    let plain = native.replacen("https://", "http://", 1);
    let outcome = attempt(eco, &plain, callback).await?;
    let fetched = eco.hosts.journal().entries().len() - before;
    checks.judge(
        "CIMD-URL-01",
        "A client_id URL with the http scheme is refused without a fetch",
        is_error_page(&outcome) && fetched == 0,
        format!("{fetched} fetch(es); {}", describe(&outcome)),
    );

    // CIMD-SEC-01: `localhost` is not in the AS's resolve map and resolves to loopback.
    eco.hosts.mount(
        "localhost",
        DEMO_NATIVE.1,
        Route::document(document.clone()),
    );
    let ssrf = format!("https://localhost:{}{}", eco.hosts.port(), DEMO_NATIVE.1);
    let outcome = attempt(eco, &ssrf, callback).await?;
    let reached = eco.hosts.requests("localhost", DEMO_NATIVE.1).len();
    checks.judge(
        "CIMD-SEC-01",
        "A client_id host that resolves to a loopback address is never fetched",
        reached == 0 && is_error_page(&outcome),
        format!(
            "{reached} request(s) reached the loopback host; {}",
            describe(&outcome)
        ),
    );

    // PKCE-04: a valid client without a code challenge is told so by redirect.
    let mut request = AuthorizeRequest::new(&native, callback);
    request.pkce = None;
    let outcome = eco
        .user_agent()?
        .authorize(
            &request.url(&authorize_endpoint(eco))?,
            &mail_login(eco),
            Consent::Allow,
        )
        .await?
        .outcome;
    let held = matches!(&outcome, Outcome::Redirected { params, .. }
        if params.get("error").map(String::as_str) == Some("invalid_request"));
    checks.judge(
        "PKCE-04",
        "An authorization request without a code challenge is refused with invalid_request",
        held,
        describe(&outcome),
    );
    Ok(())
}
