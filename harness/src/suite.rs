//! Running a set of scenarios concurrently against the embedded reference AS.
//!
//! Parties start once per run: one metadata host, one mail server, one shared reference AS.
//! Scenarios that set the AS's policy get their own AS instance (cheap: in-process, in-memory
//! store) wired to the same parties. Each scenario acts as its own user and in its own namespace
//! of host names, so concurrent scenarios never see each other's requests or mail.

use std::path::Path;

use futures_util::StreamExt;
use futures_util::stream;
use serde::Serialize;

use crate::HarnessError;
use crate::ecosystem::Ecosystem;
use crate::scenario::judge::{self, Check, Verdict};
use crate::scenario::run::{self, Event, Surroundings, TestUser};
use crate::scenario::template::Bindings;
use crate::scenario::{self, Scenario};

/// Where loopback redirect URIs of scenario clients point; nothing listens there, because the
/// user agent stops at the redirect.
pub const CALLBACK: &str = "http://127.0.0.1:49200";

/// How a scenario run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "kebab-case")]
pub enum Status {
    /// It ran; see the checks.
    Ran,
    /// The target does not claim what the scenario needs.
    NotApplicable(String),
    /// The harness could not run it (a harness bug or a broken scenario, never the target's fault).
    Error(String),
}

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct ScenarioOutcome {
    /// Scenario ID.
    pub id: String,
    /// Its title.
    pub title: String,
    /// How the run ended.
    pub status: Status,
    /// Judged expectations.
    pub checks: Vec<Check>,
    /// The merged evidence log.
    pub log: Vec<Event>,
}

impl ScenarioOutcome {
    /// Checks that did not pass (failed or untestable).
    pub fn unmet(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.verdict != Verdict::Pass)
    }
}

/// Runs one scenario as `user` against the ecosystem (its shared AS, or a dedicated one when the
/// scenario sets the policy). `faults` are switched on in a dedicated AS too.
pub async fn run_scenario(
    eco: &Ecosystem,
    scenario: &Scenario,
    user: &TestUser,
    fixtures: &Path,
    faults: &reference_as::faults::Faults,
) -> ScenarioOutcome {
    let outcome = |status, checks, log| ScenarioOutcome {
        id: scenario.id.clone(),
        title: scenario.file.title.clone(),
        status,
        checks,
        log,
    };
    let dedicated = match &scenario.file.reference_as {
        None => None,
        Some(settings) => {
            let bindings = Bindings {
                ns: scenario.namespace(),
                ..Bindings::default()
            };
            let started = match scenario::policy(&settings.ephemeral_clients, &bindings) {
                Ok(policy) => eco.spawn_reference_as(policy, faults.clone()).await,
                Err(e) => Err(HarnessError::Scenario(e)),
            };
            match started {
                Ok(server) => Some(server),
                Err(e) => return outcome(Status::Error(e.to_string()), Vec::new(), Vec::new()),
            }
        }
    };
    let target = eco.as_under_test(dedicated.as_ref().unwrap_or(&eco.server));
    let inbox = eco.inbox_url();
    let around = Surroundings {
        hosts: &eco.hosts,
        inbox: &inbox,
        fixtures,
        callback: CALLBACK,
    };
    match run::execute(scenario, &target, user, around).await {
        Ok(evidence) => {
            let checks = judge::judge(&scenario.file.expects, &evidence);
            outcome(Status::Ran, checks, evidence.log)
        }
        Err(e) => outcome(Status::Error(e.to_string()), Vec::new(), Vec::new()),
    }
}

/// Runs `scenarios` with up to `concurrency` at a time; results come back in input order.
/// `users` must hold at least one user per scenario.
pub async fn run_all(
    eco: &Ecosystem,
    scenarios: &[Scenario],
    fixtures: &Path,
    concurrency: usize,
    on_done: &(dyn Fn(&ScenarioOutcome) + Sync),
) -> Vec<ScenarioOutcome> {
    let users = eco.users();
    let faults = reference_as::faults::Faults::none();
    let mut results: Vec<(usize, ScenarioOutcome)> = stream::iter(scenarios.iter().enumerate())
        .map(|(i, scenario)| {
            // Index 0 is the demo user, whom people use by hand in `serve`.
            let user = &users[(i + 1).min(users.len() - 1)];
            let faults = &faults;
            async move {
                let result = run_scenario(eco, scenario, user, fixtures, faults).await;
                on_done(&result);
                (i, result)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
