//! The judge: each expectation is a pure function of the evidence.
//!
//! It sees only what crossed the wire (step results, the metadata host's journal, the inbox) and
//! never asks the AS anything. A check keeps its requirement ID whether it passes or fails; an
//! expectation whose step never ran is `untestable`, which the report counts as a failure.

use std::fmt::Write as _;

use serde::Serialize;

use super::file::{Expect, HeaderExpect, JsonExpect, JsonKind, OutcomeKind, RequestsExpect};
use super::run::{Evidence, StepRecord, StepResult};
use crate::agent::Outcome;

/// The verdict on one expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The evidence shows the requirement held.
    Pass,
    /// The evidence shows it was violated.
    Fail,
    /// The evidence needed was never produced (an earlier step failed).
    Untestable,
}

/// One judged expectation.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The requirement it names.
    pub requirement: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What was expected.
    pub expected: String,
    /// What the evidence shows.
    pub actual: String,
}

/// Judges every expectation of a scenario.
pub fn judge(expects: &[Expect], evidence: &Evidence) -> Vec<Check> {
    expects.iter().map(|e| judge_one(e, evidence)).collect()
}

fn check(expect: &Expect, held: bool, expected: String, actual: String) -> Check {
    Check {
        requirement: expect.requirement.clone(),
        verdict: if held { Verdict::Pass } else { Verdict::Fail },
        expected,
        actual,
    }
}

fn untestable(expect: &Expect, expected: String, why: String) -> Check {
    Check {
        requirement: expect.requirement.clone(),
        verdict: Verdict::Untestable,
        expected,
        actual: why,
    }
}

/// `successes = n`: exactly `n` of the concurrent answers' `statuses` count as a `success`.
fn judge_successes(
    expect: &Expect,
    n: u16,
    statuses: impl Iterator<Item = u16>,
    success: impl Fn(u16) -> bool,
    expected: String,
) -> Check {
    // Sorted: completion order varies from run to run, the multiset does not.
    let mut statuses: Vec<u16> = statuses.collect();
    statuses.sort_unstable();
    let ok = statuses.iter().filter(|s| success(**s)).count();
    check(
        expect,
        ok == usize::from(n),
        expected,
        format!("{ok} succeeded; statuses {statuses:?}"),
    )
}

/// The step an expectation refers to: by id, or the last request-making step.
fn target_step<'a>(expect: &Expect, evidence: &'a Evidence) -> Result<&'a StepRecord, String> {
    let found = match &expect.step {
        Some(id) => evidence
            .steps
            .iter()
            .find(|s| s.id.as_deref() == Some(id.as_str())),
        None => evidence.steps.iter().rev().find(|s| {
            matches!(
                s.kind,
                "authorize"
                    | "token"
                    | "http"
                    | "discover"
                    | "register"
                    | "initial_access_token"
                    | "edit_template"
            )
        }),
    };
    match found {
        Some(step) => match &step.result {
            StepResult::Failed { reason } => Err(format!(
                "step {} ({}) failed: {reason}",
                step.index + 1,
                step.kind
            )),
            _ => Ok(step),
        },
        None => Err(match &expect.step {
            Some(id) => format!("step {id:?} never ran"),
            None => "no step ran".to_owned(),
        }),
    }
}

