//! Baselines: known failures of a target, each with a reason, so a CI run can stay green while
//! a vendor fixes them and still turn red on anything new.
//!
//! A baseline is a TOML file of `[[known]]` entries naming a scenario and a requirement. A listed
//! check that does not pass is reported as `baselined` instead of failing the run. An entry
//! must keep earning its place: one whose check now passes, or whose scenario or requirement no
//! longer exists, is *stale* and fails the run (exit 1), so a baseline only ever shrinks and
//! never hides a fixed bug's regression later (the MCP conformance suite's rule).
//!
//! ```toml
//! [[known]]
//! scenario = "cimd/fetch-03-no-redirects"
//! requirement = "CIMD-FETCH-03"
//! reason = "ACME-1234: the fetcher follows redirects until release 5.2"
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A baseline that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The file could not be read.
    #[error("cannot read the baseline {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid baseline (bad TOML, unknown keys, missing fields).
    #[error("baseline {}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    known: Vec<Known>,
}

/// One known failure.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Known {
    /// Scenario ID (`cimd/fetch-03-no-redirects`).
    pub scenario: String,
    /// Requirement ID (`CIMD-FETCH-03`); covers every check of it in that scenario.
    pub requirement: String,
    /// Why it is known to fail: a ticket, a release, a decision. Never empty.
    pub reason: String,
}

/// A loaded, validated baseline.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// Where it came from, for messages.
    pub path: PathBuf,
    entries: Vec<Known>,
}

impl Baseline {
    /// Reads and validates a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: path.to_owned(),
            source,
        })?;
        Baseline::parse(&text, path)
    }

    /// Parses baseline text; `path` only names it in errors. Every entry needs a non-empty
    /// reason, and a (scenario, requirement) pair may be listed once.
    pub fn parse(text: &str, path: &Path) -> Result<Baseline, BaselineError> {
        let invalid = |message: String| BaselineError::Invalid {
            path: path.to_owned(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| invalid(e.message().to_owned()))?;
        let mut seen = BTreeSet::new();
        for (at, known) in file.known.iter().enumerate() {
            let label = format!(
                "[[known]] {} ({} / {})",
                at + 1,
                known.scenario,
                known.requirement
            );
            // A known failure without a reason is a failure nobody owns.
            if known.reason.trim().is_empty() {
                return Err(invalid(format!("{label}: `reason` is empty")));
            }
            if known.scenario.trim().is_empty() || known.requirement.trim().is_empty() {
                return Err(invalid(format!(
                    "{label}: `scenario` and `requirement` are required"
                )));
            }
            if !seen.insert((&known.scenario, &known.requirement)) {
                return Err(invalid(format!("{label}: listed twice")));
            }
        }
        Ok(Baseline {
            path: path.to_owned(),
            entries: file.known,
        })
    }

    /// The entry for this scenario's checks of `requirement`, if listed.
    pub fn lookup(&self, scenario: &str, requirement: &str) -> Option<&Known> {
        self.entries
            .iter()
            .find(|k| k.scenario == scenario && k.requirement == requirement)
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[Known] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Baseline, BaselineError> {
        Baseline::parse(text, Path::new("known.toml"))
    }

    #[test]
    fn an_entry_is_found_by_scenario_and_requirement() {
        let baseline = parse(
            "[[known]]\nscenario = \"cimd/a\"\nrequirement = \"CIMD-URL-01\"\nreason = \"ticket 1\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(baseline.lookup("cimd/a", "CIMD-URL-01").is_some());
        assert!(baseline.lookup("cimd/a", "CIMD-URL-02").is_none());
        assert!(baseline.lookup("cimd/b", "CIMD-URL-01").is_none());
    }

    #[test]
    fn unknown_keys_and_duplicates_are_refused() {
        let unknown = parse(
            "[[known]]\nscenario = \"a\"\nrequirement = \"R-1\"\nreason = \"r\"\nowner = \"me\"\n",
        );
        assert!(unknown.is_err());
        let twice = "[[known]]\nscenario = \"a\"\nrequirement = \"R-1\"\nreason = \"r\"\n";
        let err = parse(&format!("{twice}{twice}"))
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("listed twice")));
    }
}
