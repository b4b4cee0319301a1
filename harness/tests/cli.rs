//! The `cimd-conformance` binary as a user runs it: `lint` exit codes and JSON, and `serve`
//! bringing up a working ecosystem that answers over the real wire.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the failure report"
)]
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cimd-conformance");
const URL: &str = "https://app.example.com/oauth/client.json";

fn lint(client_id: &str, document: &str) -> (i32, serde_json::Value) {
    let mut child = Command::new(BIN)
        .args(["lint", "--client-id", client_id, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(document.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output.status.code().unwrap_or(-1), json)
}

fn requirements(report: &serde_json::Value, list: &str) -> Vec<String> {
    report[list]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["requirement"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn lint_accepts_a_valid_document_with_exit_0() {
    let doc = serde_json::json!({
        "client_id": URL,
        "client_name": "Example",
        "redirect_uris": ["https://app.example.com/callback"],
        "token_endpoint_auth_method": "none",
    });
    let (code, report) = lint(URL, &doc.to_string());
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["valid"], true);
    assert!(report["errors"].as_array().unwrap().is_empty());
}

#[test]
fn lint_names_the_requirement_of_each_error_and_exits_1() {
    let doc = serde_json::json!({
        "client_id": "https://app.example.com/other.json",
        "redirect_uris": ["https://app.example.com/callback"],
        "token_endpoint_auth_method": "client_secret_post",
        "client_secret": "s3cr3t",
    });
    let (code, report) = lint(URL, &doc.to_string());
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["valid"], false);
    let errors = requirements(&report, "errors");
    for id in ["CIMD-DOC-03", "CIMD-DOC-06", "CIMD-DOC-07"] {
        assert!(
            errors.iter().any(|e| e == id),
            "{id} missing from {report:#}"
        );
    }
}

#[test]
fn lint_refuses_a_bad_client_id_url_and_still_reports_json() {
    let (code, report) = lint("http://app.example.com/c.json#frag", "{}");
    assert_eq!(code, 1, "{report:#}");
    let errors = requirements(&report, "errors");
    assert!(errors.iter().any(|e| e == "CIMD-URL-01"), "{report:#}");
    assert!(errors.iter().any(|e| e == "CIMD-URL-05"), "{report:#}");
}

#[test]
fn lint_rejects_non_json_bodies() {
    let (code, report) = lint(URL, "<html>not json</html>");
    assert_eq!(code, 1);
    assert!(
        requirements(&report, "errors")
            .iter()
            .any(|e| e == "CIMD-DOC-01"),
        "{report:#}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let missing = Command::new(BIN)
        .args(["lint", "--client-id", URL, "/nonexistent/file.json"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let unknown = Command::new(BIN).arg("no-such-command").output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
}

/// Kills the child on drop so a failing assertion never leaks a server.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_prints_its_urls_and_the_parties_answer_over_https() {
    let state = std::env::temp_dir().join(format!("cimd-serve-test-{}", std::process::id()));
    let mut child = Killed(
        Command::new(BIN)
            .args(["serve", "--state-dir"])
            .arg(&state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let line = tokio::time::timeout(Duration::from_mins(1), line)
        .await
        .unwrap()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_str(&line).unwrap();

    let ca = std::fs::read(summary["ca_file"].as_str().unwrap()).unwrap();
    let issuer = summary["issuer"].as_str().unwrap();
    let document = summary["documents"][0].as_str().unwrap();
    let doc_url = url::Url::parse(document).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .resolve(
            doc_url.host_str().unwrap(),
            ([127, 0, 0, 1], doc_url.port().unwrap()).into(),
        )
        .no_proxy()
        .build()
        .unwrap();

    let metadata: serde_json::Value = http
        .get(summary["metadata"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], issuer);
    assert_eq!(metadata["client_id_metadata_document_supported"], true);

    let served: serde_json::Value = http
        .get(document)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        served["client_id"], document,
        "the demo document names its own URL"
    );

    let inbox = http
        .get(format!(
            "{}/api/messages",
            summary["inbox"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert!(inbox.status().is_success());
    drop(child);
    let _ = std::fs::remove_dir_all(state);
}
