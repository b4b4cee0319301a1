//! The third-party target path, proven against the reference AS running as its own process.
//!
//! The reference-as binary is started the way an operator would start any AS: trusting the
//! harness CA kept in a state folder, resolving `*.example` to the harness, mailing codes to the
//! harness's fixed SMTP port, serving TLS with a certificate the harness issued, configured by
//! `fixtures/targets/reference-as-server.toml` (users, and dynamic registration with initial
//! access tokens and a template). The suite then runs through a target file with `[dcr]`
//! credentials (`suite::run_target`) and, separately, in-process; both must reach the same
//! verdicts, scenario by scenario and check by check.
//!
//! Finding the binary: `CARGO_BIN_EXE_reference-as` exists only in the reference-as crate's own
//! tests, and that crate must not depend on the harness. So this test looks for the binary
//! where cargo puts it, next to this test's `deps` folder (`target/debug/reference-as`), or at
//! `$CIMD_REFERENCE_AS`. `cargo test --workspace` (the CI command) builds it, because cargo
//! builds a package's binaries whenever it builds that package's integration tests; after
//! `cargo test -p cimd-harness` alone it may be missing or stale, and the test says to run
//! `cargo build -p reference-as`.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cimd_harness::HarnessError;
use cimd_harness::ecosystem::{CA_NAME, Ecosystem, Options};
use cimd_harness::scenario::{self, Scenario};
use cimd_harness::suite::{self, ScenarioOutcome, Status};
use cimd_harness::target::{self, Target};
use metadata_host::{MetadataHost, Route};
use mock_kit::TestCa;
use serde_json::json;

/// Users in the AS and in the target file (fewer than scenarios: users are reused in turn).
const USERS: usize = 4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh folder under the system temp dir, removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "cimd-{label}-{}-{}",
            std::process::id(),
            mock_kit::journal::next_sequence()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The reference-as child process, killed on drop.
struct ReferenceAs {
    child: Child,
    issuer: String,
}

impl Drop for ReferenceAs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reference_as_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CIMD_REFERENCE_AS") {
        return PathBuf::from(path);
    }
    // target/debug/deps/remote_target-HASH → target/debug/reference-as
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = dir.join(format!("reference-as{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "the reference-as binary is not at {}: run `cargo build -p reference-as` (`cargo test \
         --workspace` builds it), or set CIMD_REFERENCE_AS to its path",
        binary.display()
    );
    binary
}

/// Starts the binary with the flags the target file's comments document, and reads the issuer
/// from its start-up line.
fn start_reference_as(work: &Path, state: &Path, smtp_port: u16) -> ReferenceAs {
    let ca = TestCa::load_or_generate(state, CA_NAME).unwrap();
    let (cert, key) = target::server_certificate(&ca, state, "localhost").unwrap();
    // The operator's file: USERS users and the registration setup the target file's [dcr] names.
    let config = root().join("fixtures/targets/reference-as-server.toml");
    let log = std::fs::File::create(work.join("reference-as.log")).unwrap();
    let mut child = Command::new(reference_as_binary())
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--public-host", "localhost"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--trusted-ca")
        .arg(state.join("ca.pem"))
        .args(["--resolve", "*.example=127.0.0.1"])
        .arg("--smtp")
        .arg(format!("127.0.0.1:{smtp_port}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    // From here on the child is killed however the test ends.
    let mut guard = ReferenceAs {
        child,
        issuer: String::new(),
    };
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    let started: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        let log = std::fs::read_to_string(work.join("reference-as.log")).unwrap_or_default();
        panic!("no start-up line from reference-as ({e}): {line:?}\nits log:\n{log}")
    });
    let issuer = started["issuer"].as_str().unwrap().to_owned();
    assert!(issuer.starts_with("https://localhost:"), "{started}");
    guard.issuer = issuer;
    guard
}

