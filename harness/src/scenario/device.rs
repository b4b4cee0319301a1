//! The `device` step: an RFC 8628 device authorization, and optionally the person who types its
//! user code at the verification URI, signs in and allows or denies.
//!
//! The device part POSTs the target's `device_authorization_endpoint` (read from its RFC 8414
//! metadata) with `client_id`, `scope`, an optional signed client assertion and any `form`
//! fields, and captures every top-level member of the answer (`{dev.device_code}`,
//! `{dev.user_code}`, `{dev.interval}`, ...). Polling is then an ordinary `token` step with
//! `grant_type = "urn:ietf:params:oauth:grant-type:device_code"`. With `approve = true` or
//! `false`, the scripted user agent opens `verification_uri`, types `wrong_codes` wrong codes
//! first if asked, then the user code (as shown, or in lower case without its dash), and walks
//! sign-in and the confirmation page like an authorization request; with `visit_after_ms` the
//! person arrives that long after the device authorization (to type a code that has expired).
//! The step is judged like an `http` step (the device authorization answer) when the person
//! stays away (`approve = "skip"`, the default), and like an `authorize` step (the pages seen)
//! otherwise.

use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use super::assertion::{ClientAssertion, SigningContext};
use super::file::LoginChoice;
use super::registration::{self, Exchanges};
use super::run::{AsUnderTest, StepResult, Surroundings, TestUser, fill, finish_form};
use super::template::Bindings;
use crate::HarnessError;
use crate::agent::{Consent, Login, Page, UserAgent};

/// `device = { id = "dev", client_id = "{host:tv}/client.json", scope = "read", approve = true }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceStep {
    /// Step id.
    pub id: Option<String>,
    /// The client_id to send (placeholders allowed).
    pub client_id: String,
    /// `scope`, if any.
    pub scope: Option<String>,
    /// Form fields to add or override (an empty string removes one).
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// Sign a client assertion (`private_key_jwt`), as a token step does.
    pub client_assertion: Option<Box<ClientAssertion>>,
    /// `true`: the person allows; `false`: denies; `"skip"` (default): nobody visits.
    #[serde(default)]
    pub approve: Approve,
    /// How the person types the user code.
    #[serde(default)]
    pub typing: Typing,
    /// Wrong user codes the person types before the right one.
    #[serde(default)]
    pub wrong_codes: u16,
    /// How the person signs in (default e-mail code).
    #[serde(default)]
    pub login: LoginChoice,
    /// Milliseconds between the device authorization and the person's visit to the
    /// verification URI (default 0: at once).
    #[serde(default)]
    pub visit_after_ms: u64,
}

/// Whether and how the person answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Approve {
    /// Visit the verification URI and allow (`true`) or deny (`false`).
    Decide(bool),
    /// Nobody visits.
    Skip(SkipWord),
}

impl Default for Approve {
    fn default() -> Self {
        Self::Skip(SkipWord::Skip)
    }
}

/// The word `"skip"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipWord {
    /// `"skip"`.
    Skip,
}

/// How the user code is typed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Typing {
    /// Exactly as the device shows it.
    #[default]
    AsShown,
    /// Lower case, with dashes and spaces left out (RFC 8628 §6.1).
    LowerCaseNoDash,
}

impl DeviceStep {
    /// Every string that may hold placeholders (for load-time validation).
    pub fn strings(&self) -> Vec<String> {
        let mut strings = vec![self.client_id.clone()];
        strings.extend(self.scope.clone());
        strings.extend(self.form.values().cloned());
        if let Some(assertion) = &self.client_assertion {
            strings.extend(assertion.strings());
        }
        strings
    }
}

/// Runs a device step.
#[allow(
    clippy::too_many_arguments,
    reason = "the runner's context, passed through as the other steps get it"
)]
pub async fn run(
    step: &DeviceStep,
    target: &AsUnderTest,
    user: &TestUser,
    around: Surroundings<'_>,
    bindings: &mut Bindings,
    ua: &UserAgent,
    log: &Exchanges,
) -> Result<StepResult, HarnessError> {
    let endpoint = device_endpoint(target, ua).await?;
    let client_id = fill(bindings, &step.client_id)?;
    let form = device_form(step, target, around, bindings, &client_id)?;
    let response = registration::post_form(ua.http(), endpoint, &form, log).await?;
    let id = step.id.as_deref();
    registration::capture_members(bindings, id, &response.json);
    capture(bindings, id, "status", &response.status.to_string());
    capture(bindings, id, "client_id", &client_id);
    let decision = match step.approve {
        Approve::Skip(_) => None,
        Approve::Decide(allow) => Some(allow),
    };
    let Some(allow) = decision.filter(|_| response.status == 200) else {
        return Ok(StepResult::Http {
            status: response.status,
            headers: response.headers,
            json: response.json,
            body: response.body,
        });
    };
    if step.visit_after_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(step.visit_after_ms)).await;
    }
    visit(step, &response.json, allow, user, around, ua).await
}

