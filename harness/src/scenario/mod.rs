//! Scenarios: loading and validating scenario files, running them, judging the evidence.
//!
//! A scenario's ID is its path under the scenarios folder without `.toml`
//! (`cimd/fetch-03-no-redirects`). Each runs in its own namespace of host names
//! (`{host:www}` → `https://www.fetch-03-no-redirects.cimd.example:PORT`), so scenarios run
//! concurrently against one set of parties without seeing each other's requests.
//!
//! Layout:
//! - [`file`](mod@file): the file format (steps, expectations, `[negative]`).
//! - [`template`]: placeholders and their bindings.
//! - [`validate`]: load-time checks.
//! - [`run`]: the step runner and the evidence it keeps.
//! - [`assertion`]: `private_key_jwt` client assertions the token step signs.
//! - [`device`]: the RFC 8628 device step (device authorization, user code, approval).
//! - [`par`]: the RFC 9126 `par` step and the authorization requests that continue from it.
//! - [`registration`]: RFC 7591/7592 steps, initial access tokens, the template admin API, and
//!   which targets can run them.
//! - [`judge`]: expectations judged against the evidence.

pub mod assertion;
pub mod device;
pub mod file;
pub mod judge;
pub mod par;
pub mod registration;
pub mod run;
pub mod template;
pub mod validate;

use std::path::{Path, PathBuf};

use metadata_host::{Route, RouteSpec};
use serde::Deserialize;

use self::file::{ScenarioFile, Step};
use self::template::Bindings;

/// A loaded scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Path under the scenarios folder, without `.toml`, `/`-separated.
    pub id: String,
    /// The file it came from.
    pub path: PathBuf,
    /// Its contents.
    pub file: ScenarioFile,
}

impl Scenario {
    /// The namespace domain: the ID's segments reversed, as DNS labels, under `.example`.
    pub fn namespace(&self) -> String {
        let mut labels: Vec<String> = self.id.split('/').rev().map(dns_label).collect();
        labels.push("example".to_owned());
        labels.join(".")
    }

    /// Step ids declared by the scenario.
    pub fn step_ids(&self) -> Vec<String> {
        self.file
            .steps
            .iter()
            .filter_map(Step::id)
            .map(str::to_owned)
            .collect()
    }
}

/// `fetch_03 No.Redirects` → `fetch-03-no-redirects`, at most 63 bytes.
fn dns_label(segment: &str) -> String {
    let mut label: String = segment
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    label.truncate(63);
    let trimmed = label.trim_matches('-');
    if trimmed.is_empty() {
        "x".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A scenario file that could not be loaded, with the reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// Loads every `*.toml` under `root`, except the `requirements/` catalogue; sorted by ID.
pub fn load_all(root: &Path) -> Result<Vec<Scenario>, Vec<LoadError>> {
    let mut files = Vec::new();
    collect(root, root, &mut files).map_err(|e| {
        vec![LoadError {
            path: root.to_owned(),
            message: format!("cannot read the folder: {e}"),
        }]
    })?;
    files.sort();
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        match load_one(root, &path) {
            Ok(s) => scenarios.push(s),
            Err(message) => errors.push(LoadError { path, message }),
        }
    }
    if errors.is_empty() {
        Ok(scenarios)
    } else {
        Err(errors)
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if dir == root && path.file_name().is_some_and(|n| n == "requirements") {
                continue;
            }
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

fn load_one(root: &Path, path: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let file: ScenarioFile = toml::from_str(&text).map_err(|e| e.to_string())?;
    let id = path
        .strip_prefix(root)
        .unwrap_or(path)
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    Ok(Scenario {
        id,
        path: path.to_owned(),
        file,
    })
}

/// Turns a `[routes]` entry into a metadata-host route: fixture files are read (`document =
/// "metadata/x.json"`), placeholders filled, then the metadata host's own spec checks apply.
pub fn build_route(
    value: &toml::Value,
    bindings: &Bindings,
    fixtures: &Path,
) -> Result<Route, String> {
    let mut json = serde_json::to_value(value).map_err(|e| e.to_string())?;
    load_fixtures(&mut json, fixtures)?;
    let filled = bindings.fill_json(&json).map_err(|e| e.to_string())?;
    let spec = RouteSpec::deserialize(filled).map_err(|e| e.to_string())?;
    Route::try_from(spec).map_err(|e| e.to_string())
}

/// The `[reference_as.ephemeral_clients]` table as the reference AS's policy, placeholders filled
/// (so allow-lists can name the scenario's own hosts: `"*.{ns}"`).
pub fn policy(
    table: &toml::Value,
    bindings: &Bindings,
) -> Result<reference_as::cimd::policy::EphemeralPolicy, String> {
    let json = serde_json::to_value(table).map_err(|e| e.to_string())?;
    let filled = bindings.fill_json(&json).map_err(|e| e.to_string())?;
    reference_as::cimd::policy::EphemeralPolicy::deserialize(filled).map_err(|e| e.to_string())
}

/// A `[reference_as.client_auth]`, `[reference_as.tokens]` or `[reference_as.par]` table
/// (`section`), placeholders filled, as JSON members; checked against the AS's own config types,
/// so an unknown key or a wrong type is a scenario error before anything starts.
pub fn section_settings(
    section: &str,
    table: &toml::Value,
    bindings: &Bindings,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let members = registration_settings(table, bindings)?;
    let value = serde_json::Value::Object(members.clone());
    let checked = match section {
        "client_auth" => reference_as::config::ClientAuthConfig::deserialize(value).map(drop),
        "tokens" => reference_as::config::TokenConfig::deserialize(value).map(drop),
        "par" => reference_as::config::ParConfig::deserialize(value).map(drop),
        "registration" => return Ok(members),
        other => return Err(format!("[reference_as.{other}] is not a settable section")),
    };
    checked.map_err(|e| e.to_string())?;
    Ok(members)
}

/// The `[reference_as.registration]` table as JSON members to set over the harness's
/// registration setup, placeholders filled.
pub fn registration_settings(
    table: &toml::Value,
    bindings: &Bindings,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let json = serde_json::to_value(table).map_err(|e| e.to_string())?;
    match bindings.fill_json(&json).map_err(|e| e.to_string())? {
        serde_json::Value::Object(members) => Ok(members),
        _ => Err("not a table".to_owned()),
    }
}

/// Replaces `document = "path"` (here and in `then`) with the fixture file's JSON.
fn load_fixtures(json: &mut serde_json::Value, fixtures: &Path) -> Result<(), String> {
    if let Some(path) = json.get("document").and_then(serde_json::Value::as_str) {
        let file = fixtures.join(path);
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("fixture {}: {e}", file.display()))?;
        let document =
            serde_json::from_str(&text).map_err(|e| format!("fixture {}: {e}", file.display()))?;
        json["document"] = document;
    }
    if let Some(then) = json
        .get_mut("then")
        .and_then(serde_json::Value::as_array_mut)
    {
        for next in then {
            load_fixtures(next, fixtures)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_reversed_dns_labels_under_example() {
        let scenario = Scenario {
            id: "cimd/Fetch_03 no.redirects".to_owned(),
            path: PathBuf::new(),
            file: toml::from_str("title = 't'\n[negative]\nreason = 'r'\n")
                .unwrap_or_else(|e| panic!("{e}")),
        };
        assert_eq!(scenario.namespace(), "fetch-03-no-redirects.cimd.example");
    }
}
