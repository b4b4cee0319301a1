//! The `par` step: an RFC 9126 pushed authorization request, and what an `authorize` step needs
//! to continue from it.
//!
//! `par = { id = "push", client_id = "{host:app}/client.json", redirect_uri = "{callback}/cb" }`
//! POSTs the authorization parameters the `authorize` step would put in the query
//! (`response_type=code`, `client_id`, `redirect_uri`, a random `state`, an S256 challenge from a
//! fresh verifier, `scope`) to the target's `pushed_authorization_request_endpoint`, with an
//! optional client assertion signed like a token step's (`aud = "{par_endpoint}"` names the PAR
//! endpoint) and any `form` overrides (an empty value removes a field). It captures every
//! top-level member of the answer (`{push.request_uri}`, `{push.expires_in}`), its status, and
//! the `client_id`, `redirect_uri`, `state` and `code_verifier` it pushed, and is judged like an
//! `http` step. `authorize = { …, pushed = "push" }` then sends only `client_id` and the
//! captured `request_uri` (plus the step's `extra`), walks the pages as usual, and hands the
//! pushed verifier to a later `exchange`. A target whose metadata names no PAR endpoint makes
//! the scenario not applicable.

use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use super::assertion::{ClientAssertion, SigningContext};
use super::file::PkceChoice;
use super::registration::{self, Exchanges};
use super::run::{AsUnderTest, StepResult, Surroundings, fill, finish_form};
use super::template::Bindings;
use crate::HarnessError;
use crate::agent::UserAgent;
use crate::pkce::{Pkce, random_token};

/// The binding name of the target's PAR endpoint (`{par_endpoint}`), set by each `par` step.
pub const PAR_ENDPOINT: &str = "par_endpoint";

/// `par = { id = "push", client_id = "{host:app}/client.json", redirect_uri = "{callback}/cb" }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParStep {
    /// Step id.
    pub id: Option<String>,
    /// The client_id to push (placeholders allowed).
    pub client_id: String,
    /// The redirect_uri to push.
    pub redirect_uri: String,
    /// `scope`, if any.
    pub scope: Option<String>,
    /// PKCE (default S256; `plain` pushes the verifier as a plain challenge).
    #[serde(default)]
    pub pkce: PkceChoice,
    /// Form fields to add or override (an empty string removes one).
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// Sign a client assertion (`private_key_jwt`), as a token step does.
    pub client_assertion: Option<Box<ClientAssertion>>,
}

impl ParStep {
    /// Every string that may hold placeholders (for load-time validation).
    pub fn strings(&self) -> Vec<String> {
        let mut strings = vec![self.client_id.clone(), self.redirect_uri.clone()];
        strings.extend(self.scope.clone());
        strings.extend(self.form.values().cloned());
        if let Some(assertion) = &self.client_assertion {
            strings.extend(assertion.strings());
        }
        strings
    }
}

/// Runs a `par` step.
pub async fn run(
    step: &ParStep,
    target: &AsUnderTest,
    around: Surroundings<'_>,
    bindings: &mut Bindings,
    ua: &UserAgent,
    log: &Exchanges,
) -> Result<StepResult, HarnessError> {
    let Some(endpoint) = target.par_endpoint.clone() else {
        return Err(HarnessError::Target(
            "the AS metadata names no pushed_authorization_request_endpoint".to_owned(),
        ));
    };
    bindings
        .captured
        .insert(PAR_ENDPOINT.to_owned(), endpoint.clone());
    let client_id = fill(bindings, &step.client_id)?;
    let redirect_uri = fill(bindings, &step.redirect_uri)?;
    let pkce = Pkce::generate();
    let state = random_token();
    let mut form: BTreeMap<String, String> = BTreeMap::new();
    form.insert("response_type".into(), "code".into());
    form.insert("client_id".into(), client_id.clone());
    form.insert("redirect_uri".into(), redirect_uri.clone());
    form.insert("state".into(), state.clone());
    match step.pkce {
        PkceChoice::S256 => {
            form.insert("code_challenge".into(), pkce.challenge.clone());
            form.insert("code_challenge_method".into(), "S256".into());
        }
        PkceChoice::Plain => {
            form.insert("code_challenge".into(), pkce.verifier.clone());
            form.insert("code_challenge_method".into(), "plain".into());
        }
        PkceChoice::None => {}
    }
    if let Some(scope) = &step.scope {
        form.insert("scope".into(), fill(bindings, scope)?);
    }
    finish_form(
        &mut form,
        step.client_assertion.as_deref(),
        SigningContext {
            fixtures: around.fixtures,
            bindings,
            client_id: Some(&client_id),
            token_endpoint: &target.token_endpoint,
        },
        &step.form,
    )?;
    let response = registration::post_form(ua.http(), endpoint, &form, log).await?;
    if let Some(id) = step.id.as_deref() {
        registration::capture_members(bindings, Some(id), &response.json);
        for (name, value) in [
            ("status", response.status.to_string()),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("code_verifier", pkce.verifier.clone()),
        ] {
            bindings.captured.insert(format!("{id}.{name}"), value);
        }
    }
    Ok(StepResult::Http {
        status: response.status,
        headers: response.headers,
        json: response.json,
        body: response.body,
    })
}

/// What an `authorize` step continuing from the `par` step `push` sends and keeps: the
/// authorization URL with `client_id`, the pushed `request_uri` and `extra`, and the pushed
/// `state` and PKCE verifier.
pub struct PushedAuthorization {
    /// `authorization_endpoint?client_id=…&request_uri=…`.
    pub url: Url,
    /// The `state` that was pushed.
    pub state: String,
    /// The PKCE verifier of the pushed challenge.
    pub code_verifier: String,
}

/// The authorization request of an `authorize` step with `pushed = "push"`.
pub fn pushed_authorization(
    push: &str,
    client_id: &str,
    extra: &[(String, String)],
    target: &AsUnderTest,
    bindings: &Bindings,
) -> Result<PushedAuthorization, HarnessError> {
    let captured = |name: &str| {
        bindings
            .captured
            .get(&format!("{push}.{name}"))
            .cloned()
            .ok_or_else(|| HarnessError::Scenario(format!("step {push:?} captured no {name}")))
    };
    let request_uri = captured("request_uri")?;
    let mut url = Url::parse(&target.authorization_endpoint)?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("client_id", client_id);
        query.append_pair("request_uri", &request_uri);
        for (name, value) in extra {
            query.append_pair(name, value);
        }
    }
    Ok(PushedAuthorization {
        url,
        state: captured("state")?,
        code_verifier: captured("code_verifier")?,
    })
}
