//! Sign-in mail: sends a one-time login code over SMTP (lettre) to the configured relay, which in
//! tests and local runs is mock-mail on loopback.
//!
//! The message is short plain ASCII so the reading side needs no MIME decoding: the code is the
//! only run of exactly six digits in the body, and the body names both the server and the client
//! the person is signing in to, so a mail that arrives unexpectedly can be recognised as phishing.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::AsError;

/// The subject of every sign-in mail.
pub const SUBJECT: &str = "Your sign-in code";

/// How long one SMTP conversation may take before sending counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a sign-in mail says.
#[derive(Debug, Clone, Copy)]
pub struct LoginMail<'a> {
    /// The recipient's address.
    pub to: &'a str,
    /// The six-digit code.
    pub code: &'a str,
    /// The authorization server's host name.
    pub issuer_host: &'a str,
    /// The host name of the client the person is signing in to.
    pub client_host: &'a str,
    /// How long the code stays valid.
    pub valid_for: Duration,
}

/// An SMTP sender for sign-in mails.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A sender that talks plain SMTP (no TLS, no auth) to `host:port` and sends as `from`.
    pub fn new(host: &str, port: u16, from: &str) -> Result<Self, AsError> {
        let from = from.parse::<Mailbox>().map_err(|e| {
            AsError::Config(format!("smtp.from {from:?} is not a mail address: {e}"))
        })?;
        // builder_dangerous: the relay is a local sink on loopback; there is nothing to encrypt for.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self { transport, from })
    }

    /// Sends a sign-in code.
    pub async fn send_login_code(&self, mail: LoginMail<'_>) -> Result<(), AsError> {
        let to = mail.to.parse::<Mailbox>().map_err(|e| {
            AsError::Mail(format!(
                "recipient {:?} is not a mail address: {e}",
                mail.to
            ))
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(SUBJECT)
            .header(ContentType::TEXT_PLAIN)
            .body(login_body(&mail))
            .map_err(|e| AsError::Mail(format!("cannot build the message: {e}")))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| AsError::Mail(format!("the SMTP relay refused or failed: {e}")))?;
        Ok(())
    }
}

/// The plain-text body; the code is its only run of six digits.
fn login_body(mail: &LoginMail<'_>) -> String {
    let secs = mail.valid_for.as_secs();
    let validity = if secs.is_multiple_of(60) {
        format!("{} minute(s)", secs / 60)
    } else {
        format!("{secs} second(s)")
    };
    format!(
        "Your sign-in code is {code}\r\n\
         \r\n\
         Enter it on the sign-in page of {issuer} to continue to {client}.\r\n\
         The code works once and expires in {validity}.\r\n\
         If you did not try to sign in, ignore this mail: nobody can use the code without it.\r\n",
        code = mail.code,
        issuer = mail.issuer_host,
        client = mail.client_host,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_holds_the_code_as_its_only_six_digit_run_and_names_both_hosts() {
        let body = login_body(&LoginMail {
            to: "alice@example.test",
            code: "042917",
            issuer_host: "127.0.0.1",
            client_host: "www.client.example",
            valid_for: Duration::from_mins(10),
        });
        let runs: Vec<&str> = body
            .split(|c: char| !c.is_ascii_digit())
            .filter(|run| run.len() == 6)
            .collect();
        assert_eq!(runs, ["042917"]);
        assert!(body.contains("127.0.0.1") && body.contains("www.client.example"));
        assert!(body.is_ascii());
    }
}
