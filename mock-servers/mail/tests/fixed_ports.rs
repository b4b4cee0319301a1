//! A mail server on addresses chosen by its caller, as a server under test configured by hand
//! needs it: mail sent to the fixed SMTP port is listed by the API on the fixed HTTP port.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::PATIENCE;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mock_mail::{MailConfig, MailError, MailServer};

/// A loopback address whose port was free a moment ago.
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test]
async fn smtp_and_the_inbox_api_listen_on_the_configured_ports() {
    let (smtp, http) = (free_addr(), free_addr());
    let mail = MailServer::spawn(MailConfig {
        smtp_listen: smtp,
        http_listen: http,
        ..MailConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(mail.smtp_addr(), smtp);
    assert_eq!(mail.http_url(), format!("http://127.0.0.1:{}", http.port()));

    let message = lettre::Message::builder()
        .from("as@as.test".parse().unwrap())
        .to("bob@users.example".parse().unwrap())
        .subject("code")
        .body("Your code is 123456".to_owned())
        .unwrap();
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(smtp.port())
        .build()
        .send(message)
        .await
        .unwrap();
    mail.inbox()
        .wait_for("bob@users.example", None, PATIENCE)
        .await
        .unwrap();
    let listed: serde_json::Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{}/api/messages", http.port()))
        .query(&[("to", "bob@users.example")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

#[tokio::test]
async fn a_taken_port_names_the_listener_and_starts_nothing() {
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let smtp = free_addr();
    let error = MailServer::spawn(MailConfig {
        smtp_listen: smtp,
        http_listen: taken.local_addr().unwrap(),
        ..MailConfig::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            MailError::Bind {
                listener: "HTTP",
                ..
            }
        ),
        "{error}"
    );
    // The SMTP socket was released with the failed spawn.
    std::net::TcpListener::bind(smtp).unwrap();
}
