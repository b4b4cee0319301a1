//! The configuration file and the `reference-as` binary: the example file documents the defaults,
//! flags override the file, bad configurations exit with status 2, and a started server announces
//! itself in one JSON line.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use reference_as::{Config, Fault};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_reference-as");

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference-as.example.toml")
}

/// A file in the temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("reference-as-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A started binary, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_example_file_parses_and_holds_exactly_the_defaults() {
    let config = Config::from_toml_file(example()).unwrap();
    assert_eq!(config, Config::default());
    config.validate().unwrap();
}

#[test]
fn print_config_shows_the_file_with_flags_applied() {
    let output = Command::new(BIN)
        .args(["--config", example().to_str().unwrap()])
        .args(["--listen", "127.0.0.1:8443", "--smtp", "mail.local:2526"])
        .args([
            "--resolve",
            "*.client.example=127.0.0.1",
            "--fault",
            "skip-pkce",
            "--fault",
            "omit-iss",
        ])
        .arg("--print-config")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config = Config::from_toml_str(&String::from_utf8(output.stdout).unwrap()).unwrap();
    assert_eq!(config.listen, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(
        (config.smtp.host.as_str(), config.smtp.port),
        ("mail.local", 2526)
    );
    assert_eq!(
        config.network.resolve["*.client.example"],
        std::net::IpAddr::from([127, 0, 0, 1])
    );
    assert!(config.faults.on(Fault::SkipPkce) && config.faults.on(Fault::OmitIss));
}

#[test]
fn bad_configurations_exit_with_status_2_and_say_why() {
    let typo = TempFile::new(
        "typo.toml",
        "listen = \"127.0.0.1:0\"\n[tokens]\ncode_ttl = 5\n",
    );
    let cases: [(&[&str], &str); 4] = [
        (&["--config", typo.0.to_str().unwrap()], "code_ttl"),
        (&["--issuer", "https://as.example/?tenant=1"], "query"),
        (
            &["--config", "/nonexistent/reference-as.toml"],
            "cannot read",
        ),
        (&["--fault", "no-such-fault"], "no-such-fault"),
    ];
    for (args, mention) in cases {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(mention), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_started_server_prints_its_endpoints_as_one_json_line_and_serves_them() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--public-host", "localhost"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let started: Value = serde_json::from_str(&line).unwrap();
    let issuer = started["issuer"].as_str().unwrap();
    assert!(issuer.starts_with("http://localhost:"), "{line}");
    assert_eq!(started["token_endpoint"], format!("{issuer}/token"));
    let listen: std::net::SocketAddr = started["listen"].as_str().unwrap().parse().unwrap();

    let client = reqwest::Client::builder()
        .no_proxy()
        .resolve("localhost", listen)
        .build()
        .unwrap();
    let doc: Value = client
        .get(started["metadata"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["jwks_uri"], started["jwks_uri"]);
    drop(server);
}
