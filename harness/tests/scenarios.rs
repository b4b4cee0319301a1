//! Every scenario file as its own pair of tests: it passes against the reference AS, and it fails
//! on its named requirement when the reference AS runs with its `[negative]` fault switched on.
//! That pair is the proof a scenario tests something.

use std::path::PathBuf;

use cimd_harness::ecosystem::{Ecosystem, Options};
use cimd_harness::scenario::judge::Verdict;
use cimd_harness::scenario::{self, Scenario};
use cimd_harness::suite::{self, ScenarioOutcome, Status};
use libtest_mimic::{Arguments, Failed, Trial};
use reference_as::faults::{Fault, Faults};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(scenario: &Scenario, faults: &Faults) -> Result<ScenarioOutcome, Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(async {
        let eco = Ecosystem::start(Options {
            faults: faults.clone(),
            extra_users: 1,
            ..Options::default()
        })
        .await
        .map_err(|e| format!("starting the ecosystem: {e}"))?;
        let user = &eco.users()[1];
        let outcome = suite::run_scenario(&eco, scenario, user, &root().join("fixtures")).await;
        if let Status::Error(message) = &outcome.status {
            return Err(Failed::from(format!("harness error: {message}")));
        }
        Ok(outcome)
    })
}

fn describe(outcome: &ScenarioOutcome) -> String {
    outcome
        .checks
        .iter()
        .map(|c| {
            format!(
                "  {:?} {}: expected {}; actual {}",
                c.verdict, c.requirement, c.expected, c.actual
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn positive(scenario: &Scenario) -> Result<(), Failed> {
    let outcome = run(scenario, &Faults::none())?;
    if outcome.checks.is_empty() || outcome.unmet().next().is_some() {
        return Err(format!("the reference AS does not pass:\n{}", describe(&outcome)).into());
    }
    Ok(())
}

fn negative(scenario: &Scenario, fault: Fault, requirement: &str) -> Result<(), Failed> {
    let outcome = run(scenario, &Faults::of([fault]))?;
    let bit = outcome
        .checks
        .iter()
        .any(|c| c.requirement == requirement && c.verdict == Verdict::Fail);
    if !bit {
        return Err(format!(
            "with fault {fault} on, no check of {requirement} failed:\n{}",
            describe(&outcome)
        )
        .into());
    }
    Ok(())
}

fn main() {
    let mut args = Arguments::from_args();
    // Trials wait on the network far more than on the CPU.
    args.test_threads.get_or_insert(8);
    let scenarios = match scenario::load_all(&root().join("scenarios")) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            std::process::exit(2);
        }
    };
    let mut trials = Vec::new();
    for s in scenarios {
        let negative_run = s.file.negative.fault.as_deref().map(|name| {
            let fault: Result<Fault, _> = name.parse();
            (fault, s.file.negative.requirement.clone())
        });
        let for_positive = s.clone();
        trials.push(Trial::test(format!("positive::{}", s.id), move || {
            positive(&for_positive)
        }));
        if let Some((fault, requirement)) = negative_run {
            let id = s.id.clone();
            trials.push(Trial::test(format!("negative::{id}"), move || {
                let fault = fault.map_err(|e| Failed::from(e.to_string()))?;
                let requirement = requirement.unwrap_or_else(|| fault.requirement().to_owned());
                negative(&s, fault, &requirement)
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