fn judge_one(expect: &Expect, evidence: &Evidence) -> Check {
    let fill = |s: &str| evidence.bindings.fill(s).unwrap_or_else(|_| s.to_owned());
    if let Some(requests) = &expect.metadata_requests {
        return judge_requests(expect, requests, evidence, &fill);
    }
    if let Some(mail) = &expect.mail {
        let n = evidence.mail.len();
        return check(
            expect,
            n == mail.count,
            format!("{} message(s) to the user", mail.count),
            format!("{n} message(s)"),
        );
    }
    let expected = describe_expectation(expect, &fill);
    let step = match target_step(expect, evidence) {
        Ok(step) => step,
        Err(why) => return untestable(expect, expected, why),
    };
    match &step.result {
        StepResult::Authorize { outcome, pages } => {
            judge_authorize(expect, outcome, pages, expected, &fill)
        }
        StepResult::Token { responses } => {
            if let Some(n) = expect.successes {
                let statuses = responses.iter().map(|r| r.status);
                return judge_successes(expect, n, statuses, |s| s == 200, expected);
            }
            let Some(first) = responses.first() else {
                return untestable(expect, expected, "no token response".to_owned());
            };
            if expect.header.is_some() {
                return untestable(
                    expect,
                    expected,
                    "a token step keeps no response headers".to_owned(),
                );
            }
            judge_response(expect, first.status, &first.body, expected, evidence)
        }
        StepResult::Register { responses } => {
            if let Some(n) = expect.successes {
                let statuses = responses.iter().map(|r| r.status);
                let success = |s: u16| (200..300).contains(&s);
                return judge_successes(expect, n, statuses, success, expected);
            }
            let Some(first) = responses.first() else {
                return untestable(expect, expected, "no registration response".to_owned());
            };
            if let Some(h) = &expect.header {
                return judge_header(expect, h, &first.headers, first.status, expected, &fill);
            }
            judge_response(expect, first.status, &first.json, expected, evidence)
        }
        StepResult::Http {
            status,
            headers,
            json,
            ..
        } => {
            if let Some(h) = &expect.header {
                return judge_header(expect, h, headers, *status, expected, &fill);
            }
            judge_response(expect, *status, json, expected, evidence)
        }
        StepResult::Discover { status, json } => {
            if expect.header.is_some() {
                return untestable(
                    expect,
                    expected,
                    "a discover step keeps no response headers".to_owned(),
                );
            }
            judge_response(expect, *status, json, expected, evidence)
        }
        StepResult::Done | StepResult::Failed { .. } => untestable(
            expect,
            expected,
            format!(
                "step {} ({}) produces no response",
                step.index + 1,
                step.kind
            ),
        ),
    }
}

fn describe_expectation(expect: &Expect, fill: &dyn Fn(&str) -> String) -> String {
    let mut parts = Vec::new();
    if let Some(o) = expect.outcome {
        parts.push(
            match o {
                OutcomeKind::ErrorPage => "an error page, no redirect to the client",
                OutcomeKind::RedirectCode => "a redirect to the client with a code",
                OutcomeKind::RedirectError => "a redirect to the client with an error",
                OutcomeKind::NotRedirected => "no redirect to the client",
            }
            .to_owned(),
        );
    }
    if let Some(s) = expect.status {
        parts.push(format!("status {s}"));
    }
    if let Some(e) = &expect.error {
        parts.push(format!("error {e:?}"));
    }
    if let Some(j) = &expect.json {
        parts.push(describe_json(j));
    }
    if let Some(j) = &expect.claims {
        parts.push(format!("access token claim {}", describe_json(j)));
    }
    if let Some(p) = &expect.param {
        match (&p.equals, p.present) {
            (Some(v), _) => parts.push(format!("parameter {} = {:?}", p.name, fill(v))),
            (None, Some(false)) => parts.push(format!("no parameter {}", p.name)),
            _ => parts.push(format!("parameter {} present", p.name)),
        }
    }
    if let Some(p) = &expect.page {
        if let Some(t) = &p.contains {
            parts.push(format!("a page showing {:?}", fill(t)));
        }
        if let Some(t) = &p.lacks {
            parts.push(format!("no page showing {:?}", fill(t)));
        }
    }
    if let Some(n) = expect.successes {
        parts.push(format!("{n} of the concurrent requests succeed"));
    }
    if let Some(h) = &expect.header {
        parts.push(match (&h.contains, h.present) {
            (Some(text), _) => format!("header {} containing {:?}", h.name, fill(text)),
            (None, Some(false)) => format!("no header {}", h.name),
            _ => format!("header {} present", h.name),
        });
    }
    parts.join(", ")
}

