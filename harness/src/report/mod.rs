//! Reports: scoring judged checks against the catalogue, and writing them for people and CI.
//!
//! The judge says whether the evidence met an expectation ([`Verdict`]); this module says what
//! that means for the run ([`Grade`]). Severity comes from the catalogue row's keyword, never
//! from the scenario (design principle 3): a violated MUST fails, a violated SHOULD warns
//! (`--strict` makes it fail), a violated MAY or informative row is recorded as `info`, and an
//! untestable check always fails (principle 4). A baseline turns listed non-passing checks into
//! `baselined`, and its stale entries fail the run. A requirement the catalogue does not know is
//! a harness error, not a target failure (principle 8).
//!
//! One [`Report`] model feeds every writer, so the console, `report.json`, `junit.xml`,
//! `summary.md` and `report.html` always agree.
//!
//! # `report.json` (schema `cimd-conformance/report/1`)
//!
//! Two runs of an unchanged suite against an unchanged target produce byte-identical files: there
//! are no timestamps, durations, ports or random values (see [`scrub`]), scenarios are sorted by
//! ID and checks keep their order in the scenario file.
//!
//! ```text
//! {
//!   "schema": "cimd-conformance/report/1",
//!   "run": {
//!     "tool": "cimd-conformance 0.1.0",
//!     "target": "reference-as",            // what was tested
//!     "only": ["cimd/*"],                   // --only globs, as given
//!     "faults": ["hide-cimd-support"],      // reference-AS faults switched on
//!     "strict": false,                      // --strict: SHOULD violations fail
//!     "baseline": "known.toml" | null       // --baseline, as given
//!   },
//!   "summary": {
//!     "scenarios": 11, "not_applicable": 0, "harness_errors": 0,
//!     "checks": 29, "passed": 28, "failed": 1, "untestable": 0,
//!     "warned": 0, "info": 0, "baselined": 0, "stale_baseline": 0,
//!     "exit_code": 1
//!   },
//!   "scenarios": [{
//!     "id": "cimd/meta-01-discovery",
//!     "title": "The AS metadata advertises …",
//!     "status": "ran" | "not-applicable" | "error",
//!     "reason": "…",                        // only for not-applicable and error
//!     "checks": [{
//!       "requirement": "CIMD-META-01",
//!       "strength": "MUST",                 // the catalogue keyword
//!       "severity": "fail" | "warn" | "info", // what a violation means in this run
//!       "verdict": "pass" | "fail" | "untestable", // the judge's finding
//!       "grade": "pass" | "fail" | "untestable" | "warn" | "info" | "baselined",
//!       "expected": "…",
//!       "actual": "…",
//!       "baseline": "reason from the baseline"   // only when baselined
//!     }]
//!   }],
//!   "stale_baseline": [{ "scenario": "…", "requirement": "…", "reason": "…", "why": "…" }]
//! }
//! ```
//!
//! `failed` counts grades `fail` and `untestable`; `untestable` counts the latter alone. Fields
//! are only ever added within schema 1; a removal or change of meaning bumps the number.
//!
//! # `evidence/<scenario>.jsonl`
//!
//! One JSON object a line, `{"seq": …, "source": …, "detail": …}`, in the process-wide sequence
//! order: `harness` (what the user agent sent and got back), `metadata-host` (requests to the
//! scenario's hosts), `mail` (messages to its user, bodies redacted) and, when the target serves
//! Prometheus text at `{issuer}/metrics`, one `metrics` entry last:
//!
//! ```text
//! {"seq": 30, "source": "metrics", "detail": {
//!   "shared": false,     // true: other scenarios used the same AS meanwhile, so the delta
//!                        // includes their traffic; false: the scenario had an AS of its own
//!   "before": {"reference_as_cache_hits_total{cache=\"metadata\"}": 0, …},  // before step 1
//!   "after":  {"reference_as_cache_hits_total{cache=\"metadata\"}": 1, …},  // after the last
//!   "delta":  {"reference_as_cache_hits_total{cache=\"metadata\"}": 1, …},  // changed only
//!   "types":  {"reference_as_cache_hits_total": "counter", …}                // # TYPE lines
//! }}
//! ```
//!
//! The judge never sees it (see [`crate::metrics`]); unlike `report.json`, evidence files keep
//! ports and random values, and differ between runs.

