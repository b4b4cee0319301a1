//! `summary.md`: a short Markdown summary for a pull-request comment or a CI job summary:
//! the counts, a table of every check that did not pass, and the pass rate per requirement
//! document.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Grade, Report, console};
use crate::catalogue::{Catalogue, Family};

/// Renders `summary.md`.
pub fn render(report: &Report, catalogue: &Catalogue) -> String {
    let s = &report.summary;
    let mut md = String::from("# Conformance summary\n\n");
    let _ = writeln!(md, "{}\n", console::summary_line(report, None));
    let _ = writeln!(
        md,
        "Target: {}. Strict: {}. Exit code: {}.\n",
        report.run.target,
        if report.run.strict { "yes" } else { "no" },
        s.exit_code
    );
    md.push_str("| Result | Checks |\n|---|---:|\n");
    for (name, n) in [
        ("passed", s.passed),
        ("failed (incl. untestable)", s.failed),
        ("untestable", s.untestable),
        ("warnings", s.warned),
        ("info", s.info),
        ("baselined", s.baselined),
    ] {
        let _ = writeln!(md, "| {name} | {n} |");
    }
    let _ = writeln!(
        md,
        "\nScenarios: {} ({} not applicable, {} harness errors). Stale baseline entries: {}.",
        s.scenarios, s.not_applicable, s.harness_errors, s.stale_baseline
    );

    let errors: Vec<_> = report
        .scenarios
        .iter()
        .filter(|sc| sc.status == "error")
        .collect();
    if !errors.is_empty() {
        md.push_str("\n## Harness errors\n\n| Scenario | Error |\n|---|---|\n");
        for sc in errors {
            let _ = writeln!(
                md,
                "| {} | {} |",
                cell(&sc.id),
                cell(sc.reason.as_deref().unwrap_or_default())
            );
        }
    }

    unmet_section(&mut md, report);
    pass_rates(&mut md, report, catalogue);
    md
}

/// The checks that did not pass, worst first, and stale baseline entries.
fn unmet_section(md: &mut String, report: &Report) {
    let unmet: Vec<_> = report
        .checks()
        .filter(|(_, c)| c.grade != Grade::Pass)
        .collect();
    md.push_str("\n## Checks that did not pass\n\n");
    if unmet.is_empty() {
        md.push_str("None.\n");
    } else {
        md.push_str("| Result | Scenario | Requirement | Strength | Expected | Actual |\n");
        md.push_str("|---|---|---|---|---|---|\n");
        // Failures first, then warnings, info and baselined (the order of `Grade`).
        let mut sorted = unmet;
        sorted.sort_by_key(|(_, c)| c.grade);
        for (sc, c) in sorted {
            let _ = writeln!(
                *md,
                "| {} | {} | {} | {} | {} | {} |",
                c.grade.mark(),
                cell(&sc.id),
                c.requirement,
                c.strength,
                cell(&c.expected),
                cell(&c.actual)
            );
        }
    }
    if !report.stale_baseline.is_empty() {
        md.push_str("\n## Stale baseline entries\n\n| Scenario | Requirement | Why | Reason given |\n|---|---|---|---|\n");
        for st in &report.stale_baseline {
            let _ = writeln!(
                *md,
                "| {} | {} | {} | {} |",
                cell(&st.scenario),
                st.requirement,
                cell(&st.why),
                cell(&st.reason)
            );
        }
    }
}

/// Passed checks over all checks, per requirement document.
fn pass_rates(md: &mut String, report: &Report, catalogue: &Catalogue) {
    md.push_str("\n## Pass rate per document\n\n| Document | Passed | Checks | Rate |\n|---|---:|---:|---:|\n");
    let mut per: BTreeMap<Family, (usize, usize)> = BTreeMap::new();
    for (_, c) in report.checks() {
        if let Some(row) = catalogue.get(&c.requirement) {
            let entry = per.entry(row.family).or_default();
            entry.1 += 1;
            if c.grade == Grade::Pass {
                entry.0 += 1;
            }
        }
    }
    for (family, (passed, total)) in per {
        let title = catalogue
            .documents()
            .iter()
            .find(|d| d.family == family)
            .map_or_else(|| family.to_string(), |d| d.title.clone());
        let _ = writeln!(
            md,
            "| {} | {passed} | {total} | {} |",
            cell(&title),
            percent(passed, total)
        );
    }
}

/// `passed / total` as a whole percentage, rounded down so 99.9 % never reads as 100 %.
fn percent(passed: usize, total: usize) -> String {
    if total == 0 {
        return "–".to_owned();
    }
    format!("{} %", passed * 100 / total)
}

/// A table cell: pipes escaped, line breaks flattened.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}
