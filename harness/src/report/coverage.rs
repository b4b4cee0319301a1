//! Coverage: which catalogue rows the scenarios check, which are excluded and why, and which
//! are neither. Read statically from the scenario files (no run), so `validate` can refuse a
//! catalogue whose absolute CIMD requirements are silently untested.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::catalogue::{Catalogue, Family, Requirement, Severity};
use crate::scenario::Scenario;

/// One catalogue row and the scenarios that check it.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    /// The catalogue row.
    pub requirement: &'a Requirement,
    /// How many expectations name it, across all scenarios.
    pub checks: usize,
    /// The scenarios with such an expectation, sorted.
    pub scenarios: Vec<&'a str>,
}

impl Row<'_> {
    /// Whether some scenario checks it.
    pub fn covered(&self) -> bool {
        self.checks > 0
    }

    /// Whether it is an absolute CIMD requirement (MUST, MUST NOT, REQUIRED, SHALL, SHALL NOT)
    /// with neither a scenario nor an `excluded` reason: the gap `coverage` and `validate`
    /// refuse.
    pub fn is_cimd_gap(&self) -> bool {
        self.requirement.family == Family::Cimd
            && self.requirement.severity() == Severity::Fail
            && !self.covered()
            && self.requirement.excluded.is_none()
    }
}

/// Per-family counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Rows in the family.
    pub rows: usize,
    /// Rows some scenario checks.
    pub covered: usize,
    /// Rows not covered but excluded with a reason.
    pub excluded: usize,
    /// Rows neither covered nor excluded.
    pub open: usize,
    /// Expectations naming the family's rows.
    pub checks: usize,
}

/// The catalogue × scenarios table.
#[derive(Debug, Clone)]
pub struct Coverage<'a> {
    /// Every catalogue row, in catalogue order.
    pub rows: Vec<Row<'a>>,
}

impl<'a> Coverage<'a> {
    /// Counts, per catalogue row, the expectations of `scenarios` that name it.
    pub fn build(catalogue: &'a Catalogue, scenarios: &'a [Scenario]) -> Coverage<'a> {
        let mut by_id: BTreeMap<&str, (usize, Vec<&'a str>)> = BTreeMap::new();
        for scenario in scenarios {
            for expect in &scenario.file.expects {
                let entry = by_id.entry(expect.requirement.as_str()).or_default();
                entry.0 += 1;
                if !entry.1.contains(&scenario.id.as_str()) {
                    entry.1.push(&scenario.id);
                }
            }
        }
        let rows = catalogue
            .iter()
            .map(|requirement| {
                let (checks, mut scenarios) =
                    by_id.remove(requirement.id.as_str()).unwrap_or_default();
                scenarios.sort_unstable();
                Row {
                    requirement,
                    checks,
                    scenarios,
                }
            })
            .collect();
        Coverage { rows }
    }

    /// Counts per family.
    pub fn totals(&self) -> BTreeMap<Family, Totals> {
        let mut totals: BTreeMap<Family, Totals> = BTreeMap::new();
        for row in &self.rows {
            let t = totals.entry(row.requirement.family).or_default();
            t.rows += 1;
            t.checks += row.checks;
            if row.covered() {
                t.covered += 1;
            } else if row.requirement.excluded.is_some() {
                t.excluded += 1;
            } else {
                t.open += 1;
            }
        }
        totals
    }

    /// Absolute CIMD rows with neither a scenario nor an exclusion.
    pub fn cimd_gaps(&self) -> Vec<&Requirement> {
        self.rows
            .iter()
            .filter(|r| r.is_cimd_gap())
            .map(|r| r.requirement)
            .collect()
    }

    /// The table as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::from("# Requirement coverage\n\n");
        out.push_str("| Family | Rows | Covered | Excluded | Open | Checks |\n|---|---:|---:|---:|---:|---:|\n");
        for (family, t) in self.totals() {
            let _ = writeln!(
                out,
                "| {family} | {} | {} | {} | {} | {} |",
                t.rows, t.covered, t.excluded, t.open, t.checks
            );
        }
        out.push_str("\n| ID | Strength | Actor | Checks | Scenarios or exclusion |\n|---|---|---|---:|---|\n");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                row.requirement.id,
                row.requirement.strength,
                actor(row.requirement),
                row.checks,
                coverage_cell(row).replace('|', "\\|")
            );
        }
        out.push_str(&self.gaps_section(
            "\n## Absolute CIMD requirements without coverage or exclusion\n\n",
            "- ",
        ));
        out
    }

    /// The table as aligned plain text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:<16} {:<15} {:<14} {:>3}  {}",
                row.requirement.id.as_str(),
                row.requirement.strength.keyword(),
                actor(row.requirement),
                row.checks,
                coverage_cell(row)
            );
        }
        out.push('\n');
        for (family, t) in self.totals() {
            let _ = writeln!(
                out,
                "{:<9} {:>3} rows: {:>3} covered, {:>3} excluded, {:>3} open; {} checks",
                family.to_string(),
                t.rows,
                t.covered,
                t.excluded,
                t.open,
                t.checks
            );
        }
        out.push_str(&self.gaps_section(
            "\nAbsolute CIMD requirements without coverage or exclusion:\n",
            "  ",
        ));
        out
    }

    fn gaps_section(&self, heading: &str, bullet: &str) -> String {
        let gaps = self.cimd_gaps();
        let mut out = heading.to_owned();
        if gaps.is_empty() {
            let _ = writeln!(out, "{bullet}none");
        }
        for row in gaps {
            let _ = writeln!(out, "{bullet}{} ({}): {}", row.id, row.strength, row.text);
        }
        out
    }
}

fn actor(row: &Requirement) -> String {
    match row.profile {
        Some(profile) => format!("{} ({profile})", row.actor),
        None => row.actor.to_string(),
    }
}

/// The scenarios checking a row, else its exclusion, else a dash.
fn coverage_cell(row: &Row<'_>) -> String {
    if row.covered() {
        row.scenarios.join(", ")
    } else if let Some(reason) = &row.requirement.excluded {
        format!("excluded: {reason}")
    } else {
        "—".to_owned()
    }
}