/// The device authorization request's form: `client_id`, `scope`, a signed client assertion if
/// the step asks for one, then the step's own `form` entries (an empty value removes a field).
fn device_form(
    step: &DeviceStep,
    target: &AsUnderTest,
    around: Surroundings<'_>,
    bindings: &Bindings,
    client_id: &str,
) -> Result<BTreeMap<String, String>, HarnessError> {
    let mut form: BTreeMap<String, String> = BTreeMap::new();
    form.insert("client_id".into(), client_id.to_owned());
    if let Some(scope) = &step.scope {
        form.insert("scope".into(), fill(bindings, scope)?);
    }
    finish_form(
        &mut form,
        step.client_assertion.as_deref(),
        SigningContext {
            fixtures: around.fixtures,
            bindings,
            client_id: Some(client_id),
            token_endpoint: &target.token_endpoint,
        },
        &step.form,
    )?;
    Ok(form)
}

/// The person's part: types the user code of `answer` at its verification URI, signs in and
/// allows or denies; the result holds every page seen from the code entry on.
async fn visit(
    step: &DeviceStep,
    answer: &serde_json::Value,
    allow: bool,
    user: &TestUser,
    around: Surroundings<'_>,
    ua: &UserAgent,
) -> Result<StepResult, HarnessError> {
    let member = |name: &str| {
        answer
            .get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                HarnessError::Target(format!("the device authorization answer has no {name}"))
            })
    };
    let verification_uri = Url::parse(member("verification_uri")?)?;
    let user_code = member("user_code")?;
    let typed = match step.typing {
        Typing::AsShown => user_code.to_owned(),
        Typing::LowerCaseNoDash => user_code
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    };
    let wrong = wrong_code(user_code);
    for _ in 0..step.wrong_codes {
        type_code(ua, &verification_uri, &wrong).await?;
    }
    let (entry, reply) = type_code(ua, &verification_uri, &typed).await?;
    let login = match step.login {
        LoginChoice::Email => Login::EmailCode {
            email: user.email.clone(),
            inbox: around.inbox.to_owned(),
        },
        LoginChoice::Password => Login::Password {
            username: user.username.clone(),
            password: user.password.clone(),
        },
    };
    let consent = if allow { Consent::Allow } else { Consent::Deny };
    let walk = ua.walk_from(reply, vec![entry], &login, consent).await?;
    Ok(StepResult::Authorize {
        outcome: walk.outcome,
        pages: walk.pages,
    })
}

/// The target's `device_authorization_endpoint`, from its RFC 8414 metadata.
async fn device_endpoint(target: &AsUnderTest, ua: &UserAgent) -> Result<String, HarnessError> {
    let url = crate::target::metadata_url(&target.issuer)?;
    let metadata: serde_json::Value = ua.http().get(url).send().await?.json().await?;
    metadata
        .get("device_authorization_endpoint")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            HarnessError::Target(
                "the AS metadata names no device_authorization_endpoint, so the device grant \
                 cannot be tested"
                    .to_owned(),
            )
        })
}

/// Opens the verification page and submits `typed` in its form with a `user_code` field;
/// returns the entry page and the answer.
async fn type_code(
    ua: &UserAgent,
    verification_uri: &Url,
    typed: &str,
) -> Result<(Page, Page), HarnessError> {
    let entry = ua.get(verification_uri).await?;
    let form = crate::forms::forms(&entry.body)
        .into_iter()
        .find(|f| f.has_field("user_code"))
        .ok_or_else(|| {
            HarnessError::Target(format!(
                "the verification page {verification_uri} has no form with a user_code field"
            ))
        })?;
    let answer = ua
        .submit(&entry, &form, &[("user_code", typed)], None)
        .await?;
    Ok((entry, answer))
}

/// A code of the same shape as `user_code` that differs from it in every letter.
fn wrong_code(user_code: &str) -> String {
    user_code
        .chars()
        .map(|c| match c {
            'B' => 'C',
            c if c.is_ascii_uppercase() => 'B',
            'b' => 'c',
            c if c.is_ascii_lowercase() => 'b',
            '0' => '1',
            c if c.is_ascii_digit() => '0',
            c => c,
        })
        .collect()
}

fn capture(bindings: &mut Bindings, id: Option<&str>, name: &str, value: &str) {
    if let Some(id) = id {
        bindings
            .captured
            .insert(format!("{id}.{name}"), value.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::{Approve, DeviceStep, wrong_code};

    #[test]
    fn a_wrong_code_keeps_the_shape_and_differs_everywhere() {
        let wrong = wrong_code("BCDF-GHJK");
        assert_eq!(wrong, "CBBB-BBBB");
        assert!(
            wrong
                .chars()
                .zip("BCDF-GHJK".chars())
                .all(|(a, b)| a != b || a == '-')
        );
    }

    #[test]
    fn approve_takes_a_boolean_or_skip() {
        let parse = |text: &str| -> Approve {
            toml::from_str::<DeviceStep>(&format!("client_id = \"x\"\n{text}"))
                .unwrap_or_else(|e| panic!("{e}"))
                .approve
        };
        assert_eq!(parse("approve = true"), Approve::Decide(true));
        assert_eq!(parse("approve = false"), Approve::Decide(false));
        assert_eq!(parse("approve = \"skip\""), Approve::default());
        assert_eq!(parse(""), Approve::default());
        assert!(toml::from_str::<DeviceStep>("client_id = \"x\"\napprove = \"maybe\"").is_err());
    }
}
