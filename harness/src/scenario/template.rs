//! Placeholders in scenario strings, filled in per run.
//!
//! Scenario files never contain ports or real host names: those differ per run and per scenario.
//! Instead they say `{host:www}` (the origin of virtual host `www` in this scenario's namespace),
//! `{hostname:www}`, `{ns}` (the namespace's domain), `{issuer}`, `{callback}`, `{flow.code}`
//! (a value an earlier step captured), `{template}` (the target's template software_id) or
//! `{registration_endpoint}` or `{par_endpoint}` (set by a `par` step). Filling is a single left-to-right pass, so a value that
//! happens to contain braces is never expanded twice.

use std::collections::BTreeMap;

/// Everything a placeholder can refer to in one scenario run.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    /// The scenario's namespace domain, e.g. `fetch-03.cimd.example`.
    pub ns: String,
    /// The metadata host's port.
    pub hosts_port: u16,
    /// The AS's issuer.
    pub issuer: String,
    /// Where clients' loopback redirects point (nothing listens there).
    pub callback: String,
    /// Values captured by earlier steps, keyed `step_id.name`.
    pub captured: BTreeMap<String, String>,
}

/// A placeholder that names nothing known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown placeholder {{{0}}}")]
pub struct UnknownPlaceholder(pub String);

impl Bindings {
    /// The host name of virtual host `label` in this namespace.
    pub fn hostname(&self, label: &str) -> String {
        format!("{label}.{}", self.ns)
    }

    /// The origin of virtual host `label`.
    pub fn origin(&self, label: &str) -> String {
        format!("https://{}:{}", self.hostname(label), self.hosts_port)
    }

    fn lookup(&self, name: &str) -> Option<String> {
        if let Some(label) = name.strip_prefix("host:") {
            return valid_label(label).then(|| self.origin(label));
        }
        if let Some(label) = name.strip_prefix("hostname:") {
            return valid_label(label).then(|| self.hostname(label));
        }
        match name {
            // The metadata host fills these per request; they pass through untouched.
            "client_id" | "origin" => Some(format!("{{{name}}}")),
            "ns" => Some(self.ns.clone()),
            "issuer" => Some(self.issuer.clone()),
            "callback" => Some(self.callback.clone()),
            "hosts_port" => Some(self.hosts_port.to_string()),
            _ => self.captured.get(name).cloned(),
        }
    }

    /// Fills every `{…}` in `text`. `{{` and `}}` stand for literal braces.
    pub fn fill(&self, text: &str) -> Result<String, UnknownPlaceholder> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            if let Some(after) = tail.strip_prefix("{{") {
                out.push('{');
                rest = after;
            } else if let Some(after) = tail.strip_prefix("}}") {
                out.push('}');
                rest = after;
            } else if let Some(after) = tail.strip_prefix('{') {
                let Some(close) = after.find('}') else {
                    return Err(UnknownPlaceholder(after.to_owned()));
                };
                let name = &after[..close];
                out.push_str(
                    &self
                        .lookup(name)
                        .ok_or_else(|| UnknownPlaceholder(name.to_owned()))?,
                );
                rest = &after[close + 1..];
            } else {
                // A lone `}` is literal text.
                out.push('}');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Fills placeholders in every string (not in keys) of a JSON tree.
    pub fn fill_json(
        &self,
        value: &serde_json::Value,
    ) -> Result<serde_json::Value, UnknownPlaceholder> {
        use serde_json::Value;
        Ok(match value {
            Value::String(s) => Value::String(self.fill(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.fill_json(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.fill_json(v)?)))
                    .collect::<Result<_, UnknownPlaceholder>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Bindings for checking a file at load time: every name resolves to a dummy value, and
    /// captured values are accepted when they name a declared step.
    pub fn for_validation(step_ids: &[String]) -> Self {
        let mut captured = BTreeMap::new();
        for id in step_ids {
            for name in CAPTURED_NAMES {
                captured.insert(format!("{id}.{name}"), format!("<{id}.{name}>"));
            }
        }
        for name in [
            super::registration::TEMPLATE,
            super::registration::REGISTRATION_ENDPOINT,
            super::par::PAR_ENDPOINT,
        ] {
            captured.insert(name.to_owned(), format!("<{name}>"));
        }
        Self {
            ns: "scenario.validate.example".to_owned(),
            hosts_port: 1,
            issuer: "https://as.validate.example".to_owned(),
            callback: "http://127.0.0.1:1".to_owned(),
            captured,
        }
    }
}

/// The names a step can capture for later steps (`{flow.code}`). Register, http and
/// initial_access_token steps capture every top-level string or number member of their JSON
/// answer; the RFC 7591/7592 names below are the ones scenarios may refer to.
pub const CAPTURED_NAMES: &[&str] = &[
    "code",
    "state",
    "iss",
    "error",
    "code_verifier",
    "client_id",
    "redirect_uri",
    "access_token",
    "refresh_token",
    "status",
    "client_assertion",
    "client_secret",
    "client_id_issued_at",
    "client_secret_expires_at",
    "registration_access_token",
    "registration_client_uri",
    "token_endpoint_auth_method",
    "client_name",
    "software_id",
    "scope",
    "expires_in",
    "token_type",
    "device_code",
    "user_code",
    "verification_uri",
    "verification_uri_complete",
    "interval",
    "request_uri",
];

/// A DNS label: what `{host:…}` accepts.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 40
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings() -> Bindings {
        let mut b = Bindings {
            ns: "s1.cimd.example".into(),
            hosts_port: 8443,
            issuer: "https://localhost:9000".into(),
            callback: "http://127.0.0.1:49200".into(),
            captured: BTreeMap::new(),
        };
        b.captured.insert("flow.code".into(), "abc{x}".into());
        b
    }

    #[test]
    fn fills_hosts_issuer_callback_and_captured_values_once() {
        let b = bindings();
        assert_eq!(
            b.fill("{host:www}/c.json").unwrap(),
            "https://www.s1.cimd.example:8443/c.json"
        );
        assert_eq!(b.fill("{hostname:www}").unwrap(), "www.s1.cimd.example");
        assert_eq!(
            b.fill("{issuer}/token").unwrap(),
            "https://localhost:9000/token"
        );
        assert_eq!(
            b.fill("{callback}/cb").unwrap(),
            "http://127.0.0.1:49200/cb"
        );
        // A captured value containing braces is not expanded again.
        assert_eq!(b.fill("code={flow.code}").unwrap(), "code=abc{x}");
        assert_eq!(b.fill("{{literal}}").unwrap(), "{literal}");
        assert_eq!(b.fill("a } b").unwrap(), "a } b");
    }

    #[test]
    fn refuses_unknown_or_unterminated_placeholders() {
        let b = bindings();
        assert!(b.fill("{nope}").is_err());
        assert!(b.fill("{host:Bad_Label}").is_err());
        assert!(b.fill("{host:www").is_err());
        assert!(b.fill("{other.code}").is_err());
    }
}
