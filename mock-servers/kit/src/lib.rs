//! mock-kit: the plumbing every mock party stands on, and nothing else.
//!
//! Mock parties (metadata hosts, the mail server, the reference AS) are real servers on loopback:
//! they listen on ephemeral ports, speak real TLS with certificates from a CA generated at run time,
//! and record what they receive so tests can judge what crossed the wire. This crate holds no
//! protocol logic; it only binds, terminates TLS, journals and shuts down.
//!
//! Layout:
//! - [`ca`]: [`TestCa`], a certificate authority made at run time (or kept in a state folder for
//!   servers configured by hand) that issues a leaf certificate for whatever host name a client
//!   asks for through SNI, so one listener serves any number of virtual hosts
//!   (`www.client.example`, `a.trusted.test`, …).
//! - [`listener`]: [`serve_http`], [`serve_https`] and [`serve_tcp`] start accept loops on
//!   `127.0.0.1:0` ([`serve_router`], [`serve_router_unrecorded`] and [`serve_tcp_on`] on a
//!   listener bound elsewhere); the returned [`Running`] guard stops the loop and its
//!   connections on drop.
//! - [`html`]: the HTML escape shared by every party's web pages.
//! - [`journal`]: [`Journal`], an ordered record of requests (method, host, path, headers), filled
//!   by a layer that every HTTP listener but an unrecorded one installs.

pub mod ca;
pub mod html;
pub mod journal;
pub mod listener;

pub use ca::{IssuedPem, TestCa};
pub use journal::{Journal, JournalEntry, PeerInfo};
pub use listener::{
    Running, serve_http, serve_https, serve_router, serve_router_unrecorded, serve_tcp,
    serve_tcp_on,
};

/// Everything that can go wrong while setting up a mock listener.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// Binding or accepting on the loopback socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// Certificate generation failed (rcgen).
    #[error("certificate generation failed: {0}")]
    Cert(#[from] rcgen::Error),
    /// rustls refused a certificate or key we generated.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// The CA kept in a state folder cannot be used as it is (see [`TestCa::load_or_generate`]).
    #[error("the test CA in {}: {reason}", dir.display())]
    StoredCa {
        /// The state folder.
        dir: std::path::PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// Installs aws-lc-rs as the process-wide rustls provider (idempotent).
///
/// rustls panics on first use when more than one provider is compiled in and none was chosen;
/// every entry point that touches TLS calls this first so that can never happen.
pub fn install_crypto_provider() {
    // An Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
