//! The SMTP side over a raw TCP socket: framing, sequencing, limits, robustness and behaviours.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{PATIENCE, RawClient, server, server_with};
use mock_mail::{Behaviour, MailConfig};

#[tokio::test]
async fn ehlo_advertises_size_8bitmime_pipelining_and_smtputf8() {
    let mail = server_with(MailConfig {
        max_message_bytes: 4096,
        ..MailConfig::default()
    })
    .await;
    let mut client = RawClient::connect(mail.smtp_addr()).await;
    let text = client.expect("EHLO client.test", 250).await;
    for extension in ["SIZE 4096", "8BITMIME", "PIPELINING", "SMTPUTF8"] {
        assert!(
            text.contains(&format!("250-{extension}\r\n"))
                || text.contains(&format!("250 {extension}\r\n")),
            "{extension} missing: {text}"
        );
    }
    client.expect("HELO client.test", 250).await;
}

#[tokio::test]
async fn leading_dots_are_unstuffed_and_only_a_lone_dot_ends_the_message() {
    let mail = server().await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    let content = "Subject: dots\r\n\r\n..line\r\n...two\r\n..\r\n. not the end\r\n";
    assert_eq!(client.transaction(&["a@x.test"], content).await, 250);
    let message = mail
        .inbox()
        .wait_for("a@x.test", None, PATIENCE)
        .await
        .unwrap();
    assert_eq!(
        message.raw,
        "Subject: dots\r\n\r\n.line\r\n..two\r\n.\r\n not the end\r\n"
    );
    assert_eq!(message.body, ".line\n..two\n.\n not the end\n");
}

#[tokio::test]
async fn bare_lf_line_endings_are_accepted_throughout() {
    let mail = server().await;
    let mut client = RawClient::connect(mail.smtp_addr()).await;
    client
        .send(b"EHLO lf.test\nMAIL FROM:<a@x.test>\nRCPT TO:<b@x.test>\nDATA\n")
        .await;
    let codes = [
        client.reply().await.0,
        client.reply().await.0,
        client.reply().await.0,
        client.reply().await.0,
    ];
    assert_eq!(codes, [250, 250, 250, 354]);
    client.send(b"Subject: lf\n\nbody line\n.\n").await;
    assert_eq!(client.reply().await.0, 250);
    let message = mail
        .inbox()
        .wait_for("b@x.test", None, PATIENCE)
        .await
        .unwrap();
    assert_eq!(
        (message.subject.as_str(), message.raw.as_str()),
        ("lf", "Subject: lf\r\n\r\nbody line\r\n")
    );
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let mail = server().await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    client
        .send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n")
        .await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(client.reply().await.0);
    }
    assert_eq!(codes, [250, 250, 501, 250, 354]);
    client
        .send(b"Subject: piped\r\n\r\nx\r\n.\r\nQUIT\r\n")
        .await;
    assert_eq!((client.reply().await.0, client.reply().await.0), (250, 221));
    assert!(client.is_closed_by_server().await);
    assert_eq!(mail.inbox().messages()[0].rcpt_to, ["b@x.test", "c@x.test"]);
}

#[tokio::test]
async fn commands_out_of_sequence_get_503_and_change_nothing() {
    let mail = server().await;
    let mut client = RawClient::connect(mail.smtp_addr()).await;
    client.expect("MAIL FROM:<a@x.test>", 503).await;
    client.expect("EHLO client.test", 250).await;
    client.expect("RCPT TO:<b@x.test>", 503).await;
    client.expect("DATA", 503).await;
    client.expect("MAIL FROM:<a@x.test>", 250).await;
    client.expect("MAIL FROM:<other@x.test>", 503).await;
    client.expect("DATA", 503).await;
    assert_eq!(client.transaction_after_mail(&["b@x.test"]).await, 250);
    assert_eq!(mail.inbox().messages()[0].mail_from, "a@x.test");
}

#[tokio::test]
async fn unknown_commands_get_500_unimplemented_ones_502_and_bad_syntax_501() {
    let mail = server().await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    client.expect("XYZZY", 500).await;
    client.expect("AUTH PLAIN AGFAYQ==", 502).await;
    client.expect("STARTTLS", 502).await;
    client.expect("VRFY postmaster", 252).await;
    client.expect("NOOP", 250).await;
    client.expect("MAIL <a@x.test>", 501).await;
    client.expect("MAIL FROM:<a@x.test> FROB=1", 555).await;
    client.expect("QUIT", 221).await;
    assert!(client.is_closed_by_server().await);
}