/// Whether the response headers meet `h` (names and the searched text case-insensitive).
fn judge_header(
    expect: &Expect,
    h: &HeaderExpect,
    headers: &[(String, String)],
    status: u16,
    expected: String,
    fill: &dyn Fn(&str) -> String,
) -> Check {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(&h.name))
        .map(|(_, v)| v.as_str())
        .collect();
    let mut held = true;
    if let Some(text) = &h.contains {
        let text = fill(text).to_ascii_lowercase();
        held &= values
            .iter()
            .any(|v| v.to_ascii_lowercase().contains(&text));
    }
    if let Some(present) = h.present {
        held &= values.is_empty() != present;
    }
    let actual = if values.is_empty() {
        format!("status {status}, no {} header", h.name)
    } else {
        format!("status {status}, {}: {}", h.name, values.join(" | "))
    };
    check(expect, held, expected, actual)
}

fn describe_json(j: &JsonExpect) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &j.equals {
        parts.push(format!("= {v}"));
    }
    if let Some(v) = &j.contains {
        parts.push(format!("contains {v}"));
    }
    if let Some(v) = &j.not_equals {
        parts.push(format!("differs from {v}"));
    }
    if let Some(v) = &j.prefix {
        parts.push(format!("starts with {v:?}"));
    }
    if let Some(v) = &j.not_prefix {
        parts.push(format!("does not start with {v:?}"));
    }
    if let Some(v) = &j.lacks {
        parts.push(format!("does not contain {v:?}"));
    }
    if let Some(kind) = j.kind {
        parts.push(format!("is {}", kind_name(kind)));
    }
    if let Some(min) = j.min {
        parts.push(format!(">= {min}"));
    }
    match j.present {
        Some(false) => parts.push("absent".to_owned()),
        Some(true) if parts.is_empty() => parts.push("present".to_owned()),
        _ => {}
    }
    if parts.is_empty() {
        parts.push("present".to_owned());
    }
    format!("{} {}", j.pointer, parts.join(", "))
}

fn kind_name(kind: JsonKind) -> &'static str {
    match kind {
        JsonKind::String => "a string",
        JsonKind::Integer => "an integer",
        JsonKind::Number => "a number",
        JsonKind::Boolean => "a boolean",
        JsonKind::Array => "an array",
        JsonKind::Object => "an object",
    }
}

/// Whether `value` has the JSON type `kind`.
fn has_kind(value: &serde_json::Value, kind: JsonKind) -> bool {
    match kind {
        JsonKind::String => value.is_string(),
        JsonKind::Integer => value.is_i64() || value.is_u64(),
        JsonKind::Number => value.is_number(),
        JsonKind::Boolean => value.is_boolean(),
        JsonKind::Array => value.is_array(),
        JsonKind::Object => value.is_object(),
    }
}

