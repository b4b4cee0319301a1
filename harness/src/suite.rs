//! Running a set of scenarios concurrently against the embedded reference AS or a third-party
//! target.
//!
//! Parties start once per run: one metadata host, one mail server, and (in-process) one shared
//! reference AS. Scenarios that set the AS's policy get their own AS instance (cheap: in-process,
//! in-memory store) wired to the same parties; against a third-party target they run only where
//! the target file declares the same policy. Each scenario acts as its own user and in its own
//! namespace of host names, so concurrent scenarios never see each other's requests or mail; a
//! target with fewer users than scenarios runs fewer at once and reuses users one after another.

use std::path::Path;

use futures_util::StreamExt;
use futures_util::stream;
use serde::Serialize;

use crate::HarnessError;
use crate::ecosystem::{ConfigOverrides, Ecosystem, Parties};
use crate::metrics;
use crate::scenario::judge::{self, Check, Verdict};
use crate::scenario::run::{self, AsUnderTest, Event, Surroundings, TestUser};
use crate::scenario::{self, Scenario};
use crate::target::{self, Target};

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

/// Runs one scenario as `user` against the ecosystem (its shared AS, or a dedicated one with the
/// ecosystem's faults when the scenario sets the policy).
pub async fn run_scenario(
    eco: &Ecosystem,
    scenario: &Scenario,
    user: &TestUser,
    fixtures: &Path,
) -> ScenarioOutcome {
    // A scenario that edits a template changes every instance of it: it gets its own AS, so
    // scenarios running at the same time keep the template they expect.
    let edits_templates = scenario
        .file
        .steps
        .iter()
        .any(|s| matches!(s, scenario::file::Step::EditTemplate(_)));
    let dedicated = if scenario.file.reference_as.is_some() || edits_templates {
        match dedicated_as(eco, scenario).await {
            Ok(server) => Some(server),
            Err(e) => return bare_outcome(scenario, Status::Error(e.to_string())),
        }
    } else {
        None
    };
    let target = eco.as_under_test(dedicated.as_ref().unwrap_or(&eco.server));
    if let Some(reason) = scenario::registration::applicability(scenario, &target) {
        return bare_outcome(scenario, Status::NotApplicable(reason));
    }
    let shared = dedicated.is_none();
    execute_and_judge(eco.parties(), &target, scenario, user, fixtures, shared).await
}

/// A reference AS of the ecosystem with the scenario's own settings (the ecosystem's default
/// for what it does not set).
async fn dedicated_as(
    eco: &Ecosystem,
    scenario: &Scenario,
) -> Result<reference_as::RunningAs, HarnessError> {
    let bindings = target::policy_bindings(scenario, eco.hosts.port());
    let settings = scenario.file.reference_as.as_ref();
    let policy = match settings.and_then(|s| s.ephemeral_clients.as_ref()) {
        Some(table) => scenario::policy(table, &bindings).map_err(HarnessError::Scenario)?,
        None => eco.policy().clone(),
    };
    let mut overrides = ConfigOverrides::default();
    for (section, table) in settings
        .into_iter()
        .flat_map(scenario::file::ReferenceAsSettings::config_tables)
    {
        let members = scenario::section_settings(section, table, &bindings)
            .map_err(|e| HarnessError::Scenario(format!("[reference_as.{section}]: {e}")))?;
        overrides.0.insert(section.to_owned(), members);
    }
    eco.spawn_reference_as_with(policy, &overrides).await
}

/// Runs one scenario as `user` against a third-party AS (`under_test`, discovered from
/// `target`'s issuer): not applicable when the target's declared policy differs from the
/// scenario's, and every sign-in uses the target's login method.
pub async fn run_target_scenario(
    parties: &Parties,
    under_test: &AsUnderTest,
    target: &Target,
    scenario: &Scenario,
    user: &TestUser,
    fixtures: &Path,
) -> ScenarioOutcome {
    match target.applicability(scenario, parties.hosts.port()) {
        Ok(None) => {}
        Ok(Some(reason)) => return bare_outcome(scenario, Status::NotApplicable(reason)),
        Err(e) => return bare_outcome(scenario, Status::Error(e.to_string())),
    }
    if let Some(reason) = scenario::registration::applicability(scenario, under_test) {
        return bare_outcome(scenario, Status::NotApplicable(reason));
    }
    let adapted = target.adapt(scenario);
    // Every scenario of the run meets the same third-party AS.
    execute_and_judge(parties, under_test, &adapted, user, fixtures, true).await
}

/// An outcome with no checks (yet).
fn bare_outcome(scenario: &Scenario, status: Status) -> ScenarioOutcome {
    ScenarioOutcome {
        id: scenario.id.clone(),
        title: scenario.file.title.clone(),
        status,
        checks: Vec::new(),
        log: Vec::new(),
    }
}