pub mod console;
pub mod coverage;
pub mod html;
pub mod junit;
pub mod links;
pub mod markdown;
pub mod scrub;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::baseline::Baseline;
use crate::catalogue::{Catalogue, Severity, Strength};
use crate::scenario::Scenario;
use crate::scenario::judge::Verdict;
use crate::suite::{ScenarioOutcome, Status};

pub use self::scrub::Scrubber;

/// The `schema` value of `report.json`.
pub const SCHEMA: &str = "cimd-conformance/report/1";

/// Why a report could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Checks name requirements the catalogue does not have: a broken scenario, exit 2.
    #[error("unknown requirement(s), not in the catalogue: {}", list(.0))]
    UnknownRequirements(Vec<(String, String)>),
    /// A report file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A report could not be rendered.
    #[error("rendering {file}: {message}")]
    Render {
        /// The report file.
        file: &'static str,
        /// What went wrong.
        message: String,
    },
}

fn list(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs.iter().map(|(s, r)| format!("{s}: {r}")).collect();
    items.join(", ")
}

/// What a check means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grade {
    /// A violated check of fail severity.
    Fail,
    /// The evidence was never produced; always a failure.
    Untestable,
    /// A violated check of warn severity (SHOULD without `--strict`).
    Warn,
    /// A violated check of info severity (MAY, informative): behaviour recorded.
    Info,
    /// A non-passing check listed in the baseline.
    Baselined,
    /// The requirement held.
    Pass,
}

impl Grade {
    /// Grades a judged check: the verdict, the row's severity, and whether a baseline lists it.
    pub fn of(verdict: Verdict, severity: Severity, baselined: bool) -> Grade {
        match (verdict, baselined) {
            (Verdict::Pass, _) => Grade::Pass,
            (_, true) => Grade::Baselined,
            (Verdict::Untestable, false) => Grade::Untestable,
            (Verdict::Fail, false) => match severity {
                Severity::Fail => Grade::Fail,
                Severity::Warn => Grade::Warn,
                Severity::Info => Grade::Info,
            },
        }
    }

    /// The console mark; failures shout.
    pub fn mark(self) -> &'static str {
        match self {
            Grade::Pass => "pass",
            Grade::Fail => "FAIL",
            Grade::Untestable => "UNTESTABLE",
            Grade::Warn => "warn",
            Grade::Info => "info",
            Grade::Baselined => "baselined",
        }
    }

    /// Whether it fails the run (exit 1).
    pub fn fails_run(self) -> bool {
        matches!(self, Grade::Fail | Grade::Untestable)
    }
}

/// What was run, without anything that changes between two runs of the same thing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunInfo {
    /// Tool name and version.
    pub tool: String,
    /// What was tested (`reference-as` for the embedded reference AS).
    pub target: String,
    /// `--only` globs, as given.
    pub only: Vec<String>,
    /// Reference-AS faults switched on.
    pub faults: Vec<String>,
    /// Whether `--strict` was given.
    pub strict: bool,
    /// `--baseline`, as given.
    pub baseline: Option<String>,
}

/// Counts over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Scenarios selected.
    pub scenarios: usize,
    /// Scenarios the target does not claim the features for.
    pub not_applicable: usize,
    /// Scenarios the harness could not run (exit 2).
    pub harness_errors: usize,
    /// Checks judged.
    pub checks: usize,
    /// Checks that passed.
    pub passed: usize,
    /// Checks graded `fail` or `untestable`.
    pub failed: usize,
    /// Of those, the untestable ones.
    pub untestable: usize,
    /// Checks graded `warn`.
    pub warned: usize,
    /// Checks graded `info`.
    pub info: usize,
    /// Checks graded `baselined`.
    pub baselined: usize,
    /// Stale baseline entries.
    pub stale_baseline: usize,
    /// The process exit code this report implies.
    pub exit_code: u8,
}

/// One graded check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Requirement ID.
    pub requirement: String,
    /// The catalogue keyword.
    pub strength: Strength,
    /// What a violation means in this run (after `--strict`).
    pub severity: Severity,
    /// The judge's finding.
    pub verdict: Verdict,
    /// What it means for the run.
    pub grade: Grade,
    /// What was expected (scrubbed).
    pub expected: String,
    /// What the evidence shows (scrubbed).
    pub actual: String,
    /// The baseline's reason, when baselined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