fn summary(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Redirected { location, params } => {
            let shown: Vec<String> = params
                .iter()
                .map(|(k, v)| {
                    if k == "code" {
                        format!("{k}=…")
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect();
            let base = location.as_str().split('?').next().unwrap_or_default();
            format!("redirected to {base} with {}", shown.join("&"))
        }
        Outcome::ErrorPage { status, body } => {
            format!(
                "error page {status}: {}",
                crate::agent::page_text(body, 200)
            )
        }
        Outcome::Stuck {
            url,
            status,
            reason,
        } => {
            format!(
                "stopped at {} (status {status}): {reason}",
                crate::agent::redact_url(url)
            )
        }
    }
}

fn judge_authorize(
    expect: &Expect,
    outcome: &Outcome,
    pages: &[crate::agent::Page],
    expected: String,
    fill: &dyn Fn(&str) -> String,
) -> Check {
    let actual = summary(outcome);
    let params = match outcome {
        Outcome::Redirected { params, .. } => Some(params),
        _ => None,
    };
    let error_param = params.and_then(|p| p.get("error"));
    let mut held = true;
    if let Some(kind) = expect.outcome {
        held &= match kind {
            OutcomeKind::ErrorPage => {
                matches!(outcome, Outcome::ErrorPage { status, .. } if (400..500).contains(status))
            }
            OutcomeKind::RedirectCode => {
                params.is_some_and(|p| p.contains_key("code") && !p.contains_key("error"))
            }
            OutcomeKind::RedirectError => error_param.is_some(),
            OutcomeKind::NotRedirected => params.is_none(),
        };
    }
    if let Some(error) = &expect.error {
        held &= match outcome {
            Outcome::ErrorPage { body, .. } => body.contains(error.as_str()),
            _ => error_param == Some(error),
        };
    }
    if let Some(p) = &expect.param {
        let value = params.and_then(|ps| ps.get(&p.name));
        if let Some(want) = &p.equals {
            held &= value == Some(&fill(want));
        }
        if let Some(present) = p.present {
            held &= value.is_some() == present;
        }
    }
    if let Some(p) = &expect.page {
        let scoped: Vec<&crate::agent::Page> = pages
            .iter()
            .filter(|page| p.form.as_deref().is_none_or(|id| page.form(id).is_some()))
            .collect();
        if let Some(text) = &p.contains {
            let text = fill(text);
            held &= scoped.iter().any(|page| page.body.contains(&text));
        }
        if let Some(text) = &p.lacks {
            let text = fill(text);
            held &= !scoped.iter().any(|page| page.body.contains(&text));
        }
        if p.form.is_some() && scoped.is_empty() {
            return check(
                expect,
                false,
                expected,
                format!("no page had that form; {actual}"),
            );
        }
    }
    if expect.json.is_some()
        || expect.header.is_some()
        || expect.claims.is_some()
        || expect.status.is_some()
        || expect.successes.is_some()
    {
        return untestable(
            expect,
            expected,
            "an authorize step has no status or JSON body to judge".to_owned(),
        );
    }
    check(expect, held, expected, actual)
}

fn judge_response(
    expect: &Expect,
    status: u16,
    json: &serde_json::Value,
    expected: String,
    evidence: &Evidence,
) -> Check {
    let mut held = true;
    if let Some(want) = expect.status {
        held &= status == want;
    }
    if let Some(error) = &expect.error {
        held &= json.get("error").and_then(serde_json::Value::as_str) == Some(error.as_str());
    }
    let mut actual = format!("status {status}, body {}", truncate(&json.to_string(), 300));
    if let Some(j) = &expect.json {
        let (ok, seen) = judge_json(j, json, evidence);
        held &= ok;
        actual = format!("status {status}, {seen}");
    }
    if let Some(j) = &expect.claims {
        let claims = json
            .get("access_token")
            .and_then(serde_json::Value::as_str)
            .and_then(jwt_payload);
        let Some(claims) = claims else {
            return check(
                expect,
                false,
                expected,
                format!("status {status}, no JWT access_token: {actual}"),
            );
        };
        let (ok, seen) = judge_json(j, &claims, evidence);
        held &= ok;
        actual = format!("access token claim {seen}");
    }
    if expect.outcome.is_some()
        || expect.param.is_some()
        || expect.page.is_some()
        || expect.successes.is_some()
    {
        return untestable(
            expect,
            expected,
            "this step is not an authorization request".to_owned(),
        );
    }
    check(expect, held, expected, actual)
}

/// Whether the member at `j.pointer` meets `j`, and what it is (`/pointer = value`).
fn judge_json(j: &JsonExpect, json: &serde_json::Value, evidence: &Evidence) -> (bool, String) {
    let member = json.pointer(&j.pointer);
    let seen = format!(
        "{} = {}",
        j.pointer,
        member.map_or("(absent)".to_owned(), ToString::to_string)
    );
    // Expected values may hold placeholders ("{issuer}").
    let as_json = |v: &toml::Value| {
        let raw = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
        evidence.bindings.fill_json(&raw).unwrap_or(raw)
    };
    let mut held = true;
    if let Some(v) = &j.equals {
        held &= member == Some(&as_json(v));
    }
    if let Some(v) = &j.contains {
        held &= member
            .and_then(serde_json::Value::as_array)
            .is_some_and(|a| a.contains(&as_json(v)));
    }
    if let Some(present) = j.present {
        held &= member.is_some() == present;
    }
    if let Some(v) = &j.not_equals {
        held &= member.is_some_and(|m| *m != as_json(v));
    }
    let text = member.and_then(serde_json::Value::as_str);
    let fill = |t: &str| evidence.bindings.fill(t).unwrap_or_else(|_| t.to_owned());
    if let Some(p) = &j.prefix {
        held &= text.is_some_and(|t| t.starts_with(&fill(p)));
    }
    if let Some(p) = &j.not_prefix {
        held &= text.is_some_and(|t| !t.starts_with(&fill(p)));
    }
    if let Some(p) = &j.lacks {
        held &= text.is_some_and(|t| !t.contains(&fill(p)));
    }
    if let Some(kind) = j.kind {
        held &= member.is_some_and(|m| has_kind(m, kind));
    }
    if let Some(min) = j.min {
        // A u64 beyond i64 is above any minimum.
        held &= member.is_some_and(|m| {
            m.as_i64().is_some_and(|n| n >= min)
                || m.as_u64().is_some_and(|n| i64::try_from(n).is_err())
        });
    }
    (held, seen)
}

/// The payload of a compact JWS, decoded but not verified: the judge reads what the AS asserted;
/// whether the signature holds is the resource server's business.
fn jwt_payload(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn judge_requests(
    expect: &Expect,
    r: &RequestsExpect,
    evidence: &Evidence,
    fill: &dyn Fn(&str) -> String,
) -> Check {
    let (host, path) = match (&r.url, &r.host) {
        (Some(url), _) => {
            let url = fill(url);
            match url::Url::parse(&url) {
                Ok(u) => (
                    u.host_str().unwrap_or_default().to_owned(),
                    Some(u.path().to_owned()),
                ),
                Err(e) => return untestable(expect, String::new(), format!("bad URL {url}: {e}")),
            }
        }
        (None, Some(host)) => (fill(host), None),
        (None, None) => {
            return untestable(
                expect,
                String::new(),
                "metadata_requests needs url or host".to_owned(),
            );
        }
    };
    let matching: Vec<_> = evidence
        .host_requests
        .iter()
        .filter(|e| e.host == host && path.as_ref().is_none_or(|p| &e.path == p))
        .collect();
    let n = matching.len();
    let mut held = r.count.is_none_or(|c| n == c)
        && r.min.is_none_or(|m| n >= m)
        && r.max.is_none_or(|m| n <= m);
    let offending: Vec<String> = matching
        .iter()
        .flat_map(|e| e.headers.iter().map(|(name, _)| name.to_ascii_lowercase()))
        .filter(|name| {
            r.without_headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
        })
        .collect();
    held &= offending.is_empty();
    let wrong_method: Vec<&str> = matching
        .iter()
        .filter(|e| {
            r.method
                .as_ref()
                .is_some_and(|m| !e.method.eq_ignore_ascii_case(m))
        })
        .map(|e| e.method.as_str())
        .collect();
    held &= wrong_method.is_empty();
    let missing: Vec<String> = r
        .with_headers
        .iter()
        .filter(|(name, want)| {
            let want = want.to_ascii_lowercase();
            matching.iter().any(|e| {
                !e.header(name)
                    .is_some_and(|v| v.to_ascii_lowercase().contains(&want))
            })
        })
        .map(|(name, want)| format!("{name}: …{want}…"))
        .collect();
    held &= missing.is_empty();
    let target = format!("{host}{}", path.unwrap_or_default());
    let mut expected = match (r.count, r.min, r.max) {
        (Some(c), _, _) => format!("{c} request(s) to {target}"),
        (None, Some(min), None) => format!("at least {min} request(s) to {target}"),
        (None, None, Some(max)) => format!("at most {max} request(s) to {target}"),
        (None, Some(min), Some(max)) => {
            format!("between {min} and {max} request(s) to {target}")
        }
        (None, None, None) => format!("requests to {target}"),
    };
    if !r.without_headers.is_empty() {
        let _ = write!(expected, " without headers {:?}", r.without_headers);
    }
    if let Some(method) = &r.method {
        let _ = write!(expected, ", all {method}");
    }
    if !r.with_headers.is_empty() {
        let _ = write!(expected, ", each with headers {:?}", r.with_headers);
    }
    let mut actual = format!("{n} request(s)");
    if !wrong_method.is_empty() {
        let _ = write!(actual, " with methods {wrong_method:?}");
    }
    if !missing.is_empty() {
        let _ = write!(actual, " lacking {missing:?}");
    }
    if !offending.is_empty() {
        let _ = write!(actual, " carrying {offending:?}");
    }
    check(expect, held, expected, actual)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
