//! mock-mail: a real SMTP sink with an inbox that tests, the harness and people can read.
//!
//! The reference authorization server e-mails one-time login codes over plain SMTP (lettre, no
//! TLS, no AUTH). This crate is the other end of that wire: [`MailServer::spawn`] starts an SMTP
//! listener and an HTTP listener on ephemeral loopback ports (or on fixed addresses, for a server
//! under test configured by hand); every accepted message lands in an [`Inbox`] that Rust tests
//! read in-process ([`Inbox::wait_for`]), other processes read through a JSON API, and people
//! read on a small web page. A [`Behaviour`] switch makes the server refuse recipients, fail
//! temporarily or hang up on cue, so tests can check how a sender copes.
//!
//! Layout:
//! - [`smtp`]: the RFC 5321 subset as a pure state machine ([`smtp::Session`]) and the line
//!   framer ([`smtp::LineReader`]); no sockets, so every state is unit-tested.
//! - `mime`: header unfolding, RFC 2047 subjects, and quoted-printable/base64 bodies, so tests
//!   see the text a sender wrote rather than its transfer encoding.
//! - [`inbox`]: [`Inbox`] and [`Message`], bounded, ordered with the HTTP journals of the
//!   other mock parties, with an async wait for the next message to an address.
//! - [`web`]: the axum router for `/api/messages…` (JSON) and the HTML pages.
//! - [`server`]: [`MailServer`] and [`MailConfig`], and the driver that runs one SMTP connection
//!   between a socket and a session, with line, size and idle limits.

pub mod inbox;
mod mime;
pub mod server;
pub mod smtp;
pub mod web;

pub use inbox::{Inbox, Message};
pub use server::{MailConfig, MailServer};
pub use smtp::Behaviour;

/// Everything that can go wrong while starting a [`MailServer`].
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Binding a loopback listener failed.
    #[error("cannot start a mail listener: {0}")]
    Listen(#[from] mock_kit::KitError),
    /// A listen address in the [`MailConfig`] could not be bound (taken, or not local).
    #[error("cannot bind the {listener} listener on {addr}: {source}")]
    Bind {
        /// `SMTP` or `HTTP`.
        listener: &'static str,
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The [`MailConfig`] cannot work (the message says which field and why).
    #[error("invalid mail server configuration: {0}")]
    InvalidConfig(String),
}
