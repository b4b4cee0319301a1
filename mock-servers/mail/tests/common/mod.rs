//! Helpers shared by the wire tests: a server per test and a raw SMTP client that shows what it
//! received when an expectation fails.
// Each test binary uses a different subset of these helpers.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use mock_mail::{MailConfig, MailServer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How long any single read may take before a test fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub async fn server() -> MailServer {
    MailServer::spawn(MailConfig::default()).await.unwrap()
}

pub async fn server_with(config: MailConfig) -> MailServer {
    MailServer::spawn(config).await.unwrap()
}

/// The first run of exactly six ASCII digits in `text`.
pub fn six_digit_code(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let run = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if run == 6 {
            return text.get(start..start + 6);
        }
        start += run.max(1);
    }
    None
}

/// A hand-driven SMTP client over a real socket.
pub struct RawClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl RawClient {
    /// Connects and consumes the 220 greeting.
    pub async fn connect(addr: SocketAddr) -> Self {
        let mut client = Self::connect_silently(addr).await;
        let (code, text) = client.reply().await;
        assert_eq!(code, 220, "greeting: {text}");
        client
    }

    /// Connects without reading anything.
    pub async fn connect_silently(addr: SocketAddr) -> Self {
        let (reader, writer) = TcpStream::connect(addr).await.unwrap().into_split();
        Self {
            reader: BufReader::new(reader),
            writer,
        }
    }

    /// Connects, greets with EHLO and checks the 250.
    pub async fn greeted(addr: SocketAddr) -> Self {
        let mut client = Self::connect(addr).await;
        client.expect("EHLO client.test", 250).await;
        client
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// Reads one complete (possibly multi-line) reply: its code and its full text.
    pub async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(PATIENCE, self.reader.read_line(&mut line)).await;
            let read =
                read.unwrap_or_else(|_| panic!("no reply within {PATIENCE:?}; so far: {text:?}"));
            assert!(
                read.unwrap() > 0,
                "connection closed mid-reply; so far: {text:?}"
            );
            text.push_str(&line);
            assert!(
                line.len() >= 4 && line.ends_with("\r\n"),
                "malformed reply line {line:?}"
            );
            if line.as_bytes()[3] == b' ' {
                return (line[..3].parse().unwrap(), text);
            }
        }
    }

    /// Sends `line` with CRLF and returns the reply code.
    pub async fn command(&mut self, line: &str) -> u16 {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await.0
    }

    /// Sends `line` and asserts the reply code, showing the reply on failure.
    pub async fn expect(&mut self, line: &str, code: u16) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        let (got, text) = self.reply().await;
        assert_eq!(got, code, "{line:?} was answered {text:?}");
        text
    }

    /// Runs MAIL/RCPT/DATA and sends `content` (already dot-stuffed, ending in CRLF) and the final
    /// dot; returns the code after the dot.
    pub async fn transaction(&mut self, to: &[&str], content: &str) -> u16 {
        self.expect("MAIL FROM:<sender@as.test>", 250).await;
        for rcpt in to {
            self.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
        }
        self.expect("DATA", 354).await;
        self.send(content.as_bytes()).await;
        self.command(".").await
    }

    /// Finishes a transaction whose MAIL FROM was accepted: RCPTs, DATA, a small message.
    pub async fn transaction_after_mail(&mut self, to: &[&str]) -> u16 {
        for rcpt in to {
            self.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
        }
        self.expect("DATA", 354).await;
        self.send(b"Subject: x\r\n\r\nx\r\n").await;
        self.command(".").await
    }

    /// Whether the server ends the connection within [`PATIENCE`]: EOF, or a reset when it
    /// closed with our bytes unread. Any bytes still in flight are drained.
    pub async fn is_closed_by_server(&mut self) -> bool {
        let mut sink = Vec::new();
        tokio::time::timeout(PATIENCE, self.reader.read_to_end(&mut sink))
            .await
            .is_ok()
    }
}