/// One scenario's graded result.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Scenario ID.
    pub id: String,
    /// Its title.
    pub title: String,
    /// `ran`, `not-applicable` or `error`.
    pub status: &'static str,
    /// Why it did not run, for `not-applicable` and `error` (scrubbed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its checks, in file order.
    pub checks: Vec<CheckReport>,
}

/// A baseline entry that no longer earns its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleEntry {
    /// The entry's scenario.
    pub scenario: String,
    /// The entry's requirement.
    pub requirement: String,
    /// The entry's reason.
    pub reason: String,
    /// Why it is stale.
    pub why: String,
}

/// The graded run: the model every writer renders.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// What was run.
    pub run: RunInfo,
    /// Counts and the exit code.
    pub summary: Summary,
    /// Scenarios, sorted by ID.
    pub scenarios: Vec<ScenarioReport>,
    /// Stale baseline entries.
    pub stale_baseline: Vec<StaleEntry>,
}

/// How to grade a run.
#[derive(Debug, Clone, Copy)]
pub struct Grading<'a> {
    /// The requirement catalogue (severity per requirement).
    pub catalogue: &'a Catalogue,
    /// `--strict`: SHOULD violations fail.
    pub strict: bool,
    /// Known failures.
    pub baseline: Option<&'a Baseline>,
    /// Every loaded scenario, selected or not, to tell a stale baseline entry from one whose
    /// scenario was merely not selected.
    pub all_scenarios: &'a [Scenario],
    /// Removes run-specific values from texts.
    pub scrubber: &'a Scrubber,
}

/// Expectations naming a requirement the catalogue lacks, as `(scenario, requirement)`.
pub fn unknown_requirements(
    scenarios: &[Scenario],
    catalogue: &Catalogue,
) -> Vec<(String, String)> {
    let mut unknown = BTreeSet::new();
    for scenario in scenarios {
        for expect in &scenario.file.expects {
            if catalogue.get(&expect.requirement).is_none() {
                unknown.insert((scenario.id.clone(), expect.requirement.clone()));
            }
        }
    }
    unknown.into_iter().collect()
}

impl Report {
    /// Grades `outcomes`. Fails only when a check names a requirement the catalogue lacks.
    pub fn build(
        outcomes: &[ScenarioOutcome],
        run: RunInfo,
        grading: &Grading<'_>,
    ) -> Result<Report, ReportError> {
        let mut unknown = Vec::new();
        let mut scenarios = Vec::new();
        for outcome in outcomes {
            let mut checks = Vec::new();
            for check in &outcome.checks {
                let Some(row) = grading.catalogue.get(&check.requirement) else {
                    unknown.push((outcome.id.clone(), check.requirement.clone()));
                    continue;
                };
                let severity = match row.severity() {
                    Severity::Warn if grading.strict => Severity::Fail,
                    other => other,
                };
                let known = grading
                    .baseline
                    .and_then(|b| b.lookup(&outcome.id, &check.requirement));
                checks.push(CheckReport {
                    requirement: check.requirement.clone(),
                    strength: row.strength,
                    severity,
                    verdict: check.verdict,
                    grade: Grade::of(check.verdict, severity, known.is_some()),
                    expected: grading.scrubber.scrub(&check.expected),
                    actual: grading.scrubber.scrub(&check.actual),
                    baseline: known
                        .filter(|_| check.verdict != Verdict::Pass)
                        .map(|k| k.reason.clone()),
                });
            }
            let (status, reason) = match &outcome.status {
                Status::Ran => ("ran", None),
                Status::NotApplicable(why) => ("not-applicable", Some(why)),
                Status::Error(why) => ("error", Some(why)),
            };
            scenarios.push(ScenarioReport {
                id: outcome.id.clone(),
                title: outcome.title.clone(),
                status,
                reason: reason.map(|r| grading.scrubber.scrub(r)),
                checks,
            });
        }
        if !unknown.is_empty() {
            return Err(ReportError::UnknownRequirements(unknown));
        }
        scenarios.sort_by(|a, b| a.id.cmp(&b.id));
        let stale_baseline = grading
            .baseline
            .map(|b| stale_entries(b, grading.all_scenarios, &scenarios))
            .unwrap_or_default();
        let summary = summarize(&scenarios, stale_baseline.len());
        Ok(Report {
            schema: SCHEMA,
            run,
            summary,
            scenarios,
            stale_baseline,
        })
    }

