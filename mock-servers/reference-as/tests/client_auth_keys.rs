//! The committed test keys (`fixtures/keys`): how they were made, and a check that the committed
//! key sets still hold exactly the public halves of the committed private keys.

#![allow(clippy::unwrap_used)]

mod client_auth_support;

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use client_auth_support::{ALL_KEYS, KEY_SETS, fixtures, jwks};
use jsonwebtoken::Algorithm;
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256, RsaKeySize};
use serde_json::Value;

/// A PEM block for DER bytes.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// Regenerates every key and key set. Run by hand only (it replaces committed fixtures):
/// `cargo test -p reference-as --test client_auth_keys -- --ignored`.
#[test]
#[ignore = "writes new keys into fixtures/keys; run once by hand"]
fn write_key_fixtures() {
    let dir = fixtures().join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    for key in ALL_KEYS {
        let text = match key.alg {
            Algorithm::ES256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                .unwrap()
                .serialize_pem(),
            Algorithm::ES384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384)
                .unwrap()
                .serialize_pem(),
            // jsonwebtoken reads only PKCS#8 v1 Ed25519 keys (shared/crates.md §4).
            Algorithm::EdDSA => pem(
                "PRIVATE KEY",
                Ed25519KeyPair::generate()
                    .unwrap()
                    .to_pkcs8v1()
                    .unwrap()
                    .as_ref(),
            ),
            _ => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
                .unwrap()
                .serialize_pem(),
        };
        std::fs::write(dir.join(key.file), text).unwrap();
    }
    for (file, keys) in KEY_SETS {
        let text = serde_json::to_string_pretty(&jwks(keys)).unwrap();
        std::fs::write(dir.join(file), text + "\n").unwrap();
    }
}

#[test]
fn committed_key_sets_hold_the_public_halves_of_the_committed_keys() {
    for (file, keys) in KEY_SETS {
        let text = std::fs::read_to_string(fixtures().join("keys").join(file)).unwrap();
        let committed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(committed, jwks(keys), "fixtures/keys/{file} is stale");
    }
}
