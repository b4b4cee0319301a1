//! The console report: one line per check, and for every check that did not pass the
//! requirement's text, what was expected and what happened (h2spec style), so a reader never
//! has to open the catalogue to understand a failure. The last line starts with
//! `N passed, N failed`, which CI scripts parse. The progress bar goes to stderr, and only when
//! stderr is a terminal, so piped output stays clean.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Grade, Report, links};
use crate::catalogue::Catalogue;

/// Indentation of the detail lines under a check, past the mark column.
const DETAIL: &str = "             ";

/// The whole console report for `report`; `elapsed` goes into the summary line.
pub fn render(report: &Report, catalogue: &Catalogue, elapsed: Option<Duration>) -> String {
    let mut out = String::new();
    for scenario in &report.scenarios {
        let _ = writeln!(out, "{}  {}", scenario.id, scenario.title);
        match (scenario.status, &scenario.reason) {
            ("error", Some(reason)) => {
                let _ = writeln!(out, "  HARNESS ERROR: {reason}");
            }
            ("not-applicable", Some(reason)) => {
                let _ = writeln!(out, "  not applicable: {reason}");
            }
            _ => {}
        }
        for check in &scenario.checks {
            let _ = writeln!(
                out,
                "  {:<10} {:<14} {}",
                check.grade.mark(),
                check.requirement,
                check.expected
            );
            if check.grade == Grade::Pass {
                continue;
            }
            if let Some(row) = catalogue.get(&check.requirement) {
                let document = catalogue
                    .documents()
                    .iter()
                    .find(|d| d.family == row.family);
                let section = links::citation(row, document)
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{DETAIL}requirement  {} ({}{section})",
                    row.text, row.strength
                );
            }
            let _ = writeln!(out, "{DETAIL}expected     {}", check.expected);
            let _ = writeln!(out, "{DETAIL}actual       {}", check.actual);
            if let Some(reason) = &check.baseline {
                let _ = writeln!(out, "{DETAIL}baselined    {reason}");
            }
        }
    }
    for stale in &report.stale_baseline {
        let _ = writeln!(
            out,
            "STALE BASELINE ENTRY {} / {}: {} (its reason: {})",
            stale.scenario, stale.requirement, stale.why, stale.reason
        );
    }
    if !report.run.faults.is_empty() {
        let _ = writeln!(out, "faults switched on: {}", report.run.faults.join(", "));
    }
    out.push_str(&summary_line(report, elapsed));
    out.push('\n');
    out
}

/// `N passed, N failed, N warnings, N info, N baselined (…)`: the phrase at the start is
/// parsed by CI and stays exactly so.
pub fn summary_line(report: &Report, elapsed: Option<Duration>) -> String {
    let s = &report.summary;
    let mut line = format!(
        "{} passed, {} failed, {} warnings, {} info, {} baselined ({} scenarios, {} checks",
        s.passed, s.failed, s.warned, s.info, s.baselined, s.scenarios, s.checks
    );
    if s.untestable > 0 {
        let _ = write!(line, ", {} untestable", s.untestable);
    }
    if s.stale_baseline > 0 {
        let _ = write!(line, ", {} stale baseline entries", s.stale_baseline);
    }
    if s.harness_errors > 0 {
        let _ = write!(line, ", {} harness errors", s.harness_errors);
    }
    if let Some(elapsed) = elapsed {
        let _ = write!(line, " in {} ms", elapsed.as_millis());
    }
    line.push(')');
    line
}

/// A progress bar over `scenarios` on stderr, hidden unless stderr is a terminal.
pub fn progress_bar(scenarios: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(
        Some(u64::try_from(scenarios).unwrap_or(u64::MAX)),
        ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} scenarios  {msg}") {
        bar.set_style(style);
    }
    bar
}
