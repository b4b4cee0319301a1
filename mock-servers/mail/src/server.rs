//! [`MailServer`]: the SMTP listener and the HTTP listener around one [`Inbox`], and the
//! connection driver that moves bytes between a socket and an [`smtp::Session`](crate::smtp::Session).
//!
//! Each SMTP connection runs in its own task (mock-kit's accept loop), reads one line at a time
//! with a deadline, and writes each reply as soon as it is decided, which also serves pipelined
//! clients correctly. An I/O error or a misbehaving client ends only its own connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mock_kit::Running;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::MailError;
use crate::inbox::{DEFAULT_CAPACITY, Inbox};
use crate::smtp::{Behaviour, LineReader, Reply, Session, SessionLimits, Step};
use crate::web;

/// How a [`MailServer`] is set up.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// Largest message accepted, in bytes (advertised as `SIZE`); larger ones get 552.
    pub max_message_bytes: usize,
    /// Name used in the greeting and in EHLO. Must be non-empty and free of whitespace and
    /// control characters, since it goes verbatim into replies.
    pub hostname: String,
    /// How mail is treated at start; see [`MailServer::set_behaviour`].
    pub behaviour: Behaviour,
    /// How long the server waits for each line before answering 421 and closing.
    pub idle_timeout: Duration,
    /// How many messages the inbox keeps before dropping the oldest.
    pub max_stored_messages: usize,
    /// Where the SMTP listener binds (default `127.0.0.1:0`, a free port; a fixed port when a
    /// server under test is configured by hand to send there).
    pub smtp_listen: SocketAddr,
    /// Where the inbox's HTTP listener binds (default `127.0.0.1:0`).
    pub http_listen: SocketAddr,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 10 * 1024 * 1024,
            hostname: "mail.mock.test".to_owned(),
            behaviour: Behaviour::Accept,
            idle_timeout: Duration::from_mins(1),
            max_stored_messages: DEFAULT_CAPACITY,
            smtp_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            http_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        }
    }
}

/// A running mail sink: SMTP and HTTP on ephemeral loopback ports (or the addresses in its
/// [`MailConfig`]). Dropping it stops both listeners and closes their open connections.
#[derive(Debug)]
pub struct MailServer {
    smtp: Running,
    http: Running,
    shared: Arc<Shared>,
}

/// What every connection task needs.
#[derive(Debug)]
struct Shared {
    inbox: Inbox,
    behaviour: Mutex<Behaviour>,
    limits: SessionLimits,
    idle_timeout: Duration,
}

impl Shared {
    fn behaviour(&self) -> Behaviour {
        *self
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl MailServer {
    /// Validates `config` and starts both listeners.
    pub async fn spawn(config: MailConfig) -> Result<Self, MailError> {
        if config.hostname.is_empty()
            || config
                .hostname
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(MailError::InvalidConfig(format!(
                "hostname {:?} must be non-empty, without whitespace or control characters",
                config.hostname
            )));
        }
        if config.max_message_bytes == 0 {
            return Err(MailError::InvalidConfig(
                "max_message_bytes must be positive".to_owned(),
            ));
        }
        let inbox = Inbox::with_capacity(config.max_stored_messages);
        let shared = Arc::new(Shared {
            inbox: inbox.clone(),
            behaviour: Mutex::new(config.behaviour),
            limits: SessionLimits {
                hostname: config.hostname,
                max_message_bytes: config.max_message_bytes,
            },
            idle_timeout: config.idle_timeout,
        });
        let for_connections = Arc::clone(&shared);
        // The accept loop drops each connection task on shutdown, so the signal is not needed.
        // Both sockets are bound before either listener starts, so a taken port fails the whole
        // spawn without leaving the other listener running.
        let smtp_socket = bind(config.smtp_listen, "SMTP").await?;
        let http_socket = bind(config.http_listen, "HTTP").await?;
        let smtp = mock_kit::serve_tcp_on(smtp_socket, move |stream, remote, _shutdown| {
            serve_connection(stream, remote, Arc::clone(&for_connections))
        })?;
        let http = mock_kit::serve_router(http_socket, web::router(inbox), None)?;
        Ok(Self { smtp, http, shared })
    }

    /// The SMTP listener's address (`127.0.0.1:PORT`).
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp.addr()
    }

    /// Base URL of the inbox web page and JSON API, `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        self.http.origin("127.0.0.1")
    }

    /// The journal of HTTP requests to the inbox API and pages.
    pub fn http_journal(&self) -> &mock_kit::Journal {
        self.http.journal()
    }

    /// The inbox every accepted message goes to.
    pub fn inbox(&self) -> &Inbox {
        &self.shared.inbox
    }

    /// Switches how mail is treated, for open connections as well as new ones.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self
            .shared
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = behaviour;
    }

    /// The behaviour in force.
    pub fn behaviour(&self) -> Behaviour {
        self.shared.behaviour()
    }
}

/// Binds one listener socket, naming the listener and address when that fails.
async fn bind(addr: SocketAddr, listener: &'static str) -> Result<TcpListener, MailError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| MailError::Bind {
            listener,
            addr,
            source,
        })
}

/// Runs one SMTP conversation; errors end it quietly, since they are the peer's business.
async fn serve_connection(stream: TcpStream, remote: SocketAddr, shared: Arc<Shared>) {
    if let Err(error) = converse(stream, &shared).await {
        tracing::debug!(%remote, %error, "SMTP connection ended with an I/O error");
    }
}

async fn converse(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut session = Session::new(shared.limits.clone());
    send(&mut writer, &session.greeting()).await?;
    if shared.behaviour() == Behaviour::DropAfterGreeting {
        return writer.shutdown().await;
    }
    let mut reader = LineReader::new(reader);
    loop {
        let limit = session.line_limit();
        let frame = match tokio::time::timeout(shared.idle_timeout, reader.next_frame(limit)).await
        {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(error)) => return Err(error),
            Err(_elapsed) => {
                send(&mut writer, &session.idle_timeout_reply()).await?;
                return writer.shutdown().await;
            }
        };
        match session.handle(frame, shared.behaviour()) {
            Step::Silent => {}
            Step::Reply(reply) => send(&mut writer, &reply).await?,
            Step::Deliver { envelope, data } => {
                let message = shared.inbox.deliver(envelope, &data);
                tracing::debug!(id = message.id, to = ?message.rcpt_to, "message accepted");
                send(
                    &mut writer,
                    &Reply::new(250, format!("2.0.0 OK: queued as {}", message.id)),
                )
                .await?;
            }
            Step::Close(reply) => {
                send(&mut writer, &reply).await?;
                return writer.shutdown().await;
            }
        }
    }
}

async fn send(writer: &mut tokio::net::tcp::OwnedWriteHalf, reply: &Reply) -> std::io::Result<()> {
    writer.write_all(reply.to_wire().as_bytes()).await
}