#[tokio::test]
async fn rset_forgets_the_transaction_but_not_the_greeting() {
    let mail = server().await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    client.expect("MAIL FROM:<first@x.test>", 250).await;
    client.expect("RCPT TO:<dropped@x.test>", 250).await;
    client.expect("RSET", 250).await;
    client.expect("DATA", 503).await;
    client.expect("RCPT TO:<b@x.test>", 503).await;
    // Still greeted: a new transaction needs no second EHLO.
    assert_eq!(
        client
            .transaction(&["kept@x.test"], "Subject: after rset\r\n\r\nx\r\n")
            .await,
        250
    );
    let messages = mail.inbox().messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (
            messages[0].mail_from.as_str(),
            messages[0].rcpt_to.as_slice()
        ),
        ("sender@as.test", ["kept@x.test".to_owned()].as_slice())
    );
}

#[tokio::test]
async fn a_declared_size_over_the_limit_is_refused_at_mail_from() {
    let mail = server_with(MailConfig {
        max_message_bytes: 1024,
        ..MailConfig::default()
    })
    .await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    client.expect("MAIL FROM:<a@x.test> SIZE=1025", 552).await;
    client.expect("MAIL FROM:<a@x.test> SIZE=1024", 250).await;
}

#[tokio::test]
async fn an_oversize_message_gets_552_after_its_end_and_the_session_goes_on() {
    let mail = server_with(MailConfig {
        max_message_bytes: 1024,
        ..MailConfig::default()
    })
    .await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    let big = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(1500));
    assert_eq!(client.transaction(&["a@x.test"], &big).await, 552);
    client.expect("NOOP", 250).await;
    assert_eq!(
        client
            .transaction(&["a@x.test"], "Subject: small\r\n\r\nok\r\n")
            .await,
        250
    );
    let subjects: Vec<String> = mail
        .inbox()
        .messages()
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert_eq!(subjects, ["small"]);
}

#[tokio::test]
async fn a_runaway_message_is_answered_552_and_the_connection_closed() {
    let mail = server_with(MailConfig {
        max_message_bytes: 1024,
        ..MailConfig::default()
    })
    .await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    client.expect("MAIL FROM:<a@x.test>", 250).await;
    client.expect("RCPT TO:<b@x.test>", 250).await;
    client.expect("DATA", 354).await;
    client.send("z".repeat(3000).as_bytes()).await;
    client.send(b"\r\n").await;
    let (code, text) = client.reply().await;
    assert_eq!(code, 552, "{text}");
    assert!(client.is_closed_by_server().await);
    assert!(mail.inbox().is_empty());
}

#[tokio::test]
async fn garbage_invalid_utf8_and_over_long_lines_leave_the_server_serving() {
    let mail = server().await;
    // A client that stays connected throughout, to show others are unaffected.
    let mut bystander = RawClient::greeted(mail.smtp_addr()).await;
    let mut vandal = RawClient::connect(mail.smtp_addr()).await;
    // Deterministic noise with every byte value, including NUL, CR and 0xFF.
    let noise: Vec<u8> = (0..2000u32)
        .map(|i| u8::try_from(i * 7919 % 256).unwrap())
        .collect();
    vandal.send(&noise).await;
    vandal.send(b"\r\n").await;
    vandal
        .send(b"EHLO \xff\xfe\xc3\x28 invalid utf-8\r\n")
        .await;
    vandal.send(&vec![b'A'; 100_000]).await;
    vandal.send(b"\r\nNOOP\r\n").await;
    // Every line of noise is answered, then the EHLO, the over-long line and the NOOP.
    let noise_lines = noise.split(|&b| b == b'\n').count();
    let mut codes = Vec::new();
    for _ in 0..noise_lines {
        codes.push(vandal.reply().await.0);
    }
    assert!(
        codes.iter().all(|c| [500, 501, 502].contains(c)),
        "{codes:?}"
    );
    let (ehlo, over_long, noop) = (
        vandal.reply().await.0,
        vandal.reply().await.0,
        vandal.reply().await.0,
    );
    assert_eq!(
        (ehlo, over_long, noop),
        (250, 500, 250),
        "after the noise: {codes:?}"
    );
    // A third client is served while the vandal leaves mid-line.
    vandal.send(b"MAIL FROM:<half").await;
    drop(vandal);
    let mut newcomer = RawClient::greeted(mail.smtp_addr()).await;
    assert_eq!(
        newcomer
            .transaction(&["n@x.test"], "Subject: newcomer\r\n\r\nx\r\n")
            .await,
        250
    );
    assert_eq!(
        bystander
            .transaction(&["b@x.test"], "Subject: bystander\r\n\r\nx\r\n")
            .await,
        250
    );
    assert_eq!(mail.inbox().len(), 2);
}

