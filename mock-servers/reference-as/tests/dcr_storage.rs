//! Dynamic clients, templates, secrets and tokens live in the database: with a file database
//! they survive a restart of the server, and nothing secret is stored in the clear.

#![allow(clippy::unwrap_used, reason = "tests")]

mod dcr_support;
mod server_support;

use dcr_support::{
    LOOPBACK, call, client_credentials, iat, register, registered, start, web_client,
};
use reference_as::client_auth::TokenAuthMethod;
use reference_as::dcr::TemplateConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A database file of its own, removed on drop.
struct DbFile(std::path::PathBuf);

impl DbFile {
    fn new(name: &str) -> Self {
        let mut bytes = [0u8; 8];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        let suffix = u64::from_be_bytes(bytes);
        Self(std::env::temp_dir().join(format!("{name}-{suffix:016x}.db")))
    }

    fn url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.0.display())
    }
}

impl Drop for DbFile {
    fn drop(&mut self) {
        for extension in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{extension}", self.0.display()));
        }
    }
}

fn template() -> TemplateConfig {
    TemplateConfig {
        software_id: "cli".to_owned(),
        client_name: None,
        token_endpoint_auth_method: TokenAuthMethod::ClientSecretPost,
        grant_types: vec!["client_credentials".to_owned()],
        redirect_uris: Vec::new(),
        scope: Some("mcp".to_owned()),
        authenticators: vec!["password".to_owned()],
    }
}

#[tokio::test]
async fn registrations_survive_a_restart_of_the_server_on_a_file_database() {
    let db = DbFile::new("dcr-restart");
    let url = db.url();
    let configure = |c: &mut reference_as::Config| {
        c.storage.database.clone_from(&url);
        c.registration.templates = vec![template()];
    };
    let (plain, instance, unused_iat) = {
        let world = start(configure).await;
        let plain = registered(&world, &web_client()).await;
        let instance = registered(&world, &json!({ "software_id": "cli" })).await;
        (plain, instance, iat(&world).await)
    };
    let world = start(configure).await;
    // The issuer's port changed; the path of the configuration endpoint did not.
    for info in [&plain, &instance] {
        let id = info.str("client_id");
        let uri = world.server.url(&format!("/register/{id}"));
        let read = call(
            &world,
            Method::GET,
            &uri,
            Some(info.str("registration_access_token")),
            None,
        )
        .await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.body);
        assert_eq!(read.body["client_id"], id);
    }
    let (status, body) = client_credentials(&world, &plain, "read").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = world
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", instance.str("client_id")),
            ("client_secret", instance.str("client_secret")),
            ("scope", "mcp"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = register(
        &world,
        Some(&unused_iat),
        &json!({ "redirect_uris": [LOOPBACK] }),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    drop(world);

    // Nothing secret is in the file in the clear.
    let bytes = std::fs::read(&db.0).unwrap();
    let wal = std::fs::read(format!("{}-wal", db.0.display())).unwrap_or_default();
    let haystack = [bytes, wal].concat();
    for secret in [
        plain.str("client_secret"),
        plain.str("registration_access_token"),
        instance.str("client_secret"),
        &unused_iat,
    ] {
        assert!(
            !haystack
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "a secret is stored in the clear"
        );
    }
}
