//! `report.html`: the page a person reads after a run. Checks are grouped by requirement document
//! and by section (the newest revision's), documents and sections with failures come first and
//! are expanded (`<details open>`), and every check shows the requirement's text and links to its
//! sections beside expected versus actual. The template is embedded and rendered with minijinja,
//! which escapes every value because the template's name ends in `.html`: texts from a target
//! (error pages, JSON bodies) cannot inject markup. No JavaScript.

use std::collections::BTreeMap;

use serde::Serialize;

use super::links::{self, SectionLink};
use super::{Grade, Report, ReportError, RunInfo, StaleEntry, Summary, console};
use crate::catalogue::{Catalogue, Document, Family};

const TEMPLATE: &str = include_str!("report.html");

#[derive(Serialize)]
struct Page<'a> {
    summary_line: String,
    run: &'a RunInfo,
    summary: &'a Summary,
    errors: Vec<(&'a str, &'a str)>,
    stale: &'a [StaleEntry],
    documents: Vec<DocView<'a>>,
}

#[derive(Serialize)]
struct DocView<'a> {
    title: String,
    url: String,
    version: String,
    passed: usize,
    total: usize,
    open: bool,
    #[serde(skip)]
    worst: Grade,
    #[serde(skip)]
    family: Option<Family>,
    sections: Vec<SectionView<'a>>,
}

#[derive(Serialize)]
struct SectionView<'a> {
    label: String,
    url: String,
    passed: usize,
    total: usize,
    open: bool,
    #[serde(skip)]
    worst: Grade,
    #[serde(skip)]
    sort: String,
    checks: Vec<CheckView<'a>>,
}

#[derive(Serialize)]
struct CheckView<'a> {
    mark: &'static str,
    grade: Grade,
    requirement: &'a str,
    strength: String,
    text: &'a str,
    sections: Vec<SectionLink>,
    scenario: &'a str,
    title: &'a str,
    expected: &'a str,
    actual: &'a str,
    baseline: Option<&'a str>,
}

/// Renders `report.html`.
pub fn render(report: &Report, catalogue: &Catalogue) -> Result<String, ReportError> {
    let page = Page {
        summary_line: console::summary_line(report, None),
        run: &report.run,
        summary: &report.summary,
        errors: report
            .scenarios
            .iter()
            .filter(|s| s.status == "error")
            .map(|s| (s.id.as_str(), s.reason.as_deref().unwrap_or_default()))
            .collect(),
        stale: &report.stale_baseline,
        documents: group(report, catalogue),
    };
    let render_error = |e: minijinja::Error| ReportError::Render {
        file: "report.html",
        message: e.to_string(),
    };
    let mut env = minijinja::Environment::new();
    // Block tags leave no blank lines behind, so the page source stays readable too.
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(render_error)?;
    env.set_syntax(syntax);
    env.add_template("report.html", TEMPLATE)
        .map_err(render_error)?;
    env.get_template("report.html")
        .and_then(|t| t.render(minijinja::value::Serde(&page)))
        .map_err(render_error)
}

/// Checks grouped by document, then section; failing groups first.
fn group<'a>(report: &'a Report, catalogue: &'a Catalogue) -> Vec<DocView<'a>> {
    // family (None: not in the catalogue) → section label → view
    let mut docs: BTreeMap<Option<Family>, DocView<'a>> = BTreeMap::new();
    for (scenario, check) in report.checks() {
        let row = catalogue.get(&check.requirement);
        let family = row.map(|r| r.family);
        let document: Option<&Document> =
            family.and_then(|f| catalogue.documents().iter().find(|d| d.family == f));
        let doc = docs.entry(family).or_insert_with(|| DocView {
            title: document.map_or_else(|| "Not in the catalogue".to_owned(), |d| d.title.clone()),
            url: document.map(|d| d.url.clone()).unwrap_or_default(),
            version: document.map(|d| d.version.clone()).unwrap_or_default(),
            passed: 0,
            total: 0,
            open: false,
            worst: Grade::Pass,
            family,
            sections: Vec::new(),
        });
        let primary = row.and_then(links::primary_section);
        let label = primary.map_or_else(|| "No section".to_owned(), |(r, s)| links::label(r, s));
        let at = if let Some(at) = doc.sections.iter().position(|s| s.label == label) {
            at
        } else {
            doc.sections.push(SectionView {
                url: primary.map_or_else(
                    || doc.url.clone(),
                    |(r, s)| links::section_url(&doc.url, r, s),
                ),
                // The document's own revisions (`-02`) before other documents (`RFC 9700`).
                sort: primary.map_or_else(String::new, |(r, s)| {
                    format!("{} {s}", u8::from(!r.starts_with('-')))
                }),
                label,
                passed: 0,
                total: 0,
                open: false,
                worst: Grade::Pass,
                checks: Vec::new(),
            });
            doc.sections.len() - 1
        };
        let Some(section) = doc.sections.get_mut(at) else {
            continue;
        };
        let pass = usize::from(check.grade == Grade::Pass);
        section.passed += pass;
        section.total += 1;
        section.worst = section.worst.min(check.grade);
        doc.passed += pass;
        doc.total += 1;
        doc.worst = doc.worst.min(check.grade);
        section.checks.push(CheckView {
            mark: check.grade.mark(),
            grade: check.grade,
            requirement: &check.requirement,
            strength: check.strength.to_string(),
            text: row.map_or("", |r| r.text.as_str()),
            sections: row
                .map(|r| links::sections(r, document))
                .unwrap_or_default(),
            scenario: &scenario.id,
            title: &scenario.title,
            expected: &check.expected,
            actual: &check.actual,
            baseline: check.baseline.as_deref(),
        });
    }
    let mut docs: Vec<DocView<'a>> = docs.into_values().collect();
    for doc in &mut docs {
        doc.open = doc.worst != Grade::Pass;
        for section in &mut doc.sections {
            section.open = section.worst != Grade::Pass;
            // Stable: checks of equal grade keep scenario order.
            section.checks.sort_by_key(|c| c.grade);
        }
        doc.sections.sort_by(|a, b| {
            a.worst
                .cmp(&b.worst)
                .then_with(|| links::compare_sections(&a.sort, &b.sort))
                .then_with(|| a.label.cmp(&b.label))
        });
    }
    docs.sort_by(|a, b| a.worst.cmp(&b.worst).then_with(|| a.family.cmp(&b.family)));
    docs
}