/// Walks the scenario against `target` and judges what crossed the wire. The target's
/// `/metrics`, when it serves them, are scraped before and after and added to the log once
/// judged, as evidence for the reader (`shared`: other scenarios use the same AS meanwhile).
async fn execute_and_judge(
    parties: &Parties,
    target: &AsUnderTest,
    scenario: &Scenario,
    user: &TestUser,
    fixtures: &Path,
    shared: bool,
) -> ScenarioOutcome {
    // A scraper that cannot be built only costs the metrics entry, never the run.
    let scraper = metrics::Scraper::new(&target.trust, &target.issuer).ok();
    let before = match &scraper {
        Some(scraper) => scraper.scrape().await,
        None => None,
    };
    let since = mock_kit::journal::next_sequence();
    let inbox = parties.inbox_url();
    let around = Surroundings {
        hosts: &parties.hosts,
        inbox: &inbox,
        fixtures,
        callback: CALLBACK,
    };
    match run::execute(scenario, target, user, around).await {
        Ok(mut evidence) => {
            // A user an earlier scenario signed in as has older mail: only this run's counts.
            evidence.mail.retain(|m| m.seq > since);
            evidence.log.retain(|e| e.source != "mail" || e.seq > since);
            let checks = judge::judge(&scenario.file.expects, &evidence);
            // Added after judging: the target's own account never decides a check (design
            // principle 6).
            if let (Some(scraper), Some(before)) = (&scraper, &before)
                && let Some(after) = scraper.scrape().await
            {
                // Taken after the last scrape, so the entry sorts after everything in the log.
                evidence.log.push(Event {
                    seq: mock_kit::journal::next_sequence(),
                    source: "metrics",
                    detail: metrics::entry(before, &after, shared),
                });
            }
            ScenarioOutcome {
                log: evidence.log,
                checks,
                ..bare_outcome(scenario, Status::Ran)
            }
        }
        Err(e) => bare_outcome(scenario, Status::Error(e.to_string())),
    }
}

/// Runs `scenarios` against the ecosystem with at most `min(concurrency, users)` at a time, each
/// holding one of the ecosystem's test users (not the demo user) for its whole run. Results come
/// back in input order.
pub async fn run_all(
    eco: &Ecosystem,
    scenarios: &[Scenario],
    fixtures: &Path,
    concurrency: usize,
    on_done: &(dyn Fn(&ScenarioOutcome) + Sync),
) -> Vec<ScenarioOutcome> {
    // Index 0 is the demo user, whom people use by hand in `serve`.
    let users = eco.users().get(1..).unwrap_or_default();
    run_pooled(
        scenarios,
        users,
        concurrency,
        on_done,
        |scenario, user| async move { run_scenario(eco, scenario, &user, fixtures).await },
    )
    .await
}

/// Runs `run` for every scenario with a user taken from a pool of free `users`: a scenario holds
/// its user for its whole run, so no two concurrent runs read each other's login codes, and the
/// pool's size bounds the concurrency. Results come back in input order.
async fn run_pooled<'a, F, Fut>(
    scenarios: &'a [Scenario],
    users: &[TestUser],
    concurrency: usize,
    on_done: &(dyn Fn(&ScenarioOutcome) + Sync),
    run: F,
) -> Vec<ScenarioOutcome>
where
    F: Fn(&'a Scenario, TestUser) -> Fut,
    Fut: Future<Output = ScenarioOutcome>,
{
    let (free_tx, free_rx) = tokio::sync::mpsc::unbounded_channel();
    for user in users {
        let _ = free_tx.send(user.clone());
    }
    let free_rx = tokio::sync::Mutex::new(free_rx);
    let width = concurrency.clamp(1, users.len().max(1));
    let run = &run;
    let mut results: Vec<(usize, ScenarioOutcome)> = stream::iter(scenarios.iter().enumerate())
        .map(|(i, scenario)| {
            let (free_tx, free_rx) = (&free_tx, &free_rx);
            async move {
                let taken = free_rx.lock().await.recv().await;
                let result = match taken {
                    Some(user) => {
                        let result = run(scenario, user.clone()).await;
                        let _ = free_tx.send(user);
                        result
                    }
                    None => bare_outcome(
                        scenario,
                        Status::Error("no test users to sign in with".to_owned()),
                    ),
                };
                on_done(&result);
                (i, result)
            }
        })
        .buffer_unordered(width)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// `run --target FILE`: starts the parties on the target file's ports (reusing the CA in its
/// state folder), makes sure a certificate for the issuer's host is in that folder when the file
/// names no `ca_file`, discovers the AS and runs `scenarios` against it with at most
/// `min(concurrency, users)` at a time, each holding a user of its own for the whole run.
/// Results come back in input order, as from [`run_all`].
///
/// Errors: [`HarnessError::Target`] when discovery fails (the target's fault, exit 1); any other
/// variant when a party cannot start (a taken port, a broken state folder: exit 2).
pub async fn run_target(
    target: &Target,
    scenarios: &[Scenario],
    fixtures: &Path,
    concurrency: usize,
    on_done: &(dyn Fn(&ScenarioOutcome) + Sync),
) -> Result<Vec<ScenarioOutcome>, HarnessError> {
    let parties = Parties::start(target.parties_options()).await?;
    if target.ca_file.is_none()
        && let Some(host) = target.issuer_host()
    {
        target::server_certificate(&parties.ca, parties.state_dir(), &host)?;
    }
    let under_test = target::discover(target, &parties).await?;
    Ok(run_all_on_target(
        &parties,
        &under_test,
        target,
        scenarios,
        fixtures,
        concurrency,
        on_done,
    )
    .await)
}

/// [`run_target`]'s loop on parties that are already running and a discovered AS.
pub async fn run_all_on_target(
    parties: &Parties,
    under_test: &AsUnderTest,
    target: &Target,
    scenarios: &[Scenario],
    fixtures: &Path,
    concurrency: usize,
    on_done: &(dyn Fn(&ScenarioOutcome) + Sync),
) -> Vec<ScenarioOutcome> {
    run_pooled(
        scenarios,
        &target.users,
        concurrency,
        on_done,
        |scenario, user| async move {
            run_target_scenario(parties, under_test, target, scenario, &user, fixtures).await
        },
    )
    .await
}
