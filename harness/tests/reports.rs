//! Reports and exit codes: grading by the catalogue's keyword, the baseline rules, the report
//! writers on hand-built outcomes, report.json's stability across two real runs, and the CLI's
//! exit codes through the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use cimd_harness::baseline::Baseline;
use cimd_harness::catalogue::{Catalogue, Strength};
use cimd_harness::ecosystem::{Ecosystem, Options};
use cimd_harness::report::{self, Grade, Grading, Report, RunInfo, Scrubber};
use cimd_harness::scenario::judge::{Check, Verdict};
use cimd_harness::scenario::{self, Scenario};
use cimd_harness::suite::{self, ScenarioOutcome, Status};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn catalogue() -> Catalogue {
    Catalogue::load(&root().join("scenarios/requirements")).unwrap_or_else(|e| panic!("{e}"))
}

fn scenarios() -> Vec<Scenario> {
    scenario::load_all(&root().join("scenarios")).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The first catalogue row with this strength, so the tests follow catalogue edits.
fn row_with(catalogue: &Catalogue, strength: Strength) -> String {
    catalogue
        .iter()
        .find(|r| r.strength == strength)
        .map_or_else(
            || panic!("no {strength} row in the catalogue"),
            |r| r.id.to_string(),
        )
}

fn check(requirement: &str, verdict: Verdict, actual: &str) -> Check {
    Check {
        requirement: requirement.to_owned(),
        verdict,
        expected: format!("{requirement} holds"),
        actual: actual.to_owned(),
    }
}

fn outcome(id: &str, checks: Vec<Check>) -> ScenarioOutcome {
    ScenarioOutcome {
        id: id.to_owned(),
        title: format!("Scenario {id}"),
        status: Status::Ran,
        checks,
        log: Vec::new(),
    }
}

fn grade(outcomes: &[ScenarioOutcome], strict: bool, baseline: Option<&Baseline>) -> Report {
    let catalogue = catalogue();
    let all = scenarios();
    let scrubber = Scrubber::new();
    let grading = Grading {
        catalogue: &catalogue,
        strict,
        baseline,
        all_scenarios: &all,
        scrubber: &scrubber,
    };
    Report::build(outcomes, RunInfo::default(), &grading).unwrap_or_else(|e| panic!("{e}"))
}

fn grades(report: &Report) -> Vec<Grade> {
    report.checks().map(|(_, c)| c.grade).collect()
}

#[test]
fn severity_comes_from_the_catalogue_keyword() {
    let cat = catalogue();
    let (must, should, may) = (
        row_with(&cat, Strength::Must),
        row_with(&cat, Strength::Should),
        row_with(&cat, Strength::May),
    );
    let outcomes = [outcome(
        "x/graded",
        vec![
            check(&must, Verdict::Pass, "ok"),
            check(&should, Verdict::Fail, "no"),
            check(&may, Verdict::Fail, "no"),
        ],
    )];
    let lenient = grade(&outcomes, false, None);
    assert_eq!(grades(&lenient), [Grade::Pass, Grade::Warn, Grade::Info]);
    assert_eq!(lenient.summary.exit_code, 0, "warnings and info pass a run");

    let strict = grade(&outcomes, true, None);
    assert_eq!(grades(&strict), [Grade::Pass, Grade::Fail, Grade::Info]);
    assert_eq!(strict.summary.exit_code, 1, "--strict fails on a SHOULD");

    let broken = [outcome("x/must", vec![check(&must, Verdict::Fail, "no")])];
    assert_eq!(grades(&grade(&broken, false, None)), [Grade::Fail]);
    assert_eq!(grade(&broken, false, None).summary.exit_code, 1);
}

#[test]
fn an_untestable_check_fails_whatever_its_keyword() {
    let may = row_with(&catalogue(), Strength::May);
    let report = grade(
        &[outcome(
            "x/u",
            vec![check(&may, Verdict::Untestable, "step 1 failed")],
        )],
        false,
        None,
    );
    assert_eq!(grades(&report), [Grade::Untestable]);
    assert_eq!((report.summary.failed, report.summary.untestable), (1, 1));
    assert_eq!(report.summary.exit_code, 1);
}

#[test]
fn a_requirement_missing_from_the_catalogue_is_a_harness_error() {
    let catalogue = catalogue();
    let all = scenarios();
    let scrubber = Scrubber::new();
    let grading = Grading {
        catalogue: &catalogue,
        strict: false,
        baseline: None,
        all_scenarios: &all,
        scrubber: &scrubber,
    };
    let outcomes = [outcome("x/y", vec![check("NOPE-99", Verdict::Pass, "ok")])];
    let error = Report::build(&outcomes, RunInfo::default(), &grading).unwrap_err();
    assert!(error.to_string().contains("x/y: NOPE-99"), "{error}");
}

#[test]
fn a_harness_error_outranks_a_target_failure() {
    let must = row_with(&catalogue(), Strength::Must);
    let mut errored = outcome("x/broken", Vec::new());
    errored.status = Status::Error("route URL: bad".to_owned());
    let report = grade(
        &[
            errored,
            outcome("x/fail", vec![check(&must, Verdict::Fail, "no")]),
        ],
        false,
        None,
    );
    assert_eq!(report.summary.harness_errors, 1);
    assert_eq!(report.summary.exit_code, 2);
}

fn meta_baseline(extra: &str) -> Baseline {
    let text = format!(
        "[[known]]\nscenario = \"cimd/meta-01-discovery\"\nrequirement = \"CIMD-META-01\"\nreason = \"ACME-1\"\n{extra}"
    );
    Baseline::parse(&text, Path::new("known.toml")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_baselined_failure_does_not_fail_the_run() {
    let baseline = meta_baseline("");
    let outcomes = [outcome(
        "cimd/meta-01-discovery",
        vec![check("CIMD-META-01", Verdict::Fail, "absent")],
    )];
    let report = grade(&outcomes, false, Some(&baseline));
    assert_eq!(grades(&report), [Grade::Baselined]);
    assert_eq!(report.summary.baselined, 1);
    assert!(report.stale_baseline.is_empty());
    assert_eq!(report.summary.exit_code, 0);
}

#[test]
fn a_baseline_entry_whose_check_passes_now_is_stale() {
    let baseline = meta_baseline("");
    let outcomes = [outcome(
        "cimd/meta-01-discovery",
        vec![check("CIMD-META-01", Verdict::Pass, "true")],
    )];
    let report = grade(&outcomes, false, Some(&baseline));
    assert_eq!(report.stale_baseline.len(), 1);
    assert!(report.stale_baseline[0].why.contains("passes now"));
    assert_eq!(report.summary.exit_code, 1);
}

#[test]
fn a_baseline_entry_for_a_vanished_scenario_or_requirement_is_stale() {
    let baseline = meta_baseline(
        "[[known]]\nscenario = \"cimd/gone\"\nrequirement = \"CIMD-META-01\"\nreason = \"r\"\n\
         [[known]]\nscenario = \"cimd/meta-01-discovery\"\nrequirement = \"CIMD-FETCH-03\"\nreason = \"r\"\n",
    );
    // Only an unrelated scenario ran: the meta-01 entry is left alone (not selected), the others
    // are stale whatever ran.
    let must = row_with(&catalogue(), Strength::Must);
    let report = grade(
        &[outcome("x/other", vec![check(&must, Verdict::Pass, "ok")])],
        false,
        Some(&baseline),
    );
    let why: Vec<&str> = report
        .stale_baseline
        .iter()
        .map(|s| s.why.as_str())
        .collect();
    assert_eq!(
        why,
        [
            "no such scenario",
            "the scenario has no check of CIMD-FETCH-03"
        ]
    );
    assert_eq!(report.summary.exit_code, 1);
}

#[test]
fn a_baseline_entry_without_a_reason_is_refused() {
    let text = "[[known]]\nscenario = \"cimd/meta-01-discovery\"\nrequirement = \"CIMD-META-01\"\nreason = \"  \"\n";
    let error = Baseline::parse(text, Path::new("known.toml")).unwrap_err();
    assert!(error.to_string().contains("`reason` is empty"), "{error}");
    let missing =
        "[[known]]\nscenario = \"cimd/meta-01-discovery\"\nrequirement = \"CIMD-META-01\"\n";
    assert!(Baseline::parse(missing, Path::new("known.toml")).is_err());
}

#[test]
fn the_example_baseline_loads() {
    let baseline = Baseline::load(&root().join("fixtures/baselines/example.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!baseline.entries().is_empty());
}

/// A report of every grade, with hostile text in `actual`.
fn mixed_report() -> (Report, Vec<ScenarioOutcome>) {
    let cat = catalogue();
    let must = row_with(&cat, Strength::Must);
    let should = row_with(&cat, Strength::Should);
    let outcomes = vec![
        outcome(
            "cimd/meta-01-discovery",
            vec![
                check("CIMD-META-01", Verdict::Fail, "absent"),
                check(&must, Verdict::Pass, "ok"),
            ],
        ),
        outcome(
            "x/hostile",
            vec![
                check(
                    &must,
                    Verdict::Fail,
                    "error page 400: <script>alert(1)</script>",
                ),
                check(&should, Verdict::Fail, "no"),
                check(&must, Verdict::Untestable, "step 1 failed"),
            ],
        ),
    ];
    let baseline = meta_baseline("");
    (grade(&outcomes, false, Some(&baseline)), outcomes)
}

#[test]
fn junit_has_one_testcase_per_check_and_parses_as_xml() {
    let (report, _) = mixed_report();
    let xml = report::junit::render(&report, &catalogue()).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.test_suites.len(), 2, "one testsuite per scenario");
    let cases: Vec<_> = parsed
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .collect();
    assert_eq!(cases.len(), 5, "one testcase per check");
    assert_eq!(
        parsed.failures, 2,
        "the MUST failure and the untestable check"
    );
    assert!(
        cases
            .iter()
            .any(|c| c.name.as_str() == "CIMD-META-01: CIMD-META-01 holds"),
        "testcases are named `REQ-ID: expected`"
    );
}

#[test]
fn html_escapes_what_a_target_sends() {
    let (report, _) = mixed_report();
    let html = report::html::render(&report, &catalogue()).unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    assert!(!html.contains("<script>"));
    // Failures come first and open; the CIMD section link carries an anchor.
    assert!(html.contains("<details open>"));
    assert!(html.contains("#section-"));
}

#[test]
fn summary_lists_failures_and_pass_rates() {
    let (report, _) = mixed_report();
    let md = report::markdown::render(&report, &catalogue());
    assert!(md.contains("| FAIL | x/hostile |"), "{md}");
    assert!(md.contains("## Pass rate per document"));
    assert!(md.starts_with("# Conformance summary\n\n1 passed, 2 failed, 1 warnings"));
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty folder under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let n = DIRS.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("cimd-reports-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn write_all_writes_every_report_and_one_evidence_file_per_scenario() {
    let (report, outcomes) = mixed_report();
    let dir = temp_dir("write");
    report::write_all(&dir, &report, &outcomes, &catalogue()).unwrap();
    for name in ["report.json", "junit.xml", "summary.md", "report.html"] {
        assert!(dir.join(name).is_file(), "{name}");
    }
    assert!(dir.join("evidence/cimd__meta-01-discovery.jsonl").is_file());
    assert!(dir.join("evidence/x__hostile.jsonl").is_file());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], report::SCHEMA);
    assert_eq!(json["scenarios"][0]["checks"][0]["grade"], "baselined");
    assert_eq!(json["summary"]["exit_code"], 1);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs the selected real scenarios against a fresh ecosystem; returns report.json and the
/// ports that run used.
fn real_run(ids: &[&str]) -> (String, Vec<u16>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let all = scenarios();
        let selected: Vec<Scenario> = all
            .iter()
            .filter(|s| ids.contains(&s.id.as_str()))
            .cloned()
            .collect();
        assert_eq!(selected.len(), ids.len(), "every chosen scenario exists");
        let eco = Ecosystem::start(Options {
            extra_users: selected.len(),
            ..Options::default()
        })
        .await
        .unwrap();
        let outcomes = suite::run_all(&eco, &selected, &root().join("fixtures"), 4, &|_| {}).await;
        let catalogue = catalogue();
        let scrubber = Scrubber::new().with_literal(&eco.issuer(), "{issuer}");
        let grading = Grading {
            catalogue: &catalogue,
            strict: false,
            baseline: None,
            all_scenarios: &all,
            scrubber: &scrubber,
        };
        let report = Report::build(&outcomes, RunInfo::default(), &grading).unwrap();
        assert_eq!(report.summary.exit_code, 0, "{}", report.to_json().unwrap());
        let ports = vec![
            eco.hosts.port(),
            eco.server.addr().port(),
            eco.mail.smtp_addr().port(),
        ];
        (report.to_json().unwrap(), ports)
    })
}

#[test]
fn report_json_is_identical_across_two_runs_and_free_of_ports() {
    // A discovery, a full code flow with random state, codes and tokens, and two refusals.
    let ids = [
        "cimd/meta-01-discovery",
        "cimd/flow-native-mailed-code",
        "cimd/fetch-03-no-redirects",
        "cimd/url-01-http-scheme",
    ];
    let (first, first_ports) = real_run(&ids);
    let (second, second_ports) = real_run(&ids);
    assert_eq!(first, second, "two runs of an unchanged suite diff empty");
    for port in first_ports.iter().chain(&second_ports) {
        assert!(
            !first.contains(&format!(":{port}")),
            "port {port} in:\n{first}"
        );
    }
    assert!(first.contains("{port}") && first.contains("{random}"));
}

fn cli(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cimd-conformance"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code().unwrap_or(-1), stdout)
}

#[test]
fn run_exits_0_when_every_check_passes() {
    let (code, stdout) = cli(&["run", "--only", "cimd/meta-*"]);
    assert_eq!(code, 0, "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.contains(" passed, 0 failed"), "{last}");
}

#[test]
fn run_exits_1_on_a_conformance_failure_and_writes_reports() {
    let out = temp_dir("cli");
    let (code, stdout) = cli(&[
        "run",
        "--only",
        "cimd/meta-*",
        "--fault",
        "hide-cimd-support",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAIL       CIMD-META-01"), "{stdout}");
    assert!(
        stdout.contains("requirement  "),
        "the requirement text is shown: {stdout}"
    );
    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert!(json.contains("\"hide-cimd-support\""));
    assert!(out.join("evidence/cimd__meta-01-discovery.jsonl").is_file());
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn run_exits_2_when_no_scenario_matches() {
    let (code, _) = cli(&["run", "--only", "nothing-matches"]);
    assert_eq!(code, 2);
}

#[test]
fn run_exits_2_on_an_unreadable_baseline() {
    let (code, _) = cli(&[
        "run",
        "--only",
        "cimd/meta-*",
        "--baseline",
        "/nonexistent/known.toml",
    ]);
    assert_eq!(code, 2);
}

#[test]
fn coverage_prints_every_catalogue_row_with_family_totals() {
    let (code, stdout) = cli(&["coverage", "--format", "md"]);
    let gaps = stdout
        .split("without coverage or exclusion")
        .nth(1)
        .unwrap_or_default()
        .trim();
    // Exit 1 exactly when an absolute CIMD row is neither covered nor excluded.
    assert_eq!(code, i32::from(gaps != "- none"), "{stdout}");
    assert!(stdout.contains("| CIMD-META-01 | MUST | AS |"));
    assert!(stdout.contains("| cimd | "));
}

/// A scenarios folder holding the real catalogue and one scenario naming `NOPE-99`.
fn scenarios_with_unknown_requirement() -> PathBuf {
    let dir = temp_dir("unknown");
    let requirements = dir.join("requirements");
    std::fs::create_dir_all(&requirements).unwrap();
    for entry in std::fs::read_dir(root().join("scenarios/requirements")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, requirements.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::create_dir_all(dir.join("x")).unwrap();
    std::fs::write(
        dir.join("x/unknown.toml"),
        "title = \"A scenario naming a requirement nobody wrote\"\n\
         [[step]]\ndiscover = { id = \"meta\" }\n\
         [[expect]]\nrequirement = \"NOPE-99\"\nstatus = 200\n\
         [negative]\nreason = \"a test fixture\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn run_exits_2_on_an_unknown_requirement_before_running_anything() {
    let dir = scenarios_with_unknown_requirement();
    let output = Command::new(env!("CARGO_BIN_EXE_cimd-conformance"))
        .args(["run", "--scenarios", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("x/unknown: NOPE-99"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn validate_flags_unknown_requirements_and_uncovered_cimd_musts() {
    let dir = scenarios_with_unknown_requirement();
    let fixtures = root().join("fixtures");
    let (code, stdout) = cli(&[
        "validate",
        "--scenarios",
        dir.to_str().unwrap(),
        "--fixtures",
        fixtures.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("x/unknown: expect 1: unknown requirement NOPE-99"),
        "{stdout}"
    );
    // With one scenario, every absolute CIMD row without an exclusion is a gap.
    assert!(
        stdout.contains("CIMD-META-01: MUST row has no scenario and no `excluded` reason"),
        "{stdout}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