#[tokio::test]
async fn invalid_utf8_content_is_stored_with_replacement_characters() {
    let mail = server().await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    client
        .expect("MAIL FROM:<a@x.test> BODY=8BITMIME", 250)
        .await;
    client.expect("RCPT TO:<b@x.test>", 250).await;
    client.expect("DATA", 354).await;
    client
        .send(b"Subject: bytes\r\n\r\nbad \xff\xfe here\r\n.\r\n")
        .await;
    assert_eq!(client.reply().await.0, 250);
    let message = mail
        .inbox()
        .wait_for("b@x.test", None, PATIENCE)
        .await
        .unwrap();
    assert_eq!(message.body, "bad \u{fffd}\u{fffd} here\n");
}

#[tokio::test]
async fn the_recipient_cap_answers_452_beyond_one_hundred() {
    let mail = server().await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    client.expect("MAIL FROM:<a@x.test>", 250).await;
    for n in 0..100 {
        client.expect(&format!("RCPT TO:<r{n}@x.test>"), 250).await;
    }
    client.expect("RCPT TO:<r100@x.test>", 452).await;
    assert_eq!(client.transaction_after_mail(&[]).await, 250);
    assert_eq!(mail.inbox().messages()[0].rcpt_to.len(), 100);
}

#[tokio::test]
async fn an_idle_connection_is_told_421_and_closed() {
    let mail = server_with(MailConfig {
        idle_timeout: Duration::from_millis(200),
        ..MailConfig::default()
    })
    .await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    let (code, text) = client.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(client.is_closed_by_server().await);
}

#[tokio::test]
async fn reject_recipients_answers_every_rcpt_with_the_scripted_code() {
    let mail = server_with(MailConfig {
        behaviour: Behaviour::RejectRecipients(550),
        ..MailConfig::default()
    })
    .await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    client.expect("MAIL FROM:<a@x.test>", 250).await;
    client.expect("RCPT TO:<b@x.test>", 550).await;
    mail.set_behaviour(Behaviour::RejectRecipients(450));
    client.expect("RCPT TO:<b@x.test>", 450).await;
    client.expect("DATA", 503).await;
    // Switching back applies to the open connection too.
    mail.set_behaviour(Behaviour::Accept);
    assert_eq!(client.transaction_after_mail(&["b@x.test"]).await, 250);
}

#[tokio::test]
async fn temp_fail_takes_the_message_then_answers_451_and_stores_nothing() {
    let mail = server().await;
    mail.set_behaviour(Behaviour::TempFail);
    assert_eq!(mail.behaviour(), Behaviour::TempFail);
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    assert_eq!(
        client
            .transaction(&["a@x.test"], "Subject: t\r\n\r\nx\r\n")
            .await,
        451
    );
    assert!(mail.inbox().is_empty());
    mail.set_behaviour(Behaviour::Accept);
    assert_eq!(
        client
            .transaction(&["a@x.test"], "Subject: t\r\n\r\nx\r\n")
            .await,
        250
    );
    assert_eq!(mail.inbox().len(), 1);
}

#[tokio::test]
async fn drop_after_greeting_greets_then_hangs_up() {
    let mail = server_with(MailConfig {
        behaviour: Behaviour::DropAfterGreeting,
        ..MailConfig::default()
    })
    .await;
    let mut client = RawClient::connect(mail.smtp_addr()).await;
    assert!(client.is_closed_by_server().await);
    mail.set_behaviour(Behaviour::Accept);
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    client.expect("QUIT", 221).await;
}

#[tokio::test]
async fn dropping_the_server_stops_the_smtp_listener_and_open_sessions() {
    let mail = server().await;
    let addr = mail.smtp_addr();
    let mut open = RawClient::greeted(addr).await;
    drop(mail);
    assert!(
        open.is_closed_by_server().await,
        "an open session must be closed"
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepting on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn invalid_configurations_are_refused_with_a_reason() {
    for config in [
        MailConfig {
            hostname: "two words".to_owned(),
            ..MailConfig::default()
        },
        MailConfig {
            hostname: "evil\r\n250 ok".to_owned(),
            ..MailConfig::default()
        },
        MailConfig {
            hostname: String::new(),
            ..MailConfig::default()
        },
        MailConfig {
            max_message_bytes: 0,
            ..MailConfig::default()
        },
    ] {
        let error = mock_mail::MailServer::spawn(config.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(error, mock_mail::MailError::InvalidConfig(_)),
            "{config:?} gave {error}"
        );
    }
}

#[tokio::test]
async fn a_message_just_under_the_default_limit_is_accepted_whole() {
    let mail = server().await;
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    let line = format!("{}\r\n", "q".repeat(76));
    let lines = (10 * 1024 * 1024 - 100) / line.len();
    let content = format!("Subject: big\r\n\r\n{}", line.repeat(lines));
    assert_eq!(client.transaction(&["big@x.test"], &content).await, 250);
    let message = mail
        .inbox()
        .wait_for("big@x.test", None, PATIENCE)
        .await
        .unwrap();
    assert_eq!(message.raw.len(), content.len());
}