    /// Every graded check with its scenario.
    pub fn checks(&self) -> impl Iterator<Item = (&ScenarioReport, &CheckReport)> {
        self.scenarios
            .iter()
            .flat_map(|s| s.checks.iter().map(move |c| (s, c)))
    }

    /// `report.json`: pretty-printed, newline-terminated.
    pub fn to_json(&self) -> Result<String, ReportError> {
        serde_json::to_string_pretty(self)
            .map(|json| json + "\n")
            .map_err(|e| ReportError::Render {
                file: "report.json",
                message: e.to_string(),
            })
    }
}

fn summarize(scenarios: &[ScenarioReport], stale: usize) -> Summary {
    let mut s = Summary {
        scenarios: scenarios.len(),
        stale_baseline: stale,
        ..Summary::default()
    };
    for scenario in scenarios {
        match scenario.status {
            "error" => s.harness_errors += 1,
            "not-applicable" => s.not_applicable += 1,
            _ => {}
        }
        for check in &scenario.checks {
            s.checks += 1;
            match check.grade {
                Grade::Pass => s.passed += 1,
                Grade::Fail => s.failed += 1,
                Grade::Untestable => {
                    s.failed += 1;
                    s.untestable += 1;
                }
                Grade::Warn => s.warned += 1,
                Grade::Info => s.info += 1,
                Grade::Baselined => s.baselined += 1,
            }
        }
    }
    // A harness error outranks a target failure, so a harness bug never reads as one.
    s.exit_code = if s.harness_errors > 0 {
        2
    } else {
        u8::from(s.failed > 0 || s.stale_baseline > 0)
    };
    s
}

/// Baseline entries that no longer earn their place. Entries for scenarios that exist but were
/// not selected, or did not run (not applicable, harness error), are left alone: nothing was
/// learned about them.
fn stale_entries(baseline: &Baseline, all: &[Scenario], ran: &[ScenarioReport]) -> Vec<StaleEntry> {
    let mut stale = Vec::new();
    for known in baseline.entries() {
        let entry = |why: String| StaleEntry {
            scenario: known.scenario.clone(),
            requirement: known.requirement.clone(),
            reason: known.reason.clone(),
            why,
        };
        let Some(scenario) = all.iter().find(|s| s.id == known.scenario) else {
            stale.push(entry("no such scenario".to_owned()));
            continue;
        };
        if !scenario
            .file
            .expects
            .iter()
            .any(|e| e.requirement == known.requirement)
        {
            stale.push(entry(format!(
                "the scenario has no check of {}",
                known.requirement
            )));
            continue;
        }
        let Some(report) = ran
            .iter()
            .find(|r| r.id == known.scenario && r.status == "ran")
        else {
            continue;
        };
        let passes = report
            .checks
            .iter()
            .filter(|c| c.requirement == known.requirement)
            .all(|c| c.verdict == Verdict::Pass);
        if passes {
            stale.push(entry("it passes now; remove the entry".to_owned()));
        }
    }
    stale
}

/// Writes `report.json`, `junit.xml`, `summary.md`, `report.html` and
/// `evidence/<scenario>.jsonl` (the evidence log, secrets already redacted) into `dir`.
pub fn write_all(
    dir: &Path,
    report: &Report,
    outcomes: &[ScenarioOutcome],
    catalogue: &Catalogue,
) -> Result<(), ReportError> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| ReportError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    let evidence = dir.join("evidence");
    std::fs::create_dir_all(&evidence).map_err(|source| ReportError::Write {
        path: evidence.display().to_string(),
        source,
    })?;
    write("report.json", &report.to_json()?)?;
    write("junit.xml", &junit::render(report, catalogue)?)?;
    write("summary.md", &markdown::render(report, catalogue))?;
    write("report.html", &html::render(report, catalogue)?)?;
    for outcome in outcomes {
        let mut lines = String::new();
        for event in &outcome.log {
            let line = serde_json::to_string(event).map_err(|e| ReportError::Render {
                file: "evidence",
                message: e.to_string(),
            })?;
            lines.push_str(&line);
            lines.push('\n');
        }
        write(&format!("evidence/{}", evidence_file(&outcome.id)), &lines)?;
    }
    Ok(())
}

/// The evidence file name of a scenario: `/` becomes `__`, so IDs map to flat, unique names.
pub fn evidence_file(scenario_id: &str) -> String {
    format!("{}.jsonl", scenario_id.replace('/', "__"))
}
