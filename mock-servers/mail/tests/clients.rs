//! Real SMTP clients deliver to the sink: lettre (what the reference AS uses) and Python's smtplib.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PATIENCE, server, six_digit_code};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mock_mail::Behaviour;

fn mailer(port: u16) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build()
}

fn login_mail(to: &str, code: &str) -> lettre::Message {
    lettre::Message::builder()
        .from("Reference AS <login@as.test>".parse().unwrap())
        .to(to.parse().unwrap())
        // Non-ASCII makes lettre encode the subject (RFC 2047) and the body (quoted-printable).
        .subject("Your login code \u{2014} Anmeldung")
        .header(ContentType::TEXT_PLAIN)
        .body(format!(
            "Your one-time code is {code} \u{2014} it expires in 10 minutes.\n"
        ))
        .unwrap()
}

#[tokio::test]
async fn lettre_delivers_a_login_code_readable_in_process_and_over_the_json_api() {
    let mail = server().await;
    let before = mock_kit::journal::next_sequence();
    mailer(mail.smtp_addr().port())
        .send(login_mail("Alice <alice@example.test>", "482913"))
        .await
        .unwrap();

    let message = mail
        .inbox()
        .wait_for("ALICE@example.test", Some(before), PATIENCE)
        .await
        .unwrap();
    assert_eq!(
        message.header("Content-Transfer-Encoding"),
        Some("quoted-printable"),
        "{message:#?}"
    );
    assert_eq!(
        six_digit_code(&message.body),
        Some("482913"),
        "{message:#?}"
    );
    assert!(
        message.body.contains("482913 \u{2014} it expires"),
        "QP decoded: {:?}",
        message.body
    );
    assert_eq!(message.subject, "Your login code \u{2014} Anmeldung");
    assert_eq!(
        (message.mail_from.as_str(), message.rcpt_to.as_slice()),
        (
            "login@as.test",
            ["alice@example.test".to_owned()].as_slice()
        )
    );
    assert!(message.seq > before);

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let listed: serde_json::Value = http
        .get(format!("{}/api/messages", mail.http_url()))
        .query(&[("to", "alice@example.test")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    let body = listed[0]["body"].as_str().unwrap();
    assert_eq!(six_digit_code(body), Some("482913"));
    let one: serde_json::Value = http
        .get(format!("{}/api/messages/{}", mail.http_url(), message.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["subject"], message.subject);
    assert_eq!(one["seq"], message.seq);
}

#[tokio::test]
async fn lettre_base64_bodies_are_decoded() {
    let mail = server().await;
    let email = lettre::Message::builder()
        .from("login@as.test".parse().unwrap())
        .to("bob@example.test".parse().unwrap())
        .subject("code")
        .header(ContentType::TEXT_PLAIN)
        .header(ContentTransferEncoding::Base64)
        .body("Code: 730155\n".to_owned())
        .unwrap();
    mailer(mail.smtp_addr().port()).send(email).await.unwrap();
    let message = mail
        .inbox()
        .wait_for("bob@example.test", None, PATIENCE)
        .await
        .unwrap();
    assert_eq!(message.header("Content-Transfer-Encoding"), Some("base64"));
    assert!(
        !message.raw.contains("730155"),
        "the raw text is encoded: {}",
        message.raw
    );
    assert_eq!(message.body.trim_end(), "Code: 730155");
}

#[tokio::test]
async fn lettre_sees_scripted_failures_as_temporary_or_permanent() {
    let mail = server().await;
    let transport = mailer(mail.smtp_addr().port());

    mail.set_behaviour(Behaviour::TempFail);
    let error = transport
        .send(login_mail("c@example.test", "111111"))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");

    mail.set_behaviour(Behaviour::RejectRecipients(550));
    let error = transport
        .send(login_mail("c@example.test", "222222"))
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error:?}");

    mail.set_behaviour(Behaviour::DropAfterGreeting);
    let error = transport
        .send(login_mail("c@example.test", "333333"))
        .await
        .unwrap_err();
    assert!(
        !error.is_permanent() && !error.is_transient(),
        "a hang-up has no SMTP code: {error:?}"
    );

    mail.set_behaviour(Behaviour::Accept);
    transport
        .send(login_mail("c@example.test", "444444"))
        .await
        .unwrap();
    let stored: Vec<String> = mail
        .inbox()
        .messages()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(
        stored.len(),
        1,
        "only the accepted mail is stored: {stored:?}"
    );
    assert_eq!(six_digit_code(&stored[0]), Some("444444"));
}

#[tokio::test]
async fn python_smtplib_delivers_one_message_to_two_recipients() {
    let mail = server().await;
    let port = mail.smtp_addr().port().to_string();
    let script = r#"
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "as@example.test"
m["To"] = "one@example.test, Two@Example.test"
m["Subject"] = "For both"
m.set_content("hello both\n.leading dot survives\n")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
    refused = s.send_message(m)
    assert not refused, refused
"#;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", script, &port])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        output.status.success(),
        "smtplib failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let first = mail
        .inbox()
        .wait_for("one@example.test", None, PATIENCE)
        .await
        .unwrap();
    let second = mail
        .inbox()
        .wait_for("two@example.test", None, PATIENCE)
        .await
        .unwrap();
    assert_eq!(first.id, second.id, "one message, two recipients");
    assert_eq!(first.rcpt_to, ["one@example.test", "Two@Example.test"]);
    assert_eq!(first.subject, "For both");
    assert_eq!(first.body, "hello both\n.leading dot survives\n");
    assert_eq!(mail.inbox().len(), 1);
}