/// Ports that were free a moment ago, distinct (all bound at once before any is released).
fn free_ports<const N: usize>() -> [u16; N] {
    let sockets: Vec<_> = (0..N)
        .map(|_| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
        .collect();
    std::array::from_fn(|i| sockets[i].local_addr().unwrap().port())
}

/// The target file an operator would write for this AS.
fn write_target_file(work: &Path, issuer: &str, [metadata, smtp, inbox]: [u16; 3]) -> PathBuf {
    let mut users = String::new();
    for n in 1..=USERS {
        let _ = write!(
            users,
            "[[login.users]]\nemail = \"user-{n}@users.example\"\nusername = \"user-{n}\"\n\
             password_env = \"REMOTE_TEST_PASSWORD_{n}\"\n\n"
        );
    }
    let text = format!(
        "issuer = \"{issuer}\"\n\n[harness]\nstate_dir = \"state\"\nmetadata_port = {metadata}\n\
         smtp_port = {smtp}\ninbox_port = {inbox}\n\n[login]\nmethod = \"email-otp\"\n\n{users}\
         [dcr]\nclient_id = \"conformance-dcr\"\nclient_secret_env = \"REMOTE_TEST_DCR_SECRET\"\n\
         template = \"conformance-agent\"\n"
    );
    let path = work.join("target.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The passwords the target file's `password_env` names (a stand-in environment: setting
/// variables in-process needs `unsafe`).
fn test_env(name: &str) -> Option<String> {
    if name == "REMOTE_TEST_DCR_SECRET" {
        return Some(DCR_SECRET.to_owned());
    }
    let n = name.strip_prefix("REMOTE_TEST_PASSWORD_")?;
    Some(format!("password of user {n}"))
}

/// The IAT client's secret in `fixtures/targets/reference-as-server.toml`.
const DCR_SECRET: &str = "dcr secret of the reference AS fixture";

/// Every scenario the in-process ecosystem can run without settings of its own, and that a
/// third-party target can run (no template edits through the reference AS's admin API).
fn policy_free_scenarios() -> Vec<Scenario> {
    let all = scenario::load_all(&root().join("scenarios")).unwrap_or_else(|errors| {
        panic!(
            "scenarios do not load:\n{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    all.into_iter()
        .filter(|s| s.file.reference_as.is_none())
        .filter(|s| {
            !s.file
                .steps
                .iter()
                .any(|step| matches!(step, scenario::file::Step::EditTemplate(_)))
        })
        .collect()
}

/// What must agree between two runs: the scenario, how it ended, and each check's requirement
/// and verdict (not the `actual` texts, which hold ports).
fn verdicts(outcome: &ScenarioOutcome) -> (String, Status, Vec<String>) {
    let checks = outcome
        .checks
        .iter()
        .map(|c| format!("{} {:?}", c.requirement, c.verdict))
        .collect();
    (outcome.id.clone(), outcome.status.clone(), checks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_as_binary_as_a_target_gets_the_same_verdicts_as_in_process() {
    let work = Folder::new("remote-target");
    let state = work.0.join("state");
    let ports = free_ports::<3>();
    let server = start_reference_as(&work.0, &state, ports[1]);
    let path = write_target_file(&work.0, &server.issuer, ports);
    let target = Target::load_with_env(&path, &test_env).unwrap();
    assert_eq!(target.users[1].password, "password of user 2");

    let scenarios = policy_free_scenarios();
    assert!(!scenarios.is_empty());
    let fixtures = root().join("fixtures");
    let started = std::time::Instant::now();
    let remote = suite::run_target(&target, &scenarios, &fixtures, 8, &|_| {})
        .await
        .unwrap();
    let remote_ms = started.elapsed().as_millis();

    let eco = Ecosystem::start(Options {
        extra_users: scenarios.len(),
        ..Options::default()
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let local = suite::run_all(&eco, &scenarios, &fixtures, 8, &|_| {}).await;
    let local_ms = started.elapsed().as_millis();

    assert_eq!(remote.len(), scenarios.len());
    let mut checks = 0;
    for (remote, local) in remote.iter().zip(&local) {
        if let (Status::Error(here), Status::Error(_)) = (&remote.status, &local.status) {
            // A broken scenario file (its own trial in tests/scenarios.rs fails): nothing to
            // compare, and its message holds ports.
            eprintln!("skipped {}: harness error in both runs: {here}", remote.id);
            continue;
        }
        assert_eq!(
            verdicts(remote),
            verdicts(local),
            "\nremote checks: {:#?}\nlocal checks: {:#?}",
            remote.checks,
            local.checks
        );
        checks += remote.checks.len();
    }
    assert!(checks > 0, "no check ran at all");
    // Registration scenarios ran through the target file's [dcr] credentials and template.
    let registrations = remote
        .iter()
        .filter(|o| o.id.starts_with("dcr/") && o.status == Status::Ran)
        .count();
    assert!(
        registrations > 0,
        "no registration scenario ran against the target"
    );
    eprintln!(
        "{} scenarios, {checks} checks agree; through the target file {remote_ms} ms, \
         in-process {local_ms} ms",
        scenarios.len()
    );
    // The state folder is the operator's: the CA the AS trusts is still the one it was given.
    let ca = std::fs::read_to_string(state.join("ca.pem")).unwrap();
    assert_eq!(
        ca,
        TestCa::load_or_generate(&state, CA_NAME)
            .unwrap()
            .cert_pem()
    );
}

/// A target file for `issuer` with fresh ports and a state folder in `work`.
fn target_for(work: &Path, issuer: &str) -> Target {
    let path = write_target_file(work, issuer, free_ports::<3>());
    Target::load_with_env(&path, &test_env).unwrap()
}

#[tokio::test]
async fn an_unreachable_target_is_a_target_failure_naming_the_metadata_url() {
    let work = Folder::new("unreachable");
    let [closed] = free_ports::<1>();
    let target = target_for(&work.0, &format!("https://localhost:{closed}/tenant"));
    let error = suite::run_target(
        &target,
        &policy_free_scenarios(),
        Path::new("."),
        1,
        &|_| {},
    )
    .await
    .unwrap_err();
    let HarnessError::Target(message) = &error else {
        panic!("expected a target failure, got {error:?}");
    };
    let url = format!("https://localhost:{closed}/.well-known/oauth-authorization-server/tenant");
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("is the AS running"), "{message}");
    // The first run leaves what the operator configures the AS with.
    for file in ["ca.pem", "ca-key.pem", "localhost.pem", "localhost-key.pem"] {
        assert!(work.0.join("state").join(file).is_file(), "{file}");
    }
}

#[tokio::test]
async fn metadata_that_does_not_describe_the_issuer_is_a_target_failure() {
    // An "AS" serving TLS with a certificate from the harness CA (the target file's default).
    let work = Folder::new("impostor");
    let ca = TestCa::load_or_generate(&work.0.join("state"), CA_NAME).unwrap();
    let host = MetadataHost::spawn(ca).await.unwrap();
    let issuer = host.url("localhost", "");
    let cases = [
        (
            json!({ "issuer": "https://elsewhere.test", "authorization_endpoint": "https://elsewhere.test/a", "token_endpoint": "https://elsewhere.test/t" }),
            "the metadata's issuer is \"https://elsewhere.test\"",
        ),
        (
            json!({ "issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize") }),
            "the metadata has no token_endpoint",
        ),
    ];
    for (metadata, expected) in cases {
        host.mount(
            "localhost",
            "/.well-known/oauth-authorization-server",
            Route::json(metadata),
        );
        // Fresh ports per run: the last run's listeners close in the background.
        let target = target_for(&work.0, &issuer);
        let error = suite::run_target(&target, &[], Path::new("."), 1, &|_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(&error, HarnessError::Target(m) if m.contains(expected)),
            "expected a target failure saying {expected:?}, got {error}"
        );
    }
    host.unmount("localhost", "/.well-known/oauth-authorization-server");
    let target = target_for(&work.0, &issuer);
    let error = suite::run_target(&target, &[], Path::new("."), 1, &|_| {})
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("HTTP 404 instead of 200"),
        "{error}"
    );
}

#[test]
fn the_example_target_files_load() {
    let dir = root().join("fixtures/targets");
    let env = |name: &str| {
        (name.ends_with("_PASSWORD") || name.ends_with("_SECRET")).then(|| "x".to_owned())
    };
    for name in ["reference-as.toml", "example.toml"] {
        let target =
            Target::load_with_env(&dir.join(name), &env).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!target.users.is_empty(), "{name}");
    }
    // Without the environment, the password example is a usage error naming the variable.
    let error = Target::load_with_env(&dir.join("example.toml"), &|_| None).unwrap_err();
    assert!(error.to_string().contains("ACME_USER1_PASSWORD"), "{error}");
}
