//! Load-time checks of scenario files, so a mistake surfaces before any run.
//!
//! Everything is checked with dummy bindings: placeholders resolve, routes build (fixture files
//! exist and the metadata host accepts the spec), step ids are unique and referenced ones exist,
//! each expectation sets exactly one kind of evidence, titles are declarative and unique, and each
//! scenario names a fault for its negative run or says why none can break it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use reference_as::faults::Fault;

use super::Scenario;
use super::file::Step;
use super::template::Bindings;

/// Words a title may not contain: titles state behaviour, the catalogue holds the keyword.
const KEYWORDS: &[&str] = &["MUST", "SHOULD", "SHALL", "REQUIRED", "MAY", "RECOMMENDED"];

/// Every problem found in `scenarios`, as `(scenario id, message)`; `known_requirement` says
/// whether a requirement ID exists in the catalogue.
pub fn validate(
    scenarios: &[Scenario],
    fixtures: &Path,
    known_requirement: &dyn Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut titles: BTreeMap<&str, &str> = BTreeMap::new();
    for scenario in scenarios {
        let mut report = |message: String| problems.push((scenario.id.clone(), message));
        if let Some(other) = titles.insert(scenario.file.title.as_str(), scenario.id.as_str()) {
            report(format!("title is also used by {other}"));
        }
        for problem in validate_one(scenario, fixtures, known_requirement) {
            report(problem);
        }
    }
    problems
}

fn validate_one(
    scenario: &Scenario,
    fixtures: &Path,
    known_requirement: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let file = &scenario.file;
    let words: BTreeSet<&str> = file
        .title
        .split(|c: char| !c.is_ascii_alphabetic())
        .collect();
    for keyword in KEYWORDS {
        if words.contains(keyword) {
            problems.push(format!(
                "title contains {keyword}; state the behaviour instead"
            ));
        }
    }
    if file.title.trim().is_empty() {
        problems.push("title is empty".to_owned());
    }
    if file.steps.is_empty() {
        problems.push("no [[step]]".to_owned());
    }
    if file.expects.is_empty() {
        problems.push("no [[expect]]".to_owned());
    }

    let ids = scenario.step_ids();
    let bindings = Bindings::for_validation(&ids);
    validate_steps(scenario, &ids, &bindings, fixtures, &mut problems);
    validate_expects(scenario, &ids, known_requirement, &mut problems);
    validate_negative(scenario, &bindings, &mut problems);
    problems
}

fn validate_steps(
    scenario: &Scenario,
    ids: &[String],
    bindings: &Bindings,
    fixtures: &Path,
    problems: &mut Vec<String>,
) {
    let file = &scenario.file;
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            problems.push(format!("step id {id:?} is declared twice"));
        }
    }
    for (url, route) in &file.routes {
        if let Err(e) = bindings
            .fill(url)
            .map_err(|e| e.to_string())
            .and_then(|_| super::build_route(route, bindings, fixtures))
        {
            problems.push(format!("route {url}: {e}"));
        }
    }
    for (index, step) in file.steps.iter().enumerate() {
        for text in super::registration::step_strings(step) {
            if let Err(e) = bindings.fill(&text) {
                problems.push(format!("step {}: {e}", index + 1));
            }
        }
        match step {
            Step::Route(r) => {
                if let Err(e) = super::build_route(&r.reply, bindings, fixtures) {
                    problems.push(format!("step {}: route: {e}", index + 1));
                }
            }
            Step::Register(r) => {
                // Dummy bindings name a template, so only the body's own mistakes show.
                if let Err(e) = super::registration::registration_body(
                    r,
                    bindings,
                    fixtures,
                    Some("<template>"),
                ) {
                    problems.push(format!("step {}: {e}", index + 1));
                }
                if r.concurrent == 0 {
                    problems.push(format!("step {}: concurrent = 0 sends nothing", index + 1));
                }
            }
            Step::Http(h) if h.json.is_some() && h.body.is_some() => {
                problems.push(format!("step {}: http sets both body and json", index + 1));
            }
            Step::EditTemplate(t) if !t.set.is_table() => {
                problems.push(format!(
                    "step {}: edit_template.set is not a table",
                    index + 1
                ));
            }
            Step::Token(t) => {
                if let Some(assertion) = &t.client_assertion {
                    for problem in assertion.problems(fixtures) {
                        problems.push(format!("step {}: {problem}", index + 1));
                    }
                }
                for reference in t.exchange.iter().chain(t.refresh.iter()) {
                    if !ids.contains(reference) {
                        problems.push(format!(
                            "step {}: refers to unknown step {reference:?}",
                            index + 1
                        ));
                    }
                }
            }
            _ => {}
        }
    }
}

fn validate_expects(
    scenario: &Scenario,
    ids: &[String],
    known_requirement: &dyn Fn(&str) -> bool,
    problems: &mut Vec<String>,
) {
    for (index, expect) in scenario.file.expects.iter().enumerate() {
        let n = index + 1;
        if !known_requirement(&expect.requirement) {
            problems.push(format!(
                "expect {n}: unknown requirement {}",
                expect.requirement
            ));
        }
        let kinds = expect.kinds();
        if kinds.len() != 1 {
            problems.push(format!(
                "expect {n}: sets {} kinds of evidence ({kinds:?}); exactly one",
                kinds.len()
            ));
        }
        if let Some(step) = expect.step.as_ref().filter(|s| !ids.contains(s)) {
            problems.push(format!("expect {n}: refers to unknown step {step:?}"));
        }
    }
}

fn validate_negative(scenario: &Scenario, bindings: &Bindings, problems: &mut Vec<String>) {
    let file = &scenario.file;
    let negative = &file.negative;
    match (&negative.fault, &negative.reason) {
        (Some(fault), None) => match fault.parse::<Fault>() {
            Ok(fault) => {
                let requirement = negative
                    .requirement
                    .as_deref()
                    .unwrap_or(fault.requirement());
                if !file.expects.iter().any(|e| e.requirement == requirement) {
                    problems.push(format!(
                        "[negative] fault {fault} breaks {requirement}, which no expectation checks"
                    ));
                }
            }
            Err(e) => problems.push(format!("[negative] {e}")),
        },
        (None, Some(reason)) if !reason.trim().is_empty() => {}
        _ => problems.push("[negative] needs exactly one of fault or reason".to_owned()),
    }
    let Some(settings) = &file.reference_as else {
        return;
    };
    if settings.ephemeral_clients.is_none() && settings.config_tables().next().is_none() {
        problems.push(
            "[reference_as] sets none of ephemeral_clients, registration, client_auth, tokens, par"
                .to_owned(),
        );
    }
    if let Some(Err(e)) = settings
        .ephemeral_clients
        .as_ref()
        .map(|table| super::policy(table, bindings))
    {
        problems.push(format!("[reference_as.ephemeral_clients]: {e}"));
    }
    for (section, table) in settings.config_tables() {
        if let Err(e) = super::section_settings(section, table, bindings) {
            problems.push(format!("[reference_as.{section}]: {e}"));
        }
    }
}
