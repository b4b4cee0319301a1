//! `junit.xml`: one testsuite per scenario, one testcase per check, for CI systems that show
//! test results. A testcase is named `REQ-ID: expected`, so a CI page reads like the console.
//! Failures carry the requirement text, expected and actual; warnings and info are passed
//! testcases with a note in system-out (they do not fail the run); baselined checks are skipped
//! with the baseline's reason. A scenario the harness could not run is one errored testcase, and
//! stale baseline entries are failures in a `baseline` testsuite. No timestamps or durations are
//! written, so the file is as stable as `report.json`.

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::{CheckReport, Grade, Report, ReportError};
use crate::catalogue::Catalogue;

/// Renders `junit.xml`.
pub fn render(report: &Report, catalogue: &Catalogue) -> Result<String, ReportError> {
    let mut junit = quick_junit::Report::new("cimd-conformance");
    for scenario in &report.scenarios {
        let mut suite = TestSuite::new(scenario.id.as_str());
        if scenario.status == "error" {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(scenario.reason.clone().unwrap_or_default());
            status.set_type("harness error");
            let mut case = TestCase::new("harness error", status);
            case.set_classname(scenario.id.as_str());
            suite.add_test_case(case);
        }
        for check in &scenario.checks {
            let text = catalogue
                .get(&check.requirement)
                .map_or("", |row| row.text.as_str());
            let mut case = TestCase::new(
                format!("{}: {}", check.requirement, check.expected),
                status(check, text),
            );
            case.set_classname(scenario.id.as_str());
            if matches!(check.grade, Grade::Warn | Grade::Info) {
                case.set_system_out(format!("{}\n{}", check.grade.mark(), details(check, text)));
            }
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    if !report.stale_baseline.is_empty() {
        let mut suite = TestSuite::new("baseline");
        for stale in &report.stale_baseline {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(format!("stale baseline entry: {}", stale.why));
            status.set_type("stale baseline");
            status.set_description(format!("reason given: {}", stale.reason));
            let mut case = TestCase::new(
                format!("{} / {}", stale.scenario, stale.requirement),
                status,
            );
            case.set_classname("baseline");
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().map_err(|e| ReportError::Render {
        file: "junit.xml",
        message: e.to_string(),
    })
}

fn status(check: &CheckReport, text: &str) -> TestCaseStatus {
    match check.grade {
        Grade::Pass | Grade::Warn | Grade::Info => TestCaseStatus::success(),
        Grade::Baselined => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(format!(
                "baselined: {}",
                check.baseline.as_deref().unwrap_or_default()
            ));
            status.set_description(details(check, text));
            status
        }
        Grade::Fail | Grade::Untestable => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(text);
            status.set_type(check.grade.mark());
            status.set_description(details(check, text));
            status
        }
    }
}

fn details(check: &CheckReport, text: &str) -> String {
    format!(
        "requirement: {} ({}) {text}\nexpected: {}\nactual: {}",
        check.requirement, check.strength, check.expected, check.actual
    )
}
